// Original file: services/proto/scheduler.proto

import type { RegisterPeerRequest as _scheduler_v2_RegisterPeerRequest, RegisterPeerRequest__Output as _scheduler_v2_RegisterPeerRequest__Output } from '../../scheduler/v2/RegisterPeerRequest';
import type { DownloadPeerStartedRequest as _scheduler_v2_DownloadPeerStartedRequest, DownloadPeerStartedRequest__Output as _scheduler_v2_DownloadPeerStartedRequest__Output } from '../../scheduler/v2/DownloadPeerStartedRequest';
import type { DownloadPeerBackToSourceStartedRequest as _scheduler_v2_DownloadPeerBackToSourceStartedRequest, DownloadPeerBackToSourceStartedRequest__Output as _scheduler_v2_DownloadPeerBackToSourceStartedRequest__Output } from '../../scheduler/v2/DownloadPeerBackToSourceStartedRequest';
import type { ReschedulePeerRequest as _scheduler_v2_ReschedulePeerRequest, ReschedulePeerRequest__Output as _scheduler_v2_ReschedulePeerRequest__Output } from '../../scheduler/v2/ReschedulePeerRequest';
import type { DownloadPeerFinishedRequest as _scheduler_v2_DownloadPeerFinishedRequest, DownloadPeerFinishedRequest__Output as _scheduler_v2_DownloadPeerFinishedRequest__Output } from '../../scheduler/v2/DownloadPeerFinishedRequest';
import type { DownloadPeerBackToSourceFinishedRequest as _scheduler_v2_DownloadPeerBackToSourceFinishedRequest, DownloadPeerBackToSourceFinishedRequest__Output as _scheduler_v2_DownloadPeerBackToSourceFinishedRequest__Output } from '../../scheduler/v2/DownloadPeerBackToSourceFinishedRequest';
import type { DownloadPeerFailedRequest as _scheduler_v2_DownloadPeerFailedRequest, DownloadPeerFailedRequest__Output as _scheduler_v2_DownloadPeerFailedRequest__Output } from '../../scheduler/v2/DownloadPeerFailedRequest';
import type { DownloadPeerBackToSourceFailedRequest as _scheduler_v2_DownloadPeerBackToSourceFailedRequest, DownloadPeerBackToSourceFailedRequest__Output as _scheduler_v2_DownloadPeerBackToSourceFailedRequest__Output } from '../../scheduler/v2/DownloadPeerBackToSourceFailedRequest';
import type { DownloadPieceFinishedRequest as _scheduler_v2_DownloadPieceFinishedRequest, DownloadPieceFinishedRequest__Output as _scheduler_v2_DownloadPieceFinishedRequest__Output } from '../../scheduler/v2/DownloadPieceFinishedRequest';
import type { DownloadPieceBackToSourceFinishedRequest as _scheduler_v2_DownloadPieceBackToSourceFinishedRequest, DownloadPieceBackToSourceFinishedRequest__Output as _scheduler_v2_DownloadPieceBackToSourceFinishedRequest__Output } from '../../scheduler/v2/DownloadPieceBackToSourceFinishedRequest';
import type { DownloadPieceFailedRequest as _scheduler_v2_DownloadPieceFailedRequest, DownloadPieceFailedRequest__Output as _scheduler_v2_DownloadPieceFailedRequest__Output } from '../../scheduler/v2/DownloadPieceFailedRequest';
import type { DownloadPieceBackToSourceFailedRequest as _scheduler_v2_DownloadPieceBackToSourceFailedRequest, DownloadPieceBackToSourceFailedRequest__Output as _scheduler_v2_DownloadPieceBackToSourceFailedRequest__Output } from '../../scheduler/v2/DownloadPieceBackToSourceFailedRequest';

export interface AnnouncePeerRequest {
  'hostId'?: (string);
  'taskId'?: (string);
  'peerId'?: (string);
  'registerPeerRequest'?: (_scheduler_v2_RegisterPeerRequest | null);
  'downloadPeerStartedRequest'?: (_scheduler_v2_DownloadPeerStartedRequest | null);
  'downloadPeerBackToSourceStartedRequest'?: (_scheduler_v2_DownloadPeerBackToSourceStartedRequest | null);
  'reschedulePeerRequest'?: (_scheduler_v2_ReschedulePeerRequest | null);
  'downloadPeerFinishedRequest'?: (_scheduler_v2_DownloadPeerFinishedRequest | null);
  'downloadPeerBackToSourceFinishedRequest'?: (_scheduler_v2_DownloadPeerBackToSourceFinishedRequest | null);
  'downloadPeerFailedRequest'?: (_scheduler_v2_DownloadPeerFailedRequest | null);
  'downloadPeerBackToSourceFailedRequest'?: (_scheduler_v2_DownloadPeerBackToSourceFailedRequest | null);
  'downloadPieceFinishedRequest'?: (_scheduler_v2_DownloadPieceFinishedRequest | null);
  'downloadPieceBackToSourceFinishedRequest'?: (_scheduler_v2_DownloadPieceBackToSourceFinishedRequest | null);
  'downloadPieceFailedRequest'?: (_scheduler_v2_DownloadPieceFailedRequest | null);
  'downloadPieceBackToSourceFailedRequest'?: (_scheduler_v2_DownloadPieceBackToSourceFailedRequest | null);
  'request'?: "registerPeerRequest"|"downloadPeerStartedRequest"|"downloadPeerBackToSourceStartedRequest"|"reschedulePeerRequest"|"downloadPeerFinishedRequest"|"downloadPeerBackToSourceFinishedRequest"|"downloadPeerFailedRequest"|"downloadPeerBackToSourceFailedRequest"|"downloadPieceFinishedRequest"|"downloadPieceBackToSourceFinishedRequest"|"downloadPieceFailedRequest"|"downloadPieceBackToSourceFailedRequest";
}

export interface AnnouncePeerRequest__Output {
  'hostId': (string);
  'taskId': (string);
  'peerId': (string);
  'registerPeerRequest'?: (_scheduler_v2_RegisterPeerRequest__Output | null);
  'downloadPeerStartedRequest'?: (_scheduler_v2_DownloadPeerStartedRequest__Output | null);
  'downloadPeerBackToSourceStartedRequest'?: (_scheduler_v2_DownloadPeerBackToSourceStartedRequest__Output | null);
  'reschedulePeerRequest'?: (_scheduler_v2_ReschedulePeerRequest__Output | null);
  'downloadPeerFinishedRequest'?: (_scheduler_v2_DownloadPeerFinishedRequest__Output | null);
  'downloadPeerBackToSourceFinishedRequest'?: (_scheduler_v2_DownloadPeerBackToSourceFinishedRequest__Output | null);
  'downloadPeerFailedRequest'?: (_scheduler_v2_DownloadPeerFailedRequest__Output | null);
  'downloadPeerBackToSourceFailedRequest'?: (_scheduler_v2_DownloadPeerBackToSourceFailedRequest__Output | null);
  'downloadPieceFinishedRequest'?: (_scheduler_v2_DownloadPieceFinishedRequest__Output | null);
  'downloadPieceBackToSourceFinishedRequest'?: (_scheduler_v2_DownloadPieceBackToSourceFinishedRequest__Output | null);
  'downloadPieceFailedRequest'?: (_scheduler_v2_DownloadPieceFailedRequest__Output | null);
  'downloadPieceBackToSourceFailedRequest'?: (_scheduler_v2_DownloadPieceBackToSourceFailedRequest__Output | null);
  'request'?: "registerPeerRequest"|"downloadPeerStartedRequest"|"downloadPeerBackToSourceStartedRequest"|"reschedulePeerRequest"|"downloadPeerFinishedRequest"|"downloadPeerBackToSourceFinishedRequest"|"downloadPeerFailedRequest"|"downloadPeerBackToSourceFailedRequest"|"downloadPieceFinishedRequest"|"downloadPieceBackToSourceFinishedRequest"|"downloadPieceFailedRequest"|"downloadPieceBackToSourceFailedRequest";
}
