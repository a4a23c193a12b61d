// Original file: services/proto/scheduler.proto


export interface DownloadPeerStartedRequest {
}

export interface DownloadPeerStartedRequest__Output {
}
