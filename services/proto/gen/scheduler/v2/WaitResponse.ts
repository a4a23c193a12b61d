// Original file: services/proto/scheduler.proto


export interface WaitResponse {
  'description'?: (string);
  '_description'?: "description";
}

export interface WaitResponse__Output {
  'description'?: (string);
  '_description'?: "description";
}
