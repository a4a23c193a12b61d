// Original file: services/proto/scheduler.proto


export interface DeleteTaskRequest {
  'hostId'?: (string);
  'taskId'?: (string);
}

export interface DeleteTaskRequest__Output {
  'hostId': (string);
  'taskId': (string);
}
