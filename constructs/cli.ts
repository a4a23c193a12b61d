#!/usr/bin/env node
/**
 * `dragonfly-ts`: Helm chart values in, Kubernetes manifests or construct code out.
 *
 *   dragonfly-ts synth  --values cluster-a.yaml [--values cluster-b.yaml ...] [--namespace ns ...] [--output dir]
 *   dragonfly-ts import --values cluster-a.yaml [--values cluster-b.yaml ...] [--namespace ns ...] [--output file.ts]
 *
 * Both read the Go-era chart keys of the seed documents and the current chart's keys. A key
 * with no equivalent fails the run with its path; keys that are mapped with a caveat print a
 * warning on stderr. Every values file is read and checked before anything is written, and
 * each output file is written whole (temporary file, then rename) or not at all.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { App, Chart } from 'cdk8s';
import { parse } from 'yaml';
import { buildHelmTopology, helmValuesToTopology, type HelmTopology } from './helm-values';

const USAGE = `usage:
  dragonfly-ts synth  --values <file> [--values <file> ...] [--namespace <ns> ...] [--release <name>] [--output <dir>]
  dragonfly-ts import --values <file> [--values <file> ...] [--namespace <ns> ...] [--release <name>] [--output <file.ts>] [--module <name>]

  --values     Helm values file (Go-era seed keys or the current chart's keys); one output per file
  --namespace  namespace of the release: once for all files, or once per --values in the same order
               (default "dragonfly-system", the chart's documented namespace)
  --release    Helm release name (default "dragonfly")
  --output     synth: directory for <values name>.k8s.yaml (default "dist");
               import: the TypeScript file (default: standard output)
  --module     import: module the generated code imports the constructs from (default "@dragonfly-ts/constructs")`;

/** A usage mistake: exit code 2 with the usage text. */
export class UsageError extends Error {}

/** One values file, read and mapped to the constructs' props. */
export interface LoadedValues {
  /** Chart id and output name: the file name without .yaml/.yml. */
  readonly name: string;
  readonly file: string;
  readonly namespace: string;
  readonly topology: HelmTopology;
}

export interface CliOptions {
  readonly values: readonly string[];
  readonly namespaces?: readonly string[];
  readonly release?: string;
}

const DEFAULT_NAMESPACE = 'dragonfly-system';

/** Reads and maps every values file; throws (naming file and key) before anything is written. */
export function loadValues(options: CliOptions): LoadedValues[] {
  if (options.values.length === 0) throw new UsageError('give at least one --values <file>');
  const namespaces = options.namespaces ?? [];
  if (namespaces.length > 1 && namespaces.length !== options.values.length) {
    throw new UsageError(`${namespaces.length} --namespace for ${options.values.length} --values; give one for all, or one per values file in the same order`);
  }
  const seen = new Set<string>();
  return options.values.map((file, i) => {
    const name = basename(file).replace(/\.ya?ml$/i, '');
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)) {
      throw new UsageError(`values file "${file}": its name "${name}" becomes the chart and output file name; rename it to lowercase letters, digits and "-" (e.g. cluster-a.yaml)`);
    }
    if (seen.has(name)) throw new UsageError(`two values files are named ${name}; their outputs would overwrite each other, rename one`);
    seen.add(name);
    const namespace = namespaces.length === 0 ? DEFAULT_NAMESPACE : namespaces.length === 1 ? namespaces[0] : namespaces[i];
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) throw new UsageError(`--namespace "${namespace}" is not a Kubernetes namespace name (lowercase DNS label)`);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read values file ${file}: ${(err as Error).message}`, { cause: err });
    }
    let values: unknown;
    try {
      values = parse(text);
    } catch (err) {
      throw new Error(`${file} is not valid YAML: ${(err as Error).message}`, { cause: err });
    }
    try {
      const topology = helmValuesToTopology(values ?? {}, namespace, { release: options.release, strict: true });
      return { name, file, namespace, topology };
    } catch (err) {
      throw new Error(`${file}: ${(err as Error).message}`, { cause: err });
    }
  });
}

/** The manifests of one values file (multi-document YAML), built with the constructs. */
export function synthValues(loaded: LoadedValues): string {
  const app = new App({ outdir: 'unused' });
  const chart = new Chart(app, loaded.name, { namespace: loaded.namespace });
  try {
    buildHelmTopology(chart, loaded.topology);
    return app.synthYaml();
  } catch (err) {
    throw new Error(`${loaded.file}: ${(err as Error).message}`, { cause: err });
  }
}

/** Writes `text` to `file` whole: a temporary file in the same directory, then a rename. */
function writeWhole(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

function isIdentifier(key: string): boolean {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key);
}

/** A TypeScript literal of plain data (what the props are), indented like the rest of the file. */
export function tsLiteral(value: unknown, indent: string): string {
  const inner = `${indent}  `;
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => `${inner}${tsLiteral(v, inner)},`).join('\n')}\n${indent}]`;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    return `{\n${entries.map(([k, v]) => `${inner}${isIdentifier(k) ? k : tsLiteral(k, inner)}: ${tsLiteral(v, inner)},`).join('\n')}\n${indent}}`;
  }
  throw new Error(`cannot write ${typeof value} as a TypeScript literal`);
}

function functionName(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase()).replace(/^(\d)/, '_$1');
}

/** TypeScript that builds the same charts with the constructs (from then on the topology is code). */
export function importValues(loaded: readonly LoadedValues[], module = '@dragonfly-ts/constructs'): string {
  const kinds = new Set<string>();
  const functions = loaded.map((l) => {
    const lines: string[] = [];
    lines.push(`/** From ${basename(l.file)}: the release in namespace ${l.namespace}. */`);
    lines.push(`export function ${functionName(l.name)}(app: App): Chart {`);
    lines.push(`  const chart = new Chart(app, '${l.name}', { namespace: '${l.namespace}' });`);
    const { kind, props } = l.topology.cluster;
    kinds.add(kind);
    let clusterProps: Record<string, unknown> = { ...props };
    if (l.topology.manager) {
      kinds.add('CentralManager');
      lines.push(`  const manager = new CentralManager(chart, 'manager', ${tsLiteral(l.topology.manager, '  ')});`);
      // The cluster reaches the manager (and its Redis) through the manager construct.
      clusterProps = Object.fromEntries(Object.entries(clusterProps).filter(([k]) => k !== 'manager' && k !== 'jobRedis'));
      const literal = tsLiteral(clusterProps, '  ');
      const wiring = `    manager: manager.endpoint,\n${kind === 'DragonflyCluster' ? '    jobRedis: manager.jobRedis,\n' : ''}`;
      lines.push(`  new ${kind}(chart, 'dragonfly', ${literal === '{}' ? `{\n${wiring}  }` : literal.replace(/\n {2}\}$/, `\n${wiring}  }`)});`);
    } else {
      lines.push(`  new ${kind}(chart, 'dragonfly', ${tsLiteral(clusterProps, '  ')});`);
    }
    lines.push('  return chart;');
    lines.push('}');
    return lines.join('\n');
  });
  const files = loaded.map((l) => basename(l.file)).join(', ');
  return [
    `// Written by \`dragonfly-ts import\` from ${files}. From here on the topology is code: edit it and`,
    '// synthesize with `npx cdk8s synth` (or run this file).',
    "import { App, Chart } from 'cdk8s';",
    `import { ${[...kinds].sort().join(', ')} } from '${module}';`,
    '',
    ...functions.flatMap((f) => [f, '']),
    '/** Every chart above, in one app. */',
    'export function build(app: App): void {',
    ...loaded.map((l) => `  ${functionName(l.name)}(app);`),
    '}',
    '',
    'if (require.main === module) {',
    '  const app = new App();',
    '  build(app);',
    '  app.synth();',
    '}',
    '',
  ].join('\n');
}

function warnings(loaded: readonly LoadedValues[]): string[] {
  return loaded.flatMap((l) => l.topology.unmapped.map((u) => `warning: ${l.file}: key "${u.key}": ${u.reason}`));
}

/** Runs the CLI; returns the exit code (0 done, 1 bad input, 2 usage). */
export function main(argv: readonly string[], io: { out: (s: string) => void; err: (s: string) => void } = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }): number {
  const [command, ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    io.out(`${USAGE}\n`);
    return 0;
  }
  try {
    if (command !== 'synth' && command !== 'import') throw new UsageError(command ? `unknown command "${command}"` : 'give a command: synth or import');
    let parsed;
    try {
      parsed = parseArgs({
        args: [...rest],
        options: {
          values: { type: 'string', multiple: true },
          namespace: { type: 'string', multiple: true },
          release: { type: 'string' },
          output: { type: 'string' },
          module: { type: 'string' },
        },
        strict: true,
        allowPositionals: false,
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const { values = [], namespace, release, output, module } = parsed.values;
    if (command === 'synth' && module !== undefined) throw new UsageError('--module is an import option');
    const loaded = loadValues({ values, namespaces: namespace, release });
    if (command === 'synth') {
      // Synthesize everything first: a failure leaves no partial output behind.
      const manifests = loaded.map((l) => ({ file: join(resolve(output ?? 'dist'), `${l.name}.k8s.yaml`), text: synthValues(l) }));
      for (const w of warnings(loaded)) io.err(`${w}\n`);
      for (const m of manifests) {
        writeWhole(m.file, m.text);
        io.err(`wrote ${m.file}\n`);
      }
    } else {
      for (const l of loaded) synthValues(l); // the props must build before they are printed as code
      const code = importValues(loaded, module);
      for (const w of warnings(loaded)) io.err(`${w}\n`);
      if (output) {
        writeWhole(resolve(output), code);
        io.err(`wrote ${resolve(output)}\n`);
      } else {
        io.out(code);
      }
    }
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`dragonfly-ts: ${err.message}\n${USAGE}\n`);
      return 2;
    }
    io.err(`dragonfly-ts: ${(err as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}
