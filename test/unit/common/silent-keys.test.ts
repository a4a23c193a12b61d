/**
 * No config key is accepted and then ignored: Go-era keys the programs cannot honour are
 * refused with what to use instead, keys kept only so old files load log a warning at start,
 * and host.listenIP does what it says.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { ConfigError, compatibilityWarnings, parseConfig, type ProgramName } from '../../../services/common/config';
import { managerConfig, startTestManager } from '../manager/helpers';

function problemsOf(program: ProgramName, raw: unknown): { path: string; message: string }[] {
  try {
    parseConfig(program, raw);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => ({ path: p.path, message: p.message }));
    throw err;
  }
  throw new Error('config was accepted');
}

describe('keys a program cannot honour are refused with what to use instead', () => {
  test.each([
    ['dfdaemon', { console: false }, 'console', /stdout.*remove console: false/],
    ['manager', { console: false }, 'console', /stdout/],
    ['scheduler', { console: false }, 'console', /stdout/],
    ['dfinit', { console: false }, 'console', /stdout/],
    ['dfdaemon', { logDir: '/var/log/dragonfly' }, 'logDir', /logs go to stdout .*remove logDir/],
    ['scheduler', { server: { logDir: '/var/log/dragonfly' } }, 'server.logDir', /remove logDir/],
    ['manager', { server: { logDir: '/var/log/dragonfly' } }, 'server.logDir', /remove logDir/],
    ['dfdaemon', { aliveTime: '10m' }, 'aliveTime', /runs until it is stopped/],
    ['dfdaemon', { download: { calculateDigest: false } }, 'download.calculateDigest', /always checked against its digest/],
    ['dfdaemon', { download: { prefetch: true } }, 'download.prefetch', /fetch the whole file first with dfget/],
    ['scheduler', { scheduler: { algorithm: 'ml' } }, 'scheduler.algorithm', /expected one of "default"/],
  ] as const)('%s %j', (program, raw, path, message) => {
    const problems = problemsOf(program, raw);
    expect(problems).toHaveLength(1);
    expect(problems[0].path).toBe(path);
    expect(problems[0].message).toMatch(message);
  });

  test('the values these keys have when they describe what the programs do are accepted', () => {
    expect(() => parseConfig('dfdaemon', { console: true, logDir: '', aliveTime: '0s', download: { calculateDigest: true, prefetch: false } })).not.toThrow();
    expect(() => parseConfig('manager', { console: true, server: { logDir: '' } })).not.toThrow();
  });
});

describe('keys kept for compatibility warn at start', () => {
  test('each one set is named with what to do instead; unset ones say nothing', () => {
    const scheduler = parseConfig('scheduler', { server: { workHome: '/var/lib/dragonfly/scheduler' }, scheduler: { algorithm: 'default' } });
    expect(compatibilityWarnings('scheduler', scheduler).map((w) => w.key)).toEqual(['server.workHome', 'scheduler.algorithm']);
    expect(compatibilityWarnings('scheduler', parseConfig('scheduler', {}))).toEqual([]);

    const manager = parseConfig('manager', { server: { name: 'd7y/manager', grpc: { advertiseIP: '10.0.0.1' } }, auth: { jwt: { realm: 'Dragonfly', maxRefresh: '168h' } }, database: { redis: { brokerDB: 1, backendDB: 2 } } });
    const warnings = compatibilityWarnings('manager', manager);
    expect(warnings.map((w) => w.key)).toEqual(['server.name', 'server.grpc.advertiseIP', 'auth.jwt.realm', 'auth.jwt.maxRefresh', 'database.redis.brokerDB', 'database.redis.backendDB']);
    expect(warnings.find((w) => w.key === 'auth.jwt.maxRefresh')?.message).toMatch(/compatibility only.*set auth\.jwt\.timeout instead/);
    expect(compatibilityWarnings('manager', parseConfig('manager', {}))).toEqual([]);

    expect(compatibilityWarnings('dfdaemon', parseConfig('dfdaemon', { workHome: '/var/lib/dragonfly' })).map((w) => w.message)).toEqual([
      expect.stringMatching(/workHome is accepted for compatibility only .*set dataDir instead/),
    ]);
    expect(compatibilityWarnings('dfdaemon', parseConfig('dfdaemon', {}))).toEqual([]);
  });

  test('a manager started with one logs the warning', async () => {
    const lines: { level: number; key?: string; msg: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as { level: number; key?: string; msg: string });
        done();
      },
    });
    const { config, cleanup } = managerConfig({ auth: { jwt: { maxRefresh: '24h' } } });
    const manager = await startTestManager(config, { logger: pino({ level: 'warn' }, sink) });
    try {
      const warning = lines.find((l) => l.key === 'auth.jwt.maxRefresh');
      expect(warning).toBeDefined();
      expect(warning?.level).toBe(40);
      expect(warning?.msg).toMatch(/has no effect/);
    } finally {
      await manager.stop();
      cleanup();
    }
  });
});

describe('dfdaemon host.listenIP', () => {
  test('is the address of every listener that names none; a listener own address wins', () => {
    const c = parseConfig('dfdaemon', { host: { listenIP: '127.0.0.1' }, proxy: { tcpListen: { listen: '0.0.0.0' } } });
    expect(c.download.peerGRPC.tcpListen.listen).toBe('127.0.0.1');
    expect(c.upload.tcpListen.listen).toBe('127.0.0.1');
    expect(c.proxy.tcpListen.listen).toBe('0.0.0.0');
    const d = parseConfig('dfdaemon', {});
    expect([d.download.peerGRPC.tcpListen.listen, d.upload.tcpListen.listen, d.proxy.tcpListen.listen]).toEqual(['0.0.0.0', '0.0.0.0', '0.0.0.0']);
  });
});
