/* eslint-disable @typescript-eslint/no-unsafe-member-access -- response bodies are arbitrary JSON checked field by field */
/**
 * Issue 15, items 3 and 4 on MariaDB + Redis: root's password from the config at every start
 * (rotation), demo credentials, password resets, the cluster-scoped token apply-cluster uses,
 * signup off by default, e-mail privacy, /oapi scopes and the owner's current role, where
 * sessions may come from, and the sign-in rate limit. Each test its own database and key prefix.
 */
import type { ManagerConfigInput } from '../../../services/common/config/manager';
import { applyCluster } from '../../../services/manager/apply-cluster';
import type { ManagerHandle } from '../../../services/manager/server';
import { http, managerConfig, restUrl, signin, startTestManager } from '../../unit/manager/helpers';
import { dropDatabase, dropRedisPrefix, MYSQL, REDIS_ADDR, uniqueName } from './db';

/** A manager on its own MariaDB database and Redis prefix; `restart` keeps both. */
async function withManager(overrides: ManagerConfigInput, body: (h: { m: ManagerHandle; restart: (o?: ManagerConfigInput) => Promise<ManagerHandle> }) => Promise<void>): Promise<void> {
  const dbname = uniqueName('mgr_auth');
  const keyPrefix = `${dbname}:`;
  const configOf = (o: ManagerConfigInput) => managerConfig({ ...o, database: { type: 'mysql', mysql: { ...MYSQL, dbname }, redis: { addrs: [REDIS_ADDR], keyPrefix } } });
  const cleanups: Array<() => void> = [];
  let c = configOf(overrides);
  cleanups.push(c.cleanup);
  let m = await startTestManager(c.config);
  try {
    await body({
      m,
      restart: async (o = overrides) => {
        await m.stop();
        c = configOf(o);
        cleanups.push(c.cleanup);
        m = await startTestManager(c.config);
        return m;
      },
    });
  } finally {
    await m.stop();
    for (const f of cleanups) f();
    await dropDatabase(dbname);
    await dropRedisPrefix(keyPrefix);
  }
}

const signinRaw = (m: ManagerHandle, name: string, password: string) => http(m, 'POST', '/api/v1/users/signin', undefined, { name, password });

describe('credentials (issue 15 item 3, MariaDB + Redis)', () => {
  test('auth.rootPassword is applied at every start: rotating it and restarting changes root\'s password and ends old sessions', async () => {
    await withManager({ auth: { demoCredentials: false, rootPassword: 'secret-one-1' } }, async ({ m, restart }) => {
      expect((await signinRaw(m, 'root', 'dragonfly')).status).toBe(401);
      const first = await signin(m, 'root', 'secret-one-1');
      expect((await http(m, 'GET', '/api/v1/clusters', first)).status).toBe(200);

      // Someone changed root's password through the API; the Secret still says secret-one-1: a restart restores it.
      expect((await http(m, 'POST', '/api/v1/users/1/reset_password', first, { old_password: 'secret-one-1', new_password: 'api-changed-1' })).status).toBe(200);
      m = await restart();
      expect((await signinRaw(m, 'root', 'api-changed-1')).status).toBe(401);
      await signin(m, 'root', 'secret-one-1');

      // The Secret rotates: the next start applies the new password.
      m = await restart({ auth: { demoCredentials: false, rootPassword: 'secret-two-2' } });
      expect((await signinRaw(m, 'root', 'secret-one-1')).status).toBe(401);
      const second = await signin(m, 'root', 'secret-two-2');
      expect((await http(m, 'GET', '/api/v1/clusters', second)).status).toBe(200);
      expect((await http(m, 'GET', '/api/v1/clusters', first)).status).toBe(401);
      expect((await m.store.listUsers()).total).toBe(1);
    });
  });

  test('demoCredentials gives root the demo password; without it and without rootPassword a first start fails naming both keys', async () => {
    await withManager({ auth: { demoCredentials: true } }, async ({ m, restart }) => {
      await signin(m, 'root', 'dragonfly');
      // Neither key: an existing root keeps the password it has.
      m = await restart({ auth: { demoCredentials: false } });
      await signin(m, 'root', 'dragonfly');
    });
    const dbname = uniqueName('mgr_auth_none');
    const c = managerConfig({ auth: { demoCredentials: false }, database: { type: 'mysql', mysql: { ...MYSQL, dbname }, redis: { addrs: [REDIS_ADDR], keyPrefix: `${dbname}:` } } });
    try {
      await expect(startTestManager(c.config)).rejects.toThrow(/auth\.rootPassword is empty.*auth\.demoCredentials: true/);
    } finally {
      c.cleanup();
      await dropDatabase(dbname);
    }
  });

  test('reset_password: users change their own with the old password; root resets anyone\'s; guests nobody else\'s', async () => {
    await withManager({}, async ({ m }) => {
      const root = await signin(m);
      const alice = (await http(m, 'POST', '/api/v1/users/signup', root, { name: 'alice', password: 'alice-pass-1' })).body.id as number;
      const bob = (await http(m, 'POST', '/api/v1/users/signup', root, { name: 'bob', password: 'bob-pass-1' })).body.id as number;
      const aliceSession = await signin(m, 'alice', 'alice-pass-1');

      // Self: the old password is required and checked.
      const noOld = await http(m, 'POST', `/api/v1/users/${alice}/reset_password`, aliceSession, { new_password: 'alice-pass-2' });
      expect(noOld.status).toBe(422);
      expect(noOld.body.errors).toEqual([{ path: 'old_password', message: 'required when changing your own password' }]);
      expect((await http(m, 'POST', `/api/v1/users/${alice}/reset_password`, aliceSession, { old_password: 'wrong-pass', new_password: 'alice-pass-2' })).status).toBe(422);
      const changed = await http(m, 'POST', `/api/v1/users/${alice}/reset_password`, aliceSession, { old_password: 'alice-pass-1', new_password: 'alice-pass-2' });
      expect(changed.status).toBe(200);
      const renewed = changed.body.token as string;
      // The caller gets a session under the new password; the old session is over.
      expect((await http(m, 'GET', '/api/v1/clusters', renewed)).status).toBe(200);
      expect((await http(m, 'GET', '/api/v1/clusters', aliceSession)).status).toBe(401);

      // A guest cannot reset someone else's password, even knowing the old one.
      expect((await http(m, 'POST', `/api/v1/users/${bob}/reset_password`, renewed, { old_password: 'bob-pass-1', new_password: 'hijacked-1' })).status).toBe(403);

      // Root resets bob's without the old one; bob's sessions end.
      const bobSession = await signin(m, 'bob', 'bob-pass-1');
      const reset = await http(m, 'POST', `/api/v1/users/${bob}/reset_password`, root, { new_password: 'bob-pass-new' });
      expect(reset.status).toBe(200);
      expect(reset.body).toEqual({});
      expect((await http(m, 'GET', '/api/v1/clusters', bobSession)).status).toBe(401);
      expect((await signinRaw(m, 'bob', 'bob-pass-1')).status).toBe(401);
      await signin(m, 'bob', 'bob-pass-new');
      expect((await http(m, 'POST', '/api/v1/users/999/reset_password', root, { new_password: 'whatever-1' })).status).toBe(404);
    });
  });

  test('a personal access token of scope cluster registers a cluster with apply-cluster (no password); a job-only token cannot', async () => {
    await withManager({}, async ({ m }) => {
      const root = await signin(m);
      const created = await http(m, 'POST', '/api/v1/personal-access-tokens', root, { name: 'cluster-b-registration', scopes: ['cluster'] });
      expect(created.status).toBe(201);
      const token = created.body.token as string;
      const spec = { id: 2, name: 'cluster-2', scopes: { idc: 'cluster-2' } };
      expect(await applyCluster(spec, { managerUrl: restUrl(m), token, timeoutMs: 10_000 })).toEqual({ scheduler_cluster_id: 2, seed_peer_cluster_id: 2, action: 'created' });
      expect(await applyCluster(spec, { managerUrl: restUrl(m), token, timeoutMs: 10_000 })).toMatchObject({ action: 'unchanged' });
      const jobOnly = (await http(m, 'POST', '/api/v1/personal-access-tokens', root, { name: 'jobs', scopes: ['job'] })).body.token as string;
      await expect(applyCluster({ ...spec, id: 3, name: 'cluster-3' }, { managerUrl: restUrl(m), token: jobOnly, timeoutMs: 10_000 })).rejects.toThrow(/HTTP 403.*lacks scope cluster/);
    });
  });
});

describe('manager auth (issue 15 item 4, MariaDB + Redis)', () => {
  test('signup is off by default: anonymous signup is 403 naming the switch, root still creates users; auth.signup.enable opens it', async () => {
    await withManager({}, async ({ m, restart }) => {
      const anonymous = await http(m, 'POST', '/api/v1/users/signup', undefined, { name: 'mallory', password: 'mallory-pass' });
      expect(anonymous.status).toBe(403);
      expect(anonymous.body.message).toContain('auth.signup.enable');
      const guest = (await http(m, 'POST', '/api/v1/users/signup', await signin(m), { name: 'carol', password: 'carol-pass-1' })).body.id as number;
      // A guest's session is not enough to create users.
      expect((await http(m, 'POST', '/api/v1/users/signup', await signin(m, 'carol', 'carol-pass-1'), { name: 'dave', password: 'dave-pass-1' })).status).toBe(403);
      expect((await m.store.rolesOf(guest))).toEqual(['guest']);
      m = await restart({ auth: { signup: { enable: true } } });
      expect((await http(m, 'POST', '/api/v1/users/signup', undefined, { name: 'mallory', password: 'mallory-pass' })).status).toBe(201);
      // A stale session does not get in the way of an open signup; it grants nothing either.
      expect((await http(m, 'POST', '/api/v1/users/signup', 'stale-token', { name: 'oscar', password: 'oscar-pass-1' })).status).toBe(201);
    });
  });

  test('guests see their own e-mail and no other user\'s; root sees all', async () => {
    await withManager({}, async ({ m }) => {
      const root = await signin(m);
      const erin = (await http(m, 'POST', '/api/v1/users/signup', root, { name: 'erin', password: 'erin-pass-1', email: 'erin@example.com' })).body.id as number;
      const frank = (await http(m, 'POST', '/api/v1/users/signup', root, { name: 'frank', password: 'frank-pass-1', email: 'frank@example.com' })).body.id as number;
      const asErin = await signin(m, 'erin', 'erin-pass-1');
      const list = await http(m, 'GET', '/api/v1/users?per_page=100', asErin);
      expect(list.status).toBe(200);
      const emails = Object.fromEntries((list.body as Array<{ name: string; email: string }>).map((u) => [u.name, u.email]));
      expect(emails).toEqual({ root: '', erin: 'erin@example.com', frank: '' });
      expect((await http(m, 'GET', `/api/v1/users/${frank}`, asErin)).body.email).toBe('');
      expect((await http(m, 'GET', `/api/v1/users/${erin}`, asErin)).body.email).toBe('erin@example.com');
      expect(JSON.stringify((await http(m, 'GET', '/api/v1/users?per_page=100', asErin)).body)).not.toContain('frank@example.com');
      expect((await http(m, 'GET', `/api/v1/users/${frank}`, root)).body.email).toBe('frank@example.com');
    });
  });

  test('/oapi checks the token\'s scope and its owner\'s current role: a PAT loses its powers when its owner loses root', async () => {
    await withManager({}, async ({ m }) => {
      const root = await signin(m);
      const ops = (await http(m, 'POST', '/api/v1/users/signup', root, { name: 'ops', password: 'ops-pass-1' })).body.id as number;
      expect((await http(m, 'PUT', `/api/v1/users/${ops}/roles/root`, root)).status).toBe(200);
      const opsSession = await signin(m, 'ops', 'ops-pass-1');
      const pat = (await http(m, 'POST', '/api/v1/personal-access-tokens', opsSession, { name: 'ops-ci', scopes: ['cluster', 'job'] })).body.token as string;
      expect((await http(m, 'POST', '/oapi/v1/clusters', pat, { name: 'by-ops' })).status).toBe(201);

      // ops loses root: the same token may still read, and may no longer write.
      expect((await http(m, 'PUT', `/api/v1/users/${ops}/roles/guest`, root)).status).toBe(200);
      expect((await http(m, 'DELETE', `/api/v1/users/${ops}/roles/root`, root)).status).toBe(200);
      expect((await http(m, 'GET', '/oapi/v1/clusters', pat)).status).toBe(200);
      const denied = await http(m, 'POST', '/oapi/v1/clusters', pat, { name: 'after-demotion' });
      expect(denied.status).toBe(403);
      expect(denied.body.message).toMatch(/root/);
      expect((await http(m, 'DELETE', '/oapi/v1/clusters/2', pat)).status).toBe(403);
      const job = await http(m, 'POST', '/oapi/v1/jobs', pat, { type: 'preheat', args: { type: 'file', url: 'http://example.invalid/f' } });
      expect(job.status).toBe(403);
      // With no role at all, not even reads.
      expect((await http(m, 'DELETE', `/api/v1/users/${ops}/roles/guest`, root)).status).toBe(200);
      expect((await http(m, 'GET', '/oapi/v1/clusters', pat)).status).toBe(403);
      // Scope: a job-only token of root cannot touch clusters; a token must name a scope.
      const jobOnly = (await http(m, 'POST', '/api/v1/personal-access-tokens', root, { name: 'jobs', scopes: ['job'] })).body.token as string;
      expect((await http(m, 'GET', '/oapi/v1/clusters', jobOnly)).status).toBe(403);
      expect((await http(m, 'POST', '/api/v1/personal-access-tokens', root, { name: 'nothing', scopes: [] })).status).toBe(422);
    });
  });

  test('sessions come from the Authorization header or the HttpOnly SameSite cookie, never the query string', async () => {
    await withManager({}, async ({ m }) => {
      const res = await fetch(`${restUrl(m)}/api/v1/users/signin`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'root', password: 'dragonfly' }) });
      expect(res.status).toBe(200);
      const setCookie = res.headers.get('set-cookie') ?? '';
      expect(setCookie).toMatch(/^jwt=[^;]+;/);
      expect(setCookie).toMatch(/; HttpOnly/);
      expect(setCookie).toMatch(/; SameSite=Strict/);
      expect(setCookie).toMatch(/; Path=\//);
      const token = ((await res.json()) as { token: string }).token;
      const cookie = setCookie.split(';')[0];
      expect((await fetch(`${restUrl(m)}/api/v1/clusters`, { headers: { cookie } })).status).toBe(200);
      expect((await fetch(`${restUrl(m)}/api/v1/clusters`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      expect((await fetch(`${restUrl(m)}/api/v1/clusters?token=${token}`)).status).toBe(401);
      expect((await fetch(`${restUrl(m)}/api/v1/clusters?jwt=${token}`)).status).toBe(401);
      const pat = (await http(m, 'POST', '/api/v1/personal-access-tokens', token, { name: 'q', scopes: ['cluster'] })).body.token as string;
      expect((await fetch(`${restUrl(m)}/oapi/v1/clusters?access_token=${pat}`)).status).toBe(401);
      expect((await fetch(`${restUrl(m)}/oapi/v1/clusters`, { headers: { authorization: `Bearer ${pat}` } })).status).toBe(200);
    });
  });

  test('sign-in attempts are limited per name and per address: 429 with Retry-After, even for the right password, until the window ends', async () => {
    await withManager({ auth: { signinLimit: { perName: 3, perAddress: 6, window: '2s' } } }, async ({ m }) => {
      const root = await signin(m);
      for (const name of ['gina', 'hank']) await http(m, 'POST', '/api/v1/users/signup', root, { name, password: `${name}-pass-1` });
      for (let i = 0; i < 3; i++) expect((await signinRaw(m, 'gina', 'wrong-pass')).status).toBe(401);
      const limited = await signinRaw(m, 'gina', 'gina-pass-1');
      expect(limited.status).toBe(429);
      expect(limited.body.message).toMatch(/user name/);
      const retryAfter = Number(limited.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(2);
      // Another name from the same address still signs in (the address has 3 of its 6).
      await signin(m, 'hank', 'hank-pass-1');
      // Spraying other names from this address reaches the per-address limit: then every name is refused.
      for (const name of ['ivan', 'judy', 'karl']) expect((await signinRaw(m, name, 'wrong-pass')).status).toBe(401);
      const byAddress = await signinRaw(m, 'hank', 'hank-pass-1');
      expect(byAddress.status).toBe(429);
      expect(byAddress.body.message).toMatch(/address/);
      expect(Number(byAddress.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      // The window ends: the right password works again.
      await new Promise((r) => setTimeout(r, 2100));
      await signin(m, 'gina', 'gina-pass-1');
    });
  });
});
