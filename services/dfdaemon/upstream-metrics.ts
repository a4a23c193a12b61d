/**
 * The client (dfdaemon) metrics of Dragonfly's published reference, with the Rust client's
 * `dragonfly_client_` namespace: download task counters by type/tag/app/priority, concurrent
 * downloads and piece uploads, download traffic by traffic type (REMOTE_PEER = P2P,
 * BACK_TO_SOURCE = origin, LOCAL_PEER = served from this host's cache), upload traffic, task
 * durations by size level and the version. The byte counters are read from the project's own
 * counters at scrape time, so the piece path counts each byte once.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { DfdaemonMetrics } from './metrics';
import type { DownloadOptions } from './task-api';

export const CLIENT_VERSION = '0.1.0';

const TASK_LABELS = ['type', 'tag', 'app', 'priority'] as const;
type TaskLabels = Record<(typeof TASK_LABELS)[number], string>;

/** dragonfly_dfdaemon_download_bytes_total{source} → download_traffic{type}. */
const TRAFFIC_TYPE_OF_SOURCE: Record<string, string> = { remote_peer: 'REMOTE_PEER', back_to_source: 'BACK_TO_SOURCE', local_cache: 'LOCAL_PEER' };

const MiB = 1024 * 1024;
/**
 * Size level of a task, as a label with few values: 0 for an empty task, then one level per
 * power-of-four step from 1 MiB (1: ≤ 1 MiB, 2: ≤ 4 MiB, ... 7: ≤ 4 GiB, 8: larger).
 */
export function taskSizeLevel(bytes: number): string {
  if (bytes <= 0) return '0';
  let level = 1;
  for (let limit = MiB; bytes > limit && level < 8; limit *= 4) level++;
  return String(level);
}

export class ClientUpstreamMetrics {
  private readonly downloadTask: Counter<(typeof TASK_LABELS)[number]>;
  private readonly downloadTaskFailure: Counter<(typeof TASK_LABELS)[number]>;
  private readonly concurrentDownload: Gauge<(typeof TASK_LABELS)[number]>;
  private readonly duration: Histogram<'task_size_level'>;

  constructor(registry: Registry, own: DfdaemonMetrics, uploadsInFlight: () => number) {
    const registers = [registry];
    this.downloadTask = new Counter({ name: 'dragonfly_client_download_task_total', help: 'Download tasks started', labelNames: TASK_LABELS, registers });
    this.downloadTaskFailure = new Counter({ name: 'dragonfly_client_download_task_failure_total', help: 'Download tasks that failed', labelNames: TASK_LABELS, registers });
    this.concurrentDownload = new Gauge({ name: 'dragonfly_client_concurrent_download_task_total', help: 'Download tasks running', labelNames: TASK_LABELS, registers });
    new Gauge({
      name: 'dragonfly_client_concurrent_upload_piece_total',
      help: 'Piece uploads to other peers in progress',
      registers,
      collect() {
        this.set(uploadsInFlight());
      },
    });
    new Counter({
      name: 'dragonfly_client_download_traffic',
      help: 'Bytes downloaded by traffic type: REMOTE_PEER (P2P), BACK_TO_SOURCE (origin), LOCAL_PEER (this host\'s cache)',
      labelNames: ['type'],
      registers,
      async collect() {
        const values = (await own.downloadBytes.get()).values;
        this.reset();
        for (const type of Object.values(TRAFFIC_TYPE_OF_SOURCE)) this.inc({ type }, 0);
        for (const v of values) {
          const type = TRAFFIC_TYPE_OF_SOURCE[String(v.labels.source)];
          if (type && v.value > 0) this.inc({ type }, v.value);
        }
      },
    });
    new Counter({
      name: 'dragonfly_client_upload_traffic',
      help: 'Piece bytes uploaded to other peers',
      registers,
      async collect() {
        const total = (await own.uploadBytes.get()).values.reduce((n, v) => n + v.value, 0);
        this.reset();
        if (total > 0) this.inc(total);
      },
    });
    this.duration = new Histogram({
      name: 'dragonfly_client_download_task_duration_milliseconds',
      help: 'Time to finish a download task, by task size level',
      labelNames: ['task_size_level'],
      buckets: [100, 200, 500, 1000, 1500, 2000, 3000, 5000, 10_000, 20_000, 60_000, 120_000, 300_000],
      registers,
    });
    new Gauge({ name: 'dragonfly_client_version', help: 'Version of the client', labelNames: ['git_version', 'git_commit', 'platform', 'build_time'], registers }).set(
      { git_version: `v${CLIENT_VERSION}`, git_commit: '', platform: `${process.platform}/${process.arch}`, build_time: '' },
      1,
    );
  }

  /** A download task began; the returned function records how it ended. */
  downloadStarted(options: DownloadOptions): (result: { error?: Error; contentLength?: number }) => void {
    const labels: TaskLabels = { type: 'STANDARD', tag: options.tag ?? '', app: options.application ?? '', priority: `LEVEL${options.priority ?? 0}` };
    const started = Date.now();
    this.downloadTask.inc(labels);
    this.concurrentDownload.inc(labels);
    let ended = false;
    return (result) => {
      if (ended) return;
      ended = true;
      this.concurrentDownload.dec(labels);
      if (result.error) this.downloadTaskFailure.inc(labels);
      else this.duration.observe({ task_size_level: taskSizeLevel(result.contentLength ?? 0) }, Date.now() - started);
    };
  }
}
