/** A real local HTTP origin, a TaskApi double that really fetches from it, and a tiny HTTP client. */
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { parseConfig, type DfdaemonConfig, type DfdaemonConfigInput } from '../../../services/common/config';
import { DEFAULT_FILTERED_QUERY_PARAMS, taskIdOf } from '../../../services/common/ids';
import {
  OriginResponseError,
  type DownloadOptions,
  type DownloadProgress,
  type TaskApi,
  type TaskInfo,
  type TaskReadResult,
} from '../../../services/dfdaemon/task-api';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
}

export interface Origin {
  readonly port: number;
  readonly base: string;
  readonly seen: SeenRequest[];
  readonly blobs: Map<string, Buffer>;
  close(): Promise<void>;
}

export function blobOf(content: Buffer): { digest: string; hex: string } {
  const hex = createHash('sha256').update(content).digest('hex');
  return { digest: `sha256:${hex}`, hex };
}

/**
 * A registry-like origin: `/v2/<repo>/blobs/<digest>` from memory (needs `Authorization:
 * Bearer good` when the repo is "private"), `/v2/<repo>/manifests/<ref>` a small JSON, `/slow`
 * a body that never ends.
 */
export async function startOrigin(): Promise<Origin> {
  const seen: SeenRequest[] = [];
  const blobs = new Map<string, Buffer>();
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const path = (req.url ?? '/').split('?')[0];
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (path.startsWith('/v2/private/') && req.headers.authorization !== 'Bearer good') {
        const body = JSON.stringify({ errors: [{ code: 'UNAUTHORIZED' }] });
        res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://auth.local/token",service="registry"', 'content-type': 'application/json' }).end(body);
        return;
      }
      const blob = /^\/v2\/.+\/blobs\/(sha256:[a-f0-9]{64})$/.exec(path);
      if (blob) {
        const content = blobs.get(blob[1]);
        if (!content) {
          res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
          return;
        }
        const headers = { 'content-type': 'application/octet-stream', 'docker-content-digest': blob[1] };
        if (req.method === 'HEAD') {
          res.writeHead(200, { ...headers, 'content-length': content.length }).end();
          return;
        }
        const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
        if (range) {
          const start = Number(range[1]);
          const end = Math.min(Number(range[2]), content.length - 1);
          res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${content.length}`, 'content-length': end - start + 1 });
          res.end(content.subarray(start, end + 1));
          return;
        }
        res.writeHead(200, { ...headers, 'content-length': content.length }).end(content);
        return;
      }
      if (/^\/v2\/.+\/manifests\//.test(path)) {
        const body = JSON.stringify({ schemaVersion: 2, path, method: req.method });
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': 'sha256:abc' });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      if (path === '/echo') {
        res.writeHead(201, { 'content-type': 'text/plain', 'x-echo-method': req.method ?? '' }).end(Buffer.concat(chunks));
        return;
      }
      if (path === '/file.bin') {
        res.writeHead(200, { 'content-type': 'application/x-test' }).end('plain file');
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no such path');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    seen,
    blobs,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Stored {
  readonly url: string;
  readonly content: Buffer;
  readonly headers: Record<string, string>;
}

/**
 * TaskApi double: downloads the whole content from the origin on first read (origin errors
 * become OriginResponseError), keeps it in memory, and serves later reads as cache hits.
 */
export class MemoryTasks implements TaskApi {
  readonly calls: DownloadOptions[] = [];
  readonly store = new Map<string, Stored>();
  /** Set to make the next read fail as the engine would. */
  failWith: Error | undefined;
  /** Set to make reads wait (until the signal aborts) before answering. */
  hang = false;
  /** Set to answer cache hits as the engine does for small contents held in memory: `content`, no `body`. */
  inMemory = false;
  /** Set to make stat know nothing (the proxy then cannot resolve a range before the read). */
  statUnknown = false;

  async read(options: DownloadOptions): Promise<TaskReadResult> {
    this.calls.push(options);
    if (this.failWith) throw this.failWith;
    if (this.hang) {
      await new Promise<void>((_resolve, reject) => {
        options.signal?.addEventListener('abort', () => reject(new Error('aborted')));
      });
    }
    const taskId = taskIdOf({ url: options.url, tag: options.tag, application: options.application, filteredQueryParams: options.filteredQueryParams ?? DEFAULT_FILTERED_QUERY_PARAMS });
    let stored = this.store.get(taskId);
    const fromCache = stored !== undefined;
    if (!stored) {
      const res = await fetch(options.url, { headers: options.requestHeaders, signal: options.signal });
      const body = Buffer.from(await res.arrayBuffer());
      const headers: Record<string, string> = {};
      res.headers.forEach((v, k) => (headers[k] = v));
      if (res.status >= 400) throw new OriginResponseError(res.status, headers, body, options.url);
      stored = { url: options.url, content: body, headers };
      this.store.set(taskId, stored);
    }
    const slice = options.range ? stored.content.subarray(options.range.start, options.range.start + options.range.length) : stored.content;
    if (fromCache && this.inMemory) {
      return {
        taskId,
        contentLength: stored.content.length,
        responseHeaders: stored.headers,
        fromCache,
        content: slice,
        get body(): Readable {
          throw new Error('the body of an answer held in memory was made');
        },
      };
    }
    // Several chunks, like a file stream.
    const chunks: Buffer[] = [];
    for (let i = 0; i < slice.length; i += 1000) chunks.push(slice.subarray(i, i + 1000));
    return { taskId, contentLength: stored.content.length, responseHeaders: stored.headers, fromCache, body: Readable.from(chunks) };
  }

  /** Calls of readHeld (answered only with `inMemory`, for whole contents already stored). */
  readonly heldCalls: DownloadOptions[] = [];

  readHeld(options: DownloadOptions): TaskReadResult | undefined {
    this.heldCalls.push(options);
    const taskId = taskIdOf({ url: options.url, tag: options.tag, application: options.application, filteredQueryParams: options.filteredQueryParams ?? DEFAULT_FILTERED_QUERY_PARAMS });
    const stored = this.store.get(taskId);
    if (!this.inMemory || !stored || options.range) return undefined;
    return {
      taskId,
      contentLength: stored.content.length,
      responseHeaders: stored.headers,
      fromCache: true,
      content: stored.content,
      get body(): Readable {
        throw new Error('the body of an answer held in memory was made');
      },
    };
  }

  async downloadToFile(): Promise<{ taskId: string; contentLength: number; fromCache: boolean }> {
    throw new Error('not used by the proxy');
  }

  stat(taskId: string): TaskInfo | undefined {
    if (this.statUnknown) return undefined;
    const s = this.store.get(taskId);
    if (!s) return undefined;
    return { taskId, url: s.url, contentLength: s.content.length, pieceLength: 4 << 20, finishedPieces: 1, pieceCount: 1, finished: true, responseHeaders: s.headers };
  }

  async delete(taskId: string): Promise<void> {
    this.store.delete(taskId);
  }
}

export type { DownloadProgress };

export function proxyConfig(overrides: Partial<NonNullable<DfdaemonConfigInput['proxy']>> = {}): DfdaemonConfig {
  return parseConfig('dfdaemon', { security: { insecure: true }, proxy: { tcpListen: { listen: '127.0.0.1', port: 0 }, ...overrides } });
}

export interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** Sends one request to 127.0.0.1:port with `path` as the request target (origin-form or absolute). */
export function request(port: number, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}
