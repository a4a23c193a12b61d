/**
 * Internal helpers shared by the constructs: config rendering and validation, labels,
 * probes, wait-for init containers and small Kubernetes building blocks.
 */
import { Chart } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import { stringify } from 'yaml';
import { ConfigError, ENV_PREFIX, parseConfig, type ConfigInputOf, type ProgramName } from '../services/common/config';

/** Plain JSON-ish object used while merging configs. */
export type PlainObject = Record<string, unknown>;

function isPlainObject(value: unknown): value is PlainObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep merge: objects merge key by key, everything else (arrays included) is replaced by `over`. */
export function deepMerge(base: PlainObject, over: PlainObject): PlainObject {
  const out: PlainObject = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function leafPaths(obj: PlainObject, prefix: string[] = []): string[][] {
  const paths: string[][] = [];
  for (const [key, value] of Object.entries(obj)) {
    if (value === undefined) continue;
    if (isPlainObject(value) && Object.keys(value).length > 0) paths.push(...leafPaths(value, [...prefix, key]));
    else paths.push([...prefix, key]);
  }
  return paths;
}

function valueAt(obj: unknown, path: readonly string[]): unknown {
  let cur = obj;
  for (const key of path) {
    if (!isPlainObject(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}

/** A config key the construct sets itself, and the prop that controls it. */
export interface WiredKey {
  readonly value: PlainObject;
  /** Human name of the prop that sets these keys, for error messages. */
  readonly prop: string;
}

/**
 * Renders a program's config: the user's `config` prop merged under the keys the construct
 * wires (manager address, cluster id, ports...). A user key that contradicts a wired key
 * is an error naming the prop to use instead, so nothing is silently overridden. The result
 * is validated with the program's own schema; a bad key fails construction with the key path.
 */
export function renderConfig<P extends ProgramName>(
  program: P,
  component: string,
  user: ConfigInputOf<P> | undefined,
  wired: readonly WiredKey[],
): { readonly input: PlainObject; readonly yaml: string } {
  const userObj: PlainObject = isPlainObject(user) ? (structuredClone(user)) : {};
  let merged = userObj;
  for (const w of wired) {
    for (const path of leafPaths(w.value)) {
      const mine = valueAt(w.value, path);
      const theirs = valueAt(userObj, path);
      if (theirs !== undefined && JSON.stringify(theirs) !== JSON.stringify(mine)) {
        throw new Error(
          `${component} config key "${path.join('.')}" is ${JSON.stringify(theirs)} but the construct sets it to ${JSON.stringify(mine)} from ${w.prop}; ` +
            `remove the key from the config prop or change ${w.prop}`,
        );
      }
    }
    merged = deepMerge(merged, w.value);
  }
  try {
    parseConfig(program, merged, `${component} config`);
  } catch (err) {
    if (err instanceof ConfigError) {
      throw new Error(`${component} config is invalid; fix these keys in the config prop:\n${err.message}`, { cause: err });
    }
    throw err;
  }
  return { input: merged, yaml: stringify(merged, { lineWidth: 0 }) };
}

/** Namespace of the chart a construct lives in; DNS names other pods use are built from it. */
export function namespaceOf(scope: Construct, what: string): string {
  const ns = Chart.of(scope).namespace;
  if (!ns) {
    throw new Error(`${what} needs a namespace to build DNS names; create its chart with new Chart(app, id, { namespace: 'dragonfly-system' })`);
  }
  return ns;
}

/** Labels the Helm chart uses (app/release/component), so the seed's extra Services select the same pods. */
export function componentLabels(release: string, component: string): Record<string, string> {
  return { app: 'dragonfly', release, component };
}

/** The 8-hex suffix used to make Job names change when their input changes. */
export function shortHash(text: string): string {
  // FNV-1a 32-bit: stable across Node versions and enough to tell two specs apart in a name.
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

export const CONFIG_DIR = '/etc/dragonfly';

/** Container env that sets a config key from the downward API (`<PREFIX>__a__b`). */
export function envFromField(program: ProgramName, keyPath: readonly string[], fieldPath: string): k8s.EnvVar {
  return { name: `${ENV_PREFIX[program]}__${keyPath.join('__')}`, valueFrom: { fieldRef: { fieldPath } } };
}

/** Container env that sets a config key from a Secret key. */
export function envFromSecret(program: ProgramName, keyPath: readonly string[], secret: SecretKeyRef): k8s.EnvVar {
  return { name: `${ENV_PREFIX[program]}__${keyPath.join('__')}`, valueFrom: { secretKeyRef: { name: secret.name, key: secret.key } } };
}

/** A key in a Secret. */
export interface SecretKeyRef {
  /** Secret name (same namespace as the workload). */
  readonly name: string;
  /** Key inside the Secret. */
  readonly key: string;
}

export const BUSYBOX_IMAGE = 'busybox:1.36';

/** Init container that loops until `host` resolves and `port` accepts TCP (the chart's wait-for-*). */
export function waitFor(name: string, host: string, port: number): k8s.Container {
  return {
    name: `wait-for-${name}`,
    image: BUSYBOX_IMAGE,
    imagePullPolicy: 'IfNotPresent',
    command: ['sh', '-c', `until nslookup ${host} && nc -vz -w 3 ${host} ${port}; do echo waiting for ${name}; sleep 2; done`],
    resources: { limits: { cpu: k8s.Quantity.fromString('100m'), memory: k8s.Quantity.fromString('64Mi') } },
    // nslookup and nc need no privilege and write nothing.
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 65534,
      runAsGroup: 65534,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    },
  };
}

/** Builds a Service; `selector` must be the pod labels of the workload it fronts. */
export function service(
  scope: Construct,
  id: string,
  name: string,
  labels: Record<string, string>,
  ports: readonly { name: string; port: number; nodePort?: number }[],
  type: 'ClusterIP' | 'NodePort' = 'ClusterIP',
): k8s.KubeService {
  return new k8s.KubeService(scope, id, {
    metadata: { name, labels },
    spec: {
      type,
      selector: labels,
      ports: ports.map((p) => ({
        name: p.name,
        port: p.port,
        targetPort: k8s.IntOrString.fromNumber(p.port),
        protocol: 'TCP',
        ...(p.nodePort !== undefined ? { nodePort: p.nodePort } : {}),
      })),
    },
  });
}

export function serviceAccount(scope: Construct, id: string, name: string, labels: Record<string, string>): k8s.KubeServiceAccount {
  return new k8s.KubeServiceAccount(scope, id, { metadata: { name, labels }, automountServiceAccountToken: false });
}

/** Throws when a port is not a usable TCP port (1..65535). */
export function assertPort(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new Error(`${what} must be a port in 1..65535 (got ${value}); pick a fixed port, Kubernetes cannot use 0 (free port) here`);
  }
}

/** Throws when `labels` is not a valid nodeSelector map. */
export function assertNodeSelector(labels: Readonly<Record<string, string>> | undefined, what: string): void {
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (!/^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(key)) {
      throw new Error(`${what} label key "${key}" is not a valid Kubernetes label key; use e.g. "cluster" or "example.com/pool"`);
    }
    if (!/^(|[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$/.test(value)) {
      throw new Error(`${what} label "${key}" has value "${value}", which is not a valid label value; use letters, digits, "-", "_" or "."`);
    }
  }
}

/** Throws when a Secret reference is not a valid Secret name plus key. */
export function assertSecretKeyRef(ref: SecretKeyRef | undefined, what: string): void {
  if (!ref || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(ref.name ?? '')) {
    throw new Error(`${what}.name ${JSON.stringify(ref?.name)} is not a Secret name; use lowercase letters, digits, "-" and ".", e.g. "dragonfly-root-password"`);
  }
  if (!/^[-._a-zA-Z0-9]{1,253}$/.test(ref.key ?? '')) throw new Error(`${what}.key ${JSON.stringify(ref.key)} is not a Secret key; use letters, digits, "-", "_" or ".", e.g. "password"`);
}
