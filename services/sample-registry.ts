/**
 * A one-blob, registry-shaped origin on loopback for `npm start`: the proxy's "try it" line
 * pulls a real blob through the peer (seed peer back to this origin, peer from the seed peer,
 * digest checked) without reaching any registry on the Internet.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SampleRegistry {
  readonly port: number;
  /** Path of the blob, `/v2/<repo>/blobs/sha256:<hex>`. */
  readonly blobPath: string;
  readonly digest: string;
  readonly size: number;
  close(): Promise<void>;
}

const REPO = 'dragonfly-ts/sample';

/** Serves HEAD/GET (with a single `Range`) of one random blob of `size` bytes, and `GET /v2/`. */
export async function startSampleRegistry(host: string, port: number, size = 8 * 1024 * 1024): Promise<SampleRegistry> {
  const blob = randomBytes(size);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const blobPath = `/v2/${REPO}/blobs/${digest}`;
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url === '/v2/' || url === '/v2') {
      res.writeHead(200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' }).end(req.method === 'GET' ? '{}' : undefined);
      return;
    }
    if (url !== blobPath) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(req.method === 'GET' ? JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }] }) : undefined);
      return;
    }
    const headers = { 'content-type': 'application/octet-stream', 'docker-content-digest': digest, 'accept-ranges': 'bytes' };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (req.headers.range && range) {
      const start = Number(range[1]);
      const end = range[2] === '' ? size - 1 : Math.min(Number(range[2]), size - 1);
      if (start > end || start >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return;
      }
      res.writeHead(206, { ...headers, 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${size}` });
      res.end(req.method === 'GET' ? blob.subarray(start, end + 1) : undefined);
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': size });
    res.end(req.method === 'GET' ? blob : undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    blobPath,
    digest,
    size,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
