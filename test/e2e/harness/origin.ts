/**
 * The origin: the real distribution registry (Debian `docker-registry`) running on a lab host,
 * storage under the run's work dir, plain HTTP. Its JSON application log has one
 * "response completed" entry per request (method, URI, status, bytes written, duration, client
 * address), which is what the tests count blob GETs and origin bytes from.
 *
 * distribution's htpasswd auth covers the whole registry, so a "private repo" is a second
 * registry process with auth on its own port.
 */
import * as bcrypt from 'bcryptjs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, type ManagedProcess } from './exec';
import type { NetnsHost } from './netns-lab';

export interface OriginOptions {
  readonly port?: number;
  /** Turns on htpasswd auth for every repository of this registry. */
  readonly credentials?: { readonly username: string; readonly password: string };
  /** Process/log name, default "registry-<port>". */
  readonly name?: string;
  /** Serve HTTPS with this certificate (see createTlsIdentity). */
  readonly tls?: TlsIdentity;
}

export interface TlsIdentity {
  /** PEM of the CA that signed the certificate. */
  readonly caFile: string;
  /** The system roots plus caFile, for programs that read one bundle (Go: SSL_CERT_FILE). */
  readonly bundleFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * A throw-away CA and a server certificate for dnsNames (e.g. "ghcr.io"), made with openssl, so
 * the origin can stand in for a real HTTPS registry under its real name inside the lab.
 */
export async function createTlsIdentity(dir: string, dnsNames: readonly string[]): Promise<TlsIdentity> {
  fs.mkdirSync(dir, { recursive: true });
  const f = (n: string) => path.join(dir, n);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=dragonfly-e2e-ca', '-keyout', f('ca.key'), '-out', f('ca.pem')]);
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${dnsNames[0] ?? 'origin'}`, '-keyout', f('server.key'), '-out', f('server.csr')]);
  fs.writeFileSync(f('ext.cnf'), `subjectAltName=${dnsNames.map((n) => `DNS:${n}`).join(',')}\nextendedKeyUsage=serverAuth\n`);
  await run('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('server.pem')]);
  const systemRoots = ['/etc/ssl/certs/ca-certificates.crt'].filter((p) => fs.existsSync(p)).map((p) => fs.readFileSync(p, 'utf8'));
  fs.writeFileSync(f('bundle.pem'), [...systemRoots, fs.readFileSync(f('ca.pem'), 'utf8')].join('\n'));
  return { caFile: f('ca.pem'), bundleFile: f('bundle.pem'), certFile: f('server.pem'), keyFile: f('server.key') };
}

export interface RequestLogEntry {
  readonly method: string;
  readonly uri: string;
  readonly status: number;
  readonly bytes: number;
  readonly durationMs: number;
  /** Client IP as the registry saw it. */
  readonly client: string;
  readonly time: Date;
}

export class OriginRegistry {
  private constructor(
    readonly host: NetnsHost,
    readonly port: number,
    readonly process: ManagedProcess,
    readonly credentials: OriginOptions['credentials'],
  ) {}

  /** host:port by IP. */
  get address(): string {
    return `${this.host.ip}:${this.port}`;
  }

  static async start(host: NetnsHost, opts: OriginOptions = {}): Promise<OriginRegistry> {
    if (!fs.existsSync('/usr/bin/docker-registry')) {
      throw new Error('docker-registry is not installed (run scripts/e2e/install-deps.sh)');
    }
    const port = opts.port ?? 5000;
    const name = opts.name ?? `registry-${port}`;
    const dir = path.join(host.dir, name);
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
    const lines = [
      'version: 0.1',
      'log:',
      '  level: info',
      '  formatter: json',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${JSON.stringify(path.join(dir, 'data'))}`,
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      `  addr: 0.0.0.0:${port}`,
      `  secret: e2e-${host.lab.runId}`,
    ];
    if (opts.tls) lines.push('  tls:', `    certificate: ${JSON.stringify(opts.tls.certFile)}`, `    key: ${JSON.stringify(opts.tls.keyFile)}`);
    if (opts.credentials) {
      const htpasswd = path.join(dir, 'htpasswd');
      // distribution accepts bcrypt entries only.
      fs.writeFileSync(htpasswd, `${opts.credentials.username}:${bcrypt.hashSync(opts.credentials.password, 10)}\n`);
      lines.push('auth:', '  htpasswd:', '    realm: e2e-private', `    path: ${JSON.stringify(htpasswd)}`);
    }
    const configFile = path.join(dir, 'config.yml');
    fs.writeFileSync(configFile, `${lines.join('\n')}\n`);
    const proc = host.start(name, '/usr/bin/docker-registry', ['serve', configFile]);
    await proc.waitForLog(/"msg":"listening on/, 15_000);
    await host.waitForPort(port);
    return new OriginRegistry(host, port, proc, opts.credentials);
  }

  /** Every request the registry has answered so far. */
  requests(): RequestLogEntry[] {
    const entries: RequestLogEntry[] = [];
    for (const line of this.process.log().split('\n')) {
      if (!line.startsWith('{')) continue;
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (typeof rec.msg !== 'string' || !rec.msg.startsWith('response completed')) continue;
      entries.push({
        method: String(rec['http.request.method']),
        uri: String(rec['http.request.uri']),
        status: Number(rec['http.response.status']),
        bytes: Number(rec['http.response.written'] ?? 0),
        durationMs: parseGoDuration(typeof rec['http.response.duration'] === 'string' ? rec['http.response.duration'] : '0s'),
        client: String(rec['http.request.remoteaddr']).replace(/:\d+$/, ''),
        time: new Date(String(rec.time)),
      });
    }
    return entries;
  }

  /** Successful blob GETs (200/206), optionally only for one digest and/or after a mark. */
  blobGets(filter: { digest?: string; since?: number } = {}): RequestLogEntry[] {
    return this.requests()
      .slice(filter.since ?? 0)
      .filter((r) => r.method === 'GET' && (r.status === 200 || r.status === 206) && /\/blobs\/sha256:[0-9a-f]{64}/.test(r.uri))
      .filter((r) => filter.digest === undefined || r.uri.includes(filter.digest));
  }

  /** A position in the request log; pass to blobGets({since}) to see only later requests. */
  mark(): number {
    return this.requests().length;
  }

  /** GETs per blob digest since a mark. */
  blobGetCounts(since = 0): Map<string, number> {
    const counts = new Map<string, number>();
    for (const r of this.blobGets({ since })) {
      const digest = /sha256:[0-9a-f]{64}/.exec(r.uri)?.[0];
      if (digest) counts.set(digest, (counts.get(digest) ?? 0) + 1);
    }
    return counts;
  }

  /** Body bytes written for one blob since a mark (all GETs, ranged or not). */
  blobBytesFor(digest: string, since = 0): number {
    return this.blobGets({ since, digest }).reduce((n, r) => n + r.bytes, 0);
  }

  /**
   * Whether the blob left the origin exactly once since the mark: at least its size and less than
   * two copies, whatever the number of (range) requests. A seed peer may probe with a small
   * range and then fetch pieces as ranges, so request counts alone say little.
   */
  servedOnce(blob: { digest: string; size: number }, since = 0): boolean {
    const bytes = this.blobBytesFor(blob.digest, since);
    return bytes >= blob.size && bytes < 2 * blob.size;
  }

  /** The blobs that did not leave the origin exactly once, with bytes and clients (for messages). */
  notServedOnce(blobs: ReadonlyArray<{ digest: string; size: number }>, since = 0): Array<{ digest: string; size: number; originBytes: number; clients: string[] }> {
    return blobs
      .filter((b) => !this.servedOnce(b, since))
      .map((b) => ({
        digest: b.digest,
        size: b.size,
        originBytes: this.blobBytesFor(b.digest, since),
        clients: [...new Set(this.blobGets({ since, digest: b.digest }).map((r) => r.client))],
      }));
  }

  /** Body bytes the registry wrote for blob GETs since a mark. */
  blobBytes(since = 0): number {
    return this.blobGets({ since }).reduce((n, r) => n + r.bytes, 0);
  }
}

/** Parses Go's time.Duration String() output ("1.5ms", "2.1s", "1m3.2s", "850µs"). */
export function parseGoDuration(text: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, 'µs': 0.001, ns: 0.000001 };
  let ms = 0;
  for (const m of text.matchAll(/([\d.]+)(h|ms|m|s|us|µs|ns)/g)) ms += Number(m[1]) * (units[m[2] ?? 's'] ?? 0);
  return ms;
}
