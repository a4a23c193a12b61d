/**
 * The registry-mirror / forward proxy on `proxy.tcpListen` (65001). containerd sends
 * origin-form mirror requests (`/v2/<repo>/blobs/sha256:<hex>?ns=<registry>`); plain HTTP
 * clients send absolute URIs. The proxy denies by default (see policy.ts): what it admits,
 * blob GETs go through P2P via TaskApi.read (in-process, so a local cache hit is a file
 * streamed to the socket), everything else is streamed straight to the origin and back. Every
 * request runs under a slot of the concurrency limiter and a total deadline.
 */
import { promises as dns } from 'node:dns';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { DfdaemonConfig } from '../../common/config/dfdaemon';
import { DragonflyError } from '../../common/errors';
import { closeServer, listen } from '../../common/http';
import { blobDigestOf, taskIdOf } from '../../common/ids';
import { proxyStatusOf } from '../download-errors';
import { OriginResponseError, type ByteRange, type TaskApi, type TaskReadResult } from '../task-api';
import { ContentReadStream } from '../storage';
import { contextOfHeaders } from '../../common/telemetry';
import { inRequestSpan, tracingOf } from '../tracing';
import { ConcurrencyLimiter } from './limiter';
import { createProxyMetrics, recordAnswer, recordHeldHit, type ProxyMetrics } from './metrics';
import { ProxyPolicy, ProxyRefusal } from './policy';
import {
  HEADER,
  RouteError,
  admit,
  forwardableHeaders,
  parseRange,
  replayableHeaders,
  resolveRange,
  route,
  storedHeadersToReplay,
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
  /** Name resolution (default: the system resolver, dns.lookup); every answer is checked before use. */
  readonly resolve?: Resolver;
}

export type Resolver = (hostname: string) => Promise<ReadonlyArray<{ address: string; family: number }>>;

const systemResolver: Resolver = (hostname) => dns.lookup(hostname, { all: true, verbatim: true });

export interface ProxyServerHandle {
  readonly port: number;
  close(): Promise<void>;
}

type ErrorType = 'dfdaemon' | 'proxy';

/** An address the proxy checked and will connect to (names are resolved once, then pinned). */
interface CheckedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/** A name's addresses as resolved, kept (bounded, per host name) for a short while. */
interface Resolution {
  readonly addresses: ReadonlyArray<{ address: string; family: number }>;
  readonly expires: number;
}
const MAX_RESOLVED = 512;
const RESOLVED_TTL_MS = 30_000;

/** Longest request target echoed into a log line or an error body. */
const MAX_ECHO = 300;

function clip(text: string): string {
  return text.length > MAX_ECHO ? `${text.slice(0, MAX_ECHO)}...` : text;
}

/** The caller as logged with every refusal. */
function callerOf(socket: net.Socket): string {
  const address = socket.remoteAddress ?? 'unknown';
  return address.includes(':') ? `[${address}]:${socket.remotePort}` : `${address}:${socket.remotePort}`;
}

export class ProxyHandler {
  private readonly compiledRules: RegExp[];
  private readonly policy: ProxyPolicy;
  private readonly limiter: ConcurrencyLimiter;
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxSockets: Infinity });
  private readonly insecureAgent = new https.Agent({ keepAlive: true, maxSockets: Infinity, rejectUnauthorized: false });
  private readonly metrics: ProxyMetrics;
  private readonly timeouts: { readonly request: number; readonly idle: number; readonly originHeader: number };
  private readonly resolved = new Map<string, Resolution>();

  constructor(
    private readonly config: DfdaemonConfig,
    private readonly tasks: TaskApi,
    private readonly logger: Logger,
    registry: Registry,
    private readonly resolve: Resolver = systemResolver,
  ) {
    const proxy = config.proxy;
    this.compiledRules = proxy.proxies.map((r) => new RegExp(r.regx));
    this.policy = new ProxyPolicy(proxy);
    this.limiter = new ConcurrencyLimiter(proxy.maxConcurrency, proxy.maxQueued, proxy.queueTimeout);
    this.timeouts = { request: proxy.requestTimeout, idle: proxy.idleTimeout, originHeader: proxy.originHeaderTimeout };
    this.metrics = createProxyMetrics(registry);
  }

  readonly handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (req.url === '/healthy' && (req.method === 'GET' || req.method === 'HEAD')) {
      // Answered outside the limiter: a saturated proxy is still alive.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 15 }).end(req.method === 'GET' ? '{"status":"ok"}' : undefined);
      return;
    }
    const early = this.answerHeld(req, res);
    if (early === 'answered') return;
    const abort = new AbortController();
    let expired = false;
    const deadline = setTimeout(() => {
      expired = true;
      this.expire(req, res, abort);
    }, this.timeouts.request);
    res.once('close', () => {
      clearTimeout(deadline);
      if (!res.writableFinished) abort.abort();
    });
    this.serve(req, res, abort.signal, early).catch((err: unknown) => {
      if (expired || abort.signal.aborted) return;
      if (err instanceof ProxyRefusal) this.refuse(req, res, err);
      else this.failInternal(req, res, err);
    });
  };

  /** The route of a request and its admission (default deny); a ProxyRefusal when it is not admitted. */
  private decide(req: http.IncomingMessage): RouteDecision {
    const method = req.method ?? 'GET';
    const target = req.url ?? '/';
    let decision: RouteDecision;
    try {
      decision = route(this.config.proxy, method, target, req.headers, this.compiledRules);
    } catch (err) {
      if (err instanceof RouteError) throw new ProxyRefusal(400, err.message);
      throw err;
    }
    admit(this.policy, method, target, decision);
    if (decision.kind === 'mirror' && hasBody(req)) {
      throw new ProxyRefusal(400, `a ${method} mirror request must not carry a body`);
    }
    return decision;
  }

  /**
   * A whole-blob GET admitted for P2P whose task is small, finished and held in memory (checked
   * against its digest): answered at once from those bytes. Nothing is fetched, resolved or
   * waited for, so it takes no limiter slot, no name resolution and no abort wiring; the
   * deadline is armed only if the client has not taken the bytes yet. Anything else (a range,
   * a miss, a refusal, tracing on) takes the full path, given the route decided here if there
   * is one (undefined: not decided, or refused: serve decides again and answers the refusal).
   */
  private answerHeld(req: http.IncomingMessage, res: http.ServerResponse): 'answered' | RouteDecision | undefined {
    if (req.method !== 'GET' || req.headers.range !== undefined || hasBody(req) || !this.tasks.readHeld || tracingOf(this.tasks).enabled) return undefined;
    let decision: RouteDecision;
    try {
      decision = this.decide(req);
    } catch {
      return undefined;
    }
    if (decision.mode !== 'p2p') return decision;
    const url = decision.upstream.href;
    // A blob's task is its digest: the other task inputs need not be worked out.
    const digest = this.tasks.readHeldBlob ? blobDigestOf(url) : undefined;
    let result: TaskReadResult | undefined;
    if (digest !== undefined) result = this.tasks.readHeldBlob?.(digest);
    else {
      const inputs = taskInputs(this.config.proxy, req.headers, decision.upstream);
      result = this.tasks.readHeld({
        url,
        requestHeaders: {},
        tag: inputs.tag,
        application: inputs.application,
        filteredQueryParams: inputs.filteredQueryParams,
        digest: inputs.digest,
      });
    }
    if (!result?.content) return decision;
    req.resume();
    this.answerPeer(res, result, undefined, undefined);
    // Bytes the socket could not take yet: the request deadline still bounds how long they wait.
    if (!res.writableFinished && (res.socket?.writableLength ?? 0) > 0) {
      const deadline = setTimeout(() => {
        if (!res.writableFinished && !res.destroyed) this.cutAtDeadline(req, res);
      }, this.timeouts.request);
      res.once('close', () => clearTimeout(deadline));
    }
    return 'answered';
  }

  /** Admission (default deny), a limiter slot, a checked address, then P2P or pass-through. */
  private async serve(req: http.IncomingMessage, res: http.ServerResponse, signal: AbortSignal, decided?: RouteDecision): Promise<void> {
    const decision = decided ?? this.decide(req);

    await this.limiter.acquire(signal);
    this.metrics.inflight.inc();
    const release = () => {
      this.limiter.release();
      this.metrics.inflight.dec();
    };
    if (res.closed) release();
    else res.once('close', release);
    if (signal.aborted) return;

    const address = await this.checkedAddress(decision.upstream.hostname, signal);
    if (signal.aborted) return;
    if (decision.mode === 'p2p') {
      const range = parseRange(single(req.headers.range));
      // Multi-range answers (multipart/byteranges) are the origin's business.
      if (range.kind !== 'multi') {
        // telemetry (issue 18): the proxy request is the root span of the pull on this host
        await inRequestSpan(this.tasks, 'dfdaemon.proxy', { url: decision.upstream.toString(), method: req.method }, contextOfHeaders(req.headers), () => this.servePeer(req, res, decision, range, signal)).catch((err: unknown) => {
          // Aborted: the client left, or the deadline already answered.
          if (!signal.aborted) this.failPeer(res, decision, err);
        });
        return;
      }
    }
    this.passThrough(req, res, decision, address, signal);
  }

  /**
   * Resolves the upstream host once and checks every address it resolves to, so DNS cannot
   * point an admitted name at a link-local or metadata address; the connection then goes to
   * the checked address.
   */
  private async checkedAddress(hostname: string, signal: AbortSignal): Promise<CheckedAddress> {
    const host = hostname.replace(/^\[|\]$/g, '');
    const literal = net.isIP(host);
    let addresses: ReadonlyArray<{ address: string; family: number }>;
    let cached: Resolution | undefined;
    if (literal !== 0) {
      addresses = [{ address: host, family: literal }];
    } else if ((cached = this.resolved.get(host)) !== undefined && cached.expires > Date.now()) {
      addresses = cached.addresses;
    } else {
      let timer: NodeJS.Timeout | undefined;
      try {
        addresses = await Promise.race([
          this.resolve(host),
          new Promise<never>((_resolve, reject) => {
            timer = setTimeout(() => reject(new ProxyRefusal(504, `resolving ${host} took longer than proxy.originHeaderTimeout`)), this.timeouts.originHeader);
          }),
        ]);
      } catch (err) {
        if (err instanceof ProxyRefusal) throw err;
        throw new ProxyRefusal(502, `cannot resolve ${host}: ${(err as Error).message}`);
      } finally {
        clearTimeout(timer);
      }
      if (signal.aborted) throw new Error('request aborted');
      this.remember(host, addresses);
    }
    if (addresses.length === 0) throw new ProxyRefusal(502, `${host} resolves to no address`);
    for (const a of addresses) {
      const refusal = this.policy.addressRefusal(host, a.address);
      if (refusal) throw refusal;
    }
    return { address: addresses[0].address, family: addresses[0].family === 6 ? 6 : 4 };
  }

  /**
   * Keeps a resolution for RESOLVED_TTL_MS so a pull's many blob requests do not each pay a
   * lookup. Every use is still checked; the map is bounded (oldest entry out).
   */
  private remember(host: string, addresses: ReadonlyArray<{ address: string; family: number }>): void {
    this.resolved.delete(host);
    if (this.resolved.size >= MAX_RESOLVED) {
      const oldest = this.resolved.keys().next();
      if (!oldest.done) this.resolved.delete(oldest.value);
    }
    this.resolved.set(host, { addresses, expires: Date.now() + RESOLVED_TTL_MS });
  }

  /** The total deadline (proxy.requestTimeout) passed: everything of this request is torn down. */
  private expire(req: http.IncomingMessage, res: http.ServerResponse, abort: AbortController): void {
    if (res.writableEnded || res.destroyed) return;
    abort.abort();
    if (!res.headersSent) {
      this.refuse(req, res, new ProxyRefusal(504, this.deadlineMessage()));
      return;
    }
    this.cutAtDeadline(req, res);
  }

  /** An answer already under way when proxy.requestTimeout ran out: logged, counted, the connection cut. */
  private cutAtDeadline(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.logger.warn({ client: callerOf(req.socket), method: req.method, target: clip(req.url ?? ''), reason: this.deadlineMessage() }, 'proxy: request cut at its deadline');
    recordAnswer(this.metrics, 'refused', 'deadline', 0);
    res.destroy();
  }

  private deadlineMessage(): string {
    return `request exceeded proxy.requestTimeout (${this.timeouts.request} ms)`;
  }

  /** One log line with the caller's address, and the reason as JSON. */
  private refuse(req: http.IncomingMessage, res: http.ServerResponse, refusal: ProxyRefusal): void {
    this.logger.warn(
      { client: callerOf(req.socket), method: req.method, target: clip(req.url ?? ''), status: refusal.status, reason: refusal.message },
      'proxy: refused request',
    );
    req.resume();
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    this.sendError(res, 'refused', refusal.status, 'proxy', refusal.message, refusal.kind);
  }

  private failInternal(req: http.IncomingMessage, res: http.ServerResponse, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.logger.error({ client: callerOf(req.socket), method: req.method, target: clip(req.url ?? ''), err: message }, 'proxy: request failed');
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    this.sendError(res, 'pass-through', 500, 'proxy', message);
  }

  /** Streams the request to the upstream and its answer back, unchanged apart from hop-by-hop headers. */
  private passThrough(req: http.IncomingMessage, res: http.ServerResponse, decision: RouteDecision, address: CheckedAddress, signal: AbortSignal): void {
    const { upstream } = decision;
    const secure = upstream.protocol === 'https:';
    const agent = secure ? (decision.insecure ? this.insecureAgent : this.httpsAgent) : this.httpAgent;
    const send = secure ? https.request : http.request;
    const upstreamReq = send(upstream, {
      method: req.method,
      headers: forwardableHeaders(req.headers),
      agent,
      // The address checked above, not a second DNS answer.
      lookup: pinnedLookup(address),
    });
    const headerTimer = setTimeout(
      () => upstreamReq.destroy(new Error(`no response headers within proxy.originHeaderTimeout (${this.timeouts.originHeader} ms)`)),
      this.timeouts.originHeader,
    );
    upstreamReq.setTimeout(this.timeouts.idle, () => upstreamReq.destroy(new Error(`no data for proxy.idleTimeout (${this.timeouts.idle} ms)`)));
    const onAbort = () => upstreamReq.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    upstreamReq.once('close', () => {
      clearTimeout(headerTimer);
      signal.removeEventListener('abort', onAbort);
    });
    let bytes = 0;
    upstreamReq.once('response', (upstreamRes) => {
      clearTimeout(headerTimer);
      const status = upstreamRes.statusCode ?? 502;
      res.writeHead(status, upstreamRes.statusMessage, replayableHeaders(upstreamRes.headers));
      upstreamRes.on('data', (chunk: Buffer) => (bytes += chunk.length));
      pipeline(upstreamRes, res, (err) => {
        recordAnswer(this.metrics, 'pass-through', err ? 'aborted' : status, bytes);
      });
    });
    upstreamReq.once('error', (err) => {
      if (signal.aborted) return;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      this.logger.warn({ client: callerOf(req.socket), err: err.message, upstream: upstream.origin }, 'proxy: upstream failed');
      const status = /proxy\.(originHeaderTimeout|idleTimeout)/.test(err.message) ? 504 : 502;
      this.sendError(res, 'pass-through', status, 'proxy', `${upstream.origin}: ${err.message}`, status === 504 ? 'DeadlineExceeded' : 'Unavailable');
    });
    if (decision.kind === 'mirror') {
      req.resume();
      upstreamReq.end();
    } else {
      req.pipe(upstreamReq);
    }
  }

  /** GET through the P2P engine; ranges are cut from the task, which is still fetched whole. */
  private async servePeer(req: http.IncomingMessage, res: http.ServerResponse, decision: RouteDecision, range: ParsedRange, signal: AbortSignal): Promise<void> {
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

    const options = {
      url,
      requestHeaders: flattenHeaders(forwardableHeaders(req.headers, { dropRange: true })),
      tag: inputs.tag,
      application: inputs.application,
      filteredQueryParams: inputs.filteredQueryParams,
      digest: inputs.digest,
      priority: inputs.priority,
      signal,
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
    if (signal.aborted || res.destroyed) {
      if (!result.content) result.body.destroy();
      return;
    }
    // Headers wait for the first bytes: a download that fails before them is still answered
    // with an error status and a JSON body (failPeer), not a 200 cut short.
    if (!result.fromCache) {
      // A failed download also destroys the body with its error: it is handled here, not thrown.
      const swallow = () => undefined;
      result.body.on('error', swallow);
      try {
        await untilFirstBytes(result.body);
      } catch (err) {
        result.body.destroy();
        throw err;
      }
      result.body.off('error', swallow);
      if (signal.aborted || res.destroyed) {
        result.body.destroy();
        return;
      }
    }
    this.answerPeer(res, result, single, engineRange);
  }

  /**
   * Response headers of a whole small content answered from memory, by that Buffer: they only
   * depend on its task (stored headers, id, length), so each held copy builds them once; they
   * go when the copy does (weak keys).
   */
  private readonly heldHeaders = new WeakMap<Buffer, Readonly<Record<string, string | string[]>>>();

  private wholeHeldHeaders(result: TaskReadResult, content: Buffer): Readonly<Record<string, string | string[]>> {
    let headers = this.heldHeaders.get(content);
    if (headers === undefined) {
      const built = storedHeadersToReplay(result.responseHeaders);
      built['accept-ranges'] = 'bytes';
      built[HEADER.taskId] = result.taskId;
      built[HEADER.downloadFinished] = 'true';
      built['content-length'] = String(content.length);
      // Shared by every answer of this copy: frozen, so nothing can change one answer's headers for the next.
      headers = Object.freeze(built);
      this.heldHeaders.set(content, headers);
    }
    return headers;
  }

  private answerPeer(res: http.ServerResponse, result: TaskReadResult, single: Extract<ParsedRange, { kind: 'single' }> | undefined, engineRange: ByteRange | undefined): void {
    const total = result.contentLength;
    const held = result.content;
    if (held !== undefined && single === undefined && result.fromCache && held.length === total) {
      // The whole of a small cache hit: headers and body in one write.
      res.writeHead(200, this.wholeHeldHeaders(result, held) as http.OutgoingHttpHeaders);
      res.end(held);
      recordHeldHit(this.metrics, total);
      return;
    }
    // Stored headers came from whoever first fetched the task: only content-describing ones are replayed.
    const headers = storedHeadersToReplay(result.responseHeaders);
    headers['accept-ranges'] = 'bytes';
    headers[HEADER.taskId] = result.taskId;
    if (result.fromCache) {
      headers[HEADER.downloadFinished] = 'true';
      this.metrics.cacheHits.inc();
    }

    const content = result.content;
    let status = 200;
    let length = total;
    // Where the answer starts in what the engine returned (the whole content without an engine range).
    let skip = 0;
    if (single) {
      const resolved = resolveRange(single, total);
      if (!resolved) {
        if (!content) result.body.destroy();
        this.sendUnsatisfiable(res, total);
        return;
      }
      status = 206;
      length = resolved.end - resolved.start + 1;
      headers['content-range'] = `bytes ${resolved.start}-${resolved.end}/${total}`;
      if (!engineRange) skip = resolved.start;
    }
    headers['content-length'] = String(length);

    if (content) {
      // Verified bytes already in memory (a small cache hit): headers and body in one write.
      res.writeHead(status, headers);
      res.end(skip === 0 && length === content.length ? content : content.subarray(skip, skip + length));
      recordAnswer(this.metrics, 'p2p', status, length);
      return;
    }
    let body: Readable = result.body;
    // Without an engine range the body is the whole content: cut the range out here.
    if (single && (!engineRange || engineRange.length > length)) body = result.body.pipe(sliceStream(skip, length));

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
    const { status, kind } = proxyStatusOf(err);
    const message = err instanceof Error ? err.message : String(err);
    this.logger.warn({ err: message, url: decision.upstream.toString() }, 'proxy: p2p download failed');
    this.sendError(res, 'p2p', status, 'dfdaemon', message, kind);
  }

  private sendUnsatisfiable(res: http.ServerResponse, total: number): void {
    const body = JSON.stringify({ message: 'range not satisfiable', kind: 'InvalidArgument' });
    res.writeHead(416, { 'content-type': 'application/json', 'content-range': `bytes */${total}`, 'content-length': Buffer.byteLength(body) }).end(body);
    recordAnswer(this.metrics, 'p2p', 416, 0);
  }

  sendError(res: http.ServerResponse, mode: ProxyMode | 'refused', status: number, type: ErrorType, message: string, kind = 'Internal'): void {
    const body = JSON.stringify({ message, kind });
    res
      .writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), [HEADER.errorType]: type })
      .end(body);
    recordAnswer(this.metrics, mode, status, 0);
  }

  /**
   * CONNECT host:port: a plain TCP tunnel (no TLS interception, so never P2P), only to a
   * hijackHTTPS host or a whiteList host:port, under a limiter slot, the idle timeout and the
   * total deadline.
   */
  readonly tunnel = (req: http.IncomingMessage, client: net.Socket, head: Buffer): void => {
    const abort = new AbortController();
    client.once('close', () => abort.abort());
    client.on('error', () => client.destroy());
    this.openTunnel(req, client, head, abort.signal).catch((err: unknown) => {
      if (abort.signal.aborted) return;
      const refusal = err instanceof ProxyRefusal ? err : new ProxyRefusal(502, err instanceof Error ? err.message : String(err));
      this.logger.warn(
        { client: callerOf(client), method: 'CONNECT', target: clip(req.url ?? ''), status: refusal.status, reason: refusal.message },
        'proxy: refused request',
      );
      answerRaw(client, refusal.status, { message: refusal.message, kind: refusal.kind });
      recordAnswer(this.metrics, 'refused', refusal.status, 0);
    });
  };

  private async openTunnel(req: http.IncomingMessage, client: net.Socket, head: Buffer, signal: AbortSignal): Promise<void> {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):(\d{1,5})$/.exec(req.url ?? '');
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new ProxyRefusal(400, `CONNECT target must be host:port, got "${clip(req.url ?? '')}"`);
    const host = m[1].replace(/^\[|\]$/g, '');
    const port = Number(m[2]);
    this.policy.checkTunnel(host, port);

    await this.limiter.acquire(signal);
    this.metrics.inflight.inc();
    const release = () => {
      this.limiter.release();
      this.metrics.inflight.dec();
    };
    if (client.destroyed) release();
    else client.once('close', release);
    if (signal.aborted) return;
    const address = await this.checkedAddress(host, signal);
    if (signal.aborted) return;

    const upstream = net.connect({ host: address.address, port, family: address.family, timeout: this.timeouts.originHeader });
    const deadline = setTimeout(() => {
      this.logger.warn({ client: callerOf(client), target: `${host}:${port}` }, 'proxy: tunnel cut at proxy.requestTimeout');
      upstream.destroy();
      client.destroy();
    }, this.timeouts.request);
    const teardown = () => {
      clearTimeout(deadline);
      upstream.destroy();
      client.destroy();
    };
    client.once('close', teardown);
    upstream.once('close', teardown);
    await new Promise<void>((resolve, reject) => {
      upstream.once('connect', () => resolve());
      upstream.once('timeout', () => reject(new ProxyRefusal(504, `connecting to ${host}:${port} took longer than proxy.originHeaderTimeout`)));
      upstream.once('error', (err) => reject(new ProxyRefusal(502, `cannot reach ${host}:${port}: ${err.message}`)));
    }).catch((err: unknown) => {
      client.removeListener('close', teardown);
      upstream.removeAllListeners('close');
      clearTimeout(deadline);
      upstream.destroy();
      throw err;
    });
    upstream.on('error', () => client.destroy());
    upstream.setTimeout(this.timeouts.idle, () => teardown());
    client.setTimeout(this.timeouts.idle, () => teardown());
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
    recordAnswer(this.metrics, 'tunnel', 200, 0);
  }

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

/** A JSON answer on a raw socket (CONNECT and parse errors have no ServerResponse), then close. */
/**
 * Resolves once `body` has its first bytes to give (or ends empty), rejects if it fails first.
 * A store stream answers without being read, so its pooled send path stays available.
 */
function untilFirstBytes(body: Readable): Promise<void> {
  if (body instanceof ContentReadStream) return body.firstBytesReady();
  if (body.readableLength > 0 || body.readableEnded) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const settle = (err?: Error) => {
      body.off('readable', onReady);
      body.off('end', onReady);
      body.off('error', settle);
      body.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onReady = () => settle();
    const onClose = () => settle(body.errored ?? new Error('content stream closed before its first byte'));
    body.once('readable', onReady);
    body.once('end', onReady);
    body.once('error', settle);
    body.once('close', onClose);
  });
}

function answerRaw(socket: net.Socket, status: number, body: Record<string, unknown>): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const text = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: application/json\r\n${HEADER.errorType}: proxy\r\n` +
      `content-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
  );
}

/** A `lookup` for http(s).request that answers with the already checked address. */
function pinnedLookup(checked: CheckedAddress): net.LookupFunction {
  return (_host, options, callback) => {
    if (options.all) (callback as unknown as (err: null, all: { address: string; family: number }[]) => void)(null, [{ address: checked.address, family: checked.family }]);
    else callback(null, checked.address, checked.family);
  };
}

/** Whether a request carries a body (a GET/HEAD mirror request must not). */
function hasBody(req: http.IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function flattenHeaders(headers: Record<string, string | string[]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** Node's parser errors, as a caller should read them. */
const CLIENT_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'request headers too large'],
  HPE_INVALID_METHOD: [400, 'invalid request method'],
  HPE_INVALID_URL: [400, 'invalid request target'],
  HPE_INVALID_HEADER_TOKEN: [400, 'invalid header name'],
  HPE_INVALID_CONSTANT: [400, 'malformed request line'],
  HPE_HEADERS_TIMEOUT: [408, 'request headers not received in time'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request not received in time'],
};

export async function startProxyServer(options: ProxyServerOptions): Promise<ProxyServerHandle> {
  const { config, tasks, logger, registry } = options;
  const handler = new ProxyHandler(config, tasks, logger, registry, options.resolve);
  const server = http.createServer(
    { keepAlive: true, noDelay: true, requestTimeout: config.proxy.requestTimeout, headersTimeout: Math.min(60_000, config.proxy.requestTimeout), maxHeaderSize: 16 * 1024 },
    handler.handle,
  );
  // Big blobs stream for minutes (bounded by proxy.requestTimeout); an idle keep-alive connection times out.
  server.keepAliveTimeout = 65_000;
  // Every socket is a bounded resource too: running + queued requests, each with some keep-alive spare.
  server.maxConnections = 4 * (config.proxy.maxConcurrency + config.proxy.maxQueued) + 64;
  const tunnels = new Set<net.Socket>();
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));
    handler.tunnel(req, socket, head);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    const known = err.code ? CLIENT_ERRORS[err.code] : undefined;
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, reason] = known ?? [400, `malformed request (${err.code ?? err.message})`];
    logger.warn({ client: callerOf(socket), status, reason, code: err.code }, 'proxy: refused request');
    answerRaw(socket, status, { message: reason, kind: status === 408 ? 'DeadlineExceeded' : 'InvalidArgument' });
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
