/**
 * A throw-away CA and certificates made with the `openssl` command, for `npm start`, tests and
 * the e2e harness (which plays cert-manager). Production certificates come from cert-manager
 * (constructs/tls.ts). EC P-256 keys: quick to make and cheap in handshakes.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

export interface DevCa {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface DevCertRequest {
  /** Subject common name. */
  readonly commonName: string;
  readonly uris?: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  /** Validity in days; a negative number makes an already expired certificate (tests). */
  readonly days?: number;
}

export interface DevCert {
  readonly certFile: string;
  readonly keyFile: string;
}

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`openssl ${args[0]} failed: ${stderr || (err as Error).message}`, { cause: err });
  }
}

/** Makes a self-signed CA (`ca.crt`, `ca.key`) in `dir`. */
export function createDevCa(dir: string, commonName = 'dragonfly-dev-ca', days = 3650): DevCa {
  mkdirSync(dir, { recursive: true });
  const certFile = path.join(dir, 'ca.crt');
  const keyFile = path.join(dir, 'ca.key');
  openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', String(days), '-subj', `/CN=${commonName}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { certFile, keyFile };
}

let serial = Date.now();

/**
 * Issues a certificate for server and client use (mTLS) into `<dir>/<basename>.crt|.key`, or
 * `tls.crt`/`tls.key` when `basename` is empty (the cert-manager Secret's file names).
 */
export function issueDevCert(ca: DevCa, dir: string, req: DevCertRequest, basename = ''): DevCert {
  mkdirSync(dir, { recursive: true });
  const certFile = path.join(dir, basename ? `${basename}.crt` : 'tls.crt');
  const keyFile = path.join(dir, basename ? `${basename}.key` : 'tls.key');
  const csr = `${certFile}.csr`;
  const ext = `${certFile}.ext`;
  const san = [
    ...(req.uris ?? []).map((u) => `URI:${u}`),
    ...(req.dnsNames ?? []).map((d) => `DNS:${d}`),
    ...(req.ipAddresses ?? []).map((i) => `IP:${i}`),
  ];
  writeFileSync(
    ext,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      ...(san.length ? [`subjectAltName=${san.join(',')}`] : []),
      '',
    ].join('\n'),
  );
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', `/CN=${req.commonName}`]);
  openssl([
    'x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', `0x${(serial++).toString(16)}`,
    '-days', String(req.days ?? 365), '-extfile', ext, '-out', certFile,
  ]);
  return { certFile, keyFile };
}
