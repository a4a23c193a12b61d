// Original file: services/proto/common.proto

import type { Priority as _common_v2_Priority, Priority__Output as _common_v2_Priority__Output } from '../../common/v2/Priority';
import type { Piece as _common_v2_Piece, Piece__Output as _common_v2_Piece__Output } from '../../common/v2/Piece';
import type { Task as _common_v2_Task, Task__Output as _common_v2_Task__Output } from '../../common/v2/Task';
import type { Host as _common_v2_Host, Host__Output as _common_v2_Host__Output } from '../../common/v2/Host';

export interface Peer {
  'id'?: (string);
  'priority'?: (_common_v2_Priority);
  'pieces'?: (_common_v2_Piece)[];
  'state'?: (string);
  'task'?: (_common_v2_Task | null);
  'host'?: (_common_v2_Host | null);
  'needBackToSource'?: (boolean);
  'finishedPieceCount'?: (number);
}

export interface Peer__Output {
  'id': (string);
  'priority': (_common_v2_Priority__Output);
  'pieces': (_common_v2_Piece__Output)[];
  'state': (string);
  'task': (_common_v2_Task__Output | null);
  'host': (_common_v2_Host__Output | null);
  'needBackToSource': (boolean);
  'finishedPieceCount': (number);
}
