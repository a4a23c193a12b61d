/**
 * A small OCI registry for job tests: an image index with linux/amd64 and linux/arm64
 * manifests of random layers, a token service that answers anonymous requests for public
 * repositories and wants basic credentials for private ones, and counters of blob reads.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestImage {
  readonly repository: string;
  /** amd64 layers (what a linux/amd64 preheat must fetch). */
  readonly layers: { digest: string; data: Buffer }[];
  readonly armLayers: { digest: string; data: Buffer }[];
}

export interface TestRegistry {
  readonly base: string;
  readonly host: string;
  image(repository: string): TestImage;
  manifestUrl(repository: string, reference?: string): string;
  /** Blob GETs answered with bytes, per digest. */
  blobReads(digest: string): number;
  totalBlobReads(): number;
  close(): Promise<void>;
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export async function startTestRegistry(options: {
  images: { repository: string; layerSizes: number[]; private?: boolean }[];
  credentials?: { username: string; password: string };
  /** Delay before each blob answer (slow origin). */
  blobDelayMs?: number;
  /** Plain files served without auth under /files/<name>. */
  files?: Record<string, Buffer>;
}): Promise<TestRegistry> {
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, { type: string; body: Buffer }>();
  const images = new Map<string, TestImage & { private: boolean }>();
  const reads = new Map<string, number>();
  const tokens = new Map<string, string>(); // token -> repository scope
  for (const spec of options.images) {
    const mk = () => spec.layerSizes.map((n) => ({ data: randomBytes(n) })).map((l) => ({ ...l, digest: sha(l.data) }));
    const layers = mk();
    const armLayers = mk();
    const manifestOf = (ls: typeof layers) => {
      const config = Buffer.from(JSON.stringify({ architecture: 'x', os: 'linux' }));
      blobs.set(sha(config), config);
      for (const l of ls) blobs.set(l.digest, l.data);
      const body = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
          layers: ls.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.data.length })),
        }),
      );
      manifests.set(`${spec.repository}@${sha(body)}`, { type: 'application/vnd.oci.image.manifest.v1+json', body });
      return { digest: sha(body), size: body.length };
    };
    const amd = manifestOf(layers);
    const arm = manifestOf(armLayers);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...amd, platform: { os: 'linux', architecture: 'amd64' } },
        ],
      }),
    );
    manifests.set(`${spec.repository}@latest`, { type: 'application/vnd.oci.image.index.v1+json', body: index });
    images.set(spec.repository, { repository: spec.repository, layers, armLayers, private: spec.private ?? false });
  }

  let base = '';
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://registry');
    const file = /^\/files\/([^/]+)$/.exec(url.pathname)?.[1];
    if (file !== undefined) {
      const data = options.files?.[file];
      if (!data) return void res.writeHead(404).end();
      reads.set(`file:${file}`, (reads.get(`file:${file}`) ?? 0) + 1);
      return void res.writeHead(200, { 'content-length': data.length, 'content-type': 'application/octet-stream' }).end(data);
    }
    if (url.pathname === '/token') {
      const scope = url.searchParams.get('scope') ?? '';
      const repository = /^repository:([^:]+):pull$/.exec(scope)?.[1] ?? '';
      const image = images.get(repository);
      if (image?.private) {
        const c = options.credentials;
        const expected = c ? `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` : '';
        if (req.headers.authorization !== expected) return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      }
      const token = randomBytes(16).toString('hex');
      tokens.set(token, repository);
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token }));
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!m) return void res.writeHead(404).end();
    const [, repository, kind, reference] = m;
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!bearer || tokens.get(bearer) !== repository) {
      const challenge = `Bearer realm="${base}/token",service="test-registry",scope="repository:${repository}:pull"`;
      return void res.writeHead(401, { 'www-authenticate': challenge, 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
    }
    if (kind === 'manifests') {
      const found = manifests.get(`${repository}@${reference}`);
      if (!found) return void res.writeHead(404).end();
      return void res.writeHead(200, { 'content-type': found.type, 'content-length': found.body.length, 'docker-content-digest': sha(found.body) }).end(found.body);
    }
    const blob = blobs.get(reference);
    if (!blob) return void res.writeHead(404).end();
    const send = () => {
      let start = 0;
      let end = blob.length - 1;
      const r = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (r) {
        start = Number(r[1]);
        end = r[2] ? Math.min(Number(r[2]), blob.length - 1) : blob.length - 1;
        res.writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${blob.length}`, 'content-type': 'application/octet-stream' });
      } else {
        res.writeHead(200, { 'content-length': blob.length, 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' });
      }
      if (req.method === 'HEAD') return void res.end();
      reads.set(reference, (reads.get(reference) ?? 0) + 1);
      res.end(blob.subarray(start, end + 1));
    };
    if (options.blobDelayMs) setTimeout(send, options.blobDelayMs);
    else send();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  return {
    base,
    host: `127.0.0.1:${port}`,
    image: (repository) => images.get(repository)!,
    manifestUrl: (repository, reference = 'latest') => `${base}/v2/${repository}/manifests/${reference}`,
    blobReads: (digest) => reads.get(digest) ?? 0,
    totalBlobReads: () => [...reads.values()].reduce((a, b) => a + b, 0),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
