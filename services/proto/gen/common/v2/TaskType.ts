// Original file: services/proto/common.proto

export const TaskType = {
  STANDARD: 'STANDARD',
} as const;

export type TaskType =
  | 'STANDARD'
  | 0

export type TaskType__Output = typeof TaskType[keyof typeof TaskType]
