/**
 * The lab plays cert-manager: for the manifests' Issuers and Certificates it makes the CA and
 * the certificates with openssl and adds the Secrets cert-manager would write (ca.crt, tls.crt,
 * tls.key), so the pods mount them exactly as in a cluster. A CA Issuer whose CA Secret no
 * Certificate of its namespace creates gets the same-named CA Secret of another namespace: the
 * copy docs/security.md asks the user to make for a remote cluster.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createDevCa, issueDevCert, type DevCa } from '../../../services/common/dev-pki';
import { ManifestSet, type K8sObject } from './manifests';

interface CertificateSpec {
  readonly secretName: string;
  readonly isCA?: boolean;
  readonly commonName?: string;
  readonly dnsNames?: string[];
  readonly uris?: string[];
  readonly ipAddresses?: string[];
  readonly duration?: string;
  readonly issuerRef: { readonly name: string; readonly kind?: string };
}

interface IssuerSpec {
  readonly selfSigned?: Record<string, never>;
  readonly ca?: { readonly secretName: string };
}

export interface IssuedCertificates {
  readonly manifests: ManifestSet;
  /** Secrets written, "namespace/name", with how each came to be. */
  readonly secrets: ReadonlyArray<{ readonly secret: string; readonly how: string }>;
}

const ns = (o: K8sObject) => o.metadata.namespace ?? 'default';

function days(duration: string | undefined): number {
  const h = /^(\d+)h$/.exec(duration ?? '');
  return h ? Math.max(1, Math.ceil(Number(h[1]) / 24)) : 90;
}

function secretObject(namespace: string, name: string, files: Record<string, string>): K8sObject {
  const data = Object.fromEntries(Object.entries(files).map(([k, f]) => [k, fs.readFileSync(f).toString('base64')]));
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, data };
}

/** Issues every Certificate of `manifests` into `dir` and returns the manifests plus their Secrets. */
export function issueCertificates(manifests: ManifestSet, dir: string): IssuedCertificates {
  const issuers = manifests.objects.filter((o) => o.kind === 'Issuer' && o.apiVersion.startsWith('cert-manager.io/'));
  const certificates = manifests.objects.filter((o) => o.kind === 'Certificate' && o.apiVersion.startsWith('cert-manager.io/'));
  const issuerOf = (o: K8sObject) => {
    const spec = o.spec as unknown as CertificateSpec;
    if (spec.issuerRef.kind && spec.issuerRef.kind !== 'Issuer') throw new Error(`Certificate ${ns(o)}/${o.metadata.name}: the lab plays only namespaced Issuers, not ${spec.issuerRef.kind}`);
    const issuer = issuers.find((i) => ns(i) === ns(o) && i.metadata.name === spec.issuerRef.name);
    if (!issuer) throw new Error(`Certificate ${ns(o)}/${o.metadata.name} names Issuer ${spec.issuerRef.name}, which the manifests do not have`);
    return issuer.spec as unknown as IssuerSpec;
  };
  const added: K8sObject[] = [];
  const secrets: Array<{ secret: string; how: string }> = [];
  const cas = new Map<string, DevCa>();

  // Roots: CA Certificates of a self-signed Issuer.
  for (const c of certificates) {
    const spec = c.spec as unknown as CertificateSpec;
    if (!spec.isCA) continue;
    if (!issuerOf(c).selfSigned) throw new Error(`CA Certificate ${ns(c)}/${c.metadata.name}: only self-signed roots are played by the lab`);
    const ca = createDevCa(path.join(dir, ns(c), spec.secretName), spec.commonName ?? spec.secretName, days(spec.duration));
    cas.set(`${ns(c)}/${spec.secretName}`, ca);
    added.push(secretObject(ns(c), spec.secretName, { 'tls.crt': ca.certFile, 'tls.key': ca.keyFile, 'ca.crt': ca.certFile }));
    secrets.push({ secret: `${ns(c)}/${spec.secretName}`, how: `self-signed root of Certificate ${c.metadata.name}` });
  }
  // CA Issuers: their Secret from this namespace, else the user's copy from another one.
  const caOf = (namespace: string, secretName: string): DevCa => {
    const own = cas.get(`${namespace}/${secretName}`);
    if (own) return own;
    const source = [...cas.entries()].find(([key]) => key.endsWith(`/${secretName}`));
    if (!source) throw new Error(`Issuer in ${namespace} signs with Secret ${secretName}, which no CA Certificate of the manifests creates`);
    cas.set(`${namespace}/${secretName}`, source[1]);
    added.push(secretObject(namespace, secretName, { 'tls.crt': source[1].certFile, 'tls.key': source[1].keyFile, 'ca.crt': source[1].certFile }));
    secrets.push({ secret: `${namespace}/${secretName}`, how: `copied from ${source[0]} (the user's step for a remote cluster)` });
    return source[1];
  };
  for (const c of certificates) {
    const spec = c.spec as unknown as CertificateSpec;
    if (spec.isCA) continue;
    const issuer = issuerOf(c);
    if (!issuer.ca) throw new Error(`Certificate ${ns(c)}/${c.metadata.name}: its Issuer is not a CA Issuer`);
    const ca = caOf(ns(c), issuer.ca.secretName);
    const leaf = issueDevCert(ca, path.join(dir, ns(c), spec.secretName), {
      commonName: spec.commonName ?? spec.dnsNames?.[0] ?? c.metadata.name,
      uris: spec.uris,
      dnsNames: spec.dnsNames,
      ipAddresses: spec.ipAddresses,
      days: days(spec.duration),
    });
    added.push(secretObject(ns(c), spec.secretName, { 'ca.crt': ca.certFile, 'tls.crt': leaf.certFile, 'tls.key': leaf.keyFile }));
    secrets.push({ secret: `${ns(c)}/${spec.secretName}`, how: `Certificate ${c.metadata.name} signed by ${issuer.ca.secretName}` });
  }
  return { manifests: new ManifestSet([...manifests.objects, ...added]), secrets };
}
