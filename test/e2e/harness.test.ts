/**
 * The harness's pure parts, checked against real tools and the committed manifests: the OCI
 * layout and its tar layers (GNU tar and digests), Go duration parsing of the registry's log,
 * and what the manifest reader takes from dist/.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { ManifestSet, REPO_ROOT, buildTestImage, parseGoDuration, programOfCommand, run, waitTargetsOf } from './harness';

jest.setTimeout(60_000);

describe('e2e harness', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dfe2e-harness-'));
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes an OCI layout whose blobs match their digests and whose layers are valid tars', async () => {
    const image = await buildTestImage({ dir: path.join(dir, 'img'), layerSizes: [1000, 70_000], gzip: true });
    for (const blob of [image.manifest, image.config, ...image.layers]) {
      const bytes = fs.readFileSync(path.join(image.layoutDir, 'blobs', 'sha256', blob.digest.slice(7)));
      expect(bytes.length).toBe(blob.size);
      expect(`sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`).toBe(blob.digest);
    }
    const config = JSON.parse(fs.readFileSync(path.join(image.layoutDir, 'blobs', 'sha256', image.config.digest.slice(7)), 'utf8')) as { rootfs: { diff_ids: string[] } };
    for (const [i, layer] of image.layers.entries()) {
      const tar = zlib.gunzipSync(fs.readFileSync(path.join(image.layoutDir, 'blobs', 'sha256', layer.digest.slice(7))));
      expect(`sha256:${crypto.createHash('sha256').update(tar).digest('hex')}`).toBe(config.rootfs.diff_ids[i]);
      const tarFile = path.join(dir, `layer-${i}.tar`);
      fs.writeFileSync(tarFile, tar);
      const listing = await run('tar', ['-tvf', tarFile]);
      expect(listing.stdout).toContain(`e2e/layer-${i}.bin`);
      expect(listing.stdout).toMatch(new RegExp(`\\s${[1000, 70_000][i]}\\s`));
    }
    const index = JSON.parse(fs.readFileSync(path.join(image.layoutDir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    expect(index.manifests[0]?.digest).toBe(image.manifest.digest);
  });

  it('parses Go durations from the registry log', () => {
    expect(parseGoDuration('2.100845ms')).toBeCloseTo(2.100845);
    expect(parseGoDuration('1.5s')).toBe(1500);
    expect(parseGoDuration('1m3.2s')).toBe(63_200);
    expect(parseGoDuration('850µs')).toBeCloseTo(0.85);
  });

  it('reads workloads, services, secrets and init waits from dist/', () => {
    const files = ['cluster-a.k8s.yaml', 'cluster-b.k8s.yaml'].map((f) => path.join(REPO_ROOT, 'dist', f));
    const m = ManifestSet.load(files);
    const names = m.workloads().map((w) => `${w.namespace}/${w.kind}/${w.name}`);
    expect(names).toEqual(expect.arrayContaining(['cluster-a/Deployment/dragonfly-manager', 'cluster-a/DaemonSet/dragonfly-dfdaemon', 'cluster-b/DaemonSet/dragonfly-dfdaemon']));
    const managerSvc = m.services().find((s) => s.dns === 'dragonfly-manager.cluster-a.svc.cluster.local');
    expect(managerSvc && m.backends(managerSvc).map((w) => w.name)).toEqual(['dragonfly-manager']);
    const ds = m.workloads().find((w) => w.namespace === 'cluster-b' && w.kind === 'DaemonSet');
    expect(ds?.pod.nodeSelector).toEqual({ cluster: 'b' });
    const waits = (ds?.pod.initContainers ?? []).flatMap((c) => waitTargetsOf(c));
    expect(waits).toEqual([{ host: 'dragonfly-scheduler.cluster-b.svc.cluster.local', port: 8002 }]);
    expect(programOfCommand(ds?.pod.containers[0]?.command)).toBe('dfdaemon');
    expect(m.secretValue('cluster-a', 'dragonfly-manager-credentials', 'username')).toBe('root');
  });
});
