/** Shared helpers for the construct tests: synthesis, lookup, Kubernetes schema validation. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Chart, Testing } from 'cdk8s';
import Ajv from 'ajv';
import { parse, parseAllDocuments } from 'yaml';
import * as apps from 'kubernetes-models/apps/v1';
import * as batch from 'kubernetes-models/batch/v1';
import * as core from 'kubernetes-models/v1';
import * as networking from 'kubernetes-models/networking.k8s.io/v1';
import * as policy from 'kubernetes-models/policy/v1';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  // The synthesized manifests are plain JSON; tests walk them with typed accessors below.
  [key: string]: unknown;
}

export function synth(chart: Chart): KubeObject[] {
  return Testing.synth(chart) as KubeObject[];
}

export function findObject(objects: readonly KubeObject[], kind: string, name: string): KubeObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} named ${name} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}

export function fixture(name: string): unknown {
  return parse(readFileSync(join(__dirname, 'fixtures', name), 'utf8'));
}

export function newChart(id: string, namespace: string): { app: App; chart: Chart } {
  const app = Testing.app();
  return { app, chart: new Chart(app, id, { namespace }) };
}

// Model classes by apiVersion and kind; each validates against the JSON schema generated from
// the Kubernetes OpenAPI spec (kubernetes-models 4.4.2, Kubernetes 1.27.1 — every field of
// the GA APIs used here exists unchanged in 1.28).
type ModelClass = new (data: object) => { validate(): void };
const MODELS: Record<string, Record<string, unknown>> = {
  v1: core,
  'apps/v1': apps,
  'batch/v1': batch,
  'networking.k8s.io/v1': networking,
  'policy/v1': policy,
};

// cert-manager objects validate against the openAPIV3Schema of the CRDs the constructs' classes
// were imported from (constructs/imports/crds), as the API server would.
interface Crd {
  spec: { group: string; names: { kind: string }; versions: Array<{ name: string; schema: { openAPIV3Schema: object } }> };
}
let crdValidators: Map<string, Ajv.ValidateFunction> | undefined;
function crdValidator(apiVersion: string, kind: string): Ajv.ValidateFunction | undefined {
  if (!crdValidators) {
    crdValidators = new Map();
    const ajv = new Ajv({ allErrors: true, unknownFormats: 'ignore' });
    const text = readFileSync(join(__dirname, '..', '..', '..', 'constructs', 'imports', 'crds', 'cert-manager.yaml'), 'utf8');
    for (const doc of parseAllDocuments(text)) {
      const crd = doc.toJS() as Crd | null;
      if (!crd) continue;
      for (const v of crd.spec.versions) crdValidators.set(`${crd.spec.group}/${v.name} ${crd.spec.names.kind}`, ajv.compile(v.schema.openAPIV3Schema));
    }
  }
  return crdValidators.get(`${apiVersion} ${kind}`);
}

/** Validates one object with the Kubernetes API schema; returns the error text or undefined. */
export function schemaError(obj: KubeObject): string | undefined {
  const crd = crdValidator(obj.apiVersion, obj.kind);
  if (crd) return crd(obj) ? undefined : `${obj.kind}/${obj.metadata.name}: ${JSON.stringify(crd.errors)}`;
  const group = MODELS[obj.apiVersion];
  const Model = group?.[obj.kind] as ModelClass | undefined;
  if (!Model) return `no schema for ${obj.apiVersion} ${obj.kind}`;
  try {
    new Model(obj).validate();
    return undefined;
  } catch (err) {
    return `${obj.kind}/${obj.metadata.name}: ${(err as Error).message}`;
  }
}

/** Pod template spec of a workload (Deployment, StatefulSet, DaemonSet, Job). */
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: { name: string; configMap?: { name: string }; secret?: { secretName: string }; hostPath?: { path: string } }[];
  nodeSelector?: Record<string, string>;
  hostNetwork?: boolean;
  dnsPolicy?: string;
  serviceAccountName?: string;
}
export interface Container {
  name: string;
  image: string;
  command?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } } }[];
  ports?: { name?: string; containerPort: number; hostPort?: number }[];
  volumeMounts?: { name: string; mountPath: string }[];
  readinessProbe?: { grpc?: { port: number }; httpGet?: { path: string; port: number } };
  livenessProbe?: { grpc?: { port: number }; httpGet?: { path: string; port: number } };
}

export const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'];

export function podTemplate(obj: KubeObject): { labels: Record<string, string>; spec: PodSpec } {
  const spec = obj.spec as { template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
  return { labels: spec.template.metadata.labels ?? {}, spec: spec.template.spec };
}

export function configMapData(obj: KubeObject): Record<string, string> {
  return (obj.data ?? {}) as Record<string, string>;
}
