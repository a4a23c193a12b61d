/**
 * Who the proxy may talk to on a caller's behalf. The proxy denies by default: mirror
 * requests reach the registries the config names (registryMirror.url and whiteList), absolute-URI
 * requests reach whiteList hosts, CONNECT reaches hijackHTTPS hosts or whiteList host:port pairs,
 * and no request reaches a link-local or cloud-metadata address unless that exact host is listed.
 * Pure decisions here; the server resolves names and asks `addressRefusal` about each address.
 */
import { BlockList, isIP } from 'node:net';
import type { DfdaemonConfig } from '../../common/config/dfdaemon';

type ProxyConfig = DfdaemonConfig['proxy'];

export type RefusalKind = 'PermissionDenied' | 'InvalidArgument' | 'ResourceExhausted' | 'Unavailable' | 'DeadlineExceeded';

const KIND_OF_STATUS: Record<number, RefusalKind> = { 400: 'InvalidArgument', 403: 'PermissionDenied', 429: 'ResourceExhausted', 502: 'Unavailable', 503: 'Unavailable', 504: 'DeadlineExceeded' };

/** A request the proxy will not serve: HTTP status plus the reason sent in the JSON body and logged. */
export class ProxyRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly kind: RefusalKind = KIND_OF_STATUS[status] ?? 'PermissionDenied',
  ) {
    super(message);
    this.name = 'ProxyRefusal';
  }
}

/**
 * Addresses nobody reaches through the proxy by accident: link-local (cloud metadata at
 * 169.254.169.254, ECS at 169.254.170.2, IPv6 fe80::/10), other providers' metadata endpoints,
 * and "this host" / unspecified addresses.
 */
const SENSITIVE = new BlockList();
SENSITIVE.addSubnet('169.254.0.0', 16, 'ipv4');
SENSITIVE.addSubnet('0.0.0.0', 8, 'ipv4');
SENSITIVE.addAddress('100.100.100.200', 'ipv4'); // Alibaba Cloud metadata
SENSITIVE.addSubnet('fe80::', 10, 'ipv6');
SENSITIVE.addAddress('fd00:ec2::254', 'ipv6'); // AWS IMDS over IPv6
SENSITIVE.addAddress('::', 'ipv6');

/** The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::/96) IPv6 address. */
function embeddedIPv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (!hex) return undefined;
  const hi = parseInt(hex[1], 16);
  const lo = parseInt(hex[2], 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** Whether an IP address is link-local, a metadata endpoint or unspecified. */
export function isSensitiveAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 4) return SENSITIVE.check(bare, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIPv4(bare);
    if (v4 !== undefined) return SENSITIVE.check(v4, 'ipv4');
    return SENSITIVE.check(bare, 'ipv6');
  }
  return false;
}

/** The port a URL connects to. */
export function effectivePort(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}

/** Host name as compared against the lists: lower case, IPv6 brackets removed. */
export function bareHost(hostname: string): string {
  // Only a host with a bracket at either end (an IPv6 literal) needs the regex: the others skip it (checked on each request).
  const bracketed = hostname.charCodeAt(0) === 91 || hostname.charCodeAt(hostname.length - 1) === 93;
  return (bracketed ? hostname.replace(/^\[|\]$/g, '') : hostname).toLowerCase();
}

/** Anchored: a whiteList `regx: registry.local` must not also admit `registry.local.attacker.example`. */
function anchored(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`, 'i');
}

interface CompiledEntry {
  readonly host: string;
  readonly regx?: RegExp;
  readonly ports: ReadonlySet<number>;
}

export class ProxyPolicy {
  private readonly whiteList: readonly CompiledEntry[];
  private readonly tunnelHosts: readonly RegExp[];
  private readonly mirrorHost: string;
  private readonly mirrorPort: number;

  constructor(config: ProxyConfig) {
    this.whiteList = config.whiteList.map((e) => ({
      host: bareHost(e.host),
      regx: e.regx ? anchored(e.regx) : undefined,
      ports: new Set(e.ports.map(Number)),
    }));
    this.tunnelHosts = config.hijackHTTPS.hosts.map((h) => anchored(h.regx));
    const mirror = new URL(config.registryMirror.url);
    this.mirrorHost = bareHost(mirror.hostname === 'docker.io' ? 'index.docker.io' : mirror.hostname);
    this.mirrorPort = effectivePort(mirror);
  }

  /** The first whiteList entry naming this host (by `host` or `regx`), as Go's checkWhiteList picks it. */
  private entryFor(hostname: string): CompiledEntry | undefined {
    const host = bareHost(hostname);
    return this.whiteList.find((e) => (e.host !== '' && e.host === host) || (e.regx !== undefined && e.regx.test(host)));
  }

  /** A whiteList entry admits the host, and the port when the entry lists ports. */
  private listed(hostname: string, port: number): boolean {
    const entry = this.entryFor(hostname);
    return entry !== undefined && (entry.ports.size === 0 || entry.ports.has(port));
  }

  /** Mirror upstream (from X-Dragonfly-Registry, ?ns= or the config): registryMirror.url's host:port or a whiteList host. */
  checkMirrorUpstream(upstream: URL): void {
    const host = bareHost(upstream.hostname);
    const port = effectivePort(upstream);
    if (host === this.mirrorHost && port === this.mirrorPort) return;
    if (this.listed(host, port)) return;
    throw new ProxyRefusal(
      403,
      `registry ${upstream.host} is not allowed: mirror requests may only name proxy.registryMirror.url or a proxy.whiteList host`,
    );
  }

  /** Absolute-URI (forward-proxy) request: only whiteList hosts. */
  checkForward(upstream: URL): void {
    if (this.listed(upstream.hostname, effectivePort(upstream))) return;
    throw new ProxyRefusal(403, `host ${upstream.host} is not in proxy.whiteList; this proxy relays only to listed hosts`);
  }

  /** CONNECT host:port: a hijackHTTPS.hosts pattern, or a whiteList entry that lists this port. */
  checkTunnel(hostname: string, port: number): void {
    const target = `${bareHost(hostname)}:${port}`;
    if (this.tunnelHosts.some((re) => re.test(target))) return;
    const entry = this.entryFor(hostname);
    if (entry !== undefined && entry.ports.has(port)) return;
    throw new ProxyRefusal(403, `CONNECT to ${target} is not allowed: list it in proxy.hijackHTTPS.hosts or as a proxy.whiteList host with that port`);
  }

  /**
   * Whether the host was named exactly (not by a pattern) by the operator: only such a host
   * may resolve to a link-local or metadata address.
   */
  explicitlyListed(hostname: string): boolean {
    const host = bareHost(hostname);
    return host === this.mirrorHost || this.whiteList.some((e) => e.host !== '' && e.host === host);
  }

  /** Why `address` (one resolution of `hostname`) must not be connected to, or undefined if it may. */
  addressRefusal(hostname: string, address: string): ProxyRefusal | undefined {
    if (!isSensitiveAddress(address) || this.explicitlyListed(hostname)) return undefined;
    const via = bareHost(hostname) === bareHost(address) ? '' : ` (${hostname} resolves to it)`;
    return new ProxyRefusal(403, `address ${address}${via} is link-local, unspecified or a metadata endpoint; list the host exactly in proxy.whiteList to allow it`);
  }
}
