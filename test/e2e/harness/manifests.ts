/**
 * Reading synthesized Kubernetes manifests (dist/*.k8s.yaml) as data: workloads with their pod
 * templates, ConfigMap files, Secret values and Service → workload routing. Only what the lab
 * needs to run the same programs with the same configs on netns hosts.
 */
import * as fs from 'node:fs';
import { parseAllDocuments } from 'yaml';

export interface K8sMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly labels?: Record<string, string>;
}

export interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: K8sMeta;
  readonly spec?: Record<string, unknown>;
  readonly data?: Record<string, string>;
  readonly stringData?: Record<string, string>;
}

export interface EnvVar {
  readonly name: string;
  readonly value?: string;
  readonly valueFrom?: {
    readonly secretKeyRef?: { readonly name: string; readonly key: string };
    readonly configMapKeyRef?: { readonly name: string; readonly key: string };
    readonly fieldRef?: { readonly fieldPath: string };
  };
}

export interface Container {
  readonly name: string;
  readonly image: string;
  readonly command?: string[];
  readonly args?: string[];
  readonly env?: EnvVar[];
  readonly volumeMounts?: Array<{ readonly name: string; readonly mountPath: string; readonly subPath?: string; readonly readOnly?: boolean }>;
  /** What the lab honours of it (image mode): a read-only root filesystem and dropped capabilities. */
  readonly securityContext?: { readonly readOnlyRootFilesystem?: boolean; readonly privileged?: boolean; readonly capabilities?: { readonly drop?: readonly string[] } };
}

export interface Volume {
  readonly name: string;
  readonly configMap?: { readonly name: string };
  readonly secret?: { readonly secretName: string };
  readonly hostPath?: { readonly path: string };
  readonly emptyDir?: Record<string, unknown>;
}

export interface PodSpec {
  readonly nodeSelector?: Record<string, string>;
  readonly hostNetwork?: boolean;
  readonly initContainers?: Container[];
  readonly containers: Container[];
  readonly volumes?: Volume[];
}

export interface Workload {
  readonly kind: 'Deployment' | 'StatefulSet' | 'DaemonSet' | 'Job';
  readonly name: string;
  readonly namespace: string;
  readonly replicas: number;
  readonly labels: Record<string, string>;
  readonly pod: PodSpec;
  /** StatefulSet volumeClaimTemplates names: each becomes a per-pod directory. */
  readonly claimNames: readonly string[];
}

export interface ServiceRoute {
  /** <name>.<namespace>.svc.cluster.local */
  readonly dns: string;
  readonly namespace: string;
  readonly name: string;
  readonly selector: Record<string, string>;
}

export class ManifestSet {
  constructor(private readonly all: K8sObject[]) {}

  get objects(): readonly K8sObject[] {
    return this.all;
  }

  /** `kubectl create secret generic`: a Secret the user makes, which the manifests reference but do not hold. */
  createSecret(namespace: string, name: string, stringData: Record<string, string>): void {
    if (this.all.some((o) => o.kind === 'Secret' && o.metadata.name === name && (o.metadata.namespace ?? 'default') === namespace)) {
      throw new Error(`Secret ${namespace}/${name} already exists`);
    }
    this.all.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, stringData });
  }

  has(kind: string, namespace: string, name: string): boolean {
    return this.all.some((x) => x.kind === kind && x.metadata.name === name && (x.metadata.namespace ?? 'default') === namespace);
  }

  static load(files: readonly string[]): ManifestSet {
    const objects: K8sObject[] = [];
    for (const file of files) {
      if (!fs.existsSync(file)) throw new Error(`manifest ${file} does not exist (run \`npm run synth\`)`);
      for (const doc of parseAllDocuments(fs.readFileSync(file, 'utf8'))) {
        if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message}`);
        const obj = doc.toJS() as K8sObject | null;
        if (obj && typeof obj.kind === 'string') objects.push(obj);
      }
    }
    return new ManifestSet(objects);
  }

  find(kind: string, namespace: string, name: string): K8sObject {
    const o = this.objects.find((x) => x.kind === kind && x.metadata.name === name && (x.metadata.namespace ?? 'default') === namespace);
    if (!o) throw new Error(`manifests have no ${kind} ${namespace}/${name}`);
    return o;
  }

  configMap(namespace: string, name: string): Record<string, string> {
    return this.find('ConfigMap', namespace, name).data ?? {};
  }

  secretValue(namespace: string, name: string, key: string): string {
    const s = this.find('Secret', namespace, name);
    const plain = s.stringData?.[key];
    if (plain !== undefined) return plain;
    const encoded = s.data?.[key];
    if (encoded === undefined) throw new Error(`Secret ${namespace}/${name} has no key ${key}`);
    return Buffer.from(encoded, 'base64').toString('utf8');
  }

  workloads(): Workload[] {
    const out: Workload[] = [];
    for (const o of this.objects) {
      if (o.kind !== 'Deployment' && o.kind !== 'StatefulSet' && o.kind !== 'DaemonSet' && o.kind !== 'Job') continue;
      const spec = o.spec ?? {};
      const template = spec.template as { metadata?: { labels?: Record<string, string> }; spec: PodSpec } | undefined;
      if (!template) throw new Error(`${o.kind} ${o.metadata.name} has no pod template`);
      const claims = (spec.volumeClaimTemplates as Array<{ metadata: { name: string } }> | undefined) ?? [];
      out.push({
        kind: o.kind,
        name: o.metadata.name,
        namespace: o.metadata.namespace ?? 'default',
        replicas: typeof spec.replicas === 'number' ? spec.replicas : 1,
        labels: template.metadata?.labels ?? {},
        pod: template.spec,
        claimNames: claims.map((c) => c.metadata.name),
      });
    }
    return out;
  }

  services(): ServiceRoute[] {
    return this.objects
      .filter((o) => o.kind === 'Service')
      .map((o) => {
        const namespace = o.metadata.namespace ?? 'default';
        const selector = ((o.spec ?? {}).selector as Record<string, string> | undefined) ?? {};
        return { dns: `${o.metadata.name}.${namespace}.svc.cluster.local`, namespace, name: o.metadata.name, selector };
      });
  }

  /** Workloads a Service selects (same namespace, template labels ⊇ selector). */
  backends(route: ServiceRoute): Workload[] {
    if (Object.keys(route.selector).length === 0) return [];
    return this.workloads().filter((w) => w.namespace === route.namespace && Object.entries(route.selector).every(([k, v]) => w.labels[k] === v));
  }
}

/** `dfmanager` → manager etc.; undefined for images that are not this project's programs. */
export function programOfCommand(command: readonly string[] | undefined): 'manager' | 'scheduler' | 'dfdaemon' | 'dfinit' | 'dfget' | undefined {
  const bin = command?.[0]?.split('/').pop();
  switch (bin) {
    case 'dfmanager':
      return 'manager';
    case 'dfscheduler':
      return 'scheduler';
    case 'dfdaemon':
      return 'dfdaemon';
    case 'dfinit':
      return 'dfinit';
    case 'dfget':
      return 'dfget';
    default:
      return undefined;
  }
}

/** The host:port pairs a busybox `until nslookup X && nc -vz X PORT` init container waits for. */
export function waitTargetsOf(container: Container): Array<{ host: string; port: number }> {
  const script = [...(container.command ?? []), ...(container.args ?? [])].join(' ');
  return [...script.matchAll(/nc\s+-vz(?:\s+-w\s+\d+)?\s+(\S+)\s+(\d+)/g)].map((m) => ({ host: m[1] ?? '', port: Number(m[2]) }));
}
