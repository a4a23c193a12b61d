// Original file: services/proto/dfdaemon.proto


export interface SyncPiecesRequest {
  'hostId'?: (string);
  'taskId'?: (string);
  'interestedPieceNumbers'?: (number)[];
}

export interface SyncPiecesRequest__Output {
  'hostId': (string);
  'taskId': (string);
  'interestedPieceNumbers': (number)[];
}
