// Original file: services/proto/scheduler.proto


export interface DeleteHostRequest {
  'hostId'?: (string);
}

export interface DeleteHostRequest__Output {
  'hostId': (string);
}
