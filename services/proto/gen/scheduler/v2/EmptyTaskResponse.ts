// Original file: services/proto/scheduler.proto


export interface EmptyTaskResponse {
}

export interface EmptyTaskResponse__Output {
}
