// Original file: services/proto/dfdaemon.proto

import type { Long } from '@grpc/proto-loader';

export interface SyncPiecesResponse {
  'number'?: (number);
  'offset'?: (number | string | Long);
  'length'?: (number | string | Long);
  'digest'?: (string);
  'contentLength'?: (number | string | Long);
  'pieceLength'?: (number | string | Long);
}

export interface SyncPiecesResponse__Output {
  'number': (number);
  'offset': (number);
  'length': (number);
  'digest': (string);
  'contentLength': (number);
  'pieceLength': (number);
}
