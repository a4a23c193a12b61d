import { promises as fs, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parseConfig, type DfinitConfig } from '../../../services/common/config';
import { MARKER, STATE_FILE_NAME, parseKeyPath } from '../../../services/dfinit/containerd';
import { main } from '../../../services/dfinit/main';
import { runDfinit } from '../../../services/dfinit/run';

const V2_NO_PATH = `version = 2
root = "/var/lib/containerd"

# the user's own comment stays
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"

[plugins."io.containerd.grpc.v1.cri".registry]
  [plugins."io.containerd.grpc.v1.cri".registry.configs."registry.local".tls]
    insecure_skip_verify = true
`;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'dfinit-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function configFor(overrides: Record<string, unknown> = {}): DfinitConfig {
  return parseConfig('dfinit', {
    proxy: { addr: 'http://127.0.0.1:65001' },
    containerRuntime: {
      containerd: {
        configPath: path.join(dir, 'config.toml'),
        registries: [
          { hostNamespace: 'docker.io', serverAddr: 'https://index.docker.io', capabilities: ['pull', 'resolve'] },
          { hostNamespace: 'ghcr.io', serverAddr: 'https://ghcr.io', skipVerify: true },
        ],
        ...overrides,
      },
    },
  });
}

async function run(config: DfinitConfig, options: { dryRun?: boolean; uninstall?: boolean } = {}) {
  const out: string[] = [];
  const restarts: string[][] = [];
  const result = await runDfinit(config, {
    ...options,
    print: (s) => out.push(s),
    runCommand: (argv) => {
      restarts.push([...argv]);
      return { status: 0 };
    },
  });
  return { result, out: out.join('\n'), restarts };
}

/** Every file under dir with its content, for before/after comparisons. */
async function snapshot(root = dir): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await fs.readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    out[path.relative(root, full)] = await fs.readFile(full, 'utf8');
  }
  return out;
}

describe('dfinit containerd', () => {
  it('fresh config.toml without config_path: adds it, writes hosts.toml for each registry, asks for a restart', async () => {
    await fs.writeFile(path.join(dir, 'config.toml'), V2_NO_PATH);
    const { result, out, restarts } = await run(configFor());
    const certs = path.join(dir, 'certs.d');
    expect(result.plan.configPath).toBe(certs);
    expect(result.plan.restartNeeded).toBe(true);
    expect(result.restarted).toBe(false);
    expect(restarts).toHaveLength(0);
    expect(out).toContain('containerd must be restarted');

    const toml = await fs.readFile(path.join(dir, 'config.toml'), 'utf8');
    expect(toml.startsWith(V2_NO_PATH.split('[plugins."io.containerd.grpc.v1.cri".registry]')[0])).toBe(true);
    expect(toml).toContain('# the user\'s own comment stays');
    const parsed = parseToml(toml) as { plugins: Record<string, { registry: { config_path: string; configs: unknown } }> };
    expect(parsed.plugins['io.containerd.grpc.v1.cri'].registry.config_path).toBe(certs);
    expect(parsed.plugins['io.containerd.grpc.v1.cri'].registry.configs).toBeDefined();

    const docker = await fs.readFile(path.join(certs, 'docker.io', 'hosts.toml'), 'utf8');
    expect(docker.startsWith(MARKER)).toBe(true);
    expect(parseToml(docker)).toEqual({
      server: 'https://index.docker.io',
      host: { 'http://127.0.0.1:65001': { capabilities: ['pull', 'resolve'], header: { 'X-Dragonfly-Registry': 'https://index.docker.io' } } },
    });
    const ghcr = parseToml(await fs.readFile(path.join(certs, 'ghcr.io', 'hosts.toml'), 'utf8'));
    expect(ghcr).toMatchObject({ server: 'https://ghcr.io', skip_verify: true });
  });

  it('runs the restart command only when restart: true', async () => {
    await fs.writeFile(path.join(dir, 'config.toml'), V2_NO_PATH);
    const { result, restarts } = await run(configFor({ restart: true, restartCommand: ['systemctl', 'restart', 'containerd'] }));
    expect(result.restarted).toBe(true);
    expect(restarts).toEqual([['systemctl', 'restart', 'containerd']]);
  });

  it('creates a minimal config.toml when there is none', async () => {
    const { result } = await run(configFor());
    const parsed = parseToml(await fs.readFile(path.join(dir, 'config.toml'), 'utf8')) as Record<string, unknown>;
    expect(parsed).toEqual({ version: 2, plugins: { 'io.containerd.grpc.v1.cri': { registry: { config_path: path.join(dir, 'certs.d') } } } });
    expect(result.plan.restartNeeded).toBe(true);
    await run(configFor(), { uninstall: true });
    expect(await snapshot()).toEqual({});
  });

  it('uses the first entry of an existing config_path (version 2) and changes nothing in config.toml', async () => {
    const certs = path.join(dir, 'mine');
    const toml = `version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${certs}:/etc/docker/certs.d"\n`;
    await fs.writeFile(path.join(dir, 'config.toml'), toml);
    const { result, out } = await run(configFor());
    expect(result.plan.restartNeeded).toBe(false);
    expect(out).not.toContain('restart');
    expect(await fs.readFile(path.join(dir, 'config.toml'), 'utf8')).toBe(toml);
    expect(readdirSync(certs).sort()).toEqual(['docker.io', 'ghcr.io']);
  });

  it('uses io.containerd.cri.v1.images for a version 3 config', async () => {
    const certs = path.join(dir, 'v3certs');
    await fs.writeFile(path.join(dir, 'config.toml'), `version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '${certs}'\n`);
    await run(configFor());
    expect(readdirSync(certs).sort()).toEqual(['docker.io', 'ghcr.io']);

    rmSync(dir, { recursive: true });
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'config.toml'), 'version = 3\n');
    await run(configFor());
    const parsed = parseToml(await fs.readFile(path.join(dir, 'config.toml'), 'utf8')) as { plugins: Record<string, { registry: { config_path: string } }> };
    expect(parsed.plugins['io.containerd.cri.v1.images'].registry.config_path).toBe(path.join(dir, 'certs.d'));
  });

  it('keeps a user\'s existing hosts.toml unless replaceExisting, and uninstall restores it', async () => {
    const certs = path.join(dir, 'certs.d');
    await fs.writeFile(path.join(dir, 'config.toml'), `version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\nconfig_path = "${certs}"\n`);
    const userFile = path.join(certs, 'docker.io', 'hosts.toml');
    await fs.mkdir(path.dirname(userFile), { recursive: true });
    const userText = 'server = "https://my-mirror.example"\n';
    await fs.writeFile(userFile, userText);

    const kept = await run(configFor());
    expect(kept.out).toContain(`kept ${userFile}`);
    expect(await fs.readFile(userFile, 'utf8')).toBe(userText);

    await run(configFor({ replaceExisting: true }));
    expect((await fs.readFile(userFile, 'utf8')).startsWith(MARKER)).toBe(true);
    const again = await run(configFor({ replaceExisting: true }));
    expect(again.result.plan.changes).toEqual([]);

    await run(configFor(), { uninstall: true });
    expect(await fs.readFile(userFile, 'utf8')).toBe(userText);
    expect(readdirSync(certs)).toEqual(['docker.io']);
  });

  it('is idempotent: a second run changes nothing', async () => {
    await fs.writeFile(path.join(dir, 'config.toml'), V2_NO_PATH);
    await run(configFor());
    const before = await snapshot();
    const second = await run(configFor());
    expect(second.result.plan.changes).toEqual([]);
    expect(second.result.plan.restartNeeded).toBe(false);
    expect(second.out).toContain('no changes');
    expect(await snapshot()).toEqual(before);
  });

  it('updates its own files when the config changes and removes those of dropped registries', async () => {
    await fs.writeFile(path.join(dir, 'config.toml'), V2_NO_PATH);
    await run(configFor());
    const changed = parseConfig('dfinit', {
      proxy: { addr: 'http://127.0.0.1:65011' },
      containerRuntime: { containerd: { configPath: path.join(dir, 'config.toml'), registries: [{ hostNamespace: 'docker.io', serverAddr: 'https://index.docker.io' }] } },
    });
    await run(changed);
    const certs = path.join(dir, 'certs.d');
    expect(await fs.readFile(path.join(certs, 'docker.io', 'hosts.toml'), 'utf8')).toContain('[host."http://127.0.0.1:65011"]');
    expect(readdirSync(certs)).toEqual(['docker.io']);
  });

  it('--dry-run prints a diff and writes nothing', async () => {
    await fs.writeFile(path.join(dir, 'config.toml'), V2_NO_PATH);
    const before = await snapshot();
    const { out, result } = await run(configFor(), { dryRun: true });
    expect(result.applied).toBe(false);
    expect(await snapshot()).toEqual(before);
    expect(out).toContain('dry run');
    expect(out).toContain(`+++ ${path.join(dir, 'certs.d', 'docker.io', 'hosts.toml')}`);
    expect(out).toContain(`+   config_path = "${path.join(dir, 'certs.d')}" # added by dfinit`);
    expect(out).toContain('+ server = "https://index.docker.io"');
    expect(out).toContain('containerd would need a restart');
  });

  it('--uninstall removes exactly what it wrote, and nothing else', async () => {
    await fs.writeFile(path.join(dir, 'config.toml'), V2_NO_PATH);
    const certs = path.join(dir, 'certs.d');
    // Someone else's registry config in the same directory.
    await fs.mkdir(path.join(certs, 'quay.io'), { recursive: true });
    await fs.writeFile(path.join(certs, 'quay.io', 'hosts.toml'), 'server = "https://quay.io"\n');
    const before = await snapshot();

    await run(configFor());
    expect(Object.keys(await snapshot()).sort()).toEqual(
      ['certs.d/docker.io/hosts.toml', 'certs.d/ghcr.io/hosts.toml', 'certs.d/quay.io/hosts.toml', 'config.toml', STATE_FILE_NAME].sort(),
    );
    const { result, out } = await run(configFor(), { uninstall: true });
    expect(result.plan.restartNeeded).toBe(true);
    expect(out).toContain('containerd must be restarted');
    expect(await snapshot()).toEqual(before);
    expect(readdirSync(certs)).toEqual(['quay.io']);

    const nothing = await run(configFor(), { uninstall: true });
    expect(nothing.out).toContain('nothing to uninstall');
  });

  it('uninstall keeps a file someone rewrote after dfinit wrote it', async () => {
    await fs.writeFile(path.join(dir, 'config.toml'), V2_NO_PATH);
    await run(configFor());
    const file = path.join(dir, 'certs.d', 'ghcr.io', 'hosts.toml');
    await fs.writeFile(file, 'server = "https://ghcr.io"\n');
    const { out } = await run(configFor(), { uninstall: true });
    expect(out).toContain(`kept ${file}`);
    expect(await fs.readFile(file, 'utf8')).toBe('server = "https://ghcr.io"\n');
  });

  it('refuses to add config_path next to registry.mirrors', async () => {
    const toml = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n  endpoint = ["https://registry-1.docker.io"]\n';
    await fs.writeFile(path.join(dir, 'config.toml'), toml);
    await expect(run(configFor())).rejects.toThrow('does not allow config_path next to mirrors');
    expect(await snapshot()).toEqual({ 'config.toml': toml });
  });

  it('reports an unparseable config.toml and writes nothing', async () => {
    await fs.writeFile(path.join(dir, 'config.toml'), 'version = = 2\n');
    await expect(run(configFor())).rejects.toThrow(/cannot parse .*config\.toml/);
    expect(Object.keys(await snapshot())).toEqual(['config.toml']);
  });

  it('parses TOML table header keys', () => {
    expect(parseKeyPath('plugins."io.containerd.grpc.v1.cri".registry')).toEqual(['plugins', 'io.containerd.grpc.v1.cri', 'registry']);
    expect(parseKeyPath(" plugins . 'io.containerd.cri.v1.images' . registry ")).toEqual(['plugins', 'io.containerd.cri.v1.images', 'registry']);
    expect(parseKeyPath('a."b')).toBeUndefined();
  });
});

describe('dfinit CLI', () => {
  let stderr: jest.SpyInstance;
  let stdout: jest.SpyInstance;
  beforeEach(() => {
    stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    stdout = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  });
  afterEach(() => {
    stderr.mockRestore();
    stdout.mockRestore();
  });

  it('exits 1 naming the bad key', async () => {
    const file = path.join(dir, 'dfinit.yaml');
    await fs.writeFile(file, 'containerRuntime:\n  containerd:\n    registries:\n      - hostNamespace: docker.io\n        serverAddr: not-a-url\n');
    expect(await main(['node', 'dfinit', '--config', file])).toBe(1);
    const text = stderr.mock.calls.map((c: unknown[]) => String(c[0])).join('');
    expect(text).toContain('containerRuntime.containerd.registries.0.serverAddr');
  });

  it('exits 1 on an unknown key and on a missing file', async () => {
    const file = path.join(dir, 'dfinit.yaml');
    await fs.writeFile(file, 'containerRuntime:\n  containerd:\n    replaceExistng: true\n');
    expect(await main(['node', 'dfinit', '--config', file])).toBe(1);
    expect(stderr.mock.calls.map((c: unknown[]) => String(c[0])).join('')).toContain('containerRuntime.containerd.replaceExistng');
    expect(await main(['node', 'dfinit', '--config', path.join(dir, 'missing.yaml')])).toBe(1);
  });

  it('runs from a config file with --dry-run', async () => {
    const file = path.join(dir, 'dfinit.yaml');
    await fs.writeFile(
      file,
      `containerRuntime:\n  containerd:\n    configPath: ${path.join(dir, 'config.toml')}\n    registries:\n      - hostNamespace: docker.io\n        serverAddr: https://index.docker.io\n`,
    );
    expect(await main(['node', 'dfinit', '--config', file, '--dry-run'])).toBe(0);
    expect(stdout.mock.calls.map((c: unknown[]) => String(c[0])).join('')).toContain('dry run');
    expect(Object.keys(await snapshot())).toEqual(['dfinit.yaml']);
  });
});
