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
import type { DeleteSeedPeerRequest as _manager_v2_DeleteSeedPeerRequest, DeleteSeedPeerRequest__Output as _manager_v2_DeleteSeedPeerRequest__Output } from './manager/v2/DeleteSeedPeerRequest';
import type { GetSchedulerRequest as _manager_v2_GetSchedulerRequest, GetSchedulerRequest__Output as _manager_v2_GetSchedulerRequest__Output } from './manager/v2/GetSchedulerRequest';
import type { GetSeedPeerRequest as _manager_v2_GetSeedPeerRequest, GetSeedPeerRequest__Output as _manager_v2_GetSeedPeerRequest__Output } from './manager/v2/GetSeedPeerRequest';
import type { KeepAliveRequest as _manager_v2_KeepAliveRequest, KeepAliveRequest__Output as _manager_v2_KeepAliveRequest__Output } from './manager/v2/KeepAliveRequest';
import type { ListSchedulersRequest as _manager_v2_ListSchedulersRequest, ListSchedulersRequest__Output as _manager_v2_ListSchedulersRequest__Output } from './manager/v2/ListSchedulersRequest';
import type { ListSchedulersResponse as _manager_v2_ListSchedulersResponse, ListSchedulersResponse__Output as _manager_v2_ListSchedulersResponse__Output } from './manager/v2/ListSchedulersResponse';
import type { ListSeedPeersRequest as _manager_v2_ListSeedPeersRequest, ListSeedPeersRequest__Output as _manager_v2_ListSeedPeersRequest__Output } from './manager/v2/ListSeedPeersRequest';
import type { ListSeedPeersResponse as _manager_v2_ListSeedPeersResponse, ListSeedPeersResponse__Output as _manager_v2_ListSeedPeersResponse__Output } from './manager/v2/ListSeedPeersResponse';
import type { ManagerClient as _manager_v2_ManagerClient, ManagerDefinition as _manager_v2_ManagerDefinition } from './manager/v2/Manager';
import type { Scheduler as _manager_v2_Scheduler, Scheduler__Output as _manager_v2_Scheduler__Output } from './manager/v2/Scheduler';
import type { SchedulerCluster as _manager_v2_SchedulerCluster, SchedulerCluster__Output as _manager_v2_SchedulerCluster__Output } from './manager/v2/SchedulerCluster';
import type { SeedPeer as _manager_v2_SeedPeer, SeedPeer__Output as _manager_v2_SeedPeer__Output } from './manager/v2/SeedPeer';
import type { SeedPeerCluster as _manager_v2_SeedPeerCluster, SeedPeerCluster__Output as _manager_v2_SeedPeerCluster__Output } from './manager/v2/SeedPeerCluster';
import type { UpdateSchedulerRequest as _manager_v2_UpdateSchedulerRequest, UpdateSchedulerRequest__Output as _manager_v2_UpdateSchedulerRequest__Output } from './manager/v2/UpdateSchedulerRequest';
import type { UpdateSeedPeerRequest as _manager_v2_UpdateSeedPeerRequest, UpdateSeedPeerRequest__Output as _manager_v2_UpdateSeedPeerRequest__Output } from './manager/v2/UpdateSeedPeerRequest';

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
  manager: {
    v2: {
      DeleteSeedPeerRequest: MessageTypeDefinition<_manager_v2_DeleteSeedPeerRequest, _manager_v2_DeleteSeedPeerRequest__Output>
      GetSchedulerRequest: MessageTypeDefinition<_manager_v2_GetSchedulerRequest, _manager_v2_GetSchedulerRequest__Output>
      GetSeedPeerRequest: MessageTypeDefinition<_manager_v2_GetSeedPeerRequest, _manager_v2_GetSeedPeerRequest__Output>
      KeepAliveRequest: MessageTypeDefinition<_manager_v2_KeepAliveRequest, _manager_v2_KeepAliveRequest__Output>
      ListSchedulersRequest: MessageTypeDefinition<_manager_v2_ListSchedulersRequest, _manager_v2_ListSchedulersRequest__Output>
      ListSchedulersResponse: MessageTypeDefinition<_manager_v2_ListSchedulersResponse, _manager_v2_ListSchedulersResponse__Output>
      ListSeedPeersRequest: MessageTypeDefinition<_manager_v2_ListSeedPeersRequest, _manager_v2_ListSeedPeersRequest__Output>
      ListSeedPeersResponse: MessageTypeDefinition<_manager_v2_ListSeedPeersResponse, _manager_v2_ListSeedPeersResponse__Output>
      Manager: SubtypeConstructor<typeof grpc.Client, _manager_v2_ManagerClient> & { service: _manager_v2_ManagerDefinition }
      Scheduler: MessageTypeDefinition<_manager_v2_Scheduler, _manager_v2_Scheduler__Output>
      SchedulerCluster: MessageTypeDefinition<_manager_v2_SchedulerCluster, _manager_v2_SchedulerCluster__Output>
      SeedPeer: MessageTypeDefinition<_manager_v2_SeedPeer, _manager_v2_SeedPeer__Output>
      SeedPeerCluster: MessageTypeDefinition<_manager_v2_SeedPeerCluster, _manager_v2_SeedPeerCluster__Output>
      SourceType: EnumTypeDefinition
      UpdateSchedulerRequest: MessageTypeDefinition<_manager_v2_UpdateSchedulerRequest, _manager_v2_UpdateSchedulerRequest__Output>
      UpdateSeedPeerRequest: MessageTypeDefinition<_manager_v2_UpdateSeedPeerRequest, _manager_v2_UpdateSeedPeerRequest__Output>
    }
  }
}

