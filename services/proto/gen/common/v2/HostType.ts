// Original file: services/proto/common.proto

export const HostType = {
  NORMAL_HOST: 'NORMAL_HOST',
  SUPER_HOST: 'SUPER_HOST',
} as const;

export type HostType =
  | 'NORMAL_HOST'
  | 0
  | 'SUPER_HOST'
  | 1

export type HostType__Output = typeof HostType[keyof typeof HostType]
