import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { http, managerConfig, signin, startTestManager } from './helpers';

describe('startManager on SQLite', () => {
  test('auth.rootPassword is applied at every start (rotation); data lives in <workHome>/manager.db and survives a restart', async () => {
    const { config, cleanup } = managerConfig({ auth: { demoCredentials: false, rootPassword: 'from-secret-1' } });
    try {
      let m = await startTestManager(config);
      expect(m.restPort).toBeGreaterThan(0);
      expect(m.grpcPort).toBeGreaterThan(0);
      expect(m.metricsPort).toBeGreaterThan(0);
      expect(existsSync(path.join(config.server.workHome, 'manager.db'))).toBe(true);
      await expect(signin(m, 'root', 'dragonfly')).rejects.toThrow(/401/);
      const token = await signin(m, 'root', 'from-secret-1');
      expect((await http(m, 'POST', '/api/v1/clusters', token, { name: 'cluster-b', scopes: { idc: 'cluster-2' } })).status).toBe(201);
      await m.stop();
      await m.stop(); // idempotent

      // Restart with the same password: data and sessions are kept.
      m = await startTestManager(config);
      try {
        const clusters = await http(m, 'GET', '/api/v1/clusters', token);
        expect(clusters.status).toBe(200);
        expect((clusters.body as Array<{ name: string; is_default: boolean }>).map((c) => [c.name, c.is_default])).toEqual([
          ['cluster-1', true],
          ['cluster-b', false],
        ]);
      } finally {
        await m.stop();
      }
      // Restart with a rotated password: the new one works, the old one and its sessions do not.
      m = await startTestManager({ ...config, auth: { ...config.auth, rootPassword: 'from-secret-2' } });
      try {
        await expect(signin(m, 'root', 'from-secret-1')).rejects.toThrow(/401/);
        expect(await signin(m, 'root', 'from-secret-2')).toBeTruthy();
        expect((await http(m, 'GET', '/api/v1/clusters', token)).status).toBe(401);
      } finally {
        await m.stop();
      }
    } finally {
      cleanup();
    }
  });

  test('a first start with neither auth.rootPassword nor auth.demoCredentials refuses to start, naming the keys', async () => {
    const { config, cleanup } = managerConfig({ auth: { demoCredentials: false } });
    try {
      await expect(startTestManager(config)).rejects.toThrow(/auth\.rootPassword is empty.*auth\.demoCredentials/);
    } finally {
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
