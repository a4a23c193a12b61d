/**
 * Seed peers of this scheduler's cluster and the origin trigger: the first peer of a task
 * makes the scheduler call DfdaemonUpload.DownloadTask on one seed host, chosen by consistent
 * hash of the task id, so the same task lands on the same seed while the seed set is stable.
 */
import * as grpc from '@grpc/grpc-js';
import { traceMetadata } from '../common/telemetry';
import { GRPC_OPTIONS } from '../common/grpc';
import { fromGrpcError, type DragonflyError } from '../common/errors';
import type { Logger } from '../common/logger';
import { protos, type DfdaemonUploadClient, type Download } from '../proto';

export interface SeedHost {
  /** Stable key on the ring, "ip:port". */
  readonly key: string;
  readonly ip: string;
  readonly port: number;
  readonly hostname: string;
}

const VIRTUAL_NODES = 64;

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A consistent-hash ring over seed hosts (64 virtual nodes each). */
export class ConsistentHashRing<T extends { key: string }> {
  private points: { hash: number; member: T }[] = [];
  private signature = '';

  /** Rebuilds the ring when the member set changed; cheap otherwise. */
  update(members: readonly T[]): void {
    const signature = members.map((m) => m.key).sort().join(',');
    if (signature === this.signature) return;
    this.signature = signature;
    const points: { hash: number; member: T }[] = [];
    for (const member of members) for (let v = 0; v < VIRTUAL_NODES; v++) points.push({ hash: fnv1a(`${member.key}#${v}`), member });
    points.sort((a, b) => a.hash - b.hash);
    this.points = points;
  }

  get size(): number {
    return this.points.length / VIRTUAL_NODES;
  }

  /** The member owning `key`, or undefined on an empty ring. */
  pick(key: string): T | undefined {
    if (this.points.length === 0) return undefined;
    const h = fnv1a(key);
    let lo = 0;
    let hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid].hash < h) lo = mid + 1;
      else hi = mid;
    }
    return this.points[lo === this.points.length ? 0 : lo].member;
  }
}

/** Starts a seed download; resolves `onDone` when the stream ends, with the error if it failed. */
export interface SeedTrigger {
  trigger(seed: SeedHost, download: Download, onDone: (err?: DragonflyError) => void): void;
  close(): void;
}

/** The real trigger: a DfdaemonUpload client per seed host, stream drained and discarded. */
export class GrpcSeedTrigger implements SeedTrigger {
  private readonly clients = new Map<string, DfdaemonUploadClient>();

  constructor(
    private readonly logger: Logger,
    /** mTLS credentials accepting seed-peer certificates (common/tls.ts); plaintext by default for tests. */
    private readonly credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  ) {}

  private client(seed: SeedHost): DfdaemonUploadClient {
    let c = this.clients.get(seed.key);
    if (!c) {
      const Ctor = protos().dfdaemon.dfdaemon.v2.DfdaemonUpload;
      c = new Ctor(`${seed.ip.includes(':') ? `[${seed.ip}]` : seed.ip}:${seed.port}`, this.credentials, GRPC_OPTIONS);
      this.clients.set(seed.key, c);
    }
    return c;
  }

  trigger(seed: SeedHost, download: Download, onDone: (err?: DragonflyError) => void): void {
    let done = false;
    const finish = (err?: DragonflyError): void => {
      if (done) return;
      done = true;
      onDone(err);
    };
    try {
      const stream = this.client(seed).DownloadTask({ download }, traceMetadata()); // telemetry: the decision's trace context
      stream.on('data', () => undefined);
      stream.on('error', (err: unknown) => {
        this.logger.warn({ seed: seed.key, url: download.url, err: (err as Error).message }, 'seed peer download failed');
        finish(fromGrpcError(err));
      });
      stream.on('end', () => finish());
    } catch (err) {
      finish(fromGrpcError(err));
    }
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
