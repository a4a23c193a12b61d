/**
 * The test bed without Dragonfly: a real registry on an "origin" host, a real containerd on a
 * worker host, `ctr image pull --hosts-dir` straight to the origin. Proves the harness can see
 * every blob fetch (so later tests can assert that the origin was NOT asked), that removal
 * really forces a refetch, and that the private registry needs credentials.
 */
import * as path from 'node:path';
import { ContainerdHost, NetnsLab, OriginRegistry, buildTestImage, pushTestImage, type TestImage } from './harness';

jest.setTimeout(180_000);

const REGISTRY_NAME = 'registry.e2e.internal';
const CREDS = { username: 'e2e', password: 'e2e-secret' };

describe('containerd pulls directly from the origin registry (no Dragonfly)', () => {
  let lab: NetnsLab;
  let origin: OriginRegistry;
  let privateOrigin: OriginRegistry;
  let worker: ContainerdHost;
  let image: TestImage;
  let privateImage: TestImage;
  let ref: string;
  let privateRef: string;

  beforeAll(async () => {
    lab = await NetnsLab.create();
    const originHost = await lab.addHost('origin');
    const workerHost = await lab.addHost('worker-1');
    lab.addDnsName(REGISTRY_NAME, originHost.ip);
    [origin, privateOrigin, worker] = await Promise.all([
      OriginRegistry.start(originHost, { port: 5000 }),
      OriginRegistry.start(originHost, { port: 5001, credentials: CREDS }),
      ContainerdHost.start(workerHost),
    ]);
    image = await buildTestImage({ dir: path.join(lab.workDir, 'img-public'), layerSizes: [8 << 20, 3 << 20], gzip: true });
    privateImage = await buildTestImage({ dir: path.join(lab.workDir, 'img-private'), layerSizes: [2 << 20] });
    await pushTestImage(image, { registry: origin.address, repository: 'e2e/direct' });
    await pushTestImage(privateImage, { registry: privateOrigin.address, repository: 'e2e/private', credentials: CREDS });
    ref = `${REGISTRY_NAME}:5000/e2e/direct:${image.tag}`;
    privateRef = `${REGISTRY_NAME}:5001/e2e/private:${privateImage.tag}`;
  });

  afterAll(async () => {
    await NetnsLab.teardownAll();
  });

  it('pulls by registry DNS name and stores exactly the pushed blobs', async () => {
    const mark = origin.mark();
    const pull = await worker.pull(ref);
    await worker.verifyImage(ref, image);
    const counts = origin.blobGetCounts(mark);
    for (const layer of image.layers) expect(counts.get(layer.digest)).toBe(1);
    // The worker fetched them itself, from its own address.
    expect(new Set(origin.blobGets({ since: mark }).map((r) => r.client))).toEqual(new Set([worker.host.ip]));
    expect(origin.blobBytes(mark)).toBeGreaterThanOrEqual(image.layerBytes);
    const perLayer = image.layers.map((l) => `${l.digest.slice(7, 19)} ${origin.blobGets({ since: mark, digest: l.digest })[0]?.durationMs.toFixed(1)} ms`);
    console.log(`direct pull ${(image.layerBytes / 2 ** 20).toFixed(1)} MiB: ${pull.ms} ms (origin per layer: ${perLayer.join(', ')})`);
  });

  it('after image rm + content removal the next pull fetches every layer again', async () => {
    await worker.removeImage(ref, image);
    const mark = origin.mark();
    const pull = await worker.pull(ref);
    await worker.verifyImage(ref, image);
    const counts = origin.blobGetCounts(mark);
    for (const layer of image.layers) expect(counts.get(layer.digest)).toBe(1);
    console.log(`direct re-pull after removal: ${pull.ms} ms`);
  });

  it('a pull with the image still present fetches no layer', async () => {
    const mark = origin.mark();
    await worker.pull(ref);
    expect(origin.blobGets({ since: mark })).toHaveLength(0);
  });

  it('the private registry refuses an anonymous pull and serves one with credentials', async () => {
    const denied = await worker.pull(privateRef, { allowFailure: true, timeoutMs: 60_000 });
    expect(denied.ok).toBe(false);
    expect(denied.output.stderr).toMatch(/401|unauthorized/i);
    expect(await worker.images()).not.toContain(privateRef);

    const mark = privateOrigin.mark();
    await worker.pull(privateRef, { user: `${CREDS.username}:${CREDS.password}` });
    await worker.verifyImage(privateRef, privateImage);
    expect(privateOrigin.blobGetCounts(mark).get(privateImage.layers[0].digest)).toBe(1);
  });
});
