// Original file: services/proto/scheduler.proto


export interface DownloadPeerFailedRequest {
  'description'?: (string);
  '_description'?: "description";
}

export interface DownloadPeerFailedRequest__Output {
  'description'?: (string);
  '_description'?: "description";
}
