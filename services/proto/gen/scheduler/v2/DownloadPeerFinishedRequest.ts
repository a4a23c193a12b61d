// Original file: services/proto/scheduler.proto

import type { Long } from '@grpc/proto-loader';

export interface DownloadPeerFinishedRequest {
  'contentLength'?: (number | string | Long);
  'pieceCount'?: (number);
}

export interface DownloadPeerFinishedRequest__Output {
  'contentLength': (number);
  'pieceCount': (number);
}
