/**
 * What scheduling decisions read: the limits on what peers can make the scheduler hold, the
 * settings that may change at run time, and the events the metrics module counts.
 */

/** Hard caps on what peers can make the scheduler hold (scheduler.limits in scheduler.yaml). */
export interface SchedulerLimits {
  readonly hosts: number;
  readonly tasks: number;
  readonly peers: number;
  readonly peersPerTask: number;
  /** Open AnnouncePeer streams per caller address. */
  readonly streamsPerHost: number;
  /** Announce intervals above this are clamped to it. */
  readonly maxAnnounceIntervalMs: number;
}

export const DEFAULT_LIMITS: SchedulerLimits = {
  hosts: 20_000,
  tasks: 100_000,
  peers: 500_000,
  peersPerTask: 20_000,
  streamsPerHost: 1_000,
  maxAnnounceIntervalMs: 10 * 60_000,
};

/** Values that may change at run time (the manager's cluster config overrides the static ones). */
export interface SchedulingSettings {
  candidateParentLimit: number;
  filterParentLimit: number;
  /** Upload slots of a host that announced no concurrent_upload_limit (manager client_config load_limit). */
  defaultUploadLimit: number;
  backToSourceCount: number;
  retryLimit: number;
  retryBackToSourceLimit: number;
  retryIntervalMs: number;
  seedPeerEnabled: boolean;
}

export interface SchedulerEvents {
  registerPeer(): void;
  scheduleDuration(ms: number): void;
  backToSource(): void;
  traffic(type: string, bytes: number): void;
  announceHost(): void;
}

export const NO_EVENTS: SchedulerEvents = {
  registerPeer: () => undefined,
  scheduleDuration: () => undefined,
  backToSource: () => undefined,
  traffic: () => undefined,
  announceHost: () => undefined,
};
