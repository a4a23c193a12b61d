// Original file: services/proto/manager.proto

export const SourceType = {
  SCHEDULER_SOURCE: 'SCHEDULER_SOURCE',
  PEER_SOURCE: 'PEER_SOURCE',
  SEED_PEER_SOURCE: 'SEED_PEER_SOURCE',
} as const;

export type SourceType =
  | 'SCHEDULER_SOURCE'
  | 0
  | 'PEER_SOURCE'
  | 1
  | 'SEED_PEER_SOURCE'
  | 2

export type SourceType__Output = typeof SourceType[keyof typeof SourceType]
