// Original file: services/proto/scheduler.proto


export interface DownloadPieceBackToSourceFailedRequest {
  'pieceNumber'?: (number);
  '_pieceNumber'?: "pieceNumber";
}

export interface DownloadPieceBackToSourceFailedRequest__Output {
  'pieceNumber'?: (number);
  '_pieceNumber'?: "pieceNumber";
}
