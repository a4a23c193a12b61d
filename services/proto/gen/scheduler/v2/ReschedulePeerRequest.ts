// Original file: services/proto/scheduler.proto


export interface ReschedulePeerRequest {
  'candidateParentIds'?: (string)[];
  'description'?: (string);
  '_description'?: "description";
}

export interface ReschedulePeerRequest__Output {
  'candidateParentIds': (string)[];
  'description'?: (string);
  '_description'?: "description";
}
