/**
 * The registry-mirror / forward proxy on `proxy.tcpListen` (65001). containerd sends
 * origin-form mirror requests (`/v2/<repo>/blobs/sha256:<hex>?ns=<registry>`); plain HTTP
 * clients send absolute URIs. Blob GETs go through P2P via TaskApi.read (in-process, so a
 * local cache hit is a file streamed to the socket); everything else is streamed straight
 * to the origin and back.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { DfdaemonConfig } from '../../common/config/dfdaemon';
import { DragonflyError } from '../../common/errors';
import { closeServer, listen } from '../../common/http';
import { taskIdOf } from '../../common/ids';
import { OriginResponseError, type ByteRange, type TaskApi, type TaskReadResult } from '../task-api';
import { ContentReadStream } from '../storage';
import { createProxyMetrics, recordAnswer, type ProxyMetrics } from './metrics';
import {
  HEADER,
  RouteError,
  forwardableHeaders,
  parseRange,
  replayableHeaders,
  resolveRange,
  route,
  taskInputs,
  type ParsedRange,
  type ProxyMode,
  type RouteDecision,
} from './routing';

export interface ProxyServerOptions {
  readonly config: DfdaemonConfig;
  readonly tasks: TaskApi;
  readonly logger: Logger;
  readonly registry: Registry;
}

export interface ProxyServerHandle {
  readonly port: number;
  close(): Promise<void>;
}

type ErrorType = 'dfdaemon' | 'proxy';

/** Headers of a recorded origin response that describe the whole body, not what we send now. */
const BODY_FRAMING = ['content-length', 'content-range', 'accept-ranges', 'x-dragonfly-task-id', 'x-dragonfly-task-download-finished'];

export class ProxyHandler {
  private readonly compiledRules: RegExp[];
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxSockets: Infinity });
  private readonly insecureAgent = new https.Agent({ keepAlive: true, maxSockets: Infinity, rejectUnauthorized: false });
  private readonly metrics: ProxyMetrics;
  private inflight = 0;

  constructor(
    private readonly config: DfdaemonConfig,
    private readonly tasks: TaskApi,
    private readonly logger: Logger,
    registry: Registry,
  ) {
    this.compiledRules = config.proxy.proxies.map((r) => new RegExp(r.regx));
    this.metrics = createProxyMetrics(registry);
  }

  readonly handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const limit = this.config.proxy.maxConcurrency;
    if (limit > 0 && this.inflight >= limit) {
      this.sendError(res, 'pass-through', 429, 'proxy', `proxy is serving its limit of ${limit} concurrent requests`);
      req.resume();
      return;
    }
    this.inflight++;
    this.metrics.inflight.inc();
    res.once('close', () => {
      this.inflight--;
      this.metrics.inflight.dec();
    });

    let decision: RouteDecision;
    try {
      decision = route(this.config.proxy, req.method ?? 'GET', req.url ?? '/', req.headers, this.compiledRules);
    } catch (err) {
      const message = err instanceof RouteError ? err.message : 'cannot route request';
      this.sendError(res, 'pass-through', 400, 'proxy', message);
      req.resume();
      return;
    }
    if (decision.mode === 'p2p') {
      const range = parseRange(single(req.headers.range));
      // Multi-range answers (multipart/byteranges) are the origin's business.
      if (range.kind !== 'multi') {
        this.servePeer(req, res, decision, range).catch((err: unknown) => this.failPeer(res, decision, err));
        return;
      }
    }
    this.passThrough(req, res, decision);
  };

  /** Streams the request to the upstream and its answer back, unchanged apart from hop-by-hop headers. */
  private passThrough(req: http.IncomingMessage, res: http.ServerResponse, decision: RouteDecision): void {
    const { upstream } = decision;
    const secure = upstream.protocol === 'https:';
    const agent = secure ? (decision.insecure ? this.insecureAgent : this.httpsAgent) : this.httpAgent;
    const send = secure ? https.request : http.request;
    const upstreamReq = send(upstream, { method: req.method, headers: forwardableHeaders(req.headers), agent });
    let bytes = 0;
    upstreamReq.once('response', (upstreamRes) => {
      const status = upstreamRes.statusCode ?? 502;
      res.writeHead(status, upstreamRes.statusMessage, replayableHeaders(upstreamRes.headers));
      upstreamRes.on('data', (chunk: Buffer) => (bytes += chunk.length));
      pipeline(upstreamRes, res, (err) => {
        recordAnswer(this.metrics, 'pass-through', err ? 'aborted' : status, bytes);
      });
    });
    upstreamReq.once('error', (err) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      this.logger.warn({ err: err.message, upstream: upstream.origin }, 'proxy: upstream unreachable');
      this.sendError(res, 'pass-through', 502, 'proxy', `cannot reach ${upstream.origin}: ${err.message}`);
    });
    res.once('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
    req.pipe(upstreamReq);
  }

  /** GET through the P2P engine; ranges are cut from the task, which is still fetched whole. */
  private async servePeer(req: http.IncomingMessage, res: http.ServerResponse, decision: RouteDecision, range: ParsedRange): Promise<void> {
    req.resume();
    const url = decision.upstream.toString();
    const inputs = taskInputs(this.config.proxy, req.headers, decision.upstream);
    const single = range.kind === 'single' ? range : undefined;

    // A finished task tells us its length, so any range form can be resolved up front.
    let engineRange: ByteRange | undefined;
    if (single) {
      const info = this.tasks.stat(taskIdOf({ url, tag: inputs.tag, application: inputs.application, filteredQueryParams: inputs.filteredQueryParams }));
      if (info?.finished) {
        const resolved = resolveRange(single, info.contentLength);
        if (!resolved) {
          this.sendUnsatisfiable(res, info.contentLength);
          return;
        }
        engineRange = { start: resolved.start, length: resolved.end - resolved.start + 1 };
      } else if (single.start !== undefined && single.end !== undefined) {
        engineRange = { start: single.start, length: single.end - single.start + 1 };
      }
    }

    const abort = new AbortController();
    const onClientGone = () => {
      if (!res.writableFinished) abort.abort();
    };
    res.once('close', onClientGone);

    const options = {
      url,
      requestHeaders: flattenHeaders(forwardableHeaders(req.headers, { dropRange: true })),
      tag: inputs.tag,
      application: inputs.application,
      filteredQueryParams: inputs.filteredQueryParams,
      digest: inputs.digest,
      priority: inputs.priority,
      signal: abort.signal,
    };
    let result: TaskReadResult;
    try {
      result = await this.tasks.read({ ...options, range: engineRange });
    } catch (err) {
      // A range past the end (length unknown until the task started): read it whole, cut it here, answer 416 if need be.
      if (!engineRange || !(err instanceof DragonflyError) || err.kind !== 'InvalidArgument') throw err;
      engineRange = undefined;
      result = await this.tasks.read(options);
    }
    if (abort.signal.aborted || res.destroyed) {
      result.body.destroy();
      return;
    }
    this.answerPeer(res, result, single, engineRange);
  }

  private answerPeer(res: http.ServerResponse, result: TaskReadResult, single: Extract<ParsedRange, { kind: 'single' }> | undefined, engineRange: ByteRange | undefined): void {
    const total = result.contentLength;
    const headers = replayableHeaders(result.responseHeaders, BODY_FRAMING);
    headers['accept-ranges'] = 'bytes';
    headers[HEADER.taskId] = result.taskId;
    if (result.fromCache) {
      headers[HEADER.downloadFinished] = 'true';
      this.metrics.cacheHits.inc();
    }

    let body: Readable = result.body;
    let status = 200;
    let length = total;
    if (single) {
      const resolved = resolveRange(single, total);
      if (!resolved) {
        result.body.destroy();
        this.sendUnsatisfiable(res, total);
        return;
      }
      status = 206;
      length = resolved.end - resolved.start + 1;
      headers['content-range'] = `bytes ${resolved.start}-${resolved.end}/${total}`;
      // Without an engine range the body is the whole content: cut the range out here.
      if (!engineRange) body = result.body.pipe(sliceStream(resolved.start, length));
      else if (engineRange.length > length) body = result.body.pipe(sliceStream(0, length));
    }
    headers['content-length'] = String(length);

    res.writeHead(status, headers);
    if (body instanceof ContentReadStream && body.canSend) {
      // A cache hit sent whole: pooled buffers straight to the socket, no per-chunk allocation.
      body.sendTo(res).then(
        () => recordAnswer(this.metrics, 'p2p', status, length),
        (err: Error) => {
          if (!res.destroyed) res.destroy();
          this.logger.debug({ err: err.message, taskId: result.taskId }, 'proxy: p2p body ended early');
          recordAnswer(this.metrics, 'p2p', 'aborted', 0);
        },
      );
      return;
    }
    let bytes = 0;
    body.on('data', (chunk: Buffer) => (bytes += chunk.length));
    pipeline(body, res, (err) => {
      if (err && body !== result.body) result.body.destroy();
      if (err && !res.writableFinished) this.logger.debug({ err: err.message, taskId: result.taskId }, 'proxy: p2p body ended early');
      recordAnswer(this.metrics, 'p2p', err ? 'aborted' : status, bytes);
    });
  }

  private failPeer(res: http.ServerResponse, decision: RouteDecision, err: unknown): void {
    if (res.destroyed) return;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof OriginResponseError) {
      const headers = replayableHeaders(err.headers, ['content-length']);
      headers['content-length'] = String(err.body.length);
      res.writeHead(err.status, headers).end(err.body);
      recordAnswer(this.metrics, 'p2p', err.status, err.body.length);
      return;
    }
    const kind = err instanceof DragonflyError ? err.kind : 'Internal';
    // LocalStorage: this host's disk cannot hold the content (checked before any byte is sent).
    const status = kind === 'LocalStorage' ? 507 : kind === 'Unavailable' || kind === 'ResourceExhausted' || kind === 'DeadlineExceeded' ? 503 : 502;
    const message = err instanceof Error ? err.message : String(err);
    this.logger.warn({ err: message, url: decision.upstream.toString() }, 'proxy: p2p download failed');
    this.sendError(res, 'p2p', status, 'dfdaemon', message, kind);
  }

  private sendUnsatisfiable(res: http.ServerResponse, total: number): void {
    const body = JSON.stringify({ message: 'range not satisfiable', kind: 'InvalidArgument' });
    res.writeHead(416, { 'content-type': 'application/json', 'content-range': `bytes */${total}`, 'content-length': Buffer.byteLength(body) }).end(body);
    recordAnswer(this.metrics, 'p2p', 416, 0);
  }

  sendError(res: http.ServerResponse, mode: ProxyMode, status: number, type: ErrorType, message: string, kind = 'Internal'): void {
    const body = JSON.stringify({ message, kind });
    res
      .writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), [HEADER.errorType]: type })
      .end(body);
    recordAnswer(this.metrics, mode, status, 0);
  }

  /** CONNECT host:port: a plain TCP tunnel (no TLS interception, so never P2P). */
  readonly tunnel = (req: http.IncomingMessage, client: net.Socket, head: Buffer): void => {
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(req.url ?? '');
    if (!m) {
      client.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
      recordAnswer(this.metrics, 'pass-through', 400, 0);
      return;
    }
    const upstream = net.connect(Number(m[2]), m[1].replace(/^\[|\]$/g, ''));
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
      recordAnswer(this.metrics, 'pass-through', 200, 0);
    });
    const fail = () => {
      if (!connected && !client.destroyed) {
        client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n');
        recordAnswer(this.metrics, 'pass-through', 502, 0);
      } else client.destroy();
      upstream.destroy();
    };
    upstream.once('error', fail);
    client.once('error', () => upstream.destroy());
    client.once('close', () => upstream.destroy());
  };

  destroy(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    this.insecureAgent.destroy();
  }
}

/** Skips `skip` bytes, then passes `take` bytes and ends. */
export function sliceStream(skip: number, take: number): Transform {
  let toSkip = skip;
  let left = take;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      if (left === 0) return done();
      let part = chunk;
      if (toSkip > 0) {
        const n = Math.min(toSkip, part.length);
        toSkip -= n;
        part = part.subarray(n);
      }
      if (left > 0 && part.length > 0) {
        const out = part.length > left ? part.subarray(0, left) : part;
        left -= out.length;
        this.push(out);
      }
      if (left === 0) this.push(null);
      done();
    },
  });
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function flattenHeaders(headers: Record<string, string | string[]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

export async function startProxyServer(options: ProxyServerOptions): Promise<ProxyServerHandle> {
  const { config, tasks, logger, registry } = options;
  const handler = new ProxyHandler(config, tasks, logger, registry);
  const server = http.createServer({ keepAlive: true, requestTimeout: 0, noDelay: true }, handler.handle);
  // Big blobs stream for minutes; only an idle keep-alive connection times out.
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;
  const tunnels = new Set<net.Socket>();
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));
    handler.tunnel(req, socket, head);
  });
  server.on('clientError', (_err, socket: net.Socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });
  const { listen: host, port } = config.proxy.tcpListen;
  const bound = await listen(server, { host, port });
  logger.info({ port: bound }, 'proxy listening');
  return {
    port: bound,
    close: async () => {
      const closed = closeServer(server);
      server.closeAllConnections();
      for (const s of tunnels) s.destroy();
      await closed;
      handler.destroy();
    },
  };
}
