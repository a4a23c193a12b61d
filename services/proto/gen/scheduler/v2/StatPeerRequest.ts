// Original file: services/proto/scheduler.proto


export interface StatPeerRequest {
  'hostId'?: (string);
  'taskId'?: (string);
  'peerId'?: (string);
}

export interface StatPeerRequest__Output {
  'hostId': (string);
  'taskId': (string);
  'peerId': (string);
}
