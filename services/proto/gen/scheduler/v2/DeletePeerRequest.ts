// Original file: services/proto/scheduler.proto


export interface DeletePeerRequest {
  'hostId'?: (string);
  'taskId'?: (string);
  'peerId'?: (string);
}

export interface DeletePeerRequest__Output {
  'hostId': (string);
  'taskId': (string);
  'peerId': (string);
}
