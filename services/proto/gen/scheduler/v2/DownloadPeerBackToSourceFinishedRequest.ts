// Original file: services/proto/scheduler.proto

import type { Long } from '@grpc/proto-loader';

export interface DownloadPeerBackToSourceFinishedRequest {
  'contentLength'?: (number | string | Long);
  'pieceCount'?: (number);
  'pieceLength'?: (number | string | Long);
  'responseHeader'?: ({[key: string]: string});
}

export interface DownloadPeerBackToSourceFinishedRequest__Output {
  'contentLength': (number);
  'pieceCount': (number);
  'pieceLength': (number);
  'responseHeader': ({[key: string]: string});
}
