/**
 * dfinit's containerd rewrite: one `<config_path>/<host>/hosts.toml` per registry that
 * sends pulls to the local dfdaemon proxy first and falls back to the origin, plus
 * `config_path` in containerd's config.toml when it is missing. Everything written is
 * marked and recorded in a state file beside config.toml, so a re-run changes nothing and
 * `--uninstall` removes exactly what dfinit wrote (restoring any file it replaced).
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import type { DfinitConfig } from '../common/config/dfinit';
import { readIfExists, type FileChange } from './files';

export const MARKER = '# Managed by dfinit (Dragonfly). `dfinit --uninstall` removes this file; change dfinit.yaml instead of editing it.';
const CONFIG_PATH_COMMENT = '# added by dfinit';
export const STATE_FILE_NAME = '.dfinit-state.json';

export class DfinitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DfinitError';
  }
}

interface TrackedFile {
  readonly path: string;
  /** A user's file that replaceExisting overwrote: put back on uninstall. */
  readonly backup?: string;
  /** dfinit created the host directory, so uninstall may remove it when empty. */
  readonly createdDir: boolean;
}

export interface DfinitState {
  readonly version: 1;
  readonly configToml: string;
  readonly configPath: string;
  /** The exact text dfinit put into config.toml (removed verbatim on uninstall). */
  readonly addedConfigPath?: { readonly inserted: string; readonly createdFile: boolean };
  readonly files: readonly TrackedFile[];
}

export interface Plan {
  readonly configPath: string;
  /** In the order they must be applied; the state file comes first so a crash never loses track. */
  readonly changes: readonly FileChange[];
  readonly notes: readonly string[];
  /** containerd has to restart to read a config.toml change. */
  readonly restartNeeded: boolean;
  /** Directories dfinit created, removable once empty. */
  readonly pruneDirs: ReadonlySet<string>;
}

export function statePathOf(config: DfinitConfig): string {
  return path.join(path.dirname(config.containerRuntime.containerd.configPath), STATE_FILE_NAME);
}

/** The CRI plugin that owns registry settings for a config.toml `version`. */
export function criPluginFor(version: number): string {
  return version >= 3 ? 'io.containerd.cri.v1.images' : 'io.containerd.grpc.v1.cri';
}

/** containerd 1.6+ hosts.toml: the proxy first (pull/resolve), then `server` (the origin) as fallback. */
export function renderHostsToml(proxyAddr: string, registry: DfinitConfig['containerRuntime']['containerd']['registries'][number]): string {
  const proxy = proxyAddr.replace(/\/+$/, '');
  const server = registry.serverAddr.replace(/\/+$/, '');
  const lines = [MARKER, `server = ${tomlString(server)}`];
  if (registry.skipVerify) lines.push('skip_verify = true');
  lines.push(
    '',
    `[host.${tomlString(proxy)}]`,
    `  capabilities = [${registry.capabilities.map(tomlString).join(', ')}]`,
    '',
    `[host.${tomlString(proxy)}.header]`,
    `  X-Dragonfly-Registry = ${tomlString(server)}`,
    '',
  );
  return lines.join('\n');
}

function tomlString(s: string): string {
  return JSON.stringify(s);
}

type TomlTable = Record<string, unknown>;

function parseTomlFile(text: string, file: string): TomlTable {
  try {
    return parseToml(text);
  } catch (err) {
    throw new DfinitError(`cannot parse ${file}: ${(err as Error).message.split('\n')[0]}`);
  }
}

function tableAt(root: TomlTable, keys: readonly string[]): TomlTable | undefined {
  let cur: unknown = root;
  for (const k of keys) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as TomlTable)[k];
  }
  return cur !== null && typeof cur === 'object' && !Array.isArray(cur) ? (cur as TomlTable) : undefined;
}

/** Splits a TOML table header's key ("plugins.\"io.containerd.grpc.v1.cri\".registry") into its parts. */
export function parseKeyPath(text: string): string[] | undefined {
  const parts: string[] = [];
  const re = /\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*(\.|$)/y;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) return undefined;
    parts.push(m[1] !== undefined ? (JSON.parse(`"${m[1]}"`) as string) : (m[2] ?? m[3]));
    pos = re.lastIndex;
    if (m[4] === '') break;
  }
  return parts;
}

/** Adds `config_path` under the CRI registry table, as a line in an existing header or an appended table. */
function insertConfigPath(text: string, plugin: string, configPath: string): { text: string; inserted: string } {
  const line = `  config_path = ${tomlString(configPath)} ${CONFIG_PATH_COMMENT}\n`;
  const want = ['plugins', plugin, 'registry'];
  const lines = text.split('\n');
  let offset = 0;
  for (const l of lines) {
    const header = /^\s*\[([^[\]]+)\]\s*(#.*)?$/.exec(l);
    const keys = header ? parseKeyPath(header[1]) : undefined;
    offset += l.length + 1;
    if (keys && keys.length === want.length && keys.every((k, i) => k === want[i])) {
      const at = Math.min(offset, text.length);
      const prefix = at === text.length && !text.endsWith('\n') ? '\n' : '';
      return { text: text.slice(0, at) + prefix + line + text.slice(at), inserted: prefix + line };
    }
  }
  const sep = text === '' ? '' : text.endsWith('\n') ? '\n' : '\n\n';
  const block = `${sep}${CONFIG_PATH_COMMENT}\n[plugins.${tomlString(plugin)}.registry]\n${line}`;
  return { text: text + block, inserted: block };
}

async function readState(file: string): Promise<DfinitState | undefined> {
  const text = await readIfExists(file);
  if (text === null) return undefined;
  try {
    const state = JSON.parse(text) as DfinitState;
    if (state.version !== 1 || !Array.isArray(state.files)) throw new Error('unknown format');
    return state;
  } catch (err) {
    throw new DfinitError(`cannot read dfinit's record ${file}: ${(err as Error).message}; remove it by hand if it is stale`);
  }
}

function stateText(state: DfinitState): string {
  return `${JSON.stringify(state, null, 2)}\n`;
}

function isOurs(content: string | null): boolean {
  return content !== null && content.startsWith(MARKER);
}

export async function planInstall(config: DfinitConfig): Promise<Plan> {
  const containerd = config.containerRuntime.containerd;
  const configToml = containerd.configPath;
  const statePath = statePathOf(config);
  const previous = await readState(statePath);
  const notes: string[] = [];
  const changes: FileChange[] = [];
  let restartNeeded = false;

  const tomlText = await readIfExists(configToml);
  const parsed = tomlText === null ? {} : parseTomlFile(tomlText, configToml);
  const version = typeof parsed.version === 'number' ? parsed.version : 2;
  const plugin = criPluginFor(version);
  const registryTable = tableAt(parsed, ['plugins', plugin, 'registry']);
  const existing = typeof registryTable?.config_path === 'string' ? registryTable.config_path.split(':').find((p) => p.trim() !== '') : undefined;

  let configPath: string;
  let addedConfigPath = previous?.addedConfigPath && tomlText?.includes(previous.addedConfigPath.inserted) ? previous.addedConfigPath : undefined;
  if (existing) {
    configPath = existing;
  } else {
    const mirrors = tableAt(parsed, ['plugins', plugin, 'registry', 'mirrors']);
    if (mirrors && Object.keys(mirrors).length > 0) {
      throw new DfinitError(
        `${configToml} sets plugins."${plugin}".registry.mirrors; containerd does not allow config_path next to mirrors. Move the mirrors to hosts.toml files or remove them, then run dfinit again`,
      );
    }
    configPath = path.join(path.dirname(configToml), 'certs.d');
    const base = tomlText ?? `version = ${version}\n`;
    const edited = insertConfigPath(base, plugin, configPath);
    const check = tableAt(parseTomlFile(edited.text, `${configToml} (after adding config_path)`), ['plugins', plugin, 'registry']);
    if (check?.config_path !== configPath) {
      throw new DfinitError(`cannot add config_path to ${configToml} automatically; add config_path = "${configPath}" under [plugins."${plugin}".registry] by hand`);
    }
    addedConfigPath = { inserted: tomlText === null ? edited.text : edited.inserted, createdFile: tomlText === null };
    changes.push({ path: configToml, before: tomlText, after: edited.text, reason: `set config_path = "${configPath}" for ${plugin}` });
    restartNeeded = true;
  }

  const tracked: TrackedFile[] = [];
  const wanted = new Set<string>();
  for (const registry of containerd.registries) {
    const file = path.join(configPath, registry.hostNamespace, 'hosts.toml');
    wanted.add(file);
    const desired = renderHostsToml(config.proxy.addr, registry);
    const current = await readIfExists(file);
    const before = previous?.files.find((f) => f.path === file);
    const createdDir = before?.createdDir ?? !existsSync(path.dirname(file));
    if (current === desired) {
      tracked.push({ path: file, backup: before?.backup, createdDir });
      continue;
    }
    if (current !== null && !isOurs(current)) {
      if (!containerd.replaceExisting) {
        notes.push(`kept ${file}: it was not written by dfinit (set containerRuntime.containerd.replaceExisting to overwrite it)`);
        continue;
      }
      tracked.push({ path: file, backup: current, createdDir: false });
      changes.push({ path: file, before: current, after: desired, reason: `replace the existing hosts.toml for ${registry.hostNamespace} (kept for --uninstall)` });
      continue;
    }
    tracked.push({ path: file, backup: before?.backup, createdDir });
    changes.push({ path: file, before: current, after: desired, reason: `${current === null ? 'write' : 'update'} hosts.toml for ${registry.hostNamespace} (proxy ${config.proxy.addr}, fallback ${registry.serverAddr})` });
  }

  // Registries dropped from dfinit.yaml since the last run: take back what was written for them.
  const pruneDirs = new Set<string>();
  for (const old of previous?.files ?? []) {
    if (wanted.has(old.path)) continue;
    const current = await readIfExists(old.path);
    if (!isOurs(current)) continue;
    changes.push({ path: old.path, before: current, after: old.backup ?? null, reason: 'registry no longer configured' });
    if (old.createdDir) pruneDirs.add(path.dirname(old.path));
  }

  const state: DfinitState = { version: 1, configToml, configPath, addedConfigPath, files: tracked };
  const previousText = await readIfExists(statePath);
  const keepState = tracked.length > 0 || addedConfigPath !== undefined;
  const nextText = keepState ? stateText(state) : null;
  if (previousText !== nextText) {
    changes.unshift({ path: statePath, before: previousText, after: nextText, reason: 'record what dfinit wrote' });
  }
  return { configPath, changes, notes, restartNeeded, pruneDirs };
}

export async function planUninstall(config: DfinitConfig): Promise<Plan> {
  const statePath = statePathOf(config);
  const state = await readState(statePath);
  if (!state) return { configPath: '', changes: [], notes: [`nothing to uninstall: no record at ${statePath}`], restartNeeded: false, pruneDirs: new Set() };
  const changes: FileChange[] = [];
  const notes: string[] = [];
  const pruneDirs = new Set<string>();
  let restartNeeded = false;
  for (const file of state.files) {
    const current = await readIfExists(file.path);
    if (current === null) continue;
    if (!isOurs(current)) {
      notes.push(`kept ${file.path}: it was changed by someone else after dfinit wrote it`);
      continue;
    }
    changes.push({ path: file.path, before: current, after: file.backup ?? null, reason: file.backup ? 'restore the hosts.toml dfinit replaced' : 'remove the hosts.toml dfinit wrote' });
    if (file.createdDir && !file.backup) pruneDirs.add(path.dirname(file.path));
  }
  if (state.addedConfigPath) {
    const current = await readIfExists(state.configToml);
    const { inserted, createdFile } = state.addedConfigPath;
    if (current !== null && createdFile && current === inserted) {
      changes.push({ path: state.configToml, before: current, after: null, reason: 'remove the config.toml dfinit created' });
      restartNeeded = true;
    } else if (current !== null && current.includes(inserted)) {
      changes.push({ path: state.configToml, before: current, after: current.replace(inserted, ''), reason: 'remove the config_path dfinit added' });
      restartNeeded = true;
    } else {
      notes.push(`left ${state.configToml} as it is: the config_path dfinit added was changed since`);
    }
  }
  changes.push({ path: statePath, before: await readIfExists(statePath), after: null, reason: 'drop dfinit’s record' });
  return { configPath: state.configPath, changes, notes, restartNeeded, pruneDirs };
}
