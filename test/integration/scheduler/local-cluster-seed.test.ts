/**
 * The legitimate path the trust boundary must keep open: in `npm start`'s cluster the seed
 * peer registers with the manager and announces SUPER_HOST; the scheduler accepts it only
 * because the manager lists it, triggers it for a new task, and offers it as a parent.
 */
import { readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { taskIdOf } from '../../../services/common/ids';
import { silentLogger } from '../../../services/common/logger';
import { startLocalCluster, type LocalCluster } from '../../../services/local-cluster';
import type { ListHostsResponse__Output } from '../../../services/proto/gen/scheduler/v2/ListHostsResponse';
import { HONEST_IP, PeerStream, announce, call, hostOf, schedulerClient } from './hostile';

jest.setTimeout(90_000);

describe('local cluster: the manager-registered seed peer is a SUPER_HOST', () => {
  let cluster: LocalCluster;
  let origin: http.Server;
  let workDir: string;
  const body = Buffer.alloc(5 * 1024 * 1024, 7);

  beforeAll(async () => {
    workDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'sched-local-cluster-'));
    origin = http.createServer((req, res) => {
      res.setHeader('content-length', body.length);
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    await new Promise<void>((resolve) => origin.listen(0, HONEST_IP, resolve));
    const ports = { managerRest: 0, managerGrpc: 0, managerMetrics: 0, scheduler: 0, schedulerMetrics: 0, peerGrpc: 0, peerProxy: 0, peerUpload: 0, peerMetrics: 0, seedMetrics: 0 };
    cluster = await startLocalCluster({ workDir, logger: silentLogger(), ports });
  });

  afterAll(async () => {
    await cluster?.stop();
    await new Promise<void>((resolve) => origin?.close(() => resolve()));
    await fsp.rm(workDir, { recursive: true, force: true });
  });

  test('seed accepted as SUPER_HOST, triggered for a new task and offered as its parent', async () => {
    // npm start's cluster runs mTLS: this probe presents the local peer's certificate.
    const pki = (f: string) => readFileSync(path.join(cluster.pkiDir, f));
    const creds = grpc.credentials.createSsl(pki('ca/ca.crt'), pki('peer/tls.key'), pki('peer/tls.crt'), { checkServerIdentity: () => undefined });
    const client = schedulerClient(`${HONEST_IP}:${cluster.scheduler.port}`, creds);
    try {
      let seedType: string | undefined;
      for (const end = Date.now() + 30_000; seedType !== 'SUPER_HOST' && Date.now() < end; ) {
        const { res } = await call<object, ListHostsResponse__Output>(client.ListHosts.bind(client), {});
        seedType = res?.hosts.find((h) => h.id === cluster.seed.hostId)?.type;
        if (seedType !== 'SUPER_HOST') await new Promise((r) => setTimeout(r, 200));
      }
      expect(seedType).toBe('SUPER_HOST');

      const hostId = `${HONEST_IP}-local-cluster-probe`;
      expect((await announce(client, hostOf(hostId, HONEST_IP, 47000))).err).toBeUndefined();
      const url = `http://${HONEST_IP}:${(origin.address() as AddressInfo).port}/layer.bin`;
      const s = new PeerStream(client);
      s.write({ hostId, taskId: taskIdOf({ url }), peerId: `${hostId}-p`, registerPeerRequest: { download: { url } } });
      await s.until(() => s.answers.some((a) => a.response === 'normalTaskResponse') || s.error !== undefined, 30_000);
      expect(s.error).toBeUndefined();
      expect(s.answers[0].response).toBe('waitResponse');
      const parents = s.answers.find((a) => a.response === 'normalTaskResponse')?.normalTaskResponse?.candidateParents ?? [];
      expect(parents.map((p) => p.host?.id)).toContain(cluster.seed.hostId);
      s.close();
    } finally {
      client.close();
    }
  });
});
