/** dfdaemon's Prometheus metrics (registered on the program registry). */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type ByteSource = 'local_cache' | 'remote_peer' | 'back_to_source';

export interface DfdaemonMetrics {
  /** Bytes delivered or stored, by where they came from. */
  readonly downloadBytes: Counter<'source'>;
  /** local_cache bytes of hits answered from memory not yet added to downloadBytes (see recordHeldBytes). */
  readonly heldBytes: { bytes: number };
  readonly pieceDownloadSeconds: Histogram<'source'>;
  readonly pieceFailures: Counter<'reason'>;
  readonly uploadBytes: Counter;
  readonly uploadRequests: Counter<'code'>;
  readonly tasks: Gauge<'state'>;
}

const LOCAL_CACHE = { source: 'local_cache' } as const;

export function createDfdaemonMetrics(registry: Registry): DfdaemonMetrics {
  const heldBytes = { bytes: 0 };
  return {
    downloadBytes: new Counter({
      name: 'dragonfly_dfdaemon_download_bytes_total',
      help: 'Bytes downloaded or served to local clients, by source (local_cache, remote_peer, back_to_source)',
      labelNames: ['source'],
      registers: [registry],
      // Every read (scrape or get()) first takes in the held-hit bytes tallied since the last: exact whenever read.
      collect() {
        if (heldBytes.bytes === 0) return;
        const bytes = heldBytes.bytes;
        heldBytes.bytes = 0;
        this.inc(LOCAL_CACHE, bytes);
      },
    }),
    heldBytes,
    pieceDownloadSeconds: new Histogram({
      name: 'dragonfly_dfdaemon_piece_download_duration_seconds',
      help: 'Time to fetch and verify one piece, by source',
      labelNames: ['source'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    pieceFailures: new Counter({
      name: 'dragonfly_dfdaemon_piece_failures_total',
      help: 'Piece fetches that failed, by reason (digest_mismatch, http, network)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    uploadBytes: new Counter({ name: 'dragonfly_dfdaemon_upload_bytes_total', help: 'Piece bytes uploaded to other peers', registers: [registry] }),
    uploadRequests: new Counter({
      name: 'dragonfly_dfdaemon_upload_requests_total',
      help: 'Piece upload requests by HTTP status',
      labelNames: ['code'],
      registers: [registry],
    }),
    tasks: new Gauge({ name: 'dragonfly_dfdaemon_tasks', help: 'Tasks in storage, by state (finished, partial)', labelNames: ['state'], registers: [registry] }),
  };
}

/**
 * local_cache bytes of a hit answered from memory: one addition here, taken into downloadBytes
 * when it is next read (its collect), instead of a labelled increment (label hashing and
 * validation) on every hit.
 */
export function recordHeldBytes(metrics: DfdaemonMetrics, bytes: number): void {
  metrics.heldBytes.bytes += bytes;
}
