// Original file: services/proto/scheduler.proto


export interface DownloadPeerBackToSourceFailedRequest {
  'description'?: (string);
  '_description'?: "description";
}

export interface DownloadPeerBackToSourceFailedRequest__Output {
  'description'?: (string);
  '_description'?: "description";
}
