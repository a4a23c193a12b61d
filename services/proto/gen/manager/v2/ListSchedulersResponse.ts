// Original file: services/proto/manager.proto

import type { Scheduler as _manager_v2_Scheduler, Scheduler__Output as _manager_v2_Scheduler__Output } from '../../manager/v2/Scheduler';

export interface ListSchedulersResponse {
  'schedulers'?: (_manager_v2_Scheduler)[];
}

export interface ListSchedulersResponse__Output {
  'schedulers': (_manager_v2_Scheduler__Output)[];
}
