/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-return -- response bodies are arbitrary JSON checked field by field */
/**
 * Jobs end to end on real MariaDB and Redis: manager (own database, own key prefix), a
 * scheduler of cluster 1 consuming its BullMQ queue, a seed peer and a peer, and a test
 * registry with token auth. Cluster 2 exists but has no scheduler (a dead cluster).
 */
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { parseConfig } from '../../../services/common';
import { taskIdOf } from '../../../services/common/ids';
import { startDfdaemon, type DfdaemonHandle } from '../../../services/dfdaemon/daemon';
import type { ManagerHandle } from '../../../services/manager/server';
import { startScheduler, type SchedulerHandle } from '../../../services/scheduler/server';
import { daemonConfig, quiet, tempDir, until } from '../dfdaemon/helpers';
import { http, managerConfig, signin, startTestManager, type JsonBody } from '../../unit/manager/helpers';
import { dropDatabase, dropRedisPrefix, MYSQL, REDIS_ADDR, uniqueName } from './db';
import { startTestRegistry, type TestRegistry } from './test-registry';

jest.setTimeout(90_000);

const KiB = 1024;

describe('jobs on MariaDB + Redis', () => {
  const dbName = uniqueName('jobs');
  const prefix = `${uniqueName('jobs')}:`;
  let root: string;
  let registry: TestRegistry;
  let slowRegistry: TestRegistry;
  let manager: ManagerHandle;
  let cleanupConfig: () => void;
  let scheduler: SchedulerHandle;
  let seed: DfdaemonHandle;
  let peer: DfdaemonHandle;
  let token: string;

  const post = (body: unknown, t = token) => http(manager, 'POST', '/api/v1/jobs', t, body);
  async function finished(id: number, timeoutMs = 30_000): Promise<JsonBody> {
    let job: JsonBody;
    await until(async () => {
      job = (await http(manager, 'GET', `/api/v1/jobs/${id}`, token)).body;
      return job.state !== 'PENDING';
    }, timeoutMs);
    return job;
  }

  /** Every cluster part succeeded (a failure shows its reason). */
  function expectSuccess(job: JsonBody, clusters = 1): void {
    expect(job.result.job_states.map((s: JsonBody) => s.error ?? s.state)).toEqual(new Array(clusters).fill('SUCCESS'));
    expect(job.state).toBe('SUCCESS');
  }

  beforeAll(async () => {
    root = await tempDir('jobs');
    registry = await startTestRegistry({
      images: [
        { repository: 'team/app', layerSizes: [300 * KiB, 5 * 1024 * KiB, 64 * KiB, 1 * KiB] },
        { repository: 'team/secret', layerSizes: [128 * KiB], private: true },
      ],
      credentials: { username: 'puller', password: 'pull-pass' },
      files: { 'model.bin': randomBytes(700 * KiB) },
    });
    slowRegistry = await startTestRegistry({ images: [{ repository: 'slow/app', layerSizes: [64 * KiB, 64 * KiB, 64 * KiB, 64 * KiB] }], blobDelayMs: 1500 });
    const { config, cleanup } = managerConfig({
      database: {
        type: 'mysql',
        mysql: { ...MYSQL, dbname: dbName },
        redis: { addrs: [REDIS_ADDR], keyPrefix: prefix },
      },
      keepAlive: { timeout: '3s' },
      job: { noSchedulerTimeout: '1s', reconcileInterval: '200ms', attempts: 3 },
    });
    cleanupConfig = cleanup;
    manager = await startTestManager(config);
    await manager.store.createCluster(
      { name: 'cluster-2', bio: '', config: {}, clientConfig: {}, scopes: { idc: 'dead', location: '', cidrs: [], hostnames: [] }, isDefault: false },
      { name: 'cluster-2', bio: '', config: {} },
      2,
    );
    const managerAddr = `127.0.0.1:${manager.grpcPort}`;
    scheduler = await startScheduler(
      parseConfig('scheduler', { security: { insecure: true },
        server: { port: 0, listenIP: '127.0.0.1', advertiseIP: '127.0.0.1', host: 'sched-1' },
        manager: { addr: managerAddr, schedulerClusterID: 1, keepAlive: { interval: '200ms' } },
        dynConfig: { refreshInterval: '500ms' },
        metrics: { enable: false },
        database: { redis: { addrs: [REDIS_ADDR], keyPrefix: prefix } },
        job: { peerConcurrency: 1 },
      }),
      { logger: quiet(), managerBackoff: { initialMs: 50, maxMs: 200 } },
    );
    const netAddrs = [{ addr: managerAddr }];
    seed = await startDfdaemon(
      daemonConfig(path.join(root, 'seed'), 'jobs-seed', { scheduler: { manager: { enable: true, netAddrs, seedPeer: { enable: true, clusterID: 1, keepAlive: { interval: '200ms' } }, refreshInterval: '500ms' }, announceInterval: '500ms' } }),
      { logger: quiet() },
    );
    peer = await startDfdaemon(daemonConfig(path.join(root, 'peer'), 'jobs-peer', { scheduler: { manager: { enable: true, netAddrs, refreshInterval: '500ms' }, announceInterval: '500ms' } }), { logger: quiet() });
    await until(() => scheduler.service.store.hosts.size >= 2);
    token = await signin(manager);
  });

  afterAll(async () => {
    await peer?.stop();
    await seed?.stop();
    await scheduler?.stop();
    await manager?.stop();
    await registry?.close();
    await slowRegistry?.close();
    cleanupConfig?.();
    await dropDatabase(dbName);
    await dropRedisPrefix(prefix);
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('preheats an image (index → linux/amd64, token auth) into the seed peer; a later pull is a cache hit', async () => {
    const image = registry.image('team/app');
    const created = await post({ type: 'preheat', args: { type: 'image', url: registry.manifestUrl('team/app') }, scheduler_cluster_ids: [1] });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ type: 'preheat', state: 'PENDING', task_id: expect.stringMatching(/^group_/) });
    const job = await finished(created.body.id);
    expectSuccess(job);
    const part = job.result.job_states[0];
    expect(part).toMatchObject({ scheduler_cluster_id: 1, state: 'SUCCESS' });
    // Every amd64 layer, none of the arm64 ones, each the proxy's task id (the digest) on the seed.
    expect(part.results.tasks.map((t: JsonBody) => t.task_id).sort()).toEqual(image.layers.map((l) => l.digest.slice(7)).sort());
    for (const l of image.layers) {
      expect(seed.tasks.stat(l.digest.slice(7))?.finished).toBe(true);
      expect(registry.blobReads(l.digest)).toBeGreaterThan(0);
    }
    for (const l of image.armLayers) expect(registry.blobReads(l.digest)).toBe(0);

    // The peer pulls a layer through its registry-mirror proxy: served by the seed, not the origin.
    const before = registry.totalBlobReads();
    const layer = image.layers[1];
    const res = await fetch(`http://127.0.0.1:${peer.proxyPort}/v2/team/app/blobs/${layer.digest}?ns=${registry.host}`, { headers: { 'x-dragonfly-registry': registry.base } });
    // The proxy forwards the client's (missing) auth only to the origin; a P2P hit needs none.
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(layer.data)).toBe(true);
    expect(registry.totalBlobReads()).toBe(before);
  });

  it('a private image needs args.username/password; with them the preheat succeeds; the password is never shown', async () => {
    const anonymous = await post({ type: 'preheat', args: { type: 'image', url: registry.manifestUrl('team/secret'), platform: 'linux/arm64/v8' }, scheduler_cluster_ids: [1] });
    expect(anonymous.status).toBe(422);
    expect(anonymous.body.message).toMatch(/username/);
    const ok = await post({ type: 'preheat', args: { type: 'image', url: registry.manifestUrl('team/secret'), platform: 'linux/arm64/v8', username: 'puller', password: 'pull-pass' }, scheduler_cluster_ids: [1] });
    expect(ok.status).toBe(200);
    expect(ok.body.args.password).toBe('******');
    expect(JSON.stringify(ok.body)).not.toContain('pull-pass');
    const job = await finished(ok.body.id);
    expectSuccess(job);
    const arm = registry.image('team/secret').armLayers[0];
    expect(seed.tasks.stat(arm.digest.slice(7))?.finished).toBe(true);
  });

  it('preheats a file with tag and application into the task id dfget computes; a missing file fails after the retries', async () => {
    const url = `${registry.base}/files/model.bin`;
    const created = await post({ type: 'preheat', args: { type: 'file', url: `${url}?Expires=1&Signature=x`, tag: 't1', application: 'app1', headers: { 'x-extra': '1' } }, scheduler_cluster_ids: [1] });
    expect(created.status).toBe(200);
    const job = await finished(created.body.id);
    expectSuccess(job);
    // Signature params are filtered by default, as the proxy and dfget do.
    const taskId = taskIdOf({ url, tag: 't1', application: 'app1' });
    expect(job.result.job_states[0].results.tasks[0].task_id).toBe(taskId);
    expect(seed.tasks.stat(taskId)?.finished).toBe(true);

    const missing = await post({ type: 'preheat', args: { type: 'file', url: `${registry.base}/files/nope.bin` }, scheduler_cluster_ids: [1] });
    const failed = await finished(missing.body.id);
    expect(failed.state).toBe('FAILURE');
    expect(failed.result.job_states[0].attempts).toBe(3);
    expect(failed.result.job_states[0].error).toMatch(/preheat failed on 1 of 1 downloads: jobs-seed/);
  });

  it('get_task lists the peers holding a task; delete_task removes it everywhere; get_task then lists none', async () => {
    const layer = registry.image('team/app').layers[1];
    const taskId = layer.digest.slice(7);
    const got = await finished((await post({ type: 'get_task', args: { task_id: taskId }, scheduler_cluster_ids: [1] })).body.id);
    expectSuccess(got);
    const holders = got.result.job_states[0].results.peers.map((p: JsonBody) => p.hostname).sort();
    expect(holders).toEqual(['jobs-peer', 'jobs-seed']);

    const byUrl = await finished((await post({ type: 'get_task', args: { url: `${registry.base}/v2/team/app/blobs/${layer.digest}` }, scheduler_cluster_ids: [1] })).body.id);
    expect(byUrl.result.job_states[0].results.task_id).toBe(taskId);

    const deleted = await finished((await post({ type: 'delete_task', args: { task_id: taskId } })).body.id);
    // All clusters: cluster 1 deletes, cluster 2 has no scheduler.
    const one = deleted.result.job_states.find((s: JsonBody) => s.scheduler_cluster_id === 1);
    expect(one.state).toBe('SUCCESS');
    expect(one.results.peers.map((p: JsonBody) => p.hostname).sort()).toEqual(['jobs-peer', 'jobs-seed']);
    expect(seed.tasks.stat(taskId)).toBeUndefined();
    expect(peer.tasks.stat(taskId)).toBeUndefined();
    expect(scheduler.service.store.tasks.has(taskId)).toBe(false);

    const after = await finished((await post({ type: 'get_task', args: { task_id: taskId }, scheduler_cluster_ids: [1] })).body.id);
    expect(after.result.job_states[0].results.peers).toEqual([]);
    // "Not held" is not "unreachable": both hosts answered.
    expect(after.result.job_states[0].results.unreachable_peers).toEqual([]);
    expect(after.result.job_states[0].results.asked_peers).toBe(2);
  });

  it('sync_peers refreshes the peer inventory', async () => {
    const job = await finished((await post({ type: 'sync_peers', args: {}, scheduler_cluster_ids: [1] })).body.id);
    expectSuccess(job);
    const peers = await http(manager, 'GET', '/api/v1/peers?scheduler_cluster_id=1', token);
    expect(peers.status).toBe(200);
    expect(peers.body.map((p: JsonBody) => `${p.host_name}:${p.type}`).sort()).toEqual(['jobs-peer:normal', 'jobs-seed:super']);
  });

  it('a cluster without a live scheduler fails at once with the reason; the others still run', async () => {
    const res = await post({ type: 'sync_peers', args: {}, scheduler_cluster_ids: [1, 2] });
    expect(res.status).toBe(200);
    const dead = res.body.result.job_states.find((s: JsonBody) => s.scheduler_cluster_id === 2);
    expect(dead.state).toBe('FAILURE');
    expect(dead.error).toMatch(/scheduler cluster 2 has no live scheduler/);
    const job = await finished(res.body.id);
    expect(job.state).toBe('FAILURE');
    expect(job.result.job_states.find((s: JsonBody) => s.scheduler_cluster_id === 1)).toMatchObject({ state: 'SUCCESS' });
  });

  it('a queued job fails when its cluster\'s schedulers go away (never stuck in PENDING)', async () => {
    // Stop consuming without telling anyone: the job waits in the queue with no worker.
    await scheduler.stop();
    const res = await post({ type: 'sync_peers', args: {}, scheduler_cluster_ids: [1] });
    expect(res.body.result.job_states[0].state).toBe('FAILURE');
    expect(res.body.result.job_states[0].error).toMatch(/no live scheduler/);
    scheduler = await startScheduler(
      parseConfig('scheduler', { security: { insecure: true },
        server: { port: 0, listenIP: '127.0.0.1', advertiseIP: '127.0.0.1', host: 'sched-1' },
        manager: { addr: `127.0.0.1:${manager.grpcPort}`, schedulerClusterID: 1, keepAlive: { interval: '200ms' } },
        dynConfig: { refreshInterval: '500ms' },
        metrics: { enable: false },
        database: { redis: { addrs: [REDIS_ADDR], keyPrefix: prefix } },
        job: { peerConcurrency: 1 },
      }),
      { logger: quiet(), managerBackoff: { initialMs: 50, maxMs: 200 } },
    );
    await until(() => scheduler.service.store.hosts.size >= 2, 20_000);
  });

  it('cancel: DELETE stops a running preheat between layers and records who canceled it', async () => {
    const image = slowRegistry.image('slow/app');
    const created = await post({ type: 'preheat', args: { type: 'image', url: slowRegistry.manifestUrl('slow/app') }, scheduler_cluster_ids: [1] });
    expect(created.status).toBe(200);
    await until(async () => slowRegistry.totalBlobReads() >= 1 || (await http(manager, 'GET', `/api/v1/jobs/${created.body.id}`, token)).body.state !== 'PENDING', 20_000);
    const canceled = await http(manager, 'DELETE', `/api/v1/jobs/${created.body.id}`, token);
    expect(canceled.status).toBe(200);
    expect(canceled.body.state).toBe('FAILURE');
    expect(canceled.body.result.job_states[0].error).toBe('canceled by root');
    // The worker stops at its next step: not every layer is fetched.
    await new Promise((r) => setTimeout(r, 4000));
    expect(slowRegistry.totalBlobReads()).toBeLessThan(image.layers.length);
    expect((await http(manager, 'GET', `/api/v1/jobs/${created.body.id}`, token)).body.state).toBe('FAILURE');
  });

  it('a job past its deadline fails with the reason', async () => {
    const created = await post({ type: 'preheat', args: { type: 'image', url: slowRegistry.manifestUrl('slow/app'), scope: 'all_peers', timeout: 1 }, scheduler_cluster_ids: [1] });
    const job = await finished(created.body.id);
    expect(job.state).toBe('FAILURE');
    expect(job.result.job_states[0].error).toMatch(/deadline exceeded/);
  });

  it('bad args answer 400 naming the field', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ type: 'preheat', args: { type: 'image', url: 'not a url' } }, /args\.url/],
      [{ type: 'preheat', args: { type: 'image', url: `${registry.base}/v2/team/app/blobs/x` } }, /args\.url: an image preheat needs a manifest URL/],
      [{ type: 'preheat', args: { type: 'image', url: registry.manifestUrl('team/app'), scope: 'everyone' } }, /args\.scope/],
      [{ type: 'preheat', args: { type: 'image', url: registry.manifestUrl('team/app'), platform: 'amd64' } }, /args\.platform/],
      [{ type: 'get_task', args: {} }, /args\.task_id: give exactly one of task_id or url/],
      [{ type: 'get_task', args: { task_id: 'abc' } }, /args\.task_id/],
      [{ type: 'warm', args: {} }, /type/],
      [{ type: 'sync_peers', args: {}, scheduler_cluster_ids: [99] }, /scheduler_cluster_ids: scheduler cluster 99 does not exist/],
      [{ type: 'sync_peers', args: { bogus: 1 } }, /args\.bogus: unknown field/],
    ];
    for (const [body, message] of cases) {
      const res = await post(body);
      expect({ status: res.status, message: res.body.message }).toEqual({ status: 400, message: expect.stringMatching(message) });
    }
    const noPlatform = await post({ type: 'preheat', args: { type: 'image', url: registry.manifestUrl('team/app'), platform: 'linux/s390x' }, scheduler_cluster_ids: [1] });
    expect(noPlatform.status).toBe(400);
    expect(noPlatform.body.message).toMatch(/args\.platform: image has no linux\/s390x manifest/);
  });

  it('the open API takes a PAT with scope job and refuses one without it (403)', async () => {
    const clusterOnly = await http(manager, 'POST', '/api/v1/personal-access-tokens', token, { name: 'c', scopes: ['cluster'] });
    const jobScope = await http(manager, 'POST', '/api/v1/personal-access-tokens', token, { name: 'j', scopes: ['job'] });
    const refused = await http(manager, 'POST', '/oapi/v1/jobs', clusterOnly.body.token, { type: 'sync_peers', args: {}, scheduler_cluster_ids: [1] });
    expect(refused.status).toBe(403);
    expect(refused.body.message).toMatch(/scope job/);
    expect((await http(manager, 'GET', '/oapi/v1/jobs', clusterOnly.body.token)).status).toBe(403);
    const accepted = await http(manager, 'POST', '/oapi/v1/jobs', jobScope.body.token, { type: 'sync_peers', args: {}, scheduler_cluster_ids: [1] });
    expect(accepted.status).toBe(200);
    const listed = await http(manager, 'GET', '/oapi/v1/jobs?type=sync_peers', jobScope.body.token);
    expect(listed.status).toBe(200);
    expect(listed.body.some((j: JsonBody) => j.id === accepted.body.id)).toBe(true);
    expect((await http(manager, 'POST', '/oapi/v1/jobs', undefined, { type: 'sync_peers' })).status).toBe(401);
  });
});

describe('jobs without Redis', () => {
  it('answer 503 saying jobs need Redis and how to configure it', async () => {
    const { config, cleanup } = managerConfig();
    const m = await startTestManager(config);
    try {
      const t = await signin(m);
      const res = await http(m, 'POST', '/api/v1/jobs', t, { type: 'sync_peers', args: {} });
      expect(res.status).toBe(503);
      expect(res.body.message).toMatch(/jobs need Redis: set database\.redis\.addrs/);
    } finally {
      await m.stop();
      cleanup();
    }
  });
});
