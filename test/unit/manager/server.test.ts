import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { http, managerConfig, signin, startTestManager } from './helpers';

describe('startManager on SQLite', () => {
  test('DRAGONFLY_INITIAL_ROOT_PASSWORD sets root\'s first password; data lives in <workHome>/manager.db and survives a restart', async () => {
    const { config, cleanup } = managerConfig();
    const saved = process.env.DRAGONFLY_INITIAL_ROOT_PASSWORD;
    process.env.DRAGONFLY_INITIAL_ROOT_PASSWORD = 'from-env-123';
    try {
      let m = await startTestManager(config);
      expect(m.restPort).toBeGreaterThan(0);
      expect(m.grpcPort).toBeGreaterThan(0);
      expect(m.metricsPort).toBeGreaterThan(0);
      expect(existsSync(path.join(config.server.workHome, 'manager.db'))).toBe(true);
      await expect(signin(m, 'root', 'dragonfly')).rejects.toThrow(/401/);
      const token = await signin(m, 'root', 'from-env-123');
      expect((await http(m, 'POST', '/api/v1/clusters', token, { name: 'cluster-b', scopes: { idc: 'cluster-2' } })).status).toBe(201);
      await m.stop();
      await m.stop(); // idempotent

      // Restart: seeding is idempotent, the env password no longer matters, the session key is kept.
      process.env.DRAGONFLY_INITIAL_ROOT_PASSWORD = 'another-pass';
      m = await startTestManager(config);
      try {
        const clusters = await http(m, 'GET', '/api/v1/clusters', token);
        expect(clusters.status).toBe(200);
        expect((clusters.body as Array<{ name: string; is_default: boolean }>).map((c) => [c.name, c.is_default])).toEqual([
          ['cluster-1', true],
          ['cluster-b', false],
        ]);
        expect(await signin(m, 'root', 'from-env-123')).toBeTruthy();
      } finally {
        await m.stop();
      }
    } finally {
      if (saved === undefined) delete process.env.DRAGONFLY_INITIAL_ROOT_PASSWORD;
      else process.env.DRAGONFLY_INITIAL_ROOT_PASSWORD = saved;
      cleanup();
    }
  });

  test('a configured auth.jwt.key signs sessions; metrics can be disabled', async () => {
    const { config, cleanup } = managerConfig({ auth: { jwt: { key: 'configured-secret' } }, metrics: { enable: false } });
    const m = await startTestManager(config);
    try {
      expect(m.metricsPort).toBeUndefined();
      const token = await signin(m);
      const jwt = await import('jsonwebtoken');
      expect(() => jwt.verify(token, 'configured-secret')).not.toThrow();
    } finally {
      await m.stop();
      cleanup();
    }
  });
});
