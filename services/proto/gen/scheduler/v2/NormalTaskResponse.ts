// Original file: services/proto/scheduler.proto

import type { Peer as _common_v2_Peer, Peer__Output as _common_v2_Peer__Output } from '../../common/v2/Peer';
import type { Task as _common_v2_Task, Task__Output as _common_v2_Task__Output } from '../../common/v2/Task';

export interface NormalTaskResponse {
  'candidateParents'?: (_common_v2_Peer)[];
  'task'?: (_common_v2_Task | null);
}

export interface NormalTaskResponse__Output {
  'candidateParents': (_common_v2_Peer__Output)[];
  'task': (_common_v2_Task__Output | null);
}
