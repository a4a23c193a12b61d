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
 * Every peer of every run (warm-up, measured, fixed-rate) is a new (host, task) pair: no host
 * registers a task it registered before, as in a fleet where a host asks for a task once (a
 * daemon restart re-registers it; that pattern, which replaces the earlier peer of the pair and
 * orphans its children, is one extra row measured after the others).
 * Baselines in the same run, from the same client threads at the same concurrency:
 * - the stream no-op: a bare grpc-js bidi server with the scheduler's AnnouncePeer definition
 *   (its codecs) and server options that answers register and reschedule with a canned answer
 *   of the scheduler's shape, driven by
 *   the same peer workload (the transport's ceiling for it), and the same server answering
 *   register-shaped messages on long-lived streams (the per-message ceiling);
 * - a unary no-op (StatTask on an unknown task → NOT_FOUND).
 * The peers speak gRPC framing on node:http2 with the scheduler's own codec (SCHEDULER_BENCH_CLIENT=
 * grpc-js for grpc-js clients, which cost about twice the server's CPU per stream and so
 * measure mostly themselves on 2 cores). Besides wall-clock rates, the server threads' own CPU
 * time per decision (/proc/thread-self/stat) is compared, which holds on a machine shared with
 * other work. The closed loop measures saturation, where p99 is the queue's; p99 is measured
 * again in an open loop at fixed offered rates, the same for the scheduler and the no-op
 * (SCHEDULER_BENCH_RATE, else a half and a quarter of the no-op's saturated rate in the same
 * run, each at most 10,000 decisions/s). The load average at the start and end goes with every figure.
 * The scheduler thread's live heap per peer held (a full GC between runs, outside the measured
 * windows) says what finished peers cost every major GC.
 * SCHEDULER_BENCH_PROFILE=<dir> writes CPU profiles of both servers' measured runs.
 */
import * as grpc from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import * as http2 from 'node:http2';
import * as os from 'node:os';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { GRPC_OPTIONS } from '../../services/common/grpc';
import { taskIdOf } from '../../services/common/ids';
import { protos, type AnnouncePeerRequest, type AnnouncePeerRequest__Output, type AnnouncePeerResponse, type AnnouncePeerResponse__Output, type SchedulerClient } from '../../services/proto';
import { startNoOpScheduler } from './no-op-scheduler';
import { runStandalone, type BenchFigure } from './types';

const TASKS = 100;
const PEERS = 10_000;
const HOSTS = 2_000;
const CHANNELS = 4;
const CONCURRENCY = Number(process.env.SCHEDULER_BENCH_CONCURRENCY ?? 32);
const PIECES = 100;
const PIECE_LENGTH = 4 * 1024 * 1024;
const BASELINE_CALLS = 20_000;
/**
 * The fixed offered rates (decisions/s) at which p99 is measured for the scheduler and the no-op
 * alike: SCHEDULER_BENCH_RATE (comma-separated), else a half and a quarter of what the no-op
 * sustains in the same run, each at most 10,000/s (at saturation p99 measures the queue, not
 * the server).
 */
const FIXED_RATES = process.env.SCHEDULER_BENCH_RATE ? process.env.SCHEDULER_BENCH_RATE.split(',').map(Number) : undefined;
const FIXED_RATE_CAP = 10_000;
/** Length of the fixed-rate runs. */
const FIXED_SECONDS = 6;
/** Register-shaped round trips on long-lived streams against the echo server. */
const ECHO_MESSAGES = 40_000;
/** Peers played before each measured peer run (JIT and connections warm on both sides). */
const WARMUP_PEERS = 2_000;
/** Client threads playing the peers (the client side of gRPC costs about as much as the server side). */
const CLIENT_THREADS = Number(process.env.SCHEDULER_BENCH_CLIENT_THREADS ?? 1);
/** Simulated peers speak gRPC on node:http2 directly (default) or through grpc-js clients (SCHEDULER_BENCH_CLIENT=grpc-js). */
const LEAN_CLIENT = process.env.SCHEDULER_BENCH_CLIENT !== 'grpc-js';
/** Clock ticks per second of /proc stat times. */
const CLOCK_TICKS = 100;

interface ServerData {
  readonly role: 'scheduler-bench-server';
}

interface EchoData {
  readonly role: 'scheduler-bench-echo';
}

interface ClientThreadData {
  readonly role: 'scheduler-bench-client';
}

interface ClientJob {
  /**
   * baseline: unary no-op calls; peers: the peer workload (against the scheduler or the echo
   * server); messages: register-shaped messages answered on long-lived streams (echo server).
   */
  readonly mode: 'baseline' | 'peers' | 'messages';
  readonly port: number;
  /** Items from, from+step, ... below to. */
  readonly from: number;
  readonly to: number;
  readonly step: number;
  readonly concurrency: number;
  /** Peer id prefix (warm-up peers are distinct from measured ones). */
  readonly prefix?: string;
  /** peers mode: item i plays the (host, task) pair pairOf(offset + i). */
  readonly offset?: number;
  /** peers mode: peers started per second by this thread (open loop); undefined: `concurrency` peers in flight. */
  readonly rate?: number;
}

interface ClientResult {
  readonly seconds: number;
  readonly latencies: number[];
  readonly registerLatencies: number[];
  readonly rescheduleLatencies: number[];
  readonly pushed: number;
  readonly otherAnswers: number;
  /** Open loop: the latest a peer started after its slot (ms), and the seconds from first to last start. */
  readonly startLag: number;
  readonly startSeconds: number;
}

type WorkerData = ServerData | EchoData | ClientThreadData;

async function serve(): Promise<void> {
  observeGc();
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
    if (m === 'heap') parentPort?.postMessage({ heap: heapAfterGc(handle.service.store.peers.size) });
    answerStats(m);
  });
  parentPort?.postMessage({ port: handle.port, metricsPort: handle.metricsPort });
}

/**
 * The stream no-op (no-op-scheduler.ts) answering register and reschedule with a canned
 * normal_task_response of the scheduler's shape (4 candidate parents with their hosts, the
 * task). The same client against it gives the transport's ceiling for the workload; the
 * scheduler cannot beat it.
 */
async function serveEcho(): Promise<void> {
  observeGc();
  const answer = (prefix: string): AnnouncePeerResponse => ({
    normalTaskResponse: {
      candidateParents: Array.from({ length: 4 }, (_, k) => ({
        id: `${prefix}-parent-${k}`,
        priority: 'LEVEL0',
        state: 'Running',
        host: { id: `10.0.${k}.1-node-${k}`, type: 'NORMAL_HOST', hostname: `node-${k}`, ip: `10.0.${k}.1`, port: 65000, downloadPort: 65002, network: { idc: `idc-${k}`, location: `cn|r${k}|z${k}` } },
        needBackToSource: false,
        finishedPieceCount: 10,
      })),
      task: { id: taskId(0), type: 'STANDARD', url: 'http://origin/blob-0', contentLength: PIECES * PIECE_LENGTH, pieceCount: PIECES, pieceLength: PIECE_LENGTH, sizeScope: 'NORMAL', state: 'Running', peerCount: 100, hasAvailablePeer: true, responseHeader: {} },
    },
  });
  const first = answer('register');
  const second = answer('reschedule');
  const { server, port } = await startNoOpScheduler(
    (req) => (req.request === 'registerPeerRequest' ? first : req.request === 'reschedulePeerRequest' ? second : undefined),
    grpc.ServerCredentials.createInsecure(),
  );
  parentPort?.on('message', (m: unknown) => {
    if (m === 'stop') server.tryShutdown(() => parentPort?.postMessage('stopped'));
    answerStats(m);
  });
  parentPort?.postMessage({ port, metricsPort: 0 });
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

/** The scheduler thread's live heap after a full GC, beside the peers its store holds. */
interface HeapFigure {
  readonly usedBytes: number;
  readonly peers: number;
}

/** A full GC (the bench's server thread only, between runs), then the heap in use. */
function heapAfterGc(peers: number): HeapFigure {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return { usedBytes: getHeapStatistics().used_heap_size, peers };
}

function heapFigure(worker: Worker): Promise<HeapFigure> {
  return new Promise((resolve) => {
    const onMessage = (m: { heap?: HeapFigure }): void => {
      if (!m.heap) return;
      worker.off('message', onMessage);
      resolve(m.heap);
    };
    worker.on('message', onMessage);
    worker.postMessage('heap');
  });
}

interface ThreadStats {
  /** Event-loop busy and idle time so far (ms). */
  readonly elu: { readonly idle: number; readonly active: number };
  /** CPU time the thread itself used so far (ms; NaN where /proc/thread-self is missing). */
  readonly cpuMs: number;
  /** Garbage collection in this thread so far: pauses, their total (ms) and the major (mark-compact) part. */
  readonly gc: GcStats;
}

interface GcStats {
  readonly count: number;
  readonly ms: number;
  readonly majorMs: number;
}

/** This thread's garbage collection so far (a PerformanceObserver on 'gc', started by the server threads). */
const gcTotals = { count: 0, ms: 0, majorMs: 0 };

function observeGc(): void {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcTotals.count++;
      gcTotals.ms += e.duration;
      if (((e as { detail?: unknown }).detail as { kind?: number } | undefined)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) gcTotals.majorMs += e.duration;
    }
  }).observe({ entryTypes: ['gc'] });
}

const gcDelta = (a: ThreadStats, b: ThreadStats): GcStats => ({ count: b.gc.count - a.gc.count, ms: b.gc.ms - a.gc.ms, majorMs: b.gc.majorMs - a.gc.majorMs });

/** GC of a run, per 1,000 decisions. */
const gcNote = (g: GcStats, decisions: number): string =>
  `GC ${((g.ms * 1000) / Math.max(1, decisions)).toFixed(1)} ms per 1,000 decisions (${g.count} pauses, ${g.ms.toFixed(0)} ms, ${g.majorMs.toFixed(0)} ms of it mark-compact)`;

/**
 * This thread's own CPU time (user + system) from /proc/thread-self/stat: unlike wall or
 * event-loop busy time it does not grow while the thread waits for a core, so it holds on a
 * machine shared with other work.
 */
function threadCpuMs(): number {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat(5), counted after "pid (comm)": utime, stime in clock ticks.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

let profiler: Session | undefined;

/**
 * Answers 'stats' with this (server) thread's ThreadStats; with SCHEDULER_BENCH_PROFILE=<dir>,
 * 'profile-start' / 'profile-stop' write a CPU profile of the measured run to <dir>.
 */
function answerStats(m: unknown): void {
  if (m === 'stats') parentPort?.postMessage({ stats: { elu: performance.eventLoopUtilization(), cpuMs: threadCpuMs(), gc: { ...gcTotals } } satisfies ThreadStats });
  const dir = process.env.SCHEDULER_BENCH_PROFILE;
  if (!dir) return;
  if (m === 'profile-start') {
    profiler = new Session();
    profiler.connect();
    profiler.post('Profiler.enable', () => profiler?.post('Profiler.start'));
  } else if (m === 'profile-stop' && profiler) {
    profiler.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(`${dir}/scheduler-bench-${(workerData as WorkerData).role}.cpuprofile`, JSON.stringify(result.profile));
      profiler?.disconnect();
    });
  }
}

function threadStats(worker: Worker): Promise<ThreadStats> {
  return new Promise((resolve) => {
    const onMessage = (m: { stats?: ThreadStats }): void => {
      if (!m.stats) return;
      worker.off('message', onMessage);
      resolve(m.stats);
    };
    worker.on('message', onMessage);
    worker.postMessage('stats');
  });
}

/** Peers of a fixed-rate run: FIXED_SECONDS of starts at `rate` decisions/s (two per peer). */
const fixedPeers = (rate: number): number => Math.max(100, Math.round((rate / 2) * FIXED_SECONDS));

/** Where each run's (host, task) pairs start (pairOf): warm-up, measured, then the fixed-rate runs in turn. */
const MEASURED_OFFSET = WARMUP_PEERS;
const fixedOffset = (rates: readonly number[], r: number): number => WARMUP_PEERS + PEERS + rates.slice(0, r).reduce((n, rate) => n + fixedPeers(rate), 0);

/**
 * Peers of the re-registration row, run on the scheduler after every other run: each takes the
 * (host, task) pair of a measured peer (a daemon restarted and asks for its task again), so the
 * scheduler replaces that peer and orphans its children.
 */
const RESTART_PEERS = 4_000;

/**
 * The (host, task) pair of the g-th peer the bench plays (over all runs, each run taking the next
 * range of g): peers of a task arrive in bursts of 16 (a deployment rolling out), bursts of
 * different tasks interleave, and the j-th peer of a task is on host (j·7919 + 37·t) mod HOSTS,
 * a different host for each j < HOSTS, so no pair repeats for g < TASKS·HOSTS.
 */
function pairOf(g: number): { host: number; task: number } {
  if (!(g >= 0 && g < TASKS * HOSTS)) throw new Error(`peer ${g} has no new (host, task) pair left`);
  const task = Math.floor(g / 16) % TASKS;
  const j = Math.floor(g / (16 * TASKS)) * 16 + (g % 16);
  return { host: (j * 7919 + 37 * task) % HOSTS, task };
}

const taskIds: string[] = [];
/** The id dfdaemon computes for the bench's origin URL of task t (the scheduler recomputes it). */
const taskId = (t: number): string => (taskIds[t] ??= taskIdOf({ url: `http://origin/blob-${t}` }));

/**
 * The client threads, started once and kept for every phase, so each phase finds them warm
 * (JIT, connections pools) the same way.
 */
class ClientThreads {
  private readonly workers: Worker[];

  constructor(count: number) {
    this.workers = Array.from({ length: count }, () => new Worker(__filename, { workerData: { role: 'scheduler-bench-client' } satisfies ClientThreadData }));
  }

  /** Runs `job` split across the threads (item i goes to thread i % threads). */
  run(job: Omit<ClientJob, 'from' | 'step' | 'concurrency'>): Promise<ClientResult[]> {
    const n = this.workers.length;
    return Promise.all(
      this.workers.map(
        (w, k) =>
          new Promise<ClientResult>((resolve, reject) => {
            const onError = (err: Error): void => reject(err);
            w.once('error', onError);
            w.once('message', (r: ClientResult) => {
              w.off('error', onError);
              resolve(r);
            });
            w.postMessage({ ...job, from: k, step: n, concurrency: Math.ceil(CONCURRENCY / n) } satisfies ClientJob);
          }),
      ),
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function channels(port: number): SchedulerClient[] {
  const Ctor = protos().scheduler.scheduler.v2.Scheduler;
  // Distinct channel options → distinct HTTP/2 connections.
  return Array.from({ length: CHANNELS }, (_, i) => new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { ...GRPC_OPTIONS, 'bench.channel': i }));
}

/** What the peer workload needs of an AnnouncePeer stream. */
interface AnnounceStream {
  write(req: AnnouncePeerRequest): void;
  end(): void;
  on(event: 'data', fn: (r: AnnouncePeerResponse__Output) => void): this;
  on(event: 'error', fn: (err: Error) => void): this;
  on(event: 'end', fn: () => void): this;
}

/**
 * A lean AnnouncePeer client: gRPC framing straight on node:http2 with the same codec
 * (proto-loader's serializers). The simulated peers share this machine's 2 cores with the
 * scheduler, and a grpc-js client stream costs about twice what the server spends on it,
 * so with grpc-js clients the figure is mostly the load generator's.
 */
class RawAnnounceStream extends EventEmitter implements AnnounceStream {
  private pending: Buffer = Buffer.alloc(0);
  private status: string | undefined;

  constructor(
    private readonly stream: http2.ClientHttp2Stream,
    private readonly codec: grpc.MethodDefinition<AnnouncePeerRequest, AnnouncePeerResponse__Output>,
  ) {
    super();
    stream.on('response', (headers) => this.noteStatus(headers));
    stream.on('trailers', (headers: http2.IncomingHttpHeaders) => this.noteStatus(headers));
    stream.on('data', (chunk: Buffer) => this.read(chunk));
    stream.on('error', (err: Error) => this.emit('error', err));
    stream.on('end', () => {
      if (this.status !== undefined && this.status !== '0') this.emit('error', new Error(`grpc-status ${this.status}`));
      else this.emit('end');
    });
  }

  private noteStatus(headers: http2.IncomingHttpHeaders): void {
    const status = headers['grpc-status'];
    if (typeof status === 'string') this.status = status;
  }

  private read(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 5) {
      const length = this.pending.readUInt32BE(1);
      if (this.pending.length < 5 + length) return;
      const message = this.pending.subarray(5, 5 + length);
      this.pending = this.pending.subarray(5 + length);
      this.emit('data', this.codec.responseDeserialize(message));
    }
  }

  write(req: AnnouncePeerRequest): void {
    const message = this.codec.requestSerialize(req);
    const frame = Buffer.allocUnsafe(5 + message.length);
    frame[0] = 0;
    frame.writeUInt32BE(message.length, 1);
    message.copy(frame, 5);
    this.stream.write(frame);
  }

  end(): void {
    this.stream.end();
  }
}

/** CHANNELS connections to the server, each opening AnnouncePeer streams (lean or grpc-js, see LEAN_CLIENT). */
function announcers(port: number, clients: SchedulerClient[]): { open: (k: number) => AnnounceStream; close: () => void } {
  if (!LEAN_CLIENT) return { open: (k) => clients[k % CHANNELS].AnnouncePeer(), close: () => undefined };
  const codec = protos().scheduler.scheduler.v2.Scheduler.service.AnnouncePeer as unknown as grpc.MethodDefinition<AnnouncePeerRequest, AnnouncePeerResponse__Output>;
  const sessions = Array.from({ length: CHANNELS }, () => http2.connect(`http://127.0.0.1:${port}`));
  for (const s of sessions) s.on('error', () => undefined);
  return {
    open: (k) =>
      new RawAnnounceStream(
        sessions[k % CHANNELS].request({ ':method': 'POST', ':path': codec.path, 'content-type': 'application/grpc', te: 'trailers' }),
        codec,
      ),
    close: () => {
      for (const s of sessions) s.close();
    },
  };
}

/** One client thread: no-op round trips, or peers each doing register → reschedule → finish. */
async function drive(data: ClientJob): Promise<ClientResult> {
  const clients = channels(data.port);
  const streams = announcers(data.port, clients);
  const items: number[] = [];
  for (let i = data.from; i < data.to; i += data.step) items.push(i);
  const latencies: number[] = [];
  const registerLatencies: number[] = [];
  const rescheduleLatencies: number[] = [];
  let pushed = 0;
  let otherAnswers = 0;
  /** Open loop only: the latest a peer started after its slot, and when the last one started (ms). */
  let startLag = 0;
  let lastStart = 0;
  const t0 = performance.now();
  if (data.mode === 'baseline') {
    await pool(items.length, data.concurrency, async (k) => {
      const c = clients[k % CHANNELS];
      const t = performance.now();
      await call(c.StatTask.bind(c), { taskId: 'unknown' }).catch(() => undefined);
      latencies.push(performance.now() - t);
    });
  } else if (data.mode === 'messages') {
    // One long-lived stream per lane, each round trip one register-shaped message and its answer.
    const lanes = Math.min(data.concurrency, items.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: lanes }, (_, lane) => {
        const stream = streams.open(lane);
        const t = lane % TASKS;
        const base = { hostId: `10.0.0.1-node-${lane}`, taskId: taskId(t), peerId: `peer-${lane}` };
        return new Promise<void>((resolve, reject) => {
          let sentAt = 0;
          const send = (): void => {
            if (next >= items.length) {
              stream.end();
              return;
            }
            next++;
            sentAt = performance.now();
            stream.write({ ...base, registerPeerRequest: { download: { url: `http://origin/blob-${t}` } } });
          };
          stream.on('data', () => {
            latencies.push(performance.now() - sentAt);
            send();
          });
          stream.on('error', reject);
          stream.on('end', () => resolve());
          send();
        });
      }),
    );
  } else {
    /** One peer: register → answer, started, one piece, reschedule → answer, finished, half-close. */
    const play = async (k: number): Promise<void> => {
      const i = items[k];
      const { host: h, task: t } = pairOf((data.offset ?? 0) + i);
      const base = { hostId: `10.${h >> 8}.${h & 255}.1-node-${h}`, taskId: taskId(t), peerId: `${data.prefix ?? 'peer'}-${i}` };
      const stream = streams.open(k);
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
    };
    if (data.rate === undefined) {
      await pool(items.length, data.concurrency, play);
    } else {
      // Open loop: peer k starts at t0 + k / rate whether or not earlier ones got their answers,
      // so a slow server meets a queue instead of a client that politely waits (no coordinated
      // omission). Lateness of the start is tracked: a client that falls behind says so.
      const interval = 1000 / data.rate;
      const running: Promise<void>[] = [];
      let k = 0;
      await new Promise<void>((resolve) => {
        const tick = (): void => {
          const now = performance.now();
          const due = Math.min(items.length, Math.floor((now - t0) / interval) + 1);
          for (; k < due; k++) {
            startLag = Math.max(startLag, now - (t0 + k * interval));
            running.push(play(k));
          }
          if (k >= items.length) resolve();
          else setTimeout(tick, Math.max(0, t0 + k * interval - performance.now()));
        };
        tick();
      });
      lastStart = performance.now() - t0;
      await Promise.all(running);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  for (const c of clients) c.close();
  streams.close();
  return { seconds, latencies, registerLatencies, rescheduleLatencies, pushed, otherAnswers, startLag, startSeconds: lastStart / 1000 };
}

/**
 * The same peer workload straight on SchedulerService, no transport: the ceiling the
 * scheduling logic itself puts on decisions/s, and the per-decision compute latency.
 */
async function inProcess(): Promise<{ rate: number; perCpuSecond: number; p99: number }> {
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
  const cpu0 = threadCpuMs();
  const t0 = performance.now();
  for (let i = 0; i < PEERS; i++) {
    const { host: h, task: t } = pairOf(i);
    const stream = { caller: '10.0.0.1', session };
    const base = { hostId: `node-${h}`, taskId: taskId(t), peerId: `peer-${i}` };
    svc.handle(stream, msg(base, { request: 'registerPeerRequest', registerPeerRequest: { download: download(t, false) } as never }));
    const parent = last?.normalTaskResponse?.candidateParents?.[0]?.id ?? '';
    svc.handle(stream, msg(base, { request: 'downloadPeerStartedRequest', downloadPeerStartedRequest: {} }));
    svc.handle(stream, msg(base, { request: 'downloadPieceFinishedRequest', downloadPieceFinishedRequest: { piece: { number: i % PIECES, parentId: parent, length: PIECE_LENGTH, trafficType: 'REMOTE_PEER', costNs: 1e6 } } as never }));
    svc.handle(stream, msg(base, { request: 'reschedulePeerRequest', reschedulePeerRequest: { candidateParentIds: [parent] } }));
    svc.handle(stream, msg(base, { request: 'downloadPeerFinishedRequest', downloadPeerFinishedRequest: { contentLength: PIECES * PIECE_LENGTH, pieceCount: PIECES } }));
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpuSeconds = (threadCpuMs() - cpu0) / 1000;
  svc.close();
  latencies.sort((a, b) => a - b);
  return { rate: (2 * PEERS) / seconds, perCpuSecond: (2 * PEERS) / cpuSeconds, p99: percentile(latencies, 99) };
}

/** Starts a server thread; resolves with its ports once it listens. */
async function startServerThread(data: ServerData | EchoData): Promise<{ worker: Worker; port: number; metricsPort: number }> {
  const worker = new Worker(__filename, { workerData: data });
  const ports = await new Promise<{ port: number; metricsPort: number }>((resolve, reject) => {
    worker.once('message', (m: { port: number; metricsPort: number }) => resolve(m));
    worker.once('error', reject);
  });
  return { worker, ...ports };
}

async function stopServerThread(worker: Worker): Promise<void> {
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

interface PeerRun {
  readonly seconds: number;
  readonly registerLat: number[];
  readonly rescheduleLat: number[];
  readonly pushed: number;
  readonly otherAnswers: number;
  /** Open loop: the latest a peer started after its slot (ms), the seconds from first to last start. */
  readonly startLag: number;
  readonly startSeconds: number;
}

/** Latency of every decision of a run, sorted. */
const allLatencies = (r: PeerRun): number[] => [...r.registerLat, ...r.rescheduleLat].sort((a, b) => a - b);

/**
 * The peer workload on `count` peers split across the client threads: closed loop
 * (CONCURRENCY peers in flight, saturation), or open loop at `decisionsPerSecond`.
 */
async function peerRun(threads: ClientThreads, port: number, count: number, prefix: string, offset: number, decisionsPerSecond?: number): Promise<PeerRun> {
  const r0 = performance.now();
  // Two decisions per peer; the threads share the rate.
  const rate = decisionsPerSecond === undefined ? undefined : decisionsPerSecond / 2 / CLIENT_THREADS;
  const parts = await threads.run({ mode: 'peers', port, to: count, prefix, offset, rate });
  return {
    startLag: Math.max(...parts.map((r) => r.startLag)),
    startSeconds: Math.max(...parts.map((r) => r.startSeconds)),
    seconds: (performance.now() - r0) / 1000,
    registerLat: parts.flatMap((r) => r.registerLatencies),
    rescheduleLat: parts.flatMap((r) => r.rescheduleLatencies),
    pushed: parts.reduce((n, r) => n + r.pushed, 0),
    otherAnswers: parts.reduce((n, r) => n + r.otherAnswers, 0),
  };
}

export async function run(): Promise<BenchFigure[]> {
  // Wall-clock rates on a shared 2-core machine depend on what else runs: say so beside them.
  const loadAtStart = os.loadavg();
  // The stream no-op first, on its own thread, then stopped so that it costs nothing later.
  const threads = new ClientThreads(CLIENT_THREADS);
  const echo = await startServerThread({ role: 'scheduler-bench-echo' });
  let echoPeers: PeerRun;
  let echoFixed: PeerRun[];
  let fixedRates: number[];
  let echoMessages: ClientResult[];
  let echoCpuSeconds: number;
  let echoGc: GcStats;
  let echoFixedGc: GcStats;
  try {
    await peerRun(threads, echo.port, WARMUP_PEERS, 'warm', 0);
    const before = await threadStats(echo.worker);
    echo.worker.postMessage('profile-start');
    echoPeers = await peerRun(threads, echo.port, PEERS, 'peer', MEASURED_OFFSET);
    echo.worker.postMessage('profile-stop');
    const after = await threadStats(echo.worker);
    echoCpuSeconds = (after.cpuMs - before.cpuMs) / 1000;
    echoGc = gcDelta(before, after);
    const echoSaturated = (echoPeers.registerLat.length + echoPeers.rescheduleLat.length) / echoPeers.seconds;
    fixedRates = FIXED_RATES ?? [2, 4].map((d) => Math.max(100, Math.min(FIXED_RATE_CAP, Math.floor(echoSaturated / d / 100) * 100)));
    echoFixed = [];
    for (const [r, rate] of fixedRates.entries()) echoFixed.push(await peerRun(threads, echo.port, fixedPeers(rate), `fixed${r}`, fixedOffset(fixedRates, r), rate));
    echoFixedGc = gcDelta(after, await threadStats(echo.worker));
    echoMessages = await threads.run({ mode: 'messages', port: echo.port, to: ECHO_MESSAGES });
  } catch (err) {
    await threads.close();
    throw err;
  } finally {
    await stopServerThread(echo.worker);
  }
  const { worker, port, metricsPort } = await startServerThread({ role: 'scheduler-bench-server' });
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
    const baseParts = await threads.run({ mode: 'baseline', port, to: BASELINE_CALLS });
    const baseSeconds = Math.max(...baseParts.map((r) => r.seconds));
    const baseLat = baseParts.flatMap((r) => r.latencies);

    // The run, after a warm-up of the scheduler thread with other peers of the same tasks.
    await peerRun(threads, port, WARMUP_PEERS, 'warm', 0);
    const heap0 = await heapFigure(worker);
    const stats0 = await threadStats(worker);
    worker.postMessage('profile-start');
    const { seconds: runSeconds, registerLat, rescheduleLat, pushed, otherAnswers } = await peerRun(threads, port, PEERS, 'peer', MEASURED_OFFSET);
    worker.postMessage('profile-stop');
    const stats1 = await threadStats(worker);
    // The same open-loop run as the no-op's, at the same offered rate.
    const fixed: PeerRun[] = [];
    for (const [r, rate] of fixedRates.entries()) fixed.push(await peerRun(threads, port, fixedPeers(rate), `fixed${r}`, fixedOffset(fixedRates, r), rate));
    const stats2 = await threadStats(worker);
    const fixedGc = gcDelta(stats1, stats2);
    // Daemon restarts: peers re-registering (host, task) pairs of measured peers.
    const restart = await peerRun(threads, port, RESTART_PEERS, 'restart', MEASURED_OFFSET);
    const restartCpuSeconds = ((await threadStats(worker)).cpuMs - stats2.cpuMs) / 1000;
    const heap1 = await heapFigure(worker);
    const loadAtEnd = os.loadavg();
    const busySeconds = (stats1.elu.active - stats0.elu.active) / 1000;
    const busyShare = busySeconds / (busySeconds + (stats1.elu.idle - stats0.elu.idle) / 1000);
    const cpuSeconds = (stats1.cpuMs - stats0.cpuMs) / 1000;
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
    const echoAll = [...echoPeers.registerLat, ...echoPeers.rescheduleLat].sort((a, b) => a - b);
    const echoRate = echoAll.length / echoPeers.seconds;
    const echoMsgLat = echoMessages.flatMap((r) => r.latencies).sort((a, b) => a - b);
    const echoMsgRate = echoMsgLat.length / Math.max(...echoMessages.map((r) => r.seconds));
    const load = `load average ${loadAtStart.map((l) => l.toFixed(1)).join(' ')} at the start, ${loadAtEnd.map((l) => l.toFixed(1)).join(' ')} at the end, ${os.cpus().length} cores`;
    const note = `${PEERS} peers on ${TASKS} tasks, ${HOSTS} hosts, each measured peer a new host+task pair, ${CLIENT_THREADS} client threads × ${CHANNELS} connections (${LEAN_CLIENT ? 'gRPC framing on node:http2' : 'grpc-js clients'}), ${CONCURRENCY} peers in flight (closed loop, saturation); scheduler in its own worker thread; ${pushed} pushed parent updates, ${otherAnswers} non-parent answers; ${load}`;
    const openLoop = (r: PeerRun, all: readonly number[]): string =>
      `${all.length} decisions, peers started at ${(all.length / Math.max(r.startSeconds, 1e-3)).toFixed(0)}/s (latest start ${r.startLag.toFixed(1)} ms late), p50 ${percentile(all, 50).toFixed(2)} ms, p90 ${percentile(all, 90).toFixed(2)} ms, max ${all[all.length - 1]?.toFixed(1)} ms, ${r.otherAnswers} non-parent answers`;
    const echo = { baselineName: 'stream no-op (grpc-js bidi echo server, same client and workload)' };
    const unary = { baselineName: 'gRPC unary no-op (StatTask unknown)' };
    const fixedDecisions = (runs: readonly PeerRun[]): number => runs.reduce((n, r) => n + r.registerLat.length + r.rescheduleLat.length, 0);
    const fixedGcNote = `during the fixed-rate runs (all rates together): scheduler ${gcNote(fixedGc, fixedDecisions(fixed))}, no-op ${gcNote(echoFixedGc, fixedDecisions(echoFixed))}`;
    const fixedFigures = fixedRates.map((rate, r): BenchFigure => {
      const ours = allLatencies(fixed[r]);
      const theirs = allLatencies(echoFixed[r]);
      const p99 = percentile(ours, 99);
      const how = FIXED_RATES === undefined ? `${r === 0 ? 'half' : 'a quarter'} of the no-op's saturated ${echoRate.toFixed(0)}/s, at most ${FIXED_RATE_CAP.toLocaleString('en-US')}/s` : 'SCHEDULER_BENCH_RATE';
      return {
        area: 'scheduler',
        name: `decision latency p99 at a fixed offered rate of ${rate.toLocaleString('en-US')} decisions/s`,
        value: p99,
        unit: 'ms',
        ...echo,
        baselineValue: percentile(theirs, 99),
        baselineUnit: 'ms',
        goal: 'p99 ≤ 5 ms',
        met: p99 <= 5,
        note: `each peer a new host+task pair; open loop at ${rate} decisions/s offered (${how}) for ${FIXED_SECONDS} s, same client; scheduler: ${openLoop(fixed[r], ours)}; no-op: ${openLoop(echoFixed[r], theirs)}; ${fixedGcNote}; ${load}`,
      };
    });
    return [
      { area: 'scheduler', name: 'schedule decisions (register + reschedule answers)', value: rate, unit: 'decisions/s', ...echo, baselineValue: echoRate, baselineUnit: 'decisions/s', goal: '≥ 10,000 decisions/s', met: rate >= 10_000, note },
      {
        area: 'scheduler',
        name: 're-registration of an existing host+task (daemon restarts): decisions',
        value: allLatencies(restart).length / restart.seconds,
        unit: 'decisions/s',
        baselineName: 'the scheduler, same run, each peer a new host+task pair',
        baselineValue: rate,
        baselineUnit: 'decisions/s',
        note: `${RESTART_PEERS} peers after the other runs, each on the host+task of a measured peer, which it replaces (its children orphaned); ${restart.pushed} pushed parent updates (${((restart.pushed * PEERS) / RESTART_PEERS).toFixed(0)} per ${PEERS} peers, against ${pushed} in the measured run), ${restart.otherAnswers} non-parent answers; ${((allLatencies(restart).length) / restartCpuSeconds).toFixed(0)} decisions per CPU-second of the scheduler thread (against ${(decisions / cpuSeconds).toFixed(0)}); p99 ${percentile(allLatencies(restart), 99).toFixed(2)} ms; ${load}`,
      },
      { area: 'scheduler', name: 'decision latency p50 (all decisions)', value: percentile(all, 50), unit: 'ms', ...echo, baselineValue: percentile(echoAll, 50), baselineUnit: 'ms', note },
      { area: 'scheduler', name: 'decision latency p99 (all decisions, at saturation)', value: p99, unit: 'ms', ...echo, baselineValue: percentile(echoAll, 99), baselineUnit: 'ms', note },
      ...fixedFigures,
      {
        area: 'scheduler',
        name: 'stream no-op: message round trips on open streams',
        value: echoMsgRate,
        unit: 'messages/s',
        ...unary,
        baselineValue: BASELINE_CALLS / baseSeconds,
        baselineUnit: 'calls/s',
        note: `register-shaped request → normal_task_response-shaped answer, ${CONCURRENCY} streams each with one message in flight; p50 ${percentile(echoMsgLat, 50).toFixed(2)} ms, p99 ${percentile(echoMsgLat, 99).toFixed(2)} ms (unary no-op p50 ${percentile(baseLat, 50).toFixed(2)} ms, p99 ${percentile(baseLat, 99).toFixed(2)} ms)`,
      },
      {
        area: 'scheduler',
        name: 'decisions per CPU-second of the scheduler thread (gRPC included)',
        value: decisions / cpuSeconds,
        unit: 'decisions/s',
        baselineName: 'stream no-op server thread, same workload',
        baselineValue: echoAll.length / echoCpuSeconds,
        baselineUnit: 'decisions/s',
        note: `the server thread's own CPU time (/proc/thread-self/stat), which does not count time spent waiting for a core: what one core given to the scheduler would serve; scheduler ${cpuSeconds.toFixed(2)} s CPU for ${decisions} decisions, no-op ${echoCpuSeconds.toFixed(2)} s for ${echoAll.length}; event loop busy ${(busyShare * 100).toFixed(0)}% of the ${runSeconds.toFixed(1)} s run; scheduler ${gcNote(gcDelta(stats0, stats1), decisions)}, no-op ${gcNote(echoGc, echoAll.length)}; ${load}`,
      },
      {
        area: 'scheduler',
        name: 'scheduler heap per peer held (after a full GC)',
        value: (heap1.usedBytes - heap0.usedBytes) / Math.max(1, heap1.peers - heap0.peers),
        unit: 'bytes',
        note: `live heap of the scheduler thread, after the warm-up: ${(heap0.usedBytes / 2 ** 20).toFixed(1)} MiB with ${heap0.peers} peers held, after every run: ${(heap1.usedBytes / 2 ** 20).toFixed(1)} MiB with ${heap1.peers} (finished peers stay until peerTTL, so this is what each major GC walks)`,
      },
      { area: 'scheduler', name: '1-min load average at the end of the run (2 cores shared with other work)', value: loadAtEnd[0], unit: '', note: load },
      {
        area: 'scheduler',
        name: 'scheduling logic alone, per CPU-second (same workload on SchedulerService, no gRPC)',
        value: logic.perCpuSecond,
        unit: 'decisions/s',
        note: `${logic.rate.toFixed(0)} decisions per wall-clock second; p99 compute per decision ${logic.p99.toFixed(3)} ms (register and reschedule decisions plus pushes and wake-ups they cause)`,
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
    await threads.close();
    await stopServerThread(worker);
  }
}

const role = isMainThread ? undefined : (workerData as WorkerData | undefined)?.role;
if (role === 'scheduler-bench-server') {
  void serve();
} else if (role === 'scheduler-bench-echo') {
  void serveEcho();
} else if (role === 'scheduler-bench-client') {
  parentPort?.on('message', (job: ClientJob) => void drive(job).then((r) => parentPort?.postMessage(r)));
} else if (require.main === module) {
  runStandalone(run);
}
