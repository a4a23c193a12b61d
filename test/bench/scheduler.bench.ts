/**
 * Scheduler decision throughput and latency over real gRPC.
 *
 * The scheduler runs in a worker thread (its own event loop); client worker threads
 * (SCHEDULER_BENCH_CLIENT_THREADS, default 1) play 10,000 peers on 100 tasks, one AnnouncePeer
 * stream per peer, multiplexed over a few channels each, with bounded concurrency in total
 * (SCHEDULER_BENCH_CONCURRENCY, default 32). Each task first gets a seed peer fetching from the
 * origin. Each peer: register → first answer (decision 1), download_peer_started, one piece
 * from its first parent (so it joins the parent pool and the scheduler pushes it to others),
 * reschedule blaming that parent → answer (decision 2), download_peer_finished, half-close.
 * Baseline in the same run: a no-op gRPC round trip (StatTask on an unknown task → NOT_FOUND)
 * at the same concurrency.
 */
import * as grpc from '@grpc/grpc-js';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { GRPC_OPTIONS } from '../../services/common/grpc';
import { taskIdOf } from '../../services/common/ids';
import { protos, type AnnouncePeerRequest__Output, type AnnouncePeerResponse, type AnnouncePeerResponse__Output, type SchedulerClient } from '../../services/proto';
import { runStandalone, type BenchFigure } from './types';

const TASKS = 100;
const PEERS = 10_000;
const HOSTS = 2_000;
const CHANNELS = 4;
const CONCURRENCY = Number(process.env.SCHEDULER_BENCH_CONCURRENCY ?? 32);
const PIECES = 100;
const PIECE_LENGTH = 4 * 1024 * 1024;
const BASELINE_CALLS = 20_000;
/** Client threads playing the peers (the client side of gRPC costs about as much as the server side). */
const CLIENT_THREADS = Number(process.env.SCHEDULER_BENCH_CLIENT_THREADS ?? 1);

interface ServerData {
  readonly role: 'scheduler-bench-server';
}

interface ClientData {
  readonly role: 'scheduler-bench-client';
  readonly mode: 'baseline' | 'peers';
  readonly port: number;
  /** Items from, from+step, ... below to. */
  readonly from: number;
  readonly to: number;
  readonly step: number;
  readonly concurrency: number;
}

interface ClientResult {
  readonly seconds: number;
  readonly latencies: number[];
  readonly registerLatencies: number[];
  readonly rescheduleLatencies: number[];
  readonly pushed: number;
  readonly otherAnswers: number;
}

type WorkerData = ServerData | ClientData;

async function serve(): Promise<void> {
  const { parseConfig } = await import('../../services/common/config');
  const { silentLogger } = await import('../../services/common/logger');
  const { startScheduler } = await import('../../services/scheduler/server');
  // Every simulated host calls from loopback: the per-address stream cap is lifted, and the
  // seed hosts (127.0.0.1, ports 65000-65009) are trusted the way a manager would list them.
  const config = parseConfig('scheduler', { security: { insecure: true },
    server: { port: 0, listenIP: '127.0.0.1' },
    scheduler: { limits: { streamsPerHost: 1_000_000 } },
    seedPeer: { addrs: Array.from({ length: 10 }, (_, s) => `127.0.0.1:${65000 + s}`) },
    metrics: { enable: true, addr: '127.0.0.1:0' },
  });
  const handle = await startScheduler(config, { logger: silentLogger() });
  parentPort?.on('message', (m: unknown) => {
    if (m === 'stop') void handle.stop().then(() => parentPort?.postMessage('stopped'));
    if (m === 'elu') parentPort?.postMessage({ elu: performance.eventLoopUtilization() });
  });
  parentPort?.postMessage({ port: handle.port, metricsPort: handle.metricsPort });
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function call<Req, Res>(fn: (req: Req, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => unknown, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, new grpc.Metadata(), {}, (err, res) => (err ? reject(err) : resolve(res as Res))));
}

/** Runs `count` jobs with at most `limit` in flight. */
async function pool(count: number, limit: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, count) }, async () => {
    while (next < count) await job(next++);
  });
  await Promise.all(lanes);
}

/**
 * Reads dragonfly_scheduler_schedule_duration_milliseconds from the scheduler's /metrics: the
 * upper bound of the bucket holding quantile q, or the observation count when q < 0.
 */
async function serverDecisionPercentile(metricsPort: number, q: number): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text());
  const buckets: { le: number; count: number }[] = [];
  for (const m of text.matchAll(/^dragonfly_scheduler_schedule_duration_milliseconds_bucket\{le="([^"]+)"[^}]*\} (\d+)/gm)) {
    buckets.push({ le: m[1] === '+Inf' ? Infinity : Number(m[1]), count: Number(m[2]) });
  }
  const total = buckets.length > 0 ? buckets[buckets.length - 1].count : 0;
  if (q < 0) return total;
  return buckets.find((b) => b.count >= q * total)?.le ?? NaN;
}

interface Elu {
  readonly idle: number;
  readonly active: number;
}

/** The scheduler thread's event-loop busy/idle time so far (ms). */
function schedulerElu(worker: Worker): Promise<Elu> {
  return new Promise((resolve) => {
    const onMessage = (m: { elu?: Elu }): void => {
      if (!m.elu) return;
      worker.off('message', onMessage);
      resolve(m.elu);
    };
    worker.on('message', onMessage);
    worker.postMessage('elu');
  });
}

const taskIds: string[] = [];
/** The id dfdaemon computes for the bench's origin URL of task t (the scheduler recomputes it). */
const taskId = (t: number): string => (taskIds[t] ??= taskIdOf({ url: `http://origin/blob-${t}` }));

function runClient(data: ClientData): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(__filename, { workerData: data });
    w.once('message', (r: ClientResult) => {
      resolve(r);
      void w.terminate();
    });
    w.once('error', reject);
  });
}

function channels(port: number): SchedulerClient[] {
  const Ctor = protos().scheduler.scheduler.v2.Scheduler;
  // Distinct channel options → distinct HTTP/2 connections.
  return Array.from({ length: CHANNELS }, (_, i) => new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { ...GRPC_OPTIONS, 'bench.channel': i }));
}

/** One client thread: no-op round trips, or peers each doing register → reschedule → finish. */
async function drive(data: ClientData): Promise<ClientResult> {
  const clients = channels(data.port);
  const items: number[] = [];
  for (let i = data.from; i < data.to; i += data.step) items.push(i);
  const latencies: number[] = [];
  const registerLatencies: number[] = [];
  const rescheduleLatencies: number[] = [];
  let pushed = 0;
  let otherAnswers = 0;
  const t0 = performance.now();
  if (data.mode === 'baseline') {
    await pool(items.length, data.concurrency, async (k) => {
      const c = clients[k % CHANNELS];
      const t = performance.now();
      await call(c.StatTask.bind(c), { taskId: 'unknown' }).catch(() => undefined);
      latencies.push(performance.now() - t);
    });
  } else {
    await pool(items.length, data.concurrency, async (k) => {
      const i = items[k];
      const c = clients[k % CHANNELS];
      // Peers of a task arrive in bursts of 16 (a deployment rolling out), bursts of different tasks interleave.
      const t = Math.floor(i / 16) % TASKS;
      const h = (i * 7919) % HOSTS;
      const base = { hostId: `10.${h >> 8}.${h & 255}.1-node-${h}`, taskId: taskId(t), peerId: `peer-${i}` };
      const stream = c.AnnouncePeer();
      await new Promise<void>((resolve, reject) => {
        let phase: 'register' | 'reschedule' | 'done' = 'register';
        let sentAt = performance.now();
        let blamed = '';
        stream.on('data', (r: AnnouncePeerResponse__Output) => {
          const now = performance.now();
          const parents = r.normalTaskResponse?.candidateParents.map((p) => p.id) ?? [];
          if (phase === 'register') {
            registerLatencies.push(now - sentAt);
            if (r.response !== 'normalTaskResponse' || parents.length === 0) {
              otherAnswers++;
              phase = 'done';
              stream.end();
              return;
            }
            blamed = parents[0];
            stream.write({ ...base, downloadPeerStartedRequest: {} });
            stream.write({ ...base, downloadPieceFinishedRequest: { piece: { number: i % PIECES, parentId: blamed, length: PIECE_LENGTH, trafficType: 'REMOTE_PEER', costNs: 1e6 } } });
            phase = 'reschedule';
            sentAt = performance.now();
            stream.write({ ...base, reschedulePeerRequest: { candidateParentIds: [blamed] } });
          } else if (phase === 'reschedule') {
            // A push sent before the reschedule was handled still lists the blamed parent.
            if (parents.includes(blamed)) {
              pushed++;
              return;
            }
            rescheduleLatencies.push(now - sentAt);
            if (r.response !== 'normalTaskResponse') otherAnswers++;
            phase = 'done';
            stream.write({ ...base, downloadPeerFinishedRequest: { contentLength: PIECES * PIECE_LENGTH, pieceCount: PIECES } });
            stream.end();
          } else {
            pushed++;
          }
        });
        stream.on('error', reject);
        stream.on('end', () => resolve());
        sentAt = performance.now();
        stream.write({ ...base, registerPeerRequest: { download: { url: `http://origin/blob-${t}` } } });
      });
    });
  }
  const seconds = (performance.now() - t0) / 1000;
  for (const c of clients) c.close();
  return { seconds, latencies, registerLatencies, rescheduleLatencies, pushed, otherAnswers };
}

/**
 * The same peer workload straight on SchedulerService, no transport: the ceiling the
 * scheduling logic itself puts on decisions/s, and the per-decision compute latency.
 */
async function inProcess(): Promise<{ rate: number; p99: number }> {
  const { silentLogger } = await import('../../services/common/logger');
  const { ResourceStore } = await import('../../services/scheduler/resource/store');
  const { SchedulerService } = await import('../../services/scheduler/service');
  const settings = { candidateParentLimit: 4, filterParentLimit: 40, defaultUploadLimit: 50, backToSourceCount: 3, retryLimit: 5, retryBackToSourceLimit: 4, retryIntervalMs: 500, seedPeerEnabled: true };
  const latencies: number[] = [];
  const seeds = Array.from({ length: 10 }, (_, s) => ({ key: `10.0.0.1:${65100 + s}`, ip: '10.0.0.1', port: 65100 + s, hostname: `seed-${s}` }));
  const svc = new SchedulerService({
    store: new ResourceStore(),
    settings: () => settings,
    managerSeeds: () => seeds,
    trigger: { trigger: () => undefined, close: () => undefined },
    logger: silentLogger(),
    events: { registerPeer: () => undefined, scheduleDuration: (ms) => latencies.push(ms), backToSource: () => undefined, traffic: () => undefined, announceHost: () => undefined },
  });
  const announce = (id: string, type: 'NORMAL_HOST' | 'SUPER_HOST', h: number): void => {
    svc.announceHost({
      host: { id, type, hostname: id, ip: '10.0.0.1', port: type === 'SUPER_HOST' ? 65100 + h : 65000, downloadPort: 65002, network: { idc: `idc-${h % 4}`, location: `cn|r${h % 3}|z${h % 7}`, maxTxBandwidth: 0, txBandwidth: 0 }, schedulerClusterId: 1, disableShared: false, proxyPort: 0, concurrentUploadLimit: type === 'SUPER_HOST' ? 500 : 50, concurrentUploadCount: 0, uploadCount: 0, uploadFailedCount: 0 },
      intervalMs: 600_000,
    }, '10.0.0.1');
  };
  for (let h = 0; h < HOSTS; h++) announce(`node-${h}`, 'NORMAL_HOST', h);
  for (let s = 0; s < 10; s++) announce(`seed-${s}`, 'SUPER_HOST', s);
  let last: AnnouncePeerResponse | undefined;
  const session = { send: (r: AnnouncePeerResponse) => (last = r), fail: (e: Error) => { throw e; } };
  const msg = (base: { hostId: string; taskId: string; peerId: string }, body: Partial<AnnouncePeerRequest__Output>): AnnouncePeerRequest__Output => ({ ...base, ...body });
  const download = (t: number, seed: boolean) => ({ url: `http://origin/blob-${t}`, needBackToSource: seed, filteredQueryParams: [], requestHeader: {} });
  for (let t = 0; t < TASKS; t++) {
    const stream = { caller: '10.0.0.1', session };
    const base = { hostId: `seed-${t % 10}`, taskId: taskId(t), peerId: `seed-peer-${t}` };
    svc.handle(stream, msg(base, { request: 'registerPeerRequest', registerPeerRequest: { download: download(t, true) } as never }));
    svc.handle(stream, msg(base, { request: 'downloadPeerBackToSourceStartedRequest', downloadPeerBackToSourceStartedRequest: { contentLength: PIECES * PIECE_LENGTH, pieceLength: PIECE_LENGTH, responseHeader: {} } }));
  }
  latencies.length = 0;
  const t0 = performance.now();
  for (let i = 0; i < PEERS; i++) {
    const t = Math.floor(i / 16) % TASKS;
    const stream = { caller: '10.0.0.1', session };
    const base = { hostId: `node-${(i * 7919) % HOSTS}`, taskId: taskId(t), peerId: `peer-${i}` };
    svc.handle(stream, msg(base, { request: 'registerPeerRequest', registerPeerRequest: { download: download(t, false) } as never }));
    const parent = last?.normalTaskResponse?.candidateParents?.[0]?.id ?? '';
    svc.handle(stream, msg(base, { request: 'downloadPeerStartedRequest', downloadPeerStartedRequest: {} }));
    svc.handle(stream, msg(base, { request: 'downloadPieceFinishedRequest', downloadPieceFinishedRequest: { piece: { number: i % PIECES, parentId: parent, length: PIECE_LENGTH, trafficType: 'REMOTE_PEER', costNs: 1e6 } } as never }));
    svc.handle(stream, msg(base, { request: 'reschedulePeerRequest', reschedulePeerRequest: { candidateParentIds: [parent] } }));
    svc.handle(stream, msg(base, { request: 'downloadPeerFinishedRequest', downloadPeerFinishedRequest: { contentLength: PIECES * PIECE_LENGTH, pieceCount: PIECES } }));
  }
  const seconds = (performance.now() - t0) / 1000;
  svc.close();
  latencies.sort((a, b) => a - b);
  return { rate: (2 * PEERS) / seconds, p99: percentile(latencies, 99) };
}

export async function run(): Promise<BenchFigure[]> {
  const worker = new Worker(__filename, { workerData: { role: 'scheduler-bench-server' } satisfies ServerData });
  const { port, metricsPort } = await new Promise<{ port: number; metricsPort: number }>((resolve, reject) => {
    worker.once('message', (m: { port: number; metricsPort: number }) => resolve(m));
    worker.once('error', reject);
  });
  const clients = channels(port);
  const clientOf = (i: number): SchedulerClient => clients[i % CHANNELS];
  try {
    // Hosts: normal peers, plus one seed host per 10 tasks.
    await pool(HOSTS, 64, async (h) => {
      const c = clientOf(h);
      await call(c.AnnounceHost.bind(c), {
        host: { id: `10.${h >> 8}.${h & 255}.1-node-${h}`, type: 'NORMAL_HOST', hostname: `node-${h}`, ip: `10.${h >> 8}.${h & 255}.1`, port: 65000, downloadPort: 65002, concurrentUploadLimit: 50, network: { idc: `idc-${h % 4}`, location: `cn|r${h % 3}|z${h % 7}` } },
        intervalMs: 600_000,
      });
    });
    const seedHosts = Array.from({ length: 10 }, (_, s) => `127.0.0.1-seed-${s}-seed`);
    for (const [s, id] of seedHosts.entries()) {
      await call(clients[0].AnnounceHost.bind(clients[0]), { host: { id, type: 'SUPER_HOST', hostname: `seed-${s}`, ip: '127.0.0.1', port: 65000 + s, downloadPort: 65002, concurrentUploadLimit: 500 }, intervalMs: 600_000 });
    }
    // One seed peer per task, fetching from the origin and holding the first 10 pieces.
    const seedStreams: grpc.ClientDuplexStream<unknown, AnnouncePeerResponse__Output>[] = [];
    await pool(TASKS, 32, async (t) => {
      const c = clientOf(t);
      const stream = c.AnnouncePeer();
      seedStreams.push(stream as grpc.ClientDuplexStream<unknown, AnnouncePeerResponse__Output>);
      const base = { hostId: seedHosts[t % seedHosts.length], taskId: taskId(t), peerId: `seed-peer-${t}-seed` };
      await new Promise<void>((resolve, reject) => {
        stream.once('data', (r: AnnouncePeerResponse__Output) => {
          if (r.response !== 'needBackToSourceResponse') return reject(new Error(`seed got ${r.response}`));
          stream.write({ ...base, downloadPeerBackToSourceStartedRequest: { contentLength: PIECES * PIECE_LENGTH, pieceLength: PIECE_LENGTH } });
          for (let n = 0; n < 10; n++) stream.write({ ...base, downloadPieceBackToSourceFinishedRequest: { piece: { number: n, length: PIECE_LENGTH, trafficType: 'BACK_TO_SOURCE' } } });
          resolve();
        });
        stream.on('error', reject);
        stream.write({ ...base, registerPeerRequest: { download: { url: `http://origin/blob-${t}`, needBackToSource: true } } });
      });
    });

    // Baseline: no-op round trips at the same concurrency, from the same client threads.
    const baseParts = await Promise.all(
      Array.from({ length: CLIENT_THREADS }, (_, k) => runClient({ role: 'scheduler-bench-client', mode: 'baseline', port, from: k, to: BASELINE_CALLS, step: CLIENT_THREADS, concurrency: Math.ceil(CONCURRENCY / CLIENT_THREADS) })),
    );
    const baseSeconds = Math.max(...baseParts.map((r) => r.seconds));
    const baseLat = baseParts.flatMap((r) => r.latencies);

    // The run: peers split across the client threads (peer i goes to thread i % threads).
    const elu0 = await schedulerElu(worker);
    const r0 = performance.now();
    const parts = await Promise.all(
      Array.from({ length: CLIENT_THREADS }, (_, k) => runClient({ role: 'scheduler-bench-client', mode: 'peers', port, from: k, to: PEERS, step: CLIENT_THREADS, concurrency: Math.ceil(CONCURRENCY / CLIENT_THREADS) })),
    );
    const runSeconds = (performance.now() - r0) / 1000;
    const elu1 = await schedulerElu(worker);
    const busySeconds = (elu1.active - elu0.active) / 1000;
    const busyShare = busySeconds / (busySeconds + (elu1.idle - elu0.idle) / 1000);
    const registerLat = parts.flatMap((r) => r.registerLatencies);
    const rescheduleLat = parts.flatMap((r) => r.rescheduleLatencies);
    const pushed = parts.reduce((n, r) => n + r.pushed, 0);
    const otherAnswers = parts.reduce((n, r) => n + r.otherAnswers, 0);
    for (const s of seedStreams) s.end();

    const serverP99 = await serverDecisionPercentile(metricsPort, 0.99);
    const serverCount = await serverDecisionPercentile(metricsPort, -1);
    const logic = await inProcess();
    const decisions = registerLat.length + rescheduleLat.length;
    const all = [...registerLat, ...rescheduleLat].sort((a, b) => a - b);
    registerLat.sort((a, b) => a - b);
    rescheduleLat.sort((a, b) => a - b);
    baseLat.sort((a, b) => a - b);
    const rate = decisions / runSeconds;
    const p99 = percentile(all, 99);
    const note = `${PEERS} peers on ${TASKS} tasks, ${HOSTS} hosts, ${CLIENT_THREADS} client threads × ${CHANNELS} channels, ${CONCURRENCY} peers in flight; scheduler in its own worker thread; ${pushed} pushed parent updates, ${otherAnswers} non-parent answers`;
    const baseline = { baselineName: 'gRPC no-op round trip (StatTask unknown)' };
    return [
      { area: 'scheduler', name: 'schedule decisions (register + reschedule answers)', value: rate, unit: 'decisions/s', ...baseline, baselineValue: BASELINE_CALLS / baseSeconds, baselineUnit: 'calls/s', goal: '≥ 10,000 decisions/s', met: rate >= 10_000, note },
      { area: 'scheduler', name: 'decision latency p50 (all decisions)', value: percentile(all, 50), unit: 'ms', ...baseline, baselineValue: percentile(baseLat, 50), baselineUnit: 'ms', note },
      { area: 'scheduler', name: 'decision latency p99 (all decisions)', value: p99, unit: 'ms', ...baseline, baselineValue: percentile(baseLat, 99), baselineUnit: 'ms', goal: 'p99 ≤ 5 ms', met: p99 <= 5, note },
      {
        area: 'scheduler',
        name: 'decisions per busy second of the scheduler thread (gRPC included)',
        value: decisions / busySeconds,
        unit: 'decisions/s',
        note: `scheduler event loop busy ${(busyShare * 100).toFixed(0)}% of the run (${busySeconds.toFixed(1)} s of ${runSeconds.toFixed(1)} s); on a shared machine busy time includes time the thread was preempted`,
      },
      {
        area: 'scheduler',
        name: 'scheduling logic alone (same workload on SchedulerService, no gRPC)',
        value: logic.rate,
        unit: 'decisions/s',
        note: `p99 compute per decision ${logic.p99.toFixed(3)} ms (register and reschedule decisions plus pushes and wake-ups they cause)`,
      },
      {
        area: 'scheduler',
        name: 'decision compute time inside the scheduler p99 (histogram bucket bound)',
        value: serverP99,
        unit: 'ms',
        note: `${serverCount} decisions observed by dragonfly_scheduler_schedule_duration_milliseconds (pushes and waits included)`,
      },
      { area: 'scheduler', name: 'register → first answer p50 / p99', value: percentile(registerLat, 50), unit: 'ms', note: `p99 ${percentile(registerLat, 99).toFixed(2)} ms` },
      { area: 'scheduler', name: 'reschedule round trip p50 / p99', value: percentile(rescheduleLat, 50), unit: 'ms', note: `p99 ${percentile(rescheduleLat, 99).toFixed(2)} ms` },
    ];
  } finally {
    for (const c of clients) c.close();
    worker.postMessage('stop');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => resolve(), 3000);
      worker.once('message', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    await worker.terminate();
  }
}

const role = isMainThread ? undefined : (workerData as WorkerData | undefined)?.role;
if (role === 'scheduler-bench-server') {
  void serve();
} else if (role === 'scheduler-bench-client') {
  void drive(workerData as ClientData).then((r) => parentPort?.postMessage(r));
} else if (require.main === module) {
  runStandalone(run);
}
