// Original file: services/proto/scheduler.proto


export interface NeedBackToSourceResponse {
  'description'?: (string);
  '_description'?: "description";
}

export interface NeedBackToSourceResponse__Output {
  'description'?: (string);
  '_description'?: "description";
}
