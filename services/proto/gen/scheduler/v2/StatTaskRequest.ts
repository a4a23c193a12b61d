// Original file: services/proto/scheduler.proto


export interface StatTaskRequest {
  'taskId'?: (string);
}

export interface StatTaskRequest__Output {
  'taskId': (string);
}
