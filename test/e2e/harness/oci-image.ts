/**
 * Test images: an OCI image layout written from scratch, with N layers of random (incompressible)
 * bytes of chosen sizes, then pushed with skopeo. Random data makes every layer unique per run, so
 * no cache anywhere can answer for it but the origin.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { run } from './exec';

export const MEDIA_TYPES = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerTar: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface BlobRef {
  readonly digest: string;
  readonly size: number;
  readonly mediaType: string;
}

export interface TestImage {
  /** OCI layout directory. */
  readonly layoutDir: string;
  readonly tag: string;
  readonly manifest: BlobRef;
  readonly config: BlobRef;
  readonly layers: readonly BlobRef[];
  /** Sum of layer sizes as stored (compressed when gzip). */
  readonly layerBytes: number;
}

export interface BuildImageOptions {
  readonly dir: string;
  readonly tag?: string;
  /** Size of each layer's single file in bytes, e.g. [8 << 20, 4 << 20]. */
  readonly layerSizes: readonly number[];
  /** gzip the layers (random data does not shrink; this exercises the gzip path). */
  readonly gzip?: boolean;
}

const BLOCK = 512;
const CHUNK = 4 * 1024 * 1024;

/** Writes an OCI layout with random layers; returns digests for later verification. */
export async function buildTestImage(opts: BuildImageOptions): Promise<TestImage> {
  const tag = opts.tag ?? 'v1';
  const blobsDir = path.join(opts.dir, 'blobs', 'sha256');
  fs.mkdirSync(blobsDir, { recursive: true });
  fs.writeFileSync(path.join(opts.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const layers: BlobRef[] = [];
  const diffIds: string[] = [];
  for (const [i, size] of opts.layerSizes.entries()) {
    const { blob, diffId } = await writeRandomLayer(blobsDir, `e2e/layer-${i}.bin`, size, opts.gzip ?? false);
    layers.push(blob);
    diffIds.push(diffId);
  }
  const arch = process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : process.arch;
  const config = writeJsonBlob(blobsDir, MEDIA_TYPES.config, {
    architecture: arch,
    os: 'linux',
    created: new Date().toISOString(),
    config: { Cmd: ['/e2e/layer-0.bin'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created_by: `e2e random layer ${i}` })),
  });
  const manifest = writeJsonBlob(blobsDir, MEDIA_TYPES.manifest, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config,
    layers,
  });
  fs.writeFileSync(
    path.join(opts.dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.index,
      manifests: [{ ...manifest, platform: { architecture: arch, os: 'linux' }, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
  return { layoutDir: opts.dir, tag, manifest, config, layers, layerBytes: layers.reduce((n, l) => n + l.size, 0) };
}

export interface PushOptions {
  /** host:port of the registry, e.g. "10.231.7.10:5000" (plain HTTP). */
  readonly registry: string;
  readonly repository: string;
  readonly credentials?: { readonly username: string; readonly password: string };
}

/** Pushes the layout with skopeo; returns the reference `<registry>/<repo>:<tag>`. */
export async function pushTestImage(image: TestImage, opts: PushOptions): Promise<string> {
  const ref = `${opts.registry}/${opts.repository}:${image.tag}`;
  const args = ['copy', '--quiet', '--dest-tls-verify=false', '--preserve-digests'];
  if (opts.credentials) args.push('--dest-creds', `${opts.credentials.username}:${opts.credentials.password}`);
  args.push(`oci:${image.layoutDir}:${image.tag}`, `docker://${ref}`);
  await run('skopeo', args, { timeoutMs: 300_000 });
  return ref;
}

function writeJsonBlob(blobsDir: string, mediaType: string, value: unknown): BlobRef {
  const bytes = Buffer.from(JSON.stringify(value));
  const hex = crypto.createHash('sha256').update(bytes).digest('hex');
  fs.writeFileSync(path.join(blobsDir, hex), bytes);
  return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
}

/**
 * Streams a one-file ustar archive (a directory entry plus the file) of random bytes to disk,
 * hashing the uncompressed stream (diff_id) and the stored blob (digest) on the way.
 */
async function writeRandomLayer(blobsDir: string, fileName: string, size: number, gzip: boolean): Promise<{ blob: BlobRef; diffId: string }> {
  const tmp = path.join(blobsDir, `.tmp-${crypto.randomBytes(6).toString('hex')}`);
  const out = fs.createWriteStream(tmp);
  let writeError: Error | undefined;
  out.on('error', (e) => (writeError = e));
  const blobHash = crypto.createHash('sha256');
  const diffHash = crypto.createHash('sha256');
  let stored = 0;
  const gz = gzip ? zlib.createGzip({ level: 1 }) : undefined;
  const sink = (chunk: Buffer): Promise<void> => {
    blobHash.update(chunk);
    stored += chunk.length;
    if (out.write(chunk)) return Promise.resolve();
    return new Promise((resolve) => out.once('drain', resolve));
  };
  const gzDone = new Promise<void>((resolve, reject) => {
    if (!gz) return resolve();
    const pending: Promise<void>[] = [];
    gz.on('data', (c: Buffer) => {
      gz.pause();
      pending.push(sink(c).then(() => void gz.resume()));
    });
    gz.on('end', () => void Promise.all(pending).then(() => resolve(), reject));
    gz.on('error', reject);
  });
  const emit = async (chunk: Buffer): Promise<void> => {
    diffHash.update(chunk);
    if (!gz) return sink(chunk);
    if (!gz.write(chunk)) await new Promise<void>((r) => gz.once('drain', () => r()));
  };
  const dirName = `${path.posix.dirname(fileName)}/`;
  await emit(tarHeader(dirName, 0, '5', 0o755));
  await emit(tarHeader(fileName, size, '0', 0o755));
  for (let left = size; left > 0; ) {
    const n = Math.min(CHUNK, left);
    await emit(crypto.randomBytes(n));
    left -= n;
  }
  const pad = (BLOCK - (size % BLOCK)) % BLOCK;
  await emit(Buffer.alloc(pad + 2 * BLOCK));
  if (gz) {
    gz.end();
    await gzDone;
  }
  await new Promise<void>((resolve) => out.end(() => resolve()));
  if (writeError) throw new Error(`writing layer ${fileName}: ${writeError.message}`);
  const hex = blobHash.digest('hex');
  fs.renameSync(tmp, path.join(blobsDir, hex));
  return {
    blob: { mediaType: gzip ? MEDIA_TYPES.layerGzip : MEDIA_TYPES.layerTar, digest: `sha256:${hex}`, size: stored },
    diffId: `sha256:${diffHash.digest('hex')}`,
  };
}

/** A POSIX ustar header block (names < 100 bytes, owned by root, mtime 0). */
function tarHeader(name: string, size: number, typeflag: '0' | '5', mode: number): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  const put = (offset: number, length: number, value: string) => h.write(value, offset, length, 'ascii');
  const octal = (value: number, length: number) => value.toString(8).padStart(length - 1, '0');
  put(0, 100, name);
  put(100, 8, octal(mode, 8));
  put(108, 8, octal(0, 8));
  put(116, 8, octal(0, 8));
  put(124, 12, octal(size, 12));
  put(136, 12, octal(0, 12));
  put(148, 8, '        ');
  put(156, 1, typeflag);
  put(257, 6, 'ustar\0');
  put(263, 2, '00');
  put(265, 32, 'root');
  put(297, 32, 'root');
  let sum = 0;
  for (const b of h) sum += b;
  put(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}
