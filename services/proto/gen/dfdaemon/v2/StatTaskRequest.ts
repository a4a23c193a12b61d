// Original file: services/proto/dfdaemon.proto


export interface StatTaskRequest {
  'taskId'?: (string);
}

export interface StatTaskRequest__Output {
  'taskId': (string);
}
