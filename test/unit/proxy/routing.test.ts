import { forwardableHeaders, parseRange, registryBase, resolveRange, route } from '../../../services/dfdaemon/proxy/routing';
import { proxyConfig } from './helpers';

const blob = `/v2/library/alpine/blobs/sha256:${'b'.repeat(64)}`;

describe('proxy routing', () => {
  const proxy = proxyConfig().proxy;

  it('prepends https:// to a scheme-less ns and maps docker.io to its API host', () => {
    expect(route(proxy, 'GET', `${blob}?ns=ghcr.io`, {}).upstream.toString()).toBe(`https://ghcr.io${blob}`);
    expect(route(proxy, 'GET', `${blob}?ns=docker.io`, {}).upstream.toString()).toBe(`https://index.docker.io${blob}`);
    expect(route(proxy, 'GET', `${blob}?ns=registry.local:5000`, {}).upstream.toString()).toBe(`https://registry.local:5000${blob}`);
    expect(registryBase('http://10.0.0.1:5000').toString()).toBe('http://10.0.0.1:5000/');
    expect(() => registryBase('ftp://x')).toThrow('unsupported registry scheme');
  });

  it('prefers X-Dragonfly-Registry over ns over registryMirror.url', () => {
    expect(route(proxy, 'GET', `${blob}?ns=ghcr.io`, { 'x-dragonfly-registry': 'https://mirror.example' }).upstream.origin).toBe('https://mirror.example');
    expect(route(proxy, 'GET', blob, {}).upstream.origin).toBe('https://index.docker.io');
  });

  it('ignores X-Dragonfly-Registry when registryMirror.dynamic is false', () => {
    const cfg = proxyConfig({ registryMirror: { url: 'https://fixed.example', dynamic: false } }).proxy;
    expect(route(cfg, 'GET', blob, { 'x-dragonfly-registry': 'https://mirror.example' }).upstream.origin).toBe('https://fixed.example');
  });

  it('keeps a registry path prefix', () => {
    const d = route(proxy, 'GET', `${blob}?ns=x`, { 'x-dragonfly-registry': 'https://harbor.example/proxy-cache/' });
    expect(d.upstream.toString()).toBe(`https://harbor.example/proxy-cache${blob}`);
  });

  it('only GETs matching the first rule go through P2P', () => {
    expect(route(proxy, 'GET', blob, {}).mode).toBe('p2p');
    expect(route(proxy, 'HEAD', blob, {}).mode).toBe('pass-through');
    expect(route(proxy, 'PUT', blob, {}).mode).toBe('pass-through');
    expect(route(proxy, 'GET', '/v2/library/alpine/manifests/latest', {}).mode).toBe('pass-through');
    expect(route(proxy, 'GET', '/v2/library/alpine/manifests/latest', { 'x-dragonfly-use-p2p': 'true' }).mode).toBe('p2p');
    expect(route(proxy, 'HEAD', '/v2/x/manifests/latest', { 'x-dragonfly-use-p2p': 'true' }).mode).toBe('pass-through');
  });

  it('matches rules against the URL without its query', () => {
    const cfg = proxyConfig({ proxies: [{ regx: 'file\\.bin$' }] }).proxy;
    expect(route(cfg, 'GET', 'http://h.example/file.bin?x=1', {}).mode).toBe('p2p');
    expect(route(cfg, 'GET', 'http://h.example/other?f=file.bin', {}).mode).toBe('pass-through');
  });

  it('a matching rule with direct: true passes through; useHTTPS upgrades forward requests', () => {
    const cfg = proxyConfig({ proxies: [{ regx: 'blobs/sha256.*', direct: true }, { regx: '.*', useHTTPS: true }] }).proxy;
    expect(route(cfg, 'GET', blob, {}).mode).toBe('pass-through');
    const d = route(cfg, 'GET', 'http://files.example:80/a.tar', {});
    expect(d).toMatchObject({ mode: 'p2p', kind: 'forward' });
    expect(d.upstream.toString()).toBe('https://files.example/a.tar');
  });

  it('registryMirror.direct sends every mirror request straight to the origin', () => {
    const cfg = proxyConfig({ registryMirror: { direct: true } }).proxy;
    expect(route(cfg, 'GET', blob, {}).mode).toBe('pass-through');
  });

  it('rejects request targets it cannot route', () => {
    expect(() => route(proxy, 'GET', '*', {})).toThrow('unsupported request target');
    expect(() => route(proxy, 'GET', '/v2/x', { 'x-dragonfly-registry': 'https://bad host' })).toThrow('invalid registry');
  });

  it('forwards client headers minus Host, hop-by-hop and X-Dragonfly-* ones', () => {
    const headers: Record<string, string | string[]> = {
      host: 'proxy:65001',
      authorization: 'Bearer t',
      connection: 'keep-alive, x-private',
      'x-private': '1',
      'keep-alive': 'timeout=5',
      'x-dragonfly-registry': 'https://r',
      accept: ['a', 'b'],
      range: 'bytes=0-1',
    };
    const out = forwardableHeaders(headers, { dropRange: true });
    expect(out).toEqual({ authorization: 'Bearer t', accept: ['a', 'b'] });
  });

  it('parses and resolves single byte ranges', () => {
    expect(parseRange(undefined)).toEqual({ kind: 'none' });
    expect(parseRange('bytes=0-1,5-6')).toEqual({ kind: 'multi' });
    expect(parseRange('bytes=5-1')).toEqual({ kind: 'invalid' });
    expect(parseRange('items=0-1')).toEqual({ kind: 'invalid' });
    const r = parseRange('bytes=10-');
    if (r.kind !== 'single') throw new Error('expected a single range');
    expect(resolveRange(r, 100)).toEqual({ start: 10, end: 99 });
    expect(resolveRange(r, 10)).toBeUndefined();
    const s = parseRange('bytes=-30');
    if (s.kind !== 'single') throw new Error('expected a single range');
    expect(resolveRange(s, 100)).toEqual({ start: 70, end: 99 });
    expect(resolveRange(s, 10)).toEqual({ start: 0, end: 9 });
    const e = parseRange('bytes=90-200');
    if (e.kind !== 'single') throw new Error('expected a single range');
    expect(resolveRange(e, 100)).toEqual({ start: 90, end: 99 });
  });
});

describe('proxy routing: one parse of a mirror target', () => {
  /** route's mirror URL as it was built before (parse, join by setters, full copy): the answer must not change. */
  function reference(cfg: ReturnType<typeof proxyConfig>['proxy'], rawUrl: string, headerRegistry?: string): { upstream: string; requested: string; path: string } {
    const parse = (t: string) => new URL(`http://placeholder${t}`);
    const registry = (cfg.registryMirror.dynamic ? headerRegistry : undefined) || parse(rawUrl).searchParams.get('ns') || cfg.registryMirror.url;
    const base = registryBase(registry);
    const parsed = parse(rawUrl);
    const url = new URL(base.origin);
    url.pathname = `${base.pathname.replace(/\/+$/, '')}${parsed.pathname}`;
    parsed.searchParams.delete('ns');
    url.search = parsed.searchParams.toString();
    url.hash = '';
    const requested = new URL(url);
    for (const rule of cfg.proxies) {
      if (!new RegExp(rule.regx).test(`${url.protocol}//${url.host}${url.pathname}`)) continue;
      if (rule.redirect) url.host = rule.redirect;
      if (rule.useHTTPS && url.protocol === 'http:') {
        url.protocol = 'https:';
        if (url.port === '80') url.port = '';
      }
      break;
    }
    return { upstream: url.href, requested: requested.href, path: parsed.pathname };
  }

  const digest = `sha256:${'c'.repeat(64)}`;
  const targets = [
    `/v2/a/blobs/${digest}`,
    `/v2/a/blobs/${digest}?ns=ghcr.io`,
    `/v2/a/blobs/${digest}?ns=`,
    `/v2/a/blobs/${digest}?ns=registry.local%3A5000`,
    `/v2/a/blobs/${digest}?ns=docker.io&x=1`,
    `/v2/a/blobs/${digest}?x=a b&ns=ghcr.io&y=%2B+c`,
    `/v2/a/blobs/${digest}?ns=ghcr.io&ns=other.io`,
    `/v2/a/blobs/${digest}?ns=ghcr.io#frag`,
    `/v2/a/blobs/${digest}#`,
    `/v2/a/blobs/${digest}?`,
    '/v2/a/../b/./c/manifests/latest?ns=quay.io',
    '/v2/%2e%2e/api',
    '/v2/a%20b/c d/manifests/é',
    '//evil.example/v2/x',
    '/v2\\a\\blobs',
    '/v2',
    '/api/x?ns=ghcr.io',
    '/v2/',
    '/v2//a//blobs/',
    '/v2/a/./b',
    '/v2/a/.',
    '/v2/a/..',
    '/v2/.hidden/..x/x..',
    '/v2/a:b@c+d~e-f_g.h',
    '/v2/a?ns=gh:cr.io',
    '/v2/a?ns=ghcr.io&',
    '/v2/a?ns=ghcr.io%20x',
    '/v2/a?ns',
    '/v2/a?NS=ghcr.io',
    '/v2/A/Blobs',
  ];
  const configs = [
    proxyConfig().proxy,
    proxyConfig({ registryMirror: { url: 'https://harbor.example/cache/', dynamic: false } }).proxy,
    proxyConfig({ proxies: [{ regx: 'blobs/sha256.*', redirect: 'other.example:8443' }] }).proxy,
    proxyConfig({ registryMirror: { url: 'http://plain.example' }, proxies: [{ regx: '.*', useHTTPS: true }] }).proxy,
  ];
  const registries = [undefined, 'http://127.0.0.1:5000', 'https://harbor.example/proxy-cache//', 'docker.io', '[::1]:5000'];

  it('builds the same upstream, requested URL and checked path as the parse-join-copy it replaces', () => {
    let compared = 0;
    for (const cfg of configs) {
      for (const target of targets) {
        for (const reg of registries) {
          const headers = reg === undefined ? {} : { 'x-dragonfly-registry': reg };
          const outcome = (f: () => object) => {
            try {
              return f();
            } catch (err) {
              return { error: (err as Error).message };
            }
          };
          const got = outcome(() => {
            const d = route(cfg, 'GET', target, headers);
            return { upstream: d.upstream.href, requested: d.requested.href, path: d.originPath };
          });
          expect({ target, reg, ...got }).toEqual({ target, reg, ...outcome(() => reference(cfg, target, reg)) });
          compared++;
        }
      }
    }
    expect(compared).toBe(configs.length * targets.length * registries.length);
  });

  it('keeps what the caller asked for apart from a rule that rewrites the upstream', () => {
    const cfg = proxyConfig({ proxies: [{ regx: 'blobs/sha256.*', redirect: 'other.example' }] }).proxy;
    const d = route(cfg, 'GET', `/v2/a/blobs/${digest}`, { 'x-dragonfly-registry': 'https://asked.example' });
    expect(d.requested.host).toBe('asked.example');
    expect(d.upstream.host).toBe('other.example');
  });

  it('answers an invalid registry with a RouteError every time, also once remembered', () => {
    for (let i = 0; i < 2; i++) expect(() => route(proxyConfig().proxy, 'GET', `/v2/a/blobs/${digest}`, { 'x-dragonfly-registry': 'ftp://x' })).toThrow('unsupported registry scheme');
  });
});
