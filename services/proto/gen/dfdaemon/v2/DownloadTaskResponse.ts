// Original file: services/proto/dfdaemon.proto

import type { DownloadTaskStartedResponse as _dfdaemon_v2_DownloadTaskStartedResponse, DownloadTaskStartedResponse__Output as _dfdaemon_v2_DownloadTaskStartedResponse__Output } from '../../dfdaemon/v2/DownloadTaskStartedResponse';
import type { DownloadPieceFinishedResponse as _dfdaemon_v2_DownloadPieceFinishedResponse, DownloadPieceFinishedResponse__Output as _dfdaemon_v2_DownloadPieceFinishedResponse__Output } from '../../dfdaemon/v2/DownloadPieceFinishedResponse';

export interface DownloadTaskResponse {
  'hostId'?: (string);
  'taskId'?: (string);
  'peerId'?: (string);
  'downloadTaskStartedResponse'?: (_dfdaemon_v2_DownloadTaskStartedResponse | null);
  'downloadPieceFinishedResponse'?: (_dfdaemon_v2_DownloadPieceFinishedResponse | null);
  'response'?: "downloadTaskStartedResponse"|"downloadPieceFinishedResponse";
}

export interface DownloadTaskResponse__Output {
  'hostId': (string);
  'taskId': (string);
  'peerId': (string);
  'downloadTaskStartedResponse'?: (_dfdaemon_v2_DownloadTaskStartedResponse__Output | null);
  'downloadPieceFinishedResponse'?: (_dfdaemon_v2_DownloadPieceFinishedResponse__Output | null);
  'response'?: "downloadTaskStartedResponse"|"downloadPieceFinishedResponse";
}
