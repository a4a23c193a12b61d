// Original file: services/proto/common.proto

import type { TaskType as _common_v2_TaskType, TaskType__Output as _common_v2_TaskType__Output } from '../../common/v2/TaskType';
import type { SizeScope as _common_v2_SizeScope, SizeScope__Output as _common_v2_SizeScope__Output } from '../../common/v2/SizeScope';
import type { Piece as _common_v2_Piece, Piece__Output as _common_v2_Piece__Output } from '../../common/v2/Piece';
import type { Long } from '@grpc/proto-loader';

export interface Task {
  'id'?: (string);
  'type'?: (_common_v2_TaskType);
  'url'?: (string);
  'digest'?: (string);
  'tag'?: (string);
  'application'?: (string);
  'contentLength'?: (number | string | Long);
  'pieceCount'?: (number);
  'sizeScope'?: (_common_v2_SizeScope);
  'state'?: (string);
  'peerCount'?: (number);
  'hasAvailablePeer'?: (boolean);
  'responseHeader'?: ({[key: string]: string});
  'pieceLength'?: (number | string | Long);
  'pieces'?: (_common_v2_Piece)[];
  '_digest'?: "digest";
  '_tag'?: "tag";
  '_application'?: "application";
}

export interface Task__Output {
  'id': (string);
  'type': (_common_v2_TaskType__Output);
  'url': (string);
  'digest'?: (string);
  'tag'?: (string);
  'application'?: (string);
  'contentLength': (number);
  'pieceCount': (number);
  'sizeScope': (_common_v2_SizeScope__Output);
  'state': (string);
  'peerCount': (number);
  'hasAvailablePeer': (boolean);
  'responseHeader': ({[key: string]: string});
  'pieceLength': (number);
  'pieces': (_common_v2_Piece__Output)[];
  '_digest'?: "digest";
  '_tag'?: "tag";
  '_application'?: "application";
}
