import { ConfigError, parseConfig } from '../../../services/common/config';
import { ProxyPolicy, ProxyRefusal, admit, isSensitiveAddress, route } from '../../../services/dfdaemon/proxy';
import { bareHost } from '../../../services/dfdaemon/proxy/policy';
import { withRegistryWhiteList } from '../../../constructs/dfdaemon';
import { proxyConfig } from './helpers';

function refusalOf(fn: () => void): ProxyRefusal | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof ProxyRefusal) return err;
    throw err;
  }
}

describe('proxy policy (default deny)', () => {
  it('knows link-local, metadata and unspecified addresses in every spelling', () => {
    for (const a of ['169.254.169.254', '169.254.170.2', '169.254.0.1', '100.100.100.200', '0.0.0.0', '0.1.2.3', 'fe80::1', 'FE80::abcd%eth0', '[fe80::1]', 'febf::1', 'fd00:ec2::254', '::', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '64:ff9b::169.254.169.254']) {
      expect([a, isSensitiveAddress(a)]).toEqual([a, true]);
    }
    for (const a of ['127.0.0.1', '10.0.0.1', '192.168.1.1', '8.8.8.8', '::1', 'fec0::1', '2001:db8::1', '::ffff:10.0.0.1', '169.255.0.1', 'not-an-ip']) {
      expect([a, isSensitiveAddress(a)]).toEqual([a, false]);
    }
  });

  it('admits mirror upstreams only when they are registryMirror.url or a whiteList host (anchored, with ports)', () => {
    const policy = new ProxyPolicy(proxyConfig({ whiteList: [{ regx: 'registry\\.local' }, { host: 'ghcr.io', ports: ['443'] }] }).proxy);
    expect(refusalOf(() => policy.checkMirrorUpstream(new URL('https://index.docker.io/v2/')))).toBeUndefined();
    expect(refusalOf(() => policy.checkMirrorUpstream(new URL('https://index.docker.io:8443/v2/')))?.status).toBe(403);
    expect(refusalOf(() => policy.checkMirrorUpstream(new URL('http://registry.local:5000/v2/')))).toBeUndefined();
    expect(refusalOf(() => policy.checkMirrorUpstream(new URL('http://registry.local.attacker.example/v2/')))?.status).toBe(403);
    expect(refusalOf(() => policy.checkMirrorUpstream(new URL('https://ghcr.io/v2/')))).toBeUndefined();
    expect(refusalOf(() => policy.checkMirrorUpstream(new URL('http://ghcr.io/v2/')))?.message).toContain('registry ghcr.io is not allowed');
  });

  it('routes then admits: method, /v2/ path after normalisation, registry; ns docker.io is the default registry', () => {
    const config = proxyConfig().proxy;
    const policy = new ProxyPolicy(config);
    const check = (method: string, target: string, headers: Record<string, string> = {}) =>
      refusalOf(() => admit(policy, method, target, route(config, method, target, headers)))?.message ?? 'admitted';
    expect(check('GET', '/v2/library/alpine/manifests/3?ns=docker.io')).toBe('admitted');
    expect(check('HEAD', '/v2/')).toBe('admitted');
    expect(check('POST', '/v2/library/alpine/blobs/uploads/')).toContain('method POST is not allowed');
    expect(check('GET', '/v2/../api/v1/users')).toContain('path /api/v1/users is not allowed');
    expect(check('GET', '//evil.example/v2/x')).toContain('is not allowed');
    expect(check('GET', '/v2/x?ns=ghcr.io')).toContain('registry ghcr.io is not allowed');
    expect(check('GET', '/v2/x', { 'x-dragonfly-registry': 'http://10.0.0.1:8080' })).toContain('registry 10.0.0.1:8080 is not allowed');
    expect(check('GET', 'http://example.com/file')).toContain('not in proxy.whiteList');
  });

  it('checks the upstream the caller named, not where a proxy rule redirects it', () => {
    const config = proxyConfig({ whiteList: [{ host: 'files.example' }], proxies: [{ regx: 'files\\.example', redirect: 'cache.internal' }] }).proxy;
    const decision = route(config, 'GET', 'http://files.example/a', {});
    expect(decision.upstream.host).toBe('cache.internal');
    expect(() => admit(new ProxyPolicy(config), 'GET', 'http://files.example/a', decision)).not.toThrow();
  });

  it('opens CONNECT tunnels only to hijackHTTPS hosts or whiteList hosts that list the port', () => {
    const policy = new ProxyPolicy(proxyConfig({ whiteList: [{ host: 'ghcr.io', ports: ['443'] }, { host: 'any-port.example' }], hijackHTTPS: { hosts: [{ regx: 'mirror\\.example:443' }] } }).proxy);
    expect(refusalOf(() => policy.checkTunnel('ghcr.io', 443))).toBeUndefined();
    expect(refusalOf(() => policy.checkTunnel('ghcr.io', 22))?.status).toBe(403);
    expect(refusalOf(() => policy.checkTunnel('any-port.example', 443))?.status).toBe(403);
    expect(refusalOf(() => policy.checkTunnel('mirror.example', 443))).toBeUndefined();
    expect(refusalOf(() => policy.checkTunnel('mirror.example', 4430))?.status).toBe(403);
  });

  it('allows a sensitive address only for a host listed exactly, never through a pattern', () => {
    const policy = new ProxyPolicy(proxyConfig({ whiteList: [{ regx: '.*' }, { host: 'metadata.google.internal' }] }).proxy);
    expect(policy.addressRefusal('evil.example', '169.254.169.254')?.message).toContain('(evil.example resolves to it)');
    expect(policy.addressRefusal('169.254.169.254', '169.254.169.254')?.status).toBe(403);
    expect(policy.addressRefusal('metadata.google.internal', '169.254.169.254')).toBeUndefined();
    expect(policy.addressRefusal('evil.example', '10.1.2.3')).toBeUndefined();
  });

  it('validates the Go-era keys and names the bad one', () => {
    const bad = (proxy: Record<string, unknown>) => {
      try {
        parseConfig('dfdaemon', { proxy });
        return 'accepted';
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
    };
    expect(bad({ whiteList: [{ ports: ['443'] }] })).toMatch(/proxy\.whiteList\.0\.host.*needs a host or a regx/);
    expect(bad({ whiteList: [{ host: 'a', ports: ['http'] }] })).toMatch(/proxy\.whiteList\.0\.ports\.0/);
    expect(bad({ whiteList: [{ host: 'a', ports: [70000] }] })).toMatch(/expected a port in 1\.\.65535/);
    expect(bad({ hijackHTTPS: { cert: 'ca.crt', key: 'ca.key', hosts: [{ regx: 'x' }] } })).toMatch(/proxy\.hijackHTTPS\.cert.*TLS interception is not supported/);
    expect(bad({ hijackHTTPS: { hosts: [{ regx: 'x', insecure: true }] } })).toMatch(/insecure/);
    expect(bad({ whiteList: [{ host: 'ghcr.io', ports: [443, '5000'] }], maxConcurrency: 0, requestTimeout: '10m' })).toBe('accepted');
    expect(bad({ maxConcurrency: -1 })).toMatch(/proxy\.maxConcurrency/);
  });
});

describe('constructs: the cluster registries on the proxy whiteList', () => {
  it('appends each registry (host and port) after the user entries, once', () => {
    const config = withRegistryWhiteList({ proxy: { whiteList: [{ host: 'files.example' }] } }, ['https://docker.io', 'https://ghcr.io', 'http://registry.local:5000']);
    expect(config.proxy?.whiteList).toEqual([
      { host: 'files.example' },
      { host: 'index.docker.io', ports: ['443'] },
      { host: 'ghcr.io', ports: ['443'] },
      { host: 'registry.local', ports: ['5000'] },
    ]);
    expect(withRegistryWhiteList(undefined, [])).toEqual({});
  });
});

describe('bareHost', () => {
  it('strips a bracket at either end and lower-cases, as the regex alone did', () => {
    for (const [input, want] of [
      ['[::1]', '::1'],
      ['[FE80::1]', 'fe80::1'],
      ['Registry.Local', 'registry.local'],
      ['host]', 'host'],
      ['[host', 'host'],
      ['a[b]c', 'a[b]c'],
      ['', ''],
    ] as const) {
      expect(bareHost(input)).toBe(want);
      expect(bareHost(input)).toBe(input.replace(/^\[|\]$/g, '').toLowerCase());
    }
  });
});
