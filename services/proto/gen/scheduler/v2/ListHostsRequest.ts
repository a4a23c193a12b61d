// Original file: services/proto/scheduler.proto


export interface ListHostsRequest {
}

export interface ListHostsRequest__Output {
}
