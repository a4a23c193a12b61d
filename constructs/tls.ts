/**
 * Mutual TLS for a topology, issued by cert-manager: one CA per topology (a self-signed root
 * where the CentralManager runs), a CA Issuer in every namespace that runs components, and one
 * Certificate per component whose Secret is mounted at TLS_DIR, where the component's
 * `security` keys point. The Issuer/Certificate classes come from `cdk8s import` of
 * cert-manager's CRDs (imports/cert-manager.io.ts).
 *
 * Another cluster trusts the same CA: its Issuer signs with the CA Secret named by
 * `caSecretName`, which the user copies there from the manager's namespace (docs/security.md).
 */
import { Chart } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { identityUri, type ComponentIdentity } from '../services/common/identity';
import type { WiredKey } from './_util';
import { Certificate, CertificateSpecPrivateKeyAlgorithm, CertificateSpecPrivateKeyRotationPolicy, CertificateSpecUsages, Issuer } from './imports/cert-manager.io';

/** Where each component's Certificate Secret (ca.crt, tls.crt, tls.key) is mounted. */
export const TLS_DIR = '/etc/dragonfly-tls';
/** Where the manager's REST certificate Secret is mounted (server.rest.tls). */
export const REST_TLS_DIR = '/etc/dragonfly-rest-tls';

/** mTLS of a topology's components (the `tls` prop of CentralManager, DragonflyCluster, RemoteCluster). */
export interface TlsProps {
  /**
   * mTLS between manager, schedulers and dfdaemons. false writes `security.insecure: true`
   * (plaintext; every program logs a warning) and creates no cert-manager objects.
   * @default true
   */
  readonly enabled?: boolean;
  /**
   * Secret holding the topology's CA (tls.crt, tls.key). Where the CentralManager runs it is
   * created by a self-signed root Certificate; in any other namespace the user copies it in
   * from there before applying (see docs/security.md).
   * @default "dragonfly-ca"
   */
  readonly caSecretName?: string;
  /**
   * Create the self-signed root CA in this namespace. Default: only where a CentralManager is.
   * @default - true for CentralManager, false elsewhere
   */
  readonly createCa?: boolean;
  /**
   * Lifetime of component certificates (cert-manager `duration`); programs re-read renewed
   * files without a restart.
   * @default "2160h" (90 days)
   */
  readonly duration?: string;
  /**
   * How long before expiry cert-manager renews (`renewBefore`).
   * @default "360h" (15 days)
   */
  readonly renewBefore?: string;
  /**
   * HTTPS with client certificates on the piece port between peers (`upload.tls.enable`).
   * Costs throughput (see docs/benchmarks.md); every peer of a cluster gets the same setting.
   * @default false
   */
  readonly pieceTls?: boolean;
}

const PKI_ID = 'DragonflyPki';
const DURATION = /^\d+(\.\d+)?(h|m|s)(\d+(\.\d+)?(m|s))*$/;

/**
 * The cert-manager objects of one namespace (one per chart): the CA Issuer, plus the self-signed
 * root when `createCa`. Components find it with `DragonflyPki.of(scope)`.
 */
export class DragonflyPki extends Construct {
  /** Creates the chart's PKI, or returns the one already there (its settings must agree). */
  static ensure(scope: Construct, props: TlsProps | undefined, createCaDefault: boolean): DragonflyPki {
    const chart = Chart.of(scope);
    const existing = chart.node.tryFindChild(PKI_ID) as DragonflyPki | undefined;
    const wanted = resolve(props, createCaDefault);
    if (existing) {
      for (const k of ['enabled', 'caSecretName', 'pieceTls'] as const) {
        if (props?.[k] !== undefined && existing.settings[k] !== wanted[k]) {
          throw new Error(`tls.${k} is ${JSON.stringify(wanted[k])} here but ${JSON.stringify(existing.settings[k])} for another construct of this chart; give every construct of one namespace the same tls prop`);
        }
      }
      // A CentralManager added after a DragonflyCluster of its chart still brings the root CA.
      if (wanted.createCa) existing.createRoot();
      return existing;
    }
    const pki = new DragonflyPki(chart, PKI_ID, wanted);
    if (wanted.createCa) pki.createRoot();
    return pki;
  }

  /** The chart's PKI, if a CentralManager / DragonflyCluster created one. */
  static of(scope: Construct): DragonflyPki | undefined {
    return Chart.of(scope).node.tryFindChild(PKI_ID) as DragonflyPki | undefined;
  }

  /** Name of the Issuer that signs component certificates. */
  readonly issuerName: string;
  private readonly clusters = new Map<string, number>();
  private rootCreated = false;

  private constructor(
    scope: Construct,
    id: string,
    readonly settings: Required<TlsProps>,
  ) {
    super(scope, id);
    this.issuerName = `${settings.caSecretName}-issuer`;
    if (settings.enabled) new Issuer(this, 'CaIssuer', { metadata: { name: this.issuerName }, spec: { ca: { secretName: settings.caSecretName } } });
  }

  /** The self-signed root: an Issuer and the CA Certificate whose Secret the CA Issuer signs with. */
  private createRoot(): void {
    const settings = this.settings;
    if (!settings.enabled || this.rootCreated) return;
    this.rootCreated = true;
    {
      const selfSigned = new Issuer(this, 'SelfSigned', { metadata: { name: `${settings.caSecretName}-selfsigned` }, spec: { selfSigned: {} } });
      new Certificate(this, 'Ca', {
        metadata: { name: settings.caSecretName },
        spec: {
          isCa: true,
          commonName: 'dragonfly-topology-ca',
          secretName: settings.caSecretName,
          duration: '87600h',
          privateKey: { algorithm: CertificateSpecPrivateKeyAlgorithm.ECDSA, size: 256 },
          issuerRef: { name: selfSigned.name, kind: 'Issuer', group: 'cert-manager.io' },
        },
      });
    }
  }

  /** Records the scheduler cluster id of a release, for its peers' certificate identity. */
  registerCluster(release: string, clusterId: number): void {
    this.clusters.set(release, clusterId);
  }

  clusterOf(release: string): number {
    const id = this.clusters.get(release);
    if (id === undefined) throw new Error(`no DragonflyCluster with release "${release}" in this chart registered its cluster id for TLS`);
    return id;
  }

  /** A Certificate for one component; its Secret holds ca.crt, tls.crt and tls.key. */
  certificate(scope: Construct, id: string, name: string, identity: ComponentIdentity | undefined, dnsNames: readonly string[]): string {
    new Certificate(scope, id, {
      metadata: { name },
      spec: {
        secretName: name,
        commonName: dnsNames[0] ?? name,
        dnsNames: [...dnsNames],
        ...(identity ? { uris: [identityUri(identity)] } : {}),
        duration: this.settings.duration,
        renewBefore: this.settings.renewBefore,
        usages: [CertificateSpecUsages.DIGITAL_SIGNATURE, CertificateSpecUsages.KEY_ENCIPHERMENT, CertificateSpecUsages.SERVER_AUTH, CertificateSpecUsages.CLIENT_AUTH],
        privateKey: { algorithm: CertificateSpecPrivateKeyAlgorithm.ECDSA, size: 256, rotationPolicy: CertificateSpecPrivateKeyRotationPolicy.ALWAYS },
        issuerRef: { name: this.issuerName, kind: 'Issuer', group: 'cert-manager.io' },
      },
    });
    return name;
  }
}

function resolve(props: TlsProps | undefined, createCaDefault: boolean): Required<TlsProps> {
  const s: Required<TlsProps> = {
    enabled: props?.enabled ?? true,
    caSecretName: props?.caSecretName ?? 'dragonfly-ca',
    createCa: props?.createCa ?? createCaDefault,
    duration: props?.duration ?? '2160h',
    renewBefore: props?.renewBefore ?? '360h',
    pieceTls: props?.pieceTls ?? false,
  };
  if (!/^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$/.test(s.caSecretName)) throw new Error(`tls.caSecretName "${s.caSecretName}" must be a lowercase DNS label (e.g. "dragonfly-ca")`);
  for (const k of ['duration', 'renewBefore'] as const) {
    if (!DURATION.test(s[k])) throw new Error(`tls.${k} "${s[k]}" must be a Go duration such as "2160h" or "360h"`);
  }
  if (s.pieceTls && !s.enabled) throw new Error('tls.pieceTls needs tls.enabled: piece HTTPS uses the component certificates');
  return s;
}

/** What a component construct adds for TLS: config keys, the Secret volume and its mount, probes. */
export interface ComponentTls {
  readonly enabled: boolean;
  readonly wired: WiredKey;
  readonly volumes: k8s.Volume[];
  readonly volumeMounts: k8s.VolumeMount[];
  /** With mTLS the kubelet's gRPC probe cannot connect: readiness comes from /healthy instead. */
  readinessProbe(metricsPort: number): Pick<k8s.Container, 'readinessProbe'>;
}

export interface ComponentTlsRequest {
  readonly release: string;
  /** `<release>-<component>`-named objects: manager, scheduler, seed-peer, dfdaemon. */
  readonly component: 'manager' | 'scheduler' | 'seed-peer' | 'dfdaemon';
  /** Scheduler cluster id (not for the manager); peers take their cluster's. */
  readonly clusterId?: number;
  /** The component's Service (or object) name; the certificate lists its in-cluster DNS names. */
  readonly serviceName: string;
}

/**
 * The component's certificate and config wiring. Without a PKI in the chart (or with
 * `tls.enabled: false`), plaintext with `security.insecure: true`.
 */
export function componentTls(scope: Construct, req: ComponentTlsRequest): ComponentTls {
  const pki = DragonflyPki.of(scope);
  if (!pki || !pki.settings.enabled) {
    return {
      enabled: false,
      wired: { prop: 'the tls prop (tls.enabled: false)', value: { security: { insecure: true } } },
      volumes: [],
      volumeMounts: [],
      readinessProbe: () => ({}),
    };
  }
  const role = req.component === 'dfdaemon' ? 'peer' : req.component;
  const identity: ComponentIdentity = role === 'manager' ? { role } : { role, clusterId: req.clusterId ?? pki.clusterOf(req.release) };
  const ns = Chart.of(scope).namespace;
  const dnsNames = ns ? [req.serviceName, `${req.serviceName}.${ns}`, `${req.serviceName}.${ns}.svc`, `${req.serviceName}.${ns}.svc.cluster.local`] : [req.serviceName];
  const secretName = pki.certificate(scope, 'Certificate', `${req.release}-${req.component}-tls`, identity, dnsNames);
  const pieceTls = pki.settings.pieceTls && (role === 'peer' || role === 'seed-peer');
  return {
    enabled: true,
    wired: {
      prop: `the tls prop (cert-manager Certificate ${secretName})`,
      value: {
        security: { caCert: `${TLS_DIR}/ca.crt`, cert: `${TLS_DIR}/tls.crt`, key: `${TLS_DIR}/tls.key` },
        ...(pieceTls ? { upload: { tls: { enable: true } } } : {}),
      },
    },
    volumes: [{ name: 'tls', secret: { secretName } }],
    volumeMounts: [{ name: 'tls', mountPath: TLS_DIR, readOnly: true }],
    readinessProbe: (metricsPort) => ({
      readinessProbe: { httpGet: { path: '/healthy', port: k8s.IntOrString.fromNumber(metricsPort) }, initialDelaySeconds: 10, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 2 },
    }),
  };
}

/**
 * HTTPS for the manager's REST API and console (`server.rest.tls`): a Certificate of the
 * topology's CA for the given names, mounted at REST_TLS_DIR. Browsers and the registration
 * Job must trust that CA.
 */
export function managerRestTls(scope: Construct, release: string, dnsNames: readonly string[]): Omit<ComponentTls, 'readinessProbe' | 'enabled'> {
  const pki = DragonflyPki.of(scope);
  if (!pki || !pki.settings.enabled) throw new Error('console.tls needs the manager\'s tls (tls.enabled): the REST certificate comes from the topology CA');
  const secretName = pki.certificate(scope, 'RestCertificate', `${release}-manager-rest-tls`, undefined, dnsNames);
  return {
    wired: { prop: `the console.tls prop (cert-manager Certificate ${secretName})`, value: { server: { rest: { tls: { cert: `${REST_TLS_DIR}/tls.crt`, key: `${REST_TLS_DIR}/tls.key` } } } } },
    volumes: [{ name: 'rest-tls', secret: { secretName } }],
    volumeMounts: [{ name: 'rest-tls', mountPath: REST_TLS_DIR, readOnly: true }],
  };
}
