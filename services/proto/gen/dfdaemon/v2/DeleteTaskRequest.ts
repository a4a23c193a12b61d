// Original file: services/proto/dfdaemon.proto


export interface DeleteTaskRequest {
  'taskId'?: (string);
}

export interface DeleteTaskRequest__Output {
  'taskId': (string);
}
