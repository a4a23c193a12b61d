import { ConfigError, parseConfigText, loadConfig, parseDuration, parseSize, type ProgramName } from '../../../services/common/config';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';

/**
 * The `config:` blocks of the seed documents' chart values (seed 000 cluster A and B,
 * seed 002), copied verbatim from the charts-config*.yaml files.
 */
const SEED_000_CLUSTER_A = `
scheduler:
  config:
    verbose: true
    pprofPort: 18066
seedPeer:
  config:
    verbose: true
    pprofPort: 18066
dfdaemon:
  config:
    verbose: true
    pprofPort: 18066
manager:
  config:
    verbose: true
    pprofPort: 18066
`;

const SEED_000_CLUSTER_B = `
scheduler:
  config:
    manager:
      addr: dragonfly-manager.cluster-a.svc.cluster.local:65003
      schedulerClusterID: 2
seedPeer:
  config:
    scheduler:
      manager:
        netAddrs:
          - type: tcp
            addr: dragonfly-manager.cluster-a.svc.cluster.local:65003
        seedPeer:
          enable: true
          clusterID: 2
dfdaemon:
  config:
    host:
      idc: cluster-2
    scheduler:
      manager:
        netAddrs:
          - type: tcp
            addr: dragonfly-manager.cluster-a.svc.cluster.local:65003
`;

const SEED_002 = SEED_000_CLUSTER_A; // seed 002's four config blocks are the same verbose/pprofPort pairs

/** chart component → program whose schema reads its `config:` block */
const PROGRAM_OF: Record<string, ProgramName> = { scheduler: 'scheduler', seedPeer: 'dfdaemon', dfdaemon: 'dfdaemon', manager: 'manager' };

function blocks(values: string): Array<[string, ProgramName, string]> {
  const doc = parseYaml(values) as Record<string, { config: unknown }>;
  return Object.entries(doc).map(([component, v]) => [component, PROGRAM_OF[component], stringify(v.config)]);
}

describe('seed chart config blocks', () => {
  it.each(blocks(SEED_000_CLUSTER_A).concat(blocks(SEED_002)))('seed 000 A / 002 %s parses with verbose and pprofPort', (_c, program, text) => {
    const cfg = parseConfigText(program, text);
    expect(cfg.verbose).toBe(true);
    expect(cfg.pprofPort).toBe(18066);
  });

  it('seed 000 cluster B scheduler: manager address and cluster id', () => {
    const [, , text] = blocks(SEED_000_CLUSTER_B).find(([c]) => c === 'scheduler')!;
    const cfg = parseConfigText('scheduler', text);
    expect(cfg.manager.addr).toBe('dragonfly-manager.cluster-a.svc.cluster.local:65003');
    expect(cfg.manager.schedulerClusterID).toBe(2);
    expect(cfg.manager.keepAlive.interval).toBe(5000);
    expect(cfg.server.port).toBe(8002);
  });

  it('seed 000 cluster B seed peer: seed-peer mode under cluster 2', () => {
    const [, , text] = blocks(SEED_000_CLUSTER_B).find(([c]) => c === 'seedPeer')!;
    const cfg = parseConfigText('dfdaemon', text);
    expect(cfg.scheduler.manager.netAddrs).toEqual([{ type: 'tcp', addr: 'dragonfly-manager.cluster-a.svc.cluster.local:65003' }]);
    expect(cfg.scheduler.manager.seedPeer).toMatchObject({ enable: true, clusterID: 2, type: 'super' });
  });

  it('seed 000 cluster B dfdaemon: idc cluster-2 and the default ports', () => {
    const [, , text] = blocks(SEED_000_CLUSTER_B).find(([c]) => c === 'dfdaemon')!;
    const cfg = parseConfigText('dfdaemon', text);
    expect(cfg.host.idc).toBe('cluster-2');
    expect(cfg.scheduler.manager.seedPeer.enable).toBe(false);
    expect(cfg.download.peerGRPC.tcpListen.port).toBe(65000);
    expect(cfg.proxy.tcpListen.port).toBe(65001);
    expect(cfg.upload.tcpListen.port).toBe(65002);
    expect(cfg.metrics).toEqual({ enable: true, addr: ':8000' });
    expect(cfg.proxy.proxies[0].regx).toBe('blobs/sha256.*');
  });

  it('defaults: empty files are valid for every program', () => {
    for (const program of ['manager', 'scheduler', 'dfdaemon', 'dfinit'] as const) {
      expect(() => parseConfigText(program, '')).not.toThrow();
    }
    const manager = parseConfigText('manager', '');
    expect(manager.server.rest.addr).toBe(':8080');
    expect(manager.server.grpc.port.start).toBe(65003);
    expect(manager.auth.rootPassword).toBe('');
    expect(manager.auth.demoCredentials).toBe(false);
    expect(manager.auth.signup.enable).toBe(false);
  });
});

describe('environment overrides', () => {
  it('DFDAEMON__host__advertiseIP sets host.advertiseIP; values are YAML scalars', () => {
    const cfg = parseConfigText('dfdaemon', 'host:\n  idc: a\n', { env: { DFDAEMON__host__advertiseIP: '10.1.2.3', DFDAEMON__verbose: 'true', OTHER: 'x' } });
    expect(cfg.host).toMatchObject({ idc: 'a', advertiseIP: '10.1.2.3' });
    expect(cfg.verbose).toBe(true);
  });

  it('a numeric or boolean-looking secret stays text where the schema wants text', () => {
    const cfg = parseConfigText('manager', '', { env: { DFMANAGER__database__mysql__password: '12345678', DFMANAGER__database__redis__password: 'yes', DFMANAGER__database__mysql__port: '3307' } });
    expect(cfg.database.mysql.password).toBe('12345678');
    expect(cfg.database.redis.password).toBe('yes');
    expect(cfg.database.mysql.port).toBe(3307);
  });

  it('passwords from env (Secrets) are taken verbatim, never as YAML', () => {
    const cfg = parseConfigText('manager', '', { env: { DFMANAGER__auth__rootPassword: 'root-pass #2', DFMANAGER__database__mysql__password: "'quoted'", DFMANAGER__database__redis__password: '[not, a, list]' } });
    expect(cfg.auth.rootPassword).toBe('root-pass #2');
    expect(cfg.database.mysql.password).toBe("'quoted'");
    expect(cfg.database.redis.password).toBe('[not, a, list]');
    expect(() => parseConfigText('manager', '', { env: { DFMANAGER__auth__rootPassword: 'short' } })).toThrow(/auth\.rootPassword: "short" — expected 8 to 20 characters/);
  });

  it('overrides are validated like the file', () => {
    expect(() => parseConfigText('scheduler', '', { env: { DFSCHEDULER__manager__schedulerClusterID: '0' } })).toThrow(/manager\.schedulerClusterID/);
  });

  it('loadConfig names an unreadable file', () => {
    expect(() => loadConfig('manager', join(__dirname, 'does-not-exist.yaml'), {})).toThrow(/cannot read config file: ENOENT/);
  });
});

describe('bad configs are rejected with the key path, the value and what is allowed', () => {
  const cases: Array<[ProgramName, string, RegExp]> = [
    ['dfdaemon', 'host:\n  idcc: x\n', /host\.idcc: "x" — unknown key/],
    ['dfdaemon', 'host:\n  advertiseIP: 10.0.0.300\n', /host\.advertiseIP: "10\.0\.0\.300" — expected an IPv4 or IPv6 address/],
    ['dfdaemon', 'scheduler:\n  manager:\n    netAddrs:\n      - addr: manager-no-port\n', /scheduler\.manager\.netAddrs\.0\.addr: "manager-no-port" — expected "host:port"/],
    ['dfdaemon', 'scheduler:\n  manager:\n    seedPeer:\n      clusterID: 0\n', /scheduler\.manager\.seedPeer\.clusterID: 0 — expected a seed-peer cluster id of 1 or more/],
    ['dfdaemon', 'scheduler:\n  manager:\n    seedPeer:\n      type: mega\n', /seedPeer\.type: "mega" — expected one of "super", "strong", "weak"/],
    ['dfdaemon', 'upload:\n  tcpListen:\n    port: 70000\n', /upload\.tcpListen\.port: 70000 — expected a port in 0\.\.65535/],
    ['dfdaemon', 'download:\n  totalRateLimit: lots\n', /download\.totalRateLimit: "lots" — expected a size/],
    ['dfdaemon', 'storage:\n  taskExpireTime: 6 hours\n', /storage\.taskExpireTime: "6 hours" — expected a duration/],
    ['dfdaemon', 'storage:\n  diskGCThresholdPercent: 60\n  diskGCLowThresholdPercent: 80\n', /storage\.diskGCLowThresholdPercent: 80 — diskGCLowThresholdPercent must be below/],
    ['dfdaemon', 'proxy:\n  proxies:\n    - regx: "blobs/(sha256"\n', /proxy\.proxies\.0\.regx: "blobs\/\(sha256" — expected a valid regular expression/],
    ['dfdaemon', 'metrics: 8000\n', /metrics: 8000/],
    ['dfdaemon', 'verbose: "yes please"\n', /verbose: "yes please" — .*boolean/],
    ['scheduler', 'manager:\n  addr: "http://"\n', /manager\.addr: "http:\/\/"/],
    ['scheduler', 'pprofPort: -5\n', /pprofPort: -5 — expected -1 \(off\) or a port/],
    ['scheduler', 'scheduler:\n  candidateParentLimit: 50\n', /scheduler\.candidateParentLimit: 50/],
    ['manager', 'database:\n  type: postgres\n', /database\.type: "postgres" — expected one of "mysql", "mariadb", "sqlite"/],
    ['manager', 'database:\n  mysql:\n    dbname: "manager; drop"\n', /database\.mysql\.dbname: .* — expected letters, digits and _ only/],
    ['manager', 'auth:\n  rootPassword: short\n', /auth\.rootPassword: "short" — expected 8 to 20 characters/],
    ['dfinit', 'containerRuntime:\n  containerd:\n    registries:\n      - hostNamespace: ghcr.io\n', /containerRuntime\.containerd\.registries\.0\.serverAddr: missing — required/],
    ['dfinit', 'proxy:\n  addr: 127.0.0.1:65001\n', /proxy\.addr: "127\.0\.0\.1:65001" — expected a URL/],
    ['manager', '- just\n- a list\n', /expected a YAML mapping/],
    ['manager', 'server: [unclosed\n', /not valid YAML/],
  ];

  it.each(cases)('%s: %j', (program, text, expected) => {
    let error: unknown;
    try {
      parseConfigText(program, text);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(expected);
    expect((error as ConfigError).message).toContain(`${program}.yaml`);
  });

  it('reports every problem at once', () => {
    try {
      parseConfigText('dfdaemon', 'host:\n  idcc: x\n  advertiseIP: nope\nupload:\n  tcpListen:\n    port: -1\n');
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect((err as ConfigError).problems.map((p) => p.path).sort()).toEqual(['host.advertiseIP', 'host.idcc', 'upload.tcpListen.port']);
    }
  });
});

describe('durations and sizes', () => {
  it.each([
    ['5s', 5000], ['1m30s', 90000], ['720h', 2592000000], ['500ms', 500], ['1d', 86400000], [250, 250], ['x', NaN], ['5s3', NaN], ['', NaN],
  ])('parseDuration(%j) = %d', (input, ms) => expect(parseDuration(input)).toBe(ms));

  it.each([
    ['1024Mi', 1024 ** 3], ['50GB', 50e9], ['4mib', 4 * 1024 ** 2], ['512k', 512000], [100, 100], ['1.5Ki', 1536], ['12 parsecs', NaN],
  ])('parseSize(%j) = %d', (input, bytes) => expect(parseSize(input)).toBe(bytes));
});

describe('example configs shipped in docs', () => {
  it('every docs/examples/*.yaml parses with its program schema', () => {
    const dir = join(__dirname, '../../../docs/examples');
    for (const program of ['manager', 'scheduler', 'dfdaemon', 'dfinit'] as const) {
      const text = readFileSync(join(dir, `${program}.yaml`), 'utf8');
      expect(() => parseConfigText(program, text, { source: `docs/examples/${program}.yaml` })).not.toThrow();
    }
  });
});
