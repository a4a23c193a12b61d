import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { Registry } from 'prom-client';
import { silentLogger } from '../../../services/common/logger';
import { UnavailableError } from '../../../services/common/errors';
import { startProxyServer, type ProxyServerHandle } from '../../../services/dfdaemon/proxy';
import { createProxyMetrics, recordAnswer, recordHeldHit } from '../../../services/dfdaemon/proxy/metrics';
import { blobOf, MemoryTasks, proxyConfig, request, startOrigin, type Origin } from './helpers';

describe('registry-mirror proxy', () => {
  let origin: Origin;
  let tasks: MemoryTasks;
  let proxy: ProxyServerHandle;
  let registry: Registry;
  const content = randomBytes(10_000);
  const { digest, hex } = blobOf(content);

  beforeEach(async () => {
    origin = await startOrigin();
    origin.blobs.set(digest, content);
    tasks = new MemoryTasks();
    registry = new Registry();
    // The origin's host is listed so absolute-URI requests and CONNECT may reach it (default deny otherwise).
    const config = proxyConfig({ registryMirror: { url: origin.base }, whiteList: [{ host: '127.0.0.1' }], hijackHTTPS: { hosts: [{ regx: '127\\.0\\.0\\.1:\\d+' }] } });
    proxy = await startProxyServer({ config, tasks, logger: silentLogger(), registry });
  });

  afterEach(async () => {
    await proxy.close();
    await origin.close();
  });

  it('serves a blob through P2P with the upstream taken from X-Dragonfly-Registry, replaying origin headers', async () => {
    const res = await request(proxy.port, `/v2/library/alpine/blobs/${digest}?ns=docker.io`, {
      headers: { 'X-Dragonfly-Registry': origin.base, Authorization: 'Bearer good' },
    });
    expect(res.status).toBe(200);
    expect(res.body.equals(content)).toBe(true);
    expect(res.headers['content-length']).toBe(String(content.length));
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.headers['docker-content-digest']).toBe(digest);
    expect(res.headers['x-dragonfly-task-id']).toBe(hex);
    expect(res.headers['x-dragonfly-task-download-finished']).toBeUndefined();
    expect(tasks.calls).toHaveLength(1);
    // ns is dropped from the upstream URL; the client's Authorization goes to the origin; control headers do not.
    expect(tasks.calls[0].url).toBe(`${origin.base}/v2/library/alpine/blobs/${digest}`);
    expect(tasks.calls[0].requestHeaders.authorization).toBe('Bearer good');
    expect(Object.keys(tasks.calls[0].requestHeaders).some((h) => h.startsWith('x-dragonfly-'))).toBe(false);
    expect(tasks.calls[0].digest).toBe(digest);
    expect(origin.seen[0].url).toBe(`/v2/library/alpine/blobs/${digest}`);

    const again = await request(proxy.port, `/v2/library/alpine/blobs/${digest}?ns=docker.io`, { headers: { 'X-Dragonfly-Registry': origin.base } });
    expect(again.status).toBe(200);
    expect(again.body.equals(content)).toBe(true);
    expect(again.headers['x-dragonfly-task-download-finished']).toBe('true');
    expect(origin.seen).toHaveLength(1);
  });

  it('takes the upstream from ?ns= when no header is set, and drops ns from the upstream URL', async () => {
    const ns = encodeURIComponent(origin.base);
    const res = await request(proxy.port, `/v2/library/alpine/blobs/${digest}?ns=${ns}&keep=1`);
    expect(res.status).toBe(200);
    expect(tasks.calls[0].url).toBe(`${origin.base}/v2/library/alpine/blobs/${digest}?keep=1`);
  });

  it('falls back to proxy.registryMirror.url', async () => {
    const res = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(tasks.calls[0].url).toBe(`${origin.base}/v2/library/alpine/blobs/${digest}`);
  });

  it('passes manifests straight through with the client headers (Authorization included)', async () => {
    const res = await request(proxy.port, '/v2/library/alpine/manifests/latest?ns=docker.io', {
      headers: { 'X-Dragonfly-Registry': origin.base, Authorization: 'Bearer good', Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toMatchObject({ path: '/v2/library/alpine/manifests/latest', method: 'GET' });
    expect(res.headers['docker-content-digest']).toBe('sha256:abc');
    expect(tasks.calls).toHaveLength(0);
    const seen = origin.seen[0];
    expect(seen.url).toBe('/v2/library/alpine/manifests/latest');
    expect(seen.headers.authorization).toBe('Bearer good');
    expect(seen.headers.accept).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(seen.headers.host).toBe(`127.0.0.1:${origin.port}`);
    expect(seen.headers['x-dragonfly-registry']).toBeUndefined();
  });

  it('replays 401 + WWW-Authenticate from the origin, on pass-through and on P2P', async () => {
    const manifest = await request(proxy.port, '/v2/private/app/manifests/v1', { headers: { 'X-Dragonfly-Registry': origin.base } });
    expect(manifest.status).toBe(401);
    expect(manifest.headers['www-authenticate']).toBe('Bearer realm="http://auth.local/token",service="registry"');

    origin.blobs.set(digest, content);
    const blob = await request(proxy.port, `/v2/private/app/blobs/${digest}`, { headers: { 'X-Dragonfly-Registry': origin.base, Authorization: 'Bearer bad' } });
    expect(tasks.calls).toHaveLength(1);
    expect(blob.status).toBe(401);
    expect(blob.headers['www-authenticate']).toBe('Bearer realm="http://auth.local/token",service="registry"');
    expect(JSON.parse(blob.body.toString())).toEqual({ errors: [{ code: 'UNAUTHORIZED' }] });

    const authorized = await request(proxy.port, `/v2/private/app/blobs/${digest}`, { headers: { 'X-Dragonfly-Registry': origin.base, Authorization: 'Bearer good' } });
    expect(authorized.status).toBe(200);
    expect(authorized.body.equals(content)).toBe(true);
  });

  it('passes HEAD through, never P2P; other methods only as absolute URIs to listed hosts', async () => {
    const head = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(content.length));
    expect(head.body.length).toBe(0);
    expect(origin.seen[0].method).toBe('HEAD');

    const mirrorPost = await request(proxy.port, '/v2/echo', { method: 'POST', body: 'hello body' });
    expect(mirrorPost.status).toBe(403);
    expect(origin.seen).toHaveLength(1);

    const post = await request(proxy.port, `${origin.base}/echo`, { method: 'POST', body: 'hello body', headers: { 'content-type': 'text/plain' } });
    expect(post.status).toBe(201);
    expect(post.body.toString()).toBe('hello body');
    expect(post.headers['x-echo-method']).toBe('POST');
    expect(tasks.calls).toHaveLength(0);
  });

  it('serves plain forward-proxy requests (absolute URI): blobs via P2P, the rest passed through', async () => {
    const blob = await request(proxy.port, `${origin.base}/v2/library/alpine/blobs/${digest}`);
    expect(blob.status).toBe(200);
    expect(blob.body.equals(content)).toBe(true);
    expect(tasks.calls[0].url).toBe(`${origin.base}/v2/library/alpine/blobs/${digest}`);

    const file = await request(proxy.port, `${origin.base}/file.bin`);
    expect(file.status).toBe(200);
    expect(file.body.toString()).toBe('plain file');
    expect(tasks.calls).toHaveLength(1);
  });

  it('X-Dragonfly-Use-P2P: true sends a non-matching GET through P2P with tag, application and filter', async () => {
    const res = await request(proxy.port, `${origin.base}/file.bin?Signature=abc&v=1`, {
      headers: { 'X-Dragonfly-Use-P2P': 'true', 'X-Dragonfly-Tag': 't1', 'X-Dragonfly-Application': 'app', 'X-Dragonfly-Filtered-Query-Params': 'Signature, v' },
    });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('plain file');
    expect(tasks.calls[0]).toMatchObject({ tag: 't1', application: 'app', filteredQueryParams: ['Signature', 'v'] });
    expect(res.headers['x-dragonfly-task-id']).toMatch(/^[a-f0-9]{64}$/);
  });

  it('uses proxy.defaultFilter when no filter header is sent', async () => {
    await request(proxy.port, `${origin.base}/file.bin`, { headers: { 'X-Dragonfly-Use-P2P': 'true' } });
    expect(tasks.calls[0].filteredQueryParams).toEqual(['Expires', 'Signature', 'ns']);
  });

  it('answers a single Range with 206 and Content-Range, cold and from cache', async () => {
    const cold = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`, { headers: { Range: 'bytes=100-199' } });
    expect(cold.status).toBe(206);
    expect(cold.headers['content-range']).toBe(`bytes 100-199/${content.length}`);
    expect(cold.headers['content-length']).toBe('100');
    expect(cold.body.equals(content.subarray(100, 200))).toBe(true);
    expect(tasks.calls[0].range).toEqual({ start: 100, length: 100 });
    expect(tasks.calls[0].requestHeaders.range).toBeUndefined();

    const open = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`, { headers: { Range: 'bytes=9000-' } });
    expect(open.status).toBe(206);
    expect(open.headers['content-range']).toBe(`bytes 9000-9999/${content.length}`);
    expect(open.body.equals(content.subarray(9000))).toBe(true);

    const suffix = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`, { headers: { Range: 'bytes=-10' } });
    expect(suffix.status).toBe(206);
    expect(suffix.body.equals(content.subarray(content.length - 10))).toBe(true);

    const beyond = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`, { headers: { Range: 'bytes=20000-' } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers['content-range']).toBe(`bytes */${content.length}`);
  });

  it('answers cache hits held in memory from those bytes: whole, single ranges of every form, 416', async () => {
    expect((await request(proxy.port, `/v2/library/alpine/blobs/${digest}`)).status).toBe(200);
    tasks.inMemory = true;
    const whole = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`);
    expect(whole.status).toBe(200);
    expect(whole.headers['content-length']).toBe(String(content.length));
    expect(whole.headers['x-dragonfly-task-download-finished']).toBe('true');
    expect(whole.headers['docker-content-digest']).toBe(digest);
    expect(whole.body.equals(content)).toBe(true);
    for (const [range, start, end] of [['bytes=100-199', 100, 199], ['bytes=9000-', 9000, 9999], ['bytes=-10', 9990, 9999], ['bytes=9990-20000', 9990, 9999]] as const) {
      const part = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`, { headers: { Range: range } });
      expect(part.status).toBe(206);
      expect(part.headers['content-range']).toBe(`bytes ${start}-${end}/${content.length}`);
      expect(part.headers['content-length']).toBe(String(end - start + 1));
      expect(part.body.equals(content.subarray(start, end + 1))).toBe(true);
    }
    const beyond = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`, { headers: { Range: 'bytes=20000-' } });
    expect(beyond.status).toBe(416);
    // Length unknown before the read: the whole content comes back and the range is cut out of it.
    tasks.statUnknown = true;
    const cut = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`, { headers: { Range: 'bytes=2500-' } });
    expect(cut.status).toBe(206);
    expect(cut.body.equals(content.subarray(2500))).toBe(true);
    const late = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`, { headers: { Range: 'bytes=20000-' } });
    expect(late.status).toBe(416);
    expect(late.headers['content-range']).toBe(`bytes */${content.length}`);
  });

  it('answers a whole-blob hit held in memory at once (readHeld, no read); refusals, HEAD and ranges take the full path', async () => {
    expect((await request(proxy.port, `/v2/library/alpine/blobs/${digest}`)).status).toBe(200);
    tasks.inMemory = true;
    const hit = await request(proxy.port, `/v2/library/alpine/blobs/${digest}?ns=${origin.base.replace('http://', '')}`);
    expect(hit.status).toBe(200);
    expect(hit.body.equals(content)).toBe(true);
    expect(hit.headers['x-dragonfly-task-id']).toBe(hex);
    expect(hit.headers['content-length']).toBe(String(content.length));
    expect(tasks.calls).toHaveLength(1);
    expect(tasks.heldCalls.at(-1)?.digest).toBe(digest);
    // The same blob named through a registry the config does not list: refused, held or not.
    const held = tasks.heldCalls.length;
    const refused = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`, { headers: { 'X-Dragonfly-Registry': 'http://10.1.2.3:5000' } });
    expect(refused.status).toBe(403);
    const head = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(tasks.heldCalls).toHaveLength(held);
    const part = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`, { headers: { Range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(part.body.equals(content.subarray(10, 20))).toBe(true);
    expect(tasks.calls).toHaveLength(2);
    const text = await registry.metrics();
    expect(text).toMatch(/mode="p2p",status="200"[^\n]* 2/);
  });

  it('looks a held blob up by its digest alone (readHeldBlob); refused requests never reach it, other URLs still use readHeld', async () => {
    expect((await request(proxy.port, `/v2/library/alpine/blobs/${digest}`)).status).toBe(200);
    tasks.inMemory = true;
    const byDigest: string[] = [];
    Object.assign(tasks, {
      readHeldBlob: (d: string) => {
        byDigest.push(d);
        return tasks.readHeld({ url: `${origin.base}/v2/library/alpine/blobs/${d}`, requestHeaders: {} });
      },
    });
    const heldBefore = tasks.heldCalls.length;
    // Tag and application do not change a blob's task: the digest is all the lookup needs.
    const hit = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`, { headers: { 'X-Dragonfly-Tag': 't', 'X-Dragonfly-Application': 'a' } });
    expect(hit.status).toBe(200);
    expect(hit.body.equals(content)).toBe(true);
    expect(hit.headers['x-dragonfly-task-id']).toBe(hex);
    expect(hit.headers['x-dragonfly-task-download-finished']).toBe('true');
    expect(byDigest).toEqual([digest]);
    expect(tasks.calls).toHaveLength(1);
    // A registry the config does not list: refused before any lookup.
    expect((await request(proxy.port, `/v2/library/alpine/blobs/${digest}`, { headers: { 'X-Dragonfly-Registry': 'http://10.1.2.3:5000' } })).status).toBe(403);
    expect(byDigest).toHaveLength(1);
    // Not a blob URL: the task inputs are worked out and readHeld asked.
    await request(proxy.port, '/v2/library/alpine/manifests/latest', { headers: { 'X-Dragonfly-Use-P2P': 'true' } });
    expect(byDigest).toHaveLength(1);
    expect(tasks.heldCalls.length).toBe(heldBefore + 2);
  });

  it('cuts an open-ended range out of the body when the task is not known yet', async () => {
    const res = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`, { headers: { Range: 'bytes=2500-' } });
    expect(res.status).toBe(206);
    expect(tasks.calls[0].range).toBeUndefined();
    expect(res.headers['content-length']).toBe(String(content.length - 2500));
    expect(res.body.equals(content.subarray(2500))).toBe(true);
  });

  it('maps engine failures to 502/503 JSON with X-Dragonfly-Error-Type: dfdaemon', async () => {
    tasks.failWith = new Error('no parent had the piece');
    const bad = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`);
    expect(bad.status).toBe(502);
    expect(bad.headers['x-dragonfly-error-type']).toBe('dfdaemon');
    expect(JSON.parse(bad.body.toString())).toMatchObject({ message: 'no parent had the piece' });

    tasks.failWith = new UnavailableError('scheduler unavailable');
    const unavailable = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`);
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers['x-dragonfly-error-type']).toBe('dfdaemon');
  });

  it('answers 502 with X-Dragonfly-Error-Type: proxy when the origin is unreachable on pass-through', async () => {
    const res = await request(proxy.port, '/v2/x/manifests/latest', { headers: { 'X-Dragonfly-Registry': 'http://127.0.0.1:1' } });
    expect(res.status).toBe(502);
    expect(res.headers['x-dragonfly-error-type']).toBe('proxy');
  });

  it('aborts the read of a client that disconnects', async () => {
    tasks.hang = true;
    const req = http.request({ host: '127.0.0.1', port: proxy.port, path: `/v2/library/alpine/blobs/${digest}`, agent: false });
    req.on('error', () => undefined);
    req.end();
    for (let i = 0; i < 100 && tasks.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(tasks.calls).toHaveLength(1);
    const signal = tasks.calls[0].signal;
    expect(signal?.aborted).toBe(false);
    req.destroy();
    for (let i = 0; i < 100 && !signal?.aborted; i++) await new Promise((r) => setTimeout(r, 10));
    expect(signal?.aborted).toBe(true);
  });

  it('tunnels CONNECT to the target (no interception)', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: proxy.port, method: 'CONNECT', path: `127.0.0.1:${origin.port}`, agent: false });
      req.on('connect', (res, socket) => {
        expect(res.statusCode).toBe(200);
        let text = '';
        socket.on('data', (c: Buffer) => (text += c.toString()));
        socket.on('end', () => resolve(text));
        socket.write(`GET /file.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      });
      req.on('error', reject);
      req.end();
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(answer).toContain('plain file');
    const refused = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: proxy.port, method: 'CONNECT', path: '127.0.0.1:1', agent: false });
      req.on('connect', (res, socket) => {
        socket.destroy();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(refused).toBe(502);
  });

  it('streams a large request body to the origin and the answer back on pass-through', async () => {
    const big = randomBytes(3 * 1024 * 1024).toString('base64');
    const res = await request(proxy.port, `${origin.base}/echo`, { method: 'PUT', body: big, headers: { 'content-type': 'text/plain' } });
    expect(res.status).toBe(201);
    expect(res.body.toString()).toBe(big);
  });

  it('counts requests by mode and status in the metrics registry', async () => {
    await request(proxy.port, `/v2/library/alpine/blobs/${digest}`);
    await request(proxy.port, `/v2/library/alpine/blobs/${digest}`);
    await request(proxy.port, '/v2/library/alpine/manifests/latest');
    const text = await registry.metrics();
    expect(text).toContain('dragonfly_dfdaemon_proxy_requests_total{mode="p2p",status="200"} 2');
    expect(text).toContain('dragonfly_dfdaemon_proxy_requests_total{mode="pass-through",status="200"} 1');
    expect(text).toContain('dragonfly_dfdaemon_proxy_cache_hits_total 1');
    expect(text).toContain(`dragonfly_dfdaemon_proxy_response_bytes_total{mode="p2p"} ${2 * content.length}`);
  });
});

describe('proxy limits and rules', () => {
  let origin: Origin;

  beforeEach(async () => {
    origin = await startOrigin();
  });
  afterEach(async () => {
    await origin.close();
  });

  it('answers 429 beyond proxy.maxConcurrency when nothing may queue', async () => {
    const tasks = new MemoryTasks();
    tasks.hang = true;
    const proxy = await startProxyServer({ config: proxyConfig({ maxConcurrency: 1, maxQueued: 0, registryMirror: { url: origin.base } }), tasks, logger: silentLogger(), registry: new Registry() });
    const hanging = http.request({ host: '127.0.0.1', port: proxy.port, path: `/v2/a/blobs/sha256:${'a'.repeat(64)}`, agent: false });
    hanging.on('error', () => undefined);
    hanging.end();
    for (let i = 0; i < 100 && tasks.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const second = await request(proxy.port, '/v2/a/manifests/latest');
    expect(second.status).toBe(429);
    expect(second.headers['x-dragonfly-error-type']).toBe('proxy');
    hanging.destroy();
    await proxy.close();
  });

  it('queues up to proxy.maxQueued requests for proxy.queueTimeout (then 503), refuses more with 429, and serves a queued one when a slot frees', async () => {
    const tasks = new MemoryTasks();
    tasks.hang = true;
    const config = proxyConfig({ maxConcurrency: 1, maxQueued: 1, queueTimeout: '300ms', registryMirror: { url: origin.base } });
    const proxy = await startProxyServer({ config, tasks, logger: silentLogger(), registry: new Registry() });
    const hanging = http.request({ host: '127.0.0.1', port: proxy.port, path: `/v2/a/blobs/sha256:${'a'.repeat(64)}`, agent: false });
    hanging.on('error', () => undefined);
    hanging.end();
    for (let i = 0; i < 100 && tasks.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));

    const queued = request(proxy.port, '/v2/a/manifests/latest');
    await new Promise((r) => setTimeout(r, 50));
    const third = await request(proxy.port, '/v2/a/manifests/latest');
    expect(third.status).toBe(429);
    expect(JSON.parse(third.body.toString())).toMatchObject({ kind: 'ResourceExhausted' });
    const timedOut = await queued;
    expect(timedOut.status).toBe(503);
    expect((JSON.parse(timedOut.body.toString()) as { message: string }).message).toContain('proxy.queueTimeout');

    const waiting = request(proxy.port, '/v2/a/manifests/latest');
    await new Promise((r) => setTimeout(r, 50));
    hanging.destroy();
    const served = await waiting;
    expect(served.status).toBe(200);
    expect(origin.seen.map((r) => r.url)).toEqual(['/v2/a/manifests/latest']);
    await proxy.close();
  });

  it('treats proxy.maxConcurrency 0 (the Go-era "unbounded") as the default bound', () => {
    expect(proxyConfig({ maxConcurrency: 0 }).proxy.maxConcurrency).toBe(256);
    expect(proxyConfig().proxy.maxConcurrency).toBe(256);
  });

  it('sends rule matches marked direct straight to the origin, and honours redirect', async () => {
    const tasks = new MemoryTasks();
    const content = Buffer.from('layer bytes');
    const { digest } = blobOf(content);
    origin.blobs.set(digest, content);
    const config = proxyConfig({
      registryMirror: { url: 'http://registry.invalid' },
      proxies: [
        { regx: 'blobs/sha256.*direct', direct: true },
        { regx: 'blobs/sha256.*', redirect: `127.0.0.1:${origin.port}` },
      ],
    });
    const proxy = await startProxyServer({ config, tasks, logger: silentLogger(), registry: new Registry() });
    const res = await request(proxy.port, `/v2/library/alpine/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(res.body.equals(content)).toBe(true);
    expect(tasks.calls[0].url).toBe(`${origin.base}/v2/library/alpine/blobs/${digest}`);
    await proxy.close();
  });
});

describe('proxy metrics: whole cache hits answered from memory', () => {
  it('are tallied and taken into the counters when read: exact at every read, never twice, shared by the proxies of one registry', async () => {
    const reg = new Registry();
    const a = createProxyMetrics(reg);
    const b = createProxyMetrics(reg);
    recordHeldHit(a, 100);
    recordHeldHit(b, 50);
    recordAnswer(a, 'p2p', 200, 7);
    const read = async () => ({
      hits: (await reg.getSingleMetric('dragonfly_dfdaemon_proxy_cache_hits_total')!.get()).values[0]?.value,
      ok: (await a.requests.get()).values.find((v) => v.labels.mode === 'p2p' && v.labels.status === '200')?.value,
      bytes: (await a.bytes.get()).values.find((v) => v.labels.mode === 'p2p')?.value,
    });
    expect(await read()).toEqual({ hits: 2, ok: 3, bytes: 157 });
    expect(await read()).toEqual({ hits: 2, ok: 3, bytes: 157 });
    recordHeldHit(b, 1);
    expect(await reg.metrics()).toMatch(/dragonfly_dfdaemon_proxy_cache_hits_total 3\n/);
    expect(await read()).toEqual({ hits: 3, ok: 4, bytes: 158 });
  });
});
