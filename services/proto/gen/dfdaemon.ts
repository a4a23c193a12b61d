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
import type { DeleteTaskRequest as _dfdaemon_v2_DeleteTaskRequest, DeleteTaskRequest__Output as _dfdaemon_v2_DeleteTaskRequest__Output } from './dfdaemon/v2/DeleteTaskRequest';
import type { DfdaemonDownloadClient as _dfdaemon_v2_DfdaemonDownloadClient, DfdaemonDownloadDefinition as _dfdaemon_v2_DfdaemonDownloadDefinition } from './dfdaemon/v2/DfdaemonDownload';
import type { DfdaemonUploadClient as _dfdaemon_v2_DfdaemonUploadClient, DfdaemonUploadDefinition as _dfdaemon_v2_DfdaemonUploadDefinition } from './dfdaemon/v2/DfdaemonUpload';
import type { DownloadPieceFinishedResponse as _dfdaemon_v2_DownloadPieceFinishedResponse, DownloadPieceFinishedResponse__Output as _dfdaemon_v2_DownloadPieceFinishedResponse__Output } from './dfdaemon/v2/DownloadPieceFinishedResponse';
import type { DownloadTaskRequest as _dfdaemon_v2_DownloadTaskRequest, DownloadTaskRequest__Output as _dfdaemon_v2_DownloadTaskRequest__Output } from './dfdaemon/v2/DownloadTaskRequest';
import type { DownloadTaskResponse as _dfdaemon_v2_DownloadTaskResponse, DownloadTaskResponse__Output as _dfdaemon_v2_DownloadTaskResponse__Output } from './dfdaemon/v2/DownloadTaskResponse';
import type { DownloadTaskStartedResponse as _dfdaemon_v2_DownloadTaskStartedResponse, DownloadTaskStartedResponse__Output as _dfdaemon_v2_DownloadTaskStartedResponse__Output } from './dfdaemon/v2/DownloadTaskStartedResponse';
import type { StatTaskRequest as _dfdaemon_v2_StatTaskRequest, StatTaskRequest__Output as _dfdaemon_v2_StatTaskRequest__Output } from './dfdaemon/v2/StatTaskRequest';
import type { SyncPiecesRequest as _dfdaemon_v2_SyncPiecesRequest, SyncPiecesRequest__Output as _dfdaemon_v2_SyncPiecesRequest__Output } from './dfdaemon/v2/SyncPiecesRequest';
import type { SyncPiecesResponse as _dfdaemon_v2_SyncPiecesResponse, SyncPiecesResponse__Output as _dfdaemon_v2_SyncPiecesResponse__Output } from './dfdaemon/v2/SyncPiecesResponse';

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
  dfdaemon: {
    v2: {
      DeleteTaskRequest: MessageTypeDefinition<_dfdaemon_v2_DeleteTaskRequest, _dfdaemon_v2_DeleteTaskRequest__Output>
      DfdaemonDownload: SubtypeConstructor<typeof grpc.Client, _dfdaemon_v2_DfdaemonDownloadClient> & { service: _dfdaemon_v2_DfdaemonDownloadDefinition }
      DfdaemonUpload: SubtypeConstructor<typeof grpc.Client, _dfdaemon_v2_DfdaemonUploadClient> & { service: _dfdaemon_v2_DfdaemonUploadDefinition }
      DownloadPieceFinishedResponse: MessageTypeDefinition<_dfdaemon_v2_DownloadPieceFinishedResponse, _dfdaemon_v2_DownloadPieceFinishedResponse__Output>
      DownloadTaskRequest: MessageTypeDefinition<_dfdaemon_v2_DownloadTaskRequest, _dfdaemon_v2_DownloadTaskRequest__Output>
      DownloadTaskResponse: MessageTypeDefinition<_dfdaemon_v2_DownloadTaskResponse, _dfdaemon_v2_DownloadTaskResponse__Output>
      DownloadTaskStartedResponse: MessageTypeDefinition<_dfdaemon_v2_DownloadTaskStartedResponse, _dfdaemon_v2_DownloadTaskStartedResponse__Output>
      StatTaskRequest: MessageTypeDefinition<_dfdaemon_v2_StatTaskRequest, _dfdaemon_v2_StatTaskRequest__Output>
      SyncPiecesRequest: MessageTypeDefinition<_dfdaemon_v2_SyncPiecesRequest, _dfdaemon_v2_SyncPiecesRequest__Output>
      SyncPiecesResponse: MessageTypeDefinition<_dfdaemon_v2_SyncPiecesResponse, _dfdaemon_v2_SyncPiecesResponse__Output>
    }
  }
}

