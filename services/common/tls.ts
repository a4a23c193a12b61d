/**
 * Mutual TLS for every program, from files: the topology's CA, this program's certificate and
 * key (`security.*` keys, see config/security.ts). One `TransportSecurity` per program hands out
 * gRPC server/channel credentials and HTTPS options built on the same material; the files are
 * re-read every `security.reloadInterval`, and a renewed, valid set is used for new connections
 * without a restart (an invalid one is logged and the old set kept).
 *
 * Identity: each certificate carries a URI SAN naming its component and cluster
 * (`spiffe://dragonfly/manager`, `spiffe://dragonfly/cluster/2/scheduler`). Peers and schedulers
 * are dialled by pod IP, which no certificate can list, so a client checks the chain (the CA)
 * and the role in that URI instead of a host name.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type * as https from 'node:https';
import { createSecureContext, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ConfigError, type ConfigProblem } from './config/load';
import type { SecurityConfig } from './config/security';
import { parseIdentityUri, type ComponentIdentity, type ComponentRole } from './identity';

export { COMPONENT_ROLES, identityUri, parseIdentityUri, type ComponentIdentity, type ComponentRole } from './identity';

/** Identities in a certificate's subjectAltName ("URI:spiffe://..., DNS:..."). */
export function identitiesOf(cert: Pick<PeerCertificate, 'subjectaltname'> | X509Certificate | undefined): ComponentIdentity[] {
  const san = cert instanceof X509Certificate ? cert.subjectAltName : cert?.subjectaltname;
  if (!san) return [];
  const out: ComponentIdentity[] = [];
  for (const part of san.split(/,\s*/)) {
    if (!part.startsWith('URI:')) continue;
    const id = parseIdentityUri(part.slice(4));
    if (id) out.push(id);
  }
  return out;
}

/** The caller's identities on a gRPC call (empty when the connection is plaintext). */
export function callerIdentities(call: { getAuthContext?: () => { sslPeerCertificate?: PeerCertificate } | null }): ComponentIdentity[] {
  return identitiesOf(call.getAuthContext?.()?.sslPeerCertificate);
}

interface TlsFiles {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly notAfter: Date;
  readonly identities: readonly ComponentIdentity[];
}

/**
 * Reads and checks the three files: each readable PEM, the key matching the certificate, the
 * certificate issued by the CA and valid now. Problems name the config key.
 */
export function readTlsFiles(settings: Pick<SecurityConfig, 'caCert' | 'cert' | 'key'>, keyPrefix = 'security', source = 'config', now = new Date()): TlsFiles {
  const problems: ConfigProblem[] = [];
  const bytes: Record<'caCert' | 'cert' | 'key', Buffer | undefined> = { caCert: undefined, cert: undefined, key: undefined };
  for (const k of ['caCert', 'cert', 'key'] as const) {
    const file = settings[k];
    if (!file) {
      problems.push({ path: `${keyPrefix}.${k}`, value: undefined, message: `required unless ${keyPrefix === 'security' ? 'security.insecure' : 'insecure'} is true (a PEM file path)` });
      continue;
    }
    try {
      bytes[k] = readFileSync(file);
    } catch (err) {
      problems.push({ path: `${keyPrefix}.${k}`, value: file, message: `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
    }
  }
  if (problems.length) throw new ConfigError(source, problems);
  const parse = (k: 'caCert' | 'cert'): X509Certificate | undefined => {
    try {
      return new X509Certificate(bytes[k]!);
    } catch (err) {
      problems.push({ path: `${keyPrefix}.${k}`, value: settings[k], message: `not a PEM certificate: ${(err as Error).message}` });
      return undefined;
    }
  };
  const ca = parse('caCert');
  const cert = parse('cert');
  let key;
  try {
    key = createPrivateKey(bytes.key!);
  } catch (err) {
    problems.push({ path: `${keyPrefix}.key`, value: settings.key, message: `not a PEM private key: ${(err as Error).message}` });
  }
  if (ca && !ca.ca) problems.push({ path: `${keyPrefix}.caCert`, value: settings.caCert, message: 'this certificate is not a CA (basicConstraints CA:FALSE); give the CA that issued the certificates' });
  if (cert && key && !cert.checkPrivateKey(key)) problems.push({ path: `${keyPrefix}.key`, value: settings.key, message: `does not belong to the certificate in ${keyPrefix}.cert` });
  if (cert && ca && !(cert.checkIssued(ca) && cert.verify(ca.publicKey))) {
    problems.push({ path: `${keyPrefix}.cert`, value: settings.cert, message: `not issued by the CA in ${keyPrefix}.caCert (issuer "${cert.issuer.replace(/\n/g, ', ')}")` });
  }
  if (cert) {
    const from = new Date(cert.validFrom);
    const to = new Date(cert.validTo);
    if (now < from) problems.push({ path: `${keyPrefix}.cert`, value: settings.cert, message: `not valid before ${from.toISOString()}` });
    if (now > to) problems.push({ path: `${keyPrefix}.cert`, value: settings.cert, message: `expired at ${to.toISOString()}` });
  }
  if (problems.length) throw new ConfigError(source, problems);
  return { ca: bytes.caCert!, cert: bytes.cert!, key: bytes.key!, notAfter: new Date(cert!.validTo), identities: identitiesOf(cert) };
}

type Listener<T> = (update: T | null) => void;

/**
 * The current CA/certificate/key, re-read on an interval. Implements grpc-js's
 * CertificateProvider, so gRPC credentials follow renewals; `onChange` serves HTTPS servers
 * and agents.
 */
export class TlsMaterial implements grpc.experimental.CertificateProvider {
  private files: TlsFiles;
  private readonly caListeners = new Set<Listener<grpc.experimental.CaCertificateUpdate>>();
  private readonly identityListeners = new Set<Listener<grpc.experimental.IdentityCertificateUpdate>>();
  private readonly changeListeners = new Set<() => void>();
  private readonly timer: NodeJS.Timeout;
  private lastRejected = '';

  constructor(
    private readonly settings: SecurityConfig,
    private readonly logger: Logger | undefined,
    private readonly keyPrefix = 'security',
    private readonly source = 'config',
  ) {
    this.files = readTlsFiles(settings, keyPrefix, source);
    this.timer = setInterval(() => this.reload(), Math.max(50, settings.reloadInterval));
    this.timer.unref();
  }

  get ca(): Buffer {
    return this.files.ca;
  }
  get cert(): Buffer {
    return this.files.cert;
  }
  get key(): Buffer {
    return this.files.key;
  }
  get notAfter(): Date {
    return this.files.notAfter;
  }
  get identities(): readonly ComponentIdentity[] {
    return this.files.identities;
  }

  /** Re-reads the files; true when a new valid set replaced the old one. */
  reload(): boolean {
    let next: TlsFiles;
    try {
      next = readTlsFiles(this.settings, this.keyPrefix, this.source);
    } catch (err) {
      const text = (err as Error).message;
      // Files mid-rotation are common and brief: say so once per distinct problem.
      if (text !== this.lastRejected) this.logger?.warn({ err: text }, 'renewed TLS files rejected; keeping the current certificate');
      this.lastRejected = text;
      return false;
    }
    this.lastRejected = '';
    if (next.ca.equals(this.files.ca) && next.cert.equals(this.files.cert) && next.key.equals(this.files.key)) return false;
    this.files = next;
    this.logger?.info({ cert: this.settings.cert, notAfter: next.notAfter.toISOString() }, 'TLS certificate reloaded');
    for (const l of this.caListeners) l({ caCertificate: next.ca });
    for (const l of this.identityListeners) l({ certificate: next.cert, privateKey: next.key });
    for (const l of this.changeListeners) l();
    return true;
  }

  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  // The first update is delivered on a microtask, as grpc-js's own file watcher does: its server
  // only starts listening for updates after adding these listeners, and would miss a synchronous one.
  addCaCertificateListener(listener: Listener<grpc.experimental.CaCertificateUpdate>): void {
    this.caListeners.add(listener);
    queueMicrotask(() => {
      if (this.caListeners.has(listener)) listener({ caCertificate: this.files.ca });
    });
  }
  removeCaCertificateListener(listener: Listener<grpc.experimental.CaCertificateUpdate>): void {
    this.caListeners.delete(listener);
  }
  addIdentityCertificateListener(listener: Listener<grpc.experimental.IdentityCertificateUpdate>): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => {
      if (this.identityListeners.has(listener)) listener({ certificate: this.files.cert, privateKey: this.files.key });
    });
  }
  removeIdentityCertificateListener(listener: Listener<grpc.experimental.IdentityCertificateUpdate>): void {
    this.identityListeners.delete(listener);
  }

  close(): void {
    clearInterval(this.timer);
    this.caListeners.clear();
    this.identityListeners.clear();
    this.changeListeners.clear();
  }
}

/**
 * A server certificate is acceptable when it chains to the CA (checked by TLS itself) and
 * names one of `roles`; the host name is not compared (peers are dialled by IP).
 */
export function roleCheck(roles: readonly ComponentRole[]): (hostname: string, cert: PeerCertificate) => Error | undefined {
  return (_hostname, cert) => {
    const ids = identitiesOf(cert);
    if (ids.some((id) => roles.includes(id.role))) return undefined;
    return new Error(`server certificate names no ${roles.join(' or ')} identity (subjectAltName: ${cert.subjectaltname ?? 'none'})`);
  };
}

/**
 * What one program uses to secure its connections: TLS material from files, or plaintext when
 * `security.insecure` is true.
 */
export class TransportSecurity {
  private readonly channelCredentialsByRoles = new Map<string, grpc.ChannelCredentials>();
  private serverCreds: grpc.ServerCredentials | undefined;

  private constructor(readonly material: TlsMaterial | undefined) {}

  /** Plaintext: only for tests of unrelated behaviour and for `insecure: true`. */
  static insecure(): TransportSecurity {
    return new TransportSecurity(undefined);
  }

  /**
   * Builds it from a program's `security` block: loads and checks the files (ConfigError naming
   * the keys) or, with `insecure: true`, warns that every connection is plaintext.
   */
  static fromConfig(settings: SecurityConfig, logger: Logger | undefined, program: string, keyPrefix = 'security'): TransportSecurity {
    if (settings.insecure) {
      logger?.warn(`${keyPrefix}.insecure is true: gRPC is plaintext and any client is accepted; use it only on a trusted network`);
      return new TransportSecurity(undefined);
    }
    return new TransportSecurity(new TlsMaterial(settings, logger, keyPrefix, `${program}.yaml`));
  }

  get enabled(): boolean {
    return this.material !== undefined;
  }

  /** Server credentials: a client certificate of the CA is required at the handshake. */
  serverCredentials(): grpc.ServerCredentials {
    if (!this.material) return grpc.ServerCredentials.createInsecure();
    this.serverCreds ??= grpc.experimental.createCertificateProviderServerCredentials(this.material, this.material, true);
    return this.serverCreds;
  }

  /** Channel credentials presenting our certificate and accepting servers of `roles`. */
  channelCredentials(roles: readonly ComponentRole[]): grpc.ChannelCredentials {
    if (!this.material) return grpc.credentials.createInsecure();
    const key = [...roles].sort().join(',');
    let creds = this.channelCredentialsByRoles.get(key);
    if (!creds) {
      creds = grpc.experimental.createCertificateProviderChannelCredentials(this.material, this.material, { checkServerIdentity: roleCheck(roles) });
      this.channelCredentialsByRoles.set(key, creds);
    }
    return creds;
  }

  /** https.Server options (client certificate required); undefined when plaintext. */
  httpsServerOptions(): https.ServerOptions | undefined {
    const m = this.material;
    if (!m) return undefined;
    return { ca: m.ca, cert: m.cert, key: m.key, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' };
  }

  /** Keeps an https.Server on the current files (setSecureContext on every reload). */
  followRenewals(server: { setSecureContext(options: https.ServerOptions): void }): () => void {
    const m = this.material;
    if (!m) return () => undefined;
    return m.onChange(() => server.setSecureContext({ ca: m.ca, cert: m.cert, key: m.key }));
  }

  /** tls.connect options presenting our certificate and accepting servers of `roles` (current files). */
  tlsClientOptions(roles: readonly ComponentRole[]): () => ConnectionOptions {
    const m = this.material;
    if (!m) throw new Error('tlsClientOptions needs TLS material (security.insecure is true)');
    const checkServerIdentity = roleCheck(roles);
    // One secure context per file set: building it per connection would parse the PEMs every time.
    const make = (): ConnectionOptions => ({ secureContext: createSecureContext({ ca: m.ca, cert: m.cert, key: m.key, minVersion: 'TLSv1.2' }), checkServerIdentity });
    let current = make();
    m.onChange(() => (current = make()));
    return () => current;
  }

  close(): void {
    this.material?.close();
  }
}
