/**
 * Seed triggering and its backoff: which seed peer fetches a task nobody holds (consistent
 * hash of the task id over the seed hosts), and for how long seeds are skipped for a task
 * after they failed it.
 */
import type { Logger } from '../../common/logger';
import type { Download } from '../../proto';
import type { Host, Task } from '../resource/model';
import { ConsistentHashRing, type SeedHost, type SeedTrigger } from '../seed-peers';
import type { SchedulingSettings } from './settings';

/**
 * After a seed failed a task it is tried again after SEED_RETRY_MIN_MS, doubling with each
 * failure in a row up to SEED_FAILURE_BACKOFF_MS (upstream bans for the full 30 min at once,
 * which turned one scheduler restart into 30 minutes of origin traffic).
 */
export const SEED_RETRY_MIN_MS = 2_000;
export const SEED_FAILURE_BACKOFF_MS = 30 * 60_000;

/** How long seeds are skipped for a task after `failures` failures in a row. */
export function seedRetryDelayMs(failures: number): number {
  return failures <= 0 ? 0 : Math.min(SEED_FAILURE_BACKOFF_MS, SEED_RETRY_MIN_MS * 2 ** Math.min(failures - 1, 20));
}

export interface SeedTriggeringOptions {
  readonly trigger: SeedTrigger;
  /** Hosts that announced themselves (trusted SUPER hosts among them are seeds). */
  readonly hosts: () => Iterable<Host>;
  /** The trusted seed peers: the manager's seed peers of this cluster plus seedPeer.addrs. */
  readonly trustedSeeds: () => readonly SeedHost[];
  /** Called once a trigger ended (fetched, failed or empty-handed): waiting peers get another look. */
  readonly onSettled: (task: Task) => void;
  readonly logger: Logger;
  readonly now: () => number;
}

export class SeedTriggering {
  private readonly ring = new ConsistentHashRing<SeedHost>();

  constructor(private readonly o: SeedTriggeringOptions) {}

  /** Seed hosts: trusted SUPER hosts that announced themselves plus the trusted list. */
  seedHosts(): SeedHost[] {
    const byKey = new Map<string, SeedHost>();
    for (const h of this.o.hosts()) {
      if (h.isSeed) byKey.set(`${h.info.ip}:${h.info.port}`, { key: `${h.info.ip}:${h.info.port}`, ip: h.info.ip, port: h.info.port, hostname: h.info.hostname });
    }
    for (const s of this.o.trustedSeeds()) if (!byKey.has(s.key)) byKey.set(s.key, s);
    return [...byKey.values()];
  }

  /** Whether a seed may be asked for the task now (enabled, and not backing off after failures). */
  usable(task: Task, s: SchedulingSettings): boolean {
    return s.seedPeerEnabled && (task.seedFailedAt === undefined || this.o.now() - task.seedFailedAt > seedRetryDelayMs(task.seedFailures));
  }

  /** A seed failed the task (its trigger or its back-to-source): skip seeds for a while. */
  failed(task: Task): void {
    task.seedFailedAt = this.o.now();
    task.seedFailures++;
  }

  /** A seed finished the task: the backoff starts over. */
  succeeded(task: Task): void {
    task.seedFailures = 0;
  }

  /**
   * Asks a seed peer to fetch the task, with the requesting peer's own download options
   * (`request`, e.g. its registry credentials, never another peer's); false when none is usable.
   */
  trigger(task: Task, request: Download | undefined, s: SchedulingSettings): boolean {
    if (!this.usable(task, s)) return false;
    this.ring.update(this.seedHosts());
    const seed = this.ring.pick(task.id);
    if (!seed) return false;
    const download: Download = {
      url: task.info.url,
      digest: task.info.digest,
      tag: task.info.tag,
      application: task.info.application,
      filteredQueryParams: [...task.info.filteredQueryParams],
      requestHeader: { ...(request?.requestHeader ?? task.info.requestHeader) },
      priority: request?.priority,
      pieceLength: request?.pieceLength,
      type: 'STANDARD',
    };
    task.seedTriggerPending = true;
    task.seedTriggeredAt = this.o.now();
    this.o.logger.info({ task: task.id, seed: seed.key }, 'triggering seed peer');
    this.o.trigger.trigger(seed, download, (err) => {
      task.seedTriggerPending = false;
      // A trigger that ended without any peer having data counts as a failure too.
      if (err || (task.poolSize === 0 && task.originPeers.size === 0 && task.sizeScope !== 'EMPTY')) {
        this.failed(task);
        this.o.logger.warn({ task: task.id, seed: seed.key, err: err?.message }, 'seed peer could not fetch the task');
      }
      this.o.onSettled(task);
    });
    return true;
  }
}
