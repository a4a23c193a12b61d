// Original file: services/proto/scheduler.proto

import type { Piece as _common_v2_Piece, Piece__Output as _common_v2_Piece__Output } from '../../common/v2/Piece';

export interface DownloadPieceBackToSourceFinishedRequest {
  'piece'?: (_common_v2_Piece | null);
}

export interface DownloadPieceBackToSourceFinishedRequest__Output {
  'piece': (_common_v2_Piece__Output | null);
}
