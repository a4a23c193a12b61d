/** The repository contract, run against SQLite (unit) and MariaDB (integration). */
import { ConflictError, NotFoundError } from '../../../services/common/errors';
import { seedStore } from '../../../services/manager/auth';
import type { ManagerStore } from '../../../services/manager/store/types';

const scopes = { idc: '', location: '', cidrs: [], hostnames: [] };

export function storeSuite(name: string, open: () => Promise<ManagerStore>, reopen: () => Promise<ManagerStore>): void {
  describe(`ManagerStore on ${name}`, () => {
    let store: ManagerStore;
    beforeAll(async () => {
      store = await open();
      await seedStore(store, 'dragonfly');
    });
    afterAll(async () => {
      await store?.close();
    });

    test('first start seeds root, roles and cluster-1 (id 1, linked, default)', async () => {
      const root = await store.getUserByName('root');
      expect(root).toBeDefined();
      expect(await store.rolesOf(root!.id)).toEqual(['root']);
      expect(await store.listRoles()).toEqual(['root', 'guest']);
      const c = await store.getCluster(1);
      expect(c?.schedulerCluster).toMatchObject({ name: 'cluster-1', isDefault: true, config: { candidate_parent_limit: 4, filter_parent_limit: 40 }, clientConfig: { load_limit: 200 } });
      expect(c?.seedPeerCluster).toMatchObject({ id: 1, name: 'cluster-1' });
      expect(await store.seedPeerClusterIdsOf(1)).toEqual([1]);
    });

    test('seeding twice changes nothing', async () => {
      expect(await seedStore(store, 'dragonfly')).toBe('unchanged');
      expect((await store.listUsers()).total).toBe(1);
      expect((await store.listSchedulerClusters({})).total).toBe(1);
    });

    test('createCluster: both halves share an id; explicit id; duplicate name or id → Conflict', async () => {
      const b = await store.createCluster({ name: 'cluster-b', bio: 'b', config: { candidate_parent_limit: 4 }, clientConfig: { load_limit: 100 }, scopes: { ...scopes, idc: 'cluster-2' }, isDefault: false }, { name: 'cluster-b', bio: 'b', config: { load_limit: 10 } });
      expect(b.schedulerCluster.id).toBe(2);
      expect(b.seedPeerCluster?.id).toBe(2);
      expect(b.schedulerCluster.scopes.idc).toBe('cluster-2');
      const c = await store.createCluster({ name: 'cluster-c', bio: '', config: {}, clientConfig: {}, scopes, isDefault: false }, { name: 'cluster-c', bio: '', config: {} }, 7);
      expect(c.schedulerCluster.id).toBe(7);
      expect(c.seedPeerCluster?.id).toBe(7);
      await expect(store.createCluster({ name: 'cluster-b', bio: '', config: {}, clientConfig: {}, scopes, isDefault: false }, { name: 'cluster-b2', bio: '', config: {} })).rejects.toBeInstanceOf(ConflictError);
      await expect(store.createCluster({ name: 'cluster-x', bio: '', config: {}, clientConfig: {}, scopes, isDefault: false }, { name: 'cluster-x', bio: '', config: {} }, 7)).rejects.toBeInstanceOf(ConflictError);
      // The failed transaction left nothing behind.
      expect((await store.listSchedulerClusters({ name: 'cluster-x' })).total).toBe(0);
      expect((await store.listSeedPeerClusters({ name: 'cluster-x' })).total).toBe(0);
    });

    test('listClusters filters by name and paginates', async () => {
      expect((await store.listClusters({ name: 'cluster-b' }, { page: 1, perPage: 10 })).items.map((c) => c.schedulerCluster.name)).toEqual(['cluster-b']);
      const p1 = await store.listClusters({}, { page: 1, perPage: 2 });
      const p2 = await store.listClusters({}, { page: 2, perPage: 2 });
      expect(p1.total).toBe(3);
      expect(p1.items.map((c) => c.schedulerCluster.id)).toEqual([1, 2]);
      expect(p2.items.map((c) => c.schedulerCluster.id)).toEqual([7]);
    });

    test('updateCluster updates both halves', async () => {
      const u = await store.updateCluster(2, { scopes: { ...scopes, idc: 'cluster-2|idc-b' }, bio: 'B' }, { config: { load_limit: 20 } });
      expect(u.schedulerCluster.scopes.idc).toBe('cluster-2|idc-b');
      expect(u.schedulerCluster.bio).toBe('B');
      expect(u.seedPeerCluster?.config).toEqual({ load_limit: 20 });
      await expect(store.updateCluster(99, { bio: 'x' }, {})).rejects.toBeInstanceOf(NotFoundError);
    });

    test('schedulers: upsert by hostname+ip+cluster, keep-alive marks, expiry', async () => {
      const s = await store.upsertScheduler({ hostname: 'sched-a', ip: '10.0.0.1', schedulerClusterId: 1, port: 8002, idc: '', location: '', features: ['schedule'], config: {} });
      expect(s.state).toBe('inactive');
      const again = await store.upsertScheduler({ hostname: 'sched-a', ip: '10.0.0.1', schedulerClusterId: 1, port: 9002, idc: 'x', location: '', features: ['schedule', 'preheat'], config: {} });
      expect(again.id).toBe(s.id);
      expect(again.port).toBe(9002);
      expect(again.features).toEqual(['schedule', 'preheat']);
      expect(await store.markScheduler({ hostname: 'sched-a', ip: '10.0.0.1', schedulerClusterId: 1 }, 'active', 1000)).toBe(true);
      expect(await store.markScheduler({ hostname: 'sched-a', ip: '10.0.0.1', schedulerClusterId: 1 }, 'active', 2000)).toBe(false);
      expect((await store.findScheduler({ hostname: 'sched-a', ip: '10.0.0.1', schedulerClusterId: 1 }))?.lastKeepAliveAt).toBe(2000);
      expect(await store.countActiveSchedulers()).toBe(1);
      await expect(store.markScheduler({ hostname: 'nope', ip: '1.1.1.1', schedulerClusterId: 1 }, 'active', 1)).rejects.toBeInstanceOf(NotFoundError);
      expect(await store.expireSchedulers(1500)).toBe(0);
      expect(await store.expireSchedulers(2500)).toBe(1);
      expect((await store.listSchedulers({ state: 'active' })).total).toBe(0);
      // Same host in another cluster is another scheduler.
      const other = await store.upsertScheduler({ hostname: 'sched-a', ip: '10.0.0.1', schedulerClusterId: 2, port: 8002, idc: '', location: '', features: [], config: {} });
      expect(other.id).not.toBe(s.id);
      expect((await store.listSchedulers({ schedulerClusterId: 2 })).items.map((x) => x.id)).toEqual([other.id]);
    });

    test('seed peers: upsert, mark, delete', async () => {
      const p = await store.upsertSeedPeer({ hostname: 'seed-a', ip: '10.0.0.2', seedPeerClusterId: 1, type: 'super', port: 65000, downloadPort: 65002, idc: '', location: '' });
      expect(await store.markSeedPeer({ hostname: 'seed-a', ip: '10.0.0.2', seedPeerClusterId: 1 }, 'active', Date.now())).toBe(true);
      expect((await store.listSeedPeers({ seedPeerClusterId: 1, state: 'active' })).items.map((x) => x.id)).toEqual([p.id]);
      await store.deleteSeedPeer(p.id);
      await expect(store.deleteSeedPeer(p.id)).rejects.toBeInstanceOf(NotFoundError);
    });

    test('deleteCluster removes its schedulers, link and own seed-peer cluster', async () => {
      await store.deleteCluster(2);
      expect(await store.getCluster(2)).toBeUndefined();
      expect(await store.getSeedPeerCluster(2)).toBeUndefined();
      expect((await store.listSchedulers({ schedulerClusterId: 2 })).total).toBe(0);
      await expect(store.deleteCluster(2)).rejects.toBeInstanceOf(NotFoundError);
    });

    test('users, roles and tokens', async () => {
      const u = await store.createUser({ name: 'alice', email: 'a@example.com', passwordHash: 'x' });
      await expect(store.createUser({ name: 'alice', email: '', passwordHash: 'y' })).rejects.toBeInstanceOf(ConflictError);
      await store.addUserRole(u.id, 'guest');
      await store.addUserRole(u.id, 'guest');
      expect(await store.rolesOf(u.id)).toEqual(['guest']);
      await expect(store.addUserRole(u.id, 'wizard')).rejects.toBeInstanceOf(NotFoundError);
      await store.removeUserRole(u.id, 'guest');
      expect(await store.rolesOf(u.id)).toEqual([]);
      const t = await store.createPersonalAccessToken({ name: 't', bio: '', token: `tok-${u.id}`, scopes: ['cluster'], state: 'active', expiredAt: Date.now() + 1000, userId: u.id });
      expect((await store.findPersonalAccessToken(`tok-${u.id}`))?.id).toBe(t.id);
      const t2 = await store.updatePersonalAccessToken(t.id, { state: 'inactive' });
      expect(t2.state).toBe('inactive');
      expect(t2.scopes).toEqual(['cluster']);
      await store.deletePersonalAccessToken(t.id);
      expect(await store.getPersonalAccessToken(t.id)).toBeUndefined();
    });

    test('jobs and settings', async () => {
      const j = await store.createJob({ taskId: 'group_x', type: 'preheat', args: { url: 'http://x' }, userId: 1, deadlineAt: Date.now() + 60_000, clusters: [{ schedulerClusterId: 1 }, { schedulerClusterId: 2, state: 'FAILURE', error: 'no scheduler' }] });
      expect((await store.getJob(j.id))?.args).toEqual({ url: 'http://x' });
      expect(j.state).toBe('PENDING');
      expect(await store.pendingJobIds(10)).toEqual([j.id]);
      expect(await store.finishJobCluster(j.id, 1, { state: 'SUCCESS', result: { ok: 1 }, attempts: 1 })).toBe(true);
      // A second finisher (another manager, a late worker result) changes nothing.
      expect(await store.finishJobCluster(j.id, 1, { state: 'FAILURE', error: 'late' })).toBe(false);
      const done = (await store.getJob(j.id))!;
      expect(done.state).toBe('FAILURE');
      expect(done.clusters).toEqual([
        expect.objectContaining({ schedulerClusterId: 1, state: 'SUCCESS', result: { ok: 1 }, attempts: 1 }),
        expect.objectContaining({ schedulerClusterId: 2, state: 'FAILURE', error: 'no scheduler' }),
      ]);
      expect(await store.pendingJobIds(10)).toEqual([]);
      expect((await store.listJobs({ state: 'FAILURE' }, { page: 1, perPage: 10 })).total).toBe(1);
      await store.replacePeers(2, [{ hostId: 'h1', hostname: 'n1', type: 'normal', ip: '10.0.0.1', port: 65000, downloadPort: 65002, idc: '', location: '' }]);
      await store.replacePeers(2, [{ hostId: 'h2', hostname: 'n2', type: 'super', ip: '10.0.0.2', port: 65000, downloadPort: 65002, idc: '', location: '' }]);
      expect((await store.listPeers({ schedulerClusterId: 2 })).items.map((p) => p.hostId)).toEqual(['h2']);
      expect(await store.getOrSetSetting('k', 'v1')).toBe('v1');
      expect(await store.getOrSetSetting('k', 'v2')).toBe('v1');
    });

    test('data survives a reopen', async () => {
      await store.close();
      store = await reopen();
      expect((await store.getUserByName('alice'))?.email).toBe('a@example.com');
      expect((await store.getCluster(7))?.schedulerCluster.name).toBe('cluster-c');
      expect(await store.getOrSetSetting('k', 'v3')).toBe('v1');
    });
  });
}
