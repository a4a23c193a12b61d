// Original file: services/proto/scheduler.proto


export interface DownloadPieceFailedRequest {
  'pieceNumber'?: (number);
  'parentId'?: (string);
  'temporary'?: (boolean);
  '_pieceNumber'?: "pieceNumber";
}

export interface DownloadPieceFailedRequest__Output {
  'pieceNumber'?: (number);
  'parentId': (string);
  'temporary': (boolean);
  '_pieceNumber'?: "pieceNumber";
}
