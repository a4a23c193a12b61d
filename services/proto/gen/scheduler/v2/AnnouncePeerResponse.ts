// Original file: services/proto/scheduler.proto

import type { EmptyTaskResponse as _scheduler_v2_EmptyTaskResponse, EmptyTaskResponse__Output as _scheduler_v2_EmptyTaskResponse__Output } from '../../scheduler/v2/EmptyTaskResponse';
import type { NormalTaskResponse as _scheduler_v2_NormalTaskResponse, NormalTaskResponse__Output as _scheduler_v2_NormalTaskResponse__Output } from '../../scheduler/v2/NormalTaskResponse';
import type { NeedBackToSourceResponse as _scheduler_v2_NeedBackToSourceResponse, NeedBackToSourceResponse__Output as _scheduler_v2_NeedBackToSourceResponse__Output } from '../../scheduler/v2/NeedBackToSourceResponse';
import type { WaitResponse as _scheduler_v2_WaitResponse, WaitResponse__Output as _scheduler_v2_WaitResponse__Output } from '../../scheduler/v2/WaitResponse';

export interface AnnouncePeerResponse {
  'emptyTaskResponse'?: (_scheduler_v2_EmptyTaskResponse | null);
  'normalTaskResponse'?: (_scheduler_v2_NormalTaskResponse | null);
  'needBackToSourceResponse'?: (_scheduler_v2_NeedBackToSourceResponse | null);
  'waitResponse'?: (_scheduler_v2_WaitResponse | null);
  'response'?: "emptyTaskResponse"|"normalTaskResponse"|"needBackToSourceResponse"|"waitResponse";
}

export interface AnnouncePeerResponse__Output {
  'emptyTaskResponse'?: (_scheduler_v2_EmptyTaskResponse__Output | null);
  'normalTaskResponse'?: (_scheduler_v2_NormalTaskResponse__Output | null);
  'needBackToSourceResponse'?: (_scheduler_v2_NeedBackToSourceResponse__Output | null);
  'waitResponse'?: (_scheduler_v2_WaitResponse__Output | null);
  'response'?: "emptyTaskResponse"|"normalTaskResponse"|"needBackToSourceResponse"|"waitResponse";
}
