import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Download as _common_v2_Download, Download__Output as _common_v2_Download__Output } from './common/v2/Download';
import type { Empty as _common_v2_Empty, Empty__Output as _common_v2_Empty__Output } from './common/v2/Empty';
import type { Host as _common_v2_Host, Host__Output as _common_v2_Host__Output } from './common/v2/Host';
import type { Network as _common_v2_Network, Network__Output as _common_v2_Network__Output } from './common/v2/Network';
import type { Peer as _common_v2_Peer, Peer__Output as _common_v2_Peer__Output } from './common/v2/Peer';
import type { Piece as _common_v2_Piece, Piece__Output as _common_v2_Piece__Output } from './common/v2/Piece';
import type { Range as _common_v2_Range, Range__Output as _common_v2_Range__Output } from './common/v2/Range';
import type { Task as _common_v2_Task, Task__Output as _common_v2_Task__Output } from './common/v2/Task';
import type { AnnounceHostRequest as _scheduler_v2_AnnounceHostRequest, AnnounceHostRequest__Output as _scheduler_v2_AnnounceHostRequest__Output } from './scheduler/v2/AnnounceHostRequest';
import type { AnnouncePeerRequest as _scheduler_v2_AnnouncePeerRequest, AnnouncePeerRequest__Output as _scheduler_v2_AnnouncePeerRequest__Output } from './scheduler/v2/AnnouncePeerRequest';
import type { AnnouncePeerResponse as _scheduler_v2_AnnouncePeerResponse, AnnouncePeerResponse__Output as _scheduler_v2_AnnouncePeerResponse__Output } from './scheduler/v2/AnnouncePeerResponse';
import type { DeleteHostRequest as _scheduler_v2_DeleteHostRequest, DeleteHostRequest__Output as _scheduler_v2_DeleteHostRequest__Output } from './scheduler/v2/DeleteHostRequest';
import type { DeletePeerRequest as _scheduler_v2_DeletePeerRequest, DeletePeerRequest__Output as _scheduler_v2_DeletePeerRequest__Output } from './scheduler/v2/DeletePeerRequest';
import type { DeleteTaskRequest as _scheduler_v2_DeleteTaskRequest, DeleteTaskRequest__Output as _scheduler_v2_DeleteTaskRequest__Output } from './scheduler/v2/DeleteTaskRequest';
import type { DownloadPeerBackToSourceFailedRequest as _scheduler_v2_DownloadPeerBackToSourceFailedRequest, DownloadPeerBackToSourceFailedRequest__Output as _scheduler_v2_DownloadPeerBackToSourceFailedRequest__Output } from './scheduler/v2/DownloadPeerBackToSourceFailedRequest';
import type { DownloadPeerBackToSourceFinishedRequest as _scheduler_v2_DownloadPeerBackToSourceFinishedRequest, DownloadPeerBackToSourceFinishedRequest__Output as _scheduler_v2_DownloadPeerBackToSourceFinishedRequest__Output } from './scheduler/v2/DownloadPeerBackToSourceFinishedRequest';
import type { DownloadPeerBackToSourceStartedRequest as _scheduler_v2_DownloadPeerBackToSourceStartedRequest, DownloadPeerBackToSourceStartedRequest__Output as _scheduler_v2_DownloadPeerBackToSourceStartedRequest__Output } from './scheduler/v2/DownloadPeerBackToSourceStartedRequest';
import type { DownloadPeerFailedRequest as _scheduler_v2_DownloadPeerFailedRequest, DownloadPeerFailedRequest__Output as _scheduler_v2_DownloadPeerFailedRequest__Output } from './scheduler/v2/DownloadPeerFailedRequest';
import type { DownloadPeerFinishedRequest as _scheduler_v2_DownloadPeerFinishedRequest, DownloadPeerFinishedRequest__Output as _scheduler_v2_DownloadPeerFinishedRequest__Output } from './scheduler/v2/DownloadPeerFinishedRequest';
import type { DownloadPeerStartedRequest as _scheduler_v2_DownloadPeerStartedRequest, DownloadPeerStartedRequest__Output as _scheduler_v2_DownloadPeerStartedRequest__Output } from './scheduler/v2/DownloadPeerStartedRequest';
import type { DownloadPieceBackToSourceFailedRequest as _scheduler_v2_DownloadPieceBackToSourceFailedRequest, DownloadPieceBackToSourceFailedRequest__Output as _scheduler_v2_DownloadPieceBackToSourceFailedRequest__Output } from './scheduler/v2/DownloadPieceBackToSourceFailedRequest';
import type { DownloadPieceBackToSourceFinishedRequest as _scheduler_v2_DownloadPieceBackToSourceFinishedRequest, DownloadPieceBackToSourceFinishedRequest__Output as _scheduler_v2_DownloadPieceBackToSourceFinishedRequest__Output } from './scheduler/v2/DownloadPieceBackToSourceFinishedRequest';
import type { DownloadPieceFailedRequest as _scheduler_v2_DownloadPieceFailedRequest, DownloadPieceFailedRequest__Output as _scheduler_v2_DownloadPieceFailedRequest__Output } from './scheduler/v2/DownloadPieceFailedRequest';
import type { DownloadPieceFinishedRequest as _scheduler_v2_DownloadPieceFinishedRequest, DownloadPieceFinishedRequest__Output as _scheduler_v2_DownloadPieceFinishedRequest__Output } from './scheduler/v2/DownloadPieceFinishedRequest';
import type { EmptyTaskResponse as _scheduler_v2_EmptyTaskResponse, EmptyTaskResponse__Output as _scheduler_v2_EmptyTaskResponse__Output } from './scheduler/v2/EmptyTaskResponse';
import type { ListHostsRequest as _scheduler_v2_ListHostsRequest, ListHostsRequest__Output as _scheduler_v2_ListHostsRequest__Output } from './scheduler/v2/ListHostsRequest';
import type { ListHostsResponse as _scheduler_v2_ListHostsResponse, ListHostsResponse__Output as _scheduler_v2_ListHostsResponse__Output } from './scheduler/v2/ListHostsResponse';
import type { NeedBackToSourceResponse as _scheduler_v2_NeedBackToSourceResponse, NeedBackToSourceResponse__Output as _scheduler_v2_NeedBackToSourceResponse__Output } from './scheduler/v2/NeedBackToSourceResponse';
import type { NormalTaskResponse as _scheduler_v2_NormalTaskResponse, NormalTaskResponse__Output as _scheduler_v2_NormalTaskResponse__Output } from './scheduler/v2/NormalTaskResponse';
import type { RegisterPeerRequest as _scheduler_v2_RegisterPeerRequest, RegisterPeerRequest__Output as _scheduler_v2_RegisterPeerRequest__Output } from './scheduler/v2/RegisterPeerRequest';
import type { ReschedulePeerRequest as _scheduler_v2_ReschedulePeerRequest, ReschedulePeerRequest__Output as _scheduler_v2_ReschedulePeerRequest__Output } from './scheduler/v2/ReschedulePeerRequest';
import type { SchedulerClient as _scheduler_v2_SchedulerClient, SchedulerDefinition as _scheduler_v2_SchedulerDefinition } from './scheduler/v2/Scheduler';
import type { StatPeerRequest as _scheduler_v2_StatPeerRequest, StatPeerRequest__Output as _scheduler_v2_StatPeerRequest__Output } from './scheduler/v2/StatPeerRequest';
import type { StatTaskRequest as _scheduler_v2_StatTaskRequest, StatTaskRequest__Output as _scheduler_v2_StatTaskRequest__Output } from './scheduler/v2/StatTaskRequest';
import type { WaitResponse as _scheduler_v2_WaitResponse, WaitResponse__Output as _scheduler_v2_WaitResponse__Output } from './scheduler/v2/WaitResponse';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  common: {
    v2: {
      Download: MessageTypeDefinition<_common_v2_Download, _common_v2_Download__Output>
      Empty: MessageTypeDefinition<_common_v2_Empty, _common_v2_Empty__Output>
      Host: MessageTypeDefinition<_common_v2_Host, _common_v2_Host__Output>
      HostType: EnumTypeDefinition
      Network: MessageTypeDefinition<_common_v2_Network, _common_v2_Network__Output>
      Peer: MessageTypeDefinition<_common_v2_Peer, _common_v2_Peer__Output>
      Piece: MessageTypeDefinition<_common_v2_Piece, _common_v2_Piece__Output>
      Priority: EnumTypeDefinition
      Range: MessageTypeDefinition<_common_v2_Range, _common_v2_Range__Output>
      SizeScope: EnumTypeDefinition
      Task: MessageTypeDefinition<_common_v2_Task, _common_v2_Task__Output>
      TaskType: EnumTypeDefinition
      TrafficType: EnumTypeDefinition
    }
  }
  scheduler: {
    v2: {
      AnnounceHostRequest: MessageTypeDefinition<_scheduler_v2_AnnounceHostRequest, _scheduler_v2_AnnounceHostRequest__Output>
      AnnouncePeerRequest: MessageTypeDefinition<_scheduler_v2_AnnouncePeerRequest, _scheduler_v2_AnnouncePeerRequest__Output>
      AnnouncePeerResponse: MessageTypeDefinition<_scheduler_v2_AnnouncePeerResponse, _scheduler_v2_AnnouncePeerResponse__Output>
      DeleteHostRequest: MessageTypeDefinition<_scheduler_v2_DeleteHostRequest, _scheduler_v2_DeleteHostRequest__Output>
      DeletePeerRequest: MessageTypeDefinition<_scheduler_v2_DeletePeerRequest, _scheduler_v2_DeletePeerRequest__Output>
      DeleteTaskRequest: MessageTypeDefinition<_scheduler_v2_DeleteTaskRequest, _scheduler_v2_DeleteTaskRequest__Output>
      DownloadPeerBackToSourceFailedRequest: MessageTypeDefinition<_scheduler_v2_DownloadPeerBackToSourceFailedRequest, _scheduler_v2_DownloadPeerBackToSourceFailedRequest__Output>
      DownloadPeerBackToSourceFinishedRequest: MessageTypeDefinition<_scheduler_v2_DownloadPeerBackToSourceFinishedRequest, _scheduler_v2_DownloadPeerBackToSourceFinishedRequest__Output>
      DownloadPeerBackToSourceStartedRequest: MessageTypeDefinition<_scheduler_v2_DownloadPeerBackToSourceStartedRequest, _scheduler_v2_DownloadPeerBackToSourceStartedRequest__Output>
      DownloadPeerFailedRequest: MessageTypeDefinition<_scheduler_v2_DownloadPeerFailedRequest, _scheduler_v2_DownloadPeerFailedRequest__Output>
      DownloadPeerFinishedRequest: MessageTypeDefinition<_scheduler_v2_DownloadPeerFinishedRequest, _scheduler_v2_DownloadPeerFinishedRequest__Output>
      DownloadPeerStartedRequest: MessageTypeDefinition<_scheduler_v2_DownloadPeerStartedRequest, _scheduler_v2_DownloadPeerStartedRequest__Output>
      DownloadPieceBackToSourceFailedRequest: MessageTypeDefinition<_scheduler_v2_DownloadPieceBackToSourceFailedRequest, _scheduler_v2_DownloadPieceBackToSourceFailedRequest__Output>
      DownloadPieceBackToSourceFinishedRequest: MessageTypeDefinition<_scheduler_v2_DownloadPieceBackToSourceFinishedRequest, _scheduler_v2_DownloadPieceBackToSourceFinishedRequest__Output>
      DownloadPieceFailedRequest: MessageTypeDefinition<_scheduler_v2_DownloadPieceFailedRequest, _scheduler_v2_DownloadPieceFailedRequest__Output>
      DownloadPieceFinishedRequest: MessageTypeDefinition<_scheduler_v2_DownloadPieceFinishedRequest, _scheduler_v2_DownloadPieceFinishedRequest__Output>
      EmptyTaskResponse: MessageTypeDefinition<_scheduler_v2_EmptyTaskResponse, _scheduler_v2_EmptyTaskResponse__Output>
      ListHostsRequest: MessageTypeDefinition<_scheduler_v2_ListHostsRequest, _scheduler_v2_ListHostsRequest__Output>
      ListHostsResponse: MessageTypeDefinition<_scheduler_v2_ListHostsResponse, _scheduler_v2_ListHostsResponse__Output>
      NeedBackToSourceResponse: MessageTypeDefinition<_scheduler_v2_NeedBackToSourceResponse, _scheduler_v2_NeedBackToSourceResponse__Output>
      NormalTaskResponse: MessageTypeDefinition<_scheduler_v2_NormalTaskResponse, _scheduler_v2_NormalTaskResponse__Output>
      RegisterPeerRequest: MessageTypeDefinition<_scheduler_v2_RegisterPeerRequest, _scheduler_v2_RegisterPeerRequest__Output>
      ReschedulePeerRequest: MessageTypeDefinition<_scheduler_v2_ReschedulePeerRequest, _scheduler_v2_ReschedulePeerRequest__Output>
      Scheduler: SubtypeConstructor<typeof grpc.Client, _scheduler_v2_SchedulerClient> & { service: _scheduler_v2_SchedulerDefinition }
      StatPeerRequest: MessageTypeDefinition<_scheduler_v2_StatPeerRequest, _scheduler_v2_StatPeerRequest__Output>
      StatTaskRequest: MessageTypeDefinition<_scheduler_v2_StatTaskRequest, _scheduler_v2_StatTaskRequest__Output>
      WaitResponse: MessageTypeDefinition<_scheduler_v2_WaitResponse, _scheduler_v2_WaitResponse__Output>
    }
  }
}

