/**
 * Property-based fuzzing of the proxy's request line and headers over raw TCP sockets
 * (fast-check): thousands of random and hostile requests — methods, request targets (origin
 * form, absolute URIs, CONNECT authorities, traversal, garbage), registry headers and ns
 * values naming a service that must never be reached, conflicting framing headers, oversized
 * and malformed headers, truncated requests. Throughout, the proxy answers each request with a
 * well-formed HTTP status (or closes), the protected service sees nothing, `/healthy` answers,
 * and the process's RSS stays under the asserted bound.
 */
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { createLogger, silentLogger } from '../../../services/common/logger';
import { startProxyServer, type ProxyServerHandle } from '../../../services/dfdaemon/proxy';
import { blobOf, MemoryTasks, proxyConfig, startOrigin, type Origin } from '../../unit/proxy/helpers';

jest.setTimeout(300_000);

const MiB = 1024 * 1024;
/** RSS growth allowed over the whole run (after a warm-up): a leak of a few KiB per request would exceed it. */
const RSS_GROWTH_BOUND = 160 * MiB;
/** Longest the client waits for an answer to a complete request (the proxy closes once answered). */
const EXCHANGE_TIMEOUT_MS = 3000;
/** A truncated request gets no answer until the proxy's header timeout: the client gives up sooner. */
const TRUNCATED_WAIT_MS = 100;

interface FuzzRequest {
  readonly method: string;
  readonly target: string;
  readonly version: string;
  readonly headers: ReadonlyArray<[string, string]>;
  readonly body: string;
  readonly lineEnd: string;
  readonly truncate: boolean;
}

interface Exchange {
  readonly status?: number;
  readonly raw: string;
}

/** Writes raw bytes, reads until the proxy closes, answers completely once, or the timeout passes. */
function exchange(port: number, bytes: Buffer, timeoutMs = EXCHANGE_TIMEOUT_MS): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      let raw = Buffer.concat(chunks).toString('latin1');
      // `Expect: 100-continue` gets an interim 100 first; the final answer follows it.
      if (raw.startsWith('HTTP/1.1 100 ')) raw = raw.slice(raw.indexOf('\r\n\r\n') + 4);
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(raw);
      resolve({ status: m ? Number(m[1]) : undefined, raw });
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      if (Buffer.concat(chunks).length > 64 * 1024) finish();
    });
    socket.on('error', finish);
    socket.on('close', finish);
    socket.write(bytes, () => undefined);
  });
}

async function healthy(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/healthy', agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('/healthy timed out')));
    req.on('error', reject);
  });
}

describe('proxy request-line and header fuzzing (fast-check, raw TCP)', () => {
  let origin: Origin;
  let proxy: ProxyServerHandle;
  let protectedRequests: string[];
  let protectedConnections: number;
  let protectedServer: http.Server;
  let protectedPort: number;
  const content = randomBytes(4096);
  const { digest } = blobOf(content);

  beforeAll(async () => {
    origin = await startOrigin();
    origin.blobs.set(digest, content);
    protectedRequests = [];
    protectedConnections = 0;
    protectedServer = http.createServer((req, res) => {
      protectedRequests.push(`${req.method} ${req.url}`);
      res.end('reached');
    });
    protectedServer.on('connection', () => protectedConnections++);
    await new Promise<void>((r) => protectedServer.listen(0, '127.0.0.1', r));
    protectedPort = (protectedServer.address() as net.AddressInfo).port;
    // The origin is the configured registry; the protected service is on the same host, another port.
    proxy = await startProxyServer({
      config: proxyConfig({ registryMirror: { url: origin.base }, maxConcurrency: 32, maxQueued: 64, queueTimeout: '2s', requestTimeout: '5s', originHeaderTimeout: '2s' }),
      tasks: new MemoryTasks(),
      logger: process.env.FUZZ_LOG ? createLogger({ name: 'fuzz', level: 'error' }) : silentLogger(),
      registry: new Registry(),
    });
  });

  afterAll(async () => {
    await proxy?.close();
    await origin?.close();
    protectedServer.closeAllConnections();
    await new Promise<void>((r) => protectedServer.close(() => r()));
  });

  it('answers thousands of hostile requests with well-formed statuses, relays none to the protected service, stays healthy and bounded', async () => {
    const protectedBase = `127.0.0.1:${protectedPort}`;
    const hostileHost = fc.constantFrom(
      protectedBase,
      `localhost:${protectedPort}`,
      `[::1]:${protectedPort}`,
      '169.254.169.254',
      '[fe80::1]',
      '[::ffff:a9fe:a9fe]',
      '0.0.0.0',
      `2130706433:${protectedPort}`,
      `127.1:${protectedPort}`,
      `${protectedBase}@127.0.0.1:${origin.port}`,
      `127.0.0.1:${origin.port}@${protectedBase}`,
    );
    const token = fc.string({ unit: fc.constantFrom(...'abcXYZ-_.~!$&\'()*+,;=:@%/?#[]'.split('')), maxLength: 12 });
    // Mostly well-formed shapes with hostile content (so requests reach routing and policy), some plain garbage for the parser.
    const method = fc.oneof(
      { arbitrary: fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND'), weight: 8 },
      { arbitrary: fc.constantFrom('get', 'G ET', ''), weight: 1 },
      { arbitrary: fc.string({ minLength: 1, maxLength: 10 }), weight: 1 },
    );
    const v2Path = fc.tuple(fc.constantFrom('/v2/', '/v2', '/v2/../', '/v2/%2e%2e/', '/v2/..%2f', '//v2/', '/V2/', '/v2/library/app/blobs/', '/api/v1/users/signup', '/healthy/', '/'), token).map(([p, t]) => p + t);
    const target = fc.oneof(
      { weight: 4, arbitrary: v2Path },
      { weight: 2, arbitrary: fc.constant(`/v2/library/app/blobs/${digest}`) },
      { weight: 2, arbitrary: v2Path.map((p) => `${p}?ns=${protectedBase}`) },
      { weight: 4, arbitrary: fc.tuple(fc.constantFrom('http://', 'https://', 'HTTP://', 'ftp://', 'gopher://', '//', 'http:/'), hostileHost, token).map(([s, h, t]) => `${s}${h}/${t}`) },
      { weight: 2, arbitrary: fc.tuple(hostileHost, fc.integer({ min: 0, max: 70000 })).map(([h, p]) => `${h.replace(/:\d+$/, '')}:${p}`) },
      { weight: 1, arbitrary: fc.constantFrom('*', '', ' ', '/\u0000', '%', '/v2/\u00ff', 'http://[::1', 'http://a b/') },
      { weight: 1, arbitrary: fc.string({ maxLength: 80 }) },
    );
    const headerName = fc.oneof(
      { arbitrary: fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}$/), weight: 1 },
      { arbitrary: fc.string({ minLength: 1, maxLength: 20 }), weight: 1 },
      { weight: 6, arbitrary: fc.constantFrom('X-Dragonfly-Registry', 'x-dragonfly-registry', 'X-Dragonfly-Use-P2P', 'X-Dragonfly-Filter', 'X-Dragonfly-Tag', 'Host', 'Range', 'Content-Length', 'Transfer-Encoding', 'Connection', 'Upgrade', 'Expect', 'Proxy-Authorization', 'Authorization') },
    );
    const headerValue = fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom(`http://${protectedBase}`, `http://${protectedBase}/api`, protectedBase, 'http://169.254.169.254', 'true', 'chunked', 'chunked, chunked', '0', '-1', '99999999999999999999', 'bytes=0-', 'bytes=5-1', 'keep-alive, Upgrade', 'websocket', '100-continue', origin.base) },
      { weight: 3, arbitrary: fc.stringMatching(/^[\x20-\x7e]{0,60}$/) },
      { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
      { weight: 1, arbitrary: fc.nat({ max: 20_000 }).map((n) => 'a'.repeat(n)) },
    );
    const request = fc.record({
      method,
      target,
      version: fc.oneof({ weight: 8, arbitrary: fc.constant('HTTP/1.1') }, { weight: 2, arbitrary: fc.constantFrom('HTTP/1.0', 'HTTP/0.9', 'HTTP/2.0', 'HTTP/1.1 extra', '') }),
      headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 5 }),
      // Bytes after the head: mostly none; otherwise a body, or (without framing headers) a pipelined second request.
      body: fc.oneof({ weight: 6, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 200 }), fc.constant('0\r\n\r\n'), fc.constant('5\r\nhello\r\n0\r\n\r\n')) }),
      lineEnd: fc.oneof({ weight: 8, arbitrary: fc.constant('\r\n') }, { weight: 2, arbitrary: fc.constantFrom('\n', '\r') }),
      truncate: fc.integer({ min: 0, max: 19 }).map((n) => n === 0),
    });

    // Connection: close so a complete answer ends the exchange; a fuzzed Connection header joins it.
    const encode = (r: FuzzRequest): Buffer => {
      const head = [`${r.method} ${r.target} ${r.version}`, 'Host: proxy.local', 'Connection: close', ...r.headers.map(([n, v]) => `${n}: ${v}`)].join(r.lineEnd);
      const text = `${head}${r.lineEnd}${r.lineEnd}${r.body}`;
      const bytes = Buffer.from(text, 'latin1');
      return r.truncate ? bytes.subarray(0, Math.max(1, Math.floor(bytes.length / 2))) : bytes;
    };

    // Warm-up (JIT, pools, agents), then the baseline.
    for (let i = 0; i < 200; i++) await exchange(proxy.port, Buffer.from(`GET /v2/x/manifests/${i} HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n`));
    global.gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    let sent = 0;
    let answered = 0;
    const statuses = new Map<number, number>();

    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
    const outcome = await fc.check(
      fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 12 }), async (batch) => {
        const results = await Promise.all(batch.map((r) => exchange(proxy.port, encode(r), r.truncate ? TRUNCATED_WAIT_MS : EXCHANGE_TIMEOUT_MS)));
        for (const res of results) {
          sent++;
          if (res.status === undefined) {
            // Either nothing (a truncated request still waiting, or a parser that closed) or a status line; never garbage.
            expect(res.raw === '' || res.raw.startsWith('HTTP/1.1 ')).toBe(true);
            continue;
          }
          answered++;
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          expect(res.status).toBeGreaterThanOrEqual(200);
          expect(res.status).toBeLessThan(600);
          // No input is an internal error of the proxy.
          expect(res.status).not.toBe(500);
          // Refusals and errors of the proxy itself carry a JSON reason (the first answer; a pipelined second may follow).
          const head = res.raw.slice(0, res.raw.indexOf('\r\n\r\n'));
          const length = /\r\ncontent-length: (\d+)/i.exec(head);
          if (/\r\nx-dragonfly-error-type: proxy/i.test(head) && res.status >= 400 && length) {
            const body = res.raw.slice(head.length + 4, head.length + 4 + Number(length[1]));
            // A HEAD answer announces the body's length without sending it.
            if (body.length === Number(length[1])) expect(typeof (JSON.parse(body) as { message?: unknown }).message).toBe('string');
          }
        }
        expect(protectedRequests).toEqual([]);
        expect(protectedConnections).toBe(0);
        if (sent % 50 < batch.length) {
          expect(await healthy(proxy.port)).toBe(200);
          peak = Math.max(peak, process.memoryUsage().rss);
        }
      }),
      { numRuns: 450, seed, endOnFailure: true },
    );
    if (outcome.failed) {
      // fast-check's own report prints whole counterexamples (some headers are 20 KB): keep it readable.
      const example = JSON.stringify(outcome.counterexample).slice(0, 1500);
      throw new Error(`proxy fuzz failed (FUZZ_SEED=${seed}, run ${outcome.numRuns}): ${String(outcome.errorInstance).slice(0, 1500)}\ncounterexample: ${example}`);
    }

    expect(await healthy(proxy.port)).toBe(200);
    global.gc?.();
    peak = Math.max(peak, process.memoryUsage().rss);
    const growth = peak - baseline;
    console.log(
      `proxy fuzz: ${sent} requests, ${answered} answered with a status, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}, ` +
        `RSS ${(baseline / MiB).toFixed(0)} -> peak ${(peak / MiB).toFixed(0)} MiB (growth ${(growth / MiB).toFixed(1)} MiB, bound ${RSS_GROWTH_BOUND / MiB} MiB)`,
    );
    expect(sent).toBeGreaterThanOrEqual(2000);
    expect(answered).toBeGreaterThan(sent / 2);
    // Past the HTTP parser into policy: a good share refused by it, and some legitimate pulls served.
    expect(statuses.get(403) ?? 0).toBeGreaterThan(sent / 20);
    expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
    expect(growth).toBeLessThan(RSS_GROWTH_BOUND);
    expect(protectedRequests).toEqual([]);
    expect(protectedConnections).toBe(0);
  });
});
