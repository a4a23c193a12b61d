// Original file: services/proto/dfdaemon.proto

import type { Range as _common_v2_Range, Range__Output as _common_v2_Range__Output } from '../../common/v2/Range';
import type { Piece as _common_v2_Piece, Piece__Output as _common_v2_Piece__Output } from '../../common/v2/Piece';
import type { Long } from '@grpc/proto-loader';

export interface DownloadTaskStartedResponse {
  'contentLength'?: (number | string | Long);
  'range'?: (_common_v2_Range | null);
  'responseHeader'?: ({[key: string]: string});
  'pieces'?: (_common_v2_Piece)[];
  'isFinished'?: (boolean);
  'pieceLength'?: (number | string | Long);
  '_range'?: "range";
}

export interface DownloadTaskStartedResponse__Output {
  'contentLength': (number);
  'range'?: (_common_v2_Range__Output | null);
  'responseHeader': ({[key: string]: string});
  'pieces': (_common_v2_Piece__Output)[];
  'isFinished': (boolean);
  'pieceLength': (number);
  '_range'?: "range";
}
