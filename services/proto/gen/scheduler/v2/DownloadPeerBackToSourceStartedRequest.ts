// Original file: services/proto/scheduler.proto

import type { Long } from '@grpc/proto-loader';

export interface DownloadPeerBackToSourceStartedRequest {
  'description'?: (string);
  'contentLength'?: (number | string | Long);
  'pieceLength'?: (number | string | Long);
  'responseHeader'?: ({[key: string]: string});
  '_description'?: "description";
}

export interface DownloadPeerBackToSourceStartedRequest__Output {
  'description'?: (string);
  'contentLength': (number);
  'pieceLength': (number);
  'responseHeader': ({[key: string]: string});
  '_description'?: "description";
}
