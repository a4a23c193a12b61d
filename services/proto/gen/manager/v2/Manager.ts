// Original file: services/proto/manager.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { DeleteSeedPeerRequest as _manager_v2_DeleteSeedPeerRequest, DeleteSeedPeerRequest__Output as _manager_v2_DeleteSeedPeerRequest__Output } from '../../manager/v2/DeleteSeedPeerRequest';
import type { Empty as _common_v2_Empty, Empty__Output as _common_v2_Empty__Output } from '../../common/v2/Empty';
import type { GetSchedulerRequest as _manager_v2_GetSchedulerRequest, GetSchedulerRequest__Output as _manager_v2_GetSchedulerRequest__Output } from '../../manager/v2/GetSchedulerRequest';
import type { GetSeedPeerRequest as _manager_v2_GetSeedPeerRequest, GetSeedPeerRequest__Output as _manager_v2_GetSeedPeerRequest__Output } from '../../manager/v2/GetSeedPeerRequest';
import type { KeepAliveRequest as _manager_v2_KeepAliveRequest, KeepAliveRequest__Output as _manager_v2_KeepAliveRequest__Output } from '../../manager/v2/KeepAliveRequest';
import type { ListSchedulersRequest as _manager_v2_ListSchedulersRequest, ListSchedulersRequest__Output as _manager_v2_ListSchedulersRequest__Output } from '../../manager/v2/ListSchedulersRequest';
import type { ListSchedulersResponse as _manager_v2_ListSchedulersResponse, ListSchedulersResponse__Output as _manager_v2_ListSchedulersResponse__Output } from '../../manager/v2/ListSchedulersResponse';
import type { ListSeedPeersRequest as _manager_v2_ListSeedPeersRequest, ListSeedPeersRequest__Output as _manager_v2_ListSeedPeersRequest__Output } from '../../manager/v2/ListSeedPeersRequest';
import type { ListSeedPeersResponse as _manager_v2_ListSeedPeersResponse, ListSeedPeersResponse__Output as _manager_v2_ListSeedPeersResponse__Output } from '../../manager/v2/ListSeedPeersResponse';
import type { Scheduler as _manager_v2_Scheduler, Scheduler__Output as _manager_v2_Scheduler__Output } from '../../manager/v2/Scheduler';
import type { SeedPeer as _manager_v2_SeedPeer, SeedPeer__Output as _manager_v2_SeedPeer__Output } from '../../manager/v2/SeedPeer';
import type { UpdateSchedulerRequest as _manager_v2_UpdateSchedulerRequest, UpdateSchedulerRequest__Output as _manager_v2_UpdateSchedulerRequest__Output } from '../../manager/v2/UpdateSchedulerRequest';
import type { UpdateSeedPeerRequest as _manager_v2_UpdateSeedPeerRequest, UpdateSeedPeerRequest__Output as _manager_v2_UpdateSeedPeerRequest__Output } from '../../manager/v2/UpdateSeedPeerRequest';

export interface ManagerClient extends grpc.Client {
  DeleteSeedPeer(argument: _manager_v2_DeleteSeedPeerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  DeleteSeedPeer(argument: _manager_v2_DeleteSeedPeerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  DeleteSeedPeer(argument: _manager_v2_DeleteSeedPeerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  DeleteSeedPeer(argument: _manager_v2_DeleteSeedPeerRequest, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deleteSeedPeer(argument: _manager_v2_DeleteSeedPeerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deleteSeedPeer(argument: _manager_v2_DeleteSeedPeerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deleteSeedPeer(argument: _manager_v2_DeleteSeedPeerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deleteSeedPeer(argument: _manager_v2_DeleteSeedPeerRequest, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  
  GetScheduler(argument: _manager_v2_GetSchedulerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_Scheduler__Output>): grpc.ClientUnaryCall;
  GetScheduler(argument: _manager_v2_GetSchedulerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_manager_v2_Scheduler__Output>): grpc.ClientUnaryCall;
  GetScheduler(argument: _manager_v2_GetSchedulerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_Scheduler__Output>): grpc.ClientUnaryCall;
  GetScheduler(argument: _manager_v2_GetSchedulerRequest, callback: grpc.requestCallback<_manager_v2_Scheduler__Output>): grpc.ClientUnaryCall;
  getScheduler(argument: _manager_v2_GetSchedulerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_Scheduler__Output>): grpc.ClientUnaryCall;
  getScheduler(argument: _manager_v2_GetSchedulerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_manager_v2_Scheduler__Output>): grpc.ClientUnaryCall;
  getScheduler(argument: _manager_v2_GetSchedulerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_Scheduler__Output>): grpc.ClientUnaryCall;
  getScheduler(argument: _manager_v2_GetSchedulerRequest, callback: grpc.requestCallback<_manager_v2_Scheduler__Output>): grpc.ClientUnaryCall;
  
  GetSeedPeer(argument: _manager_v2_GetSeedPeerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_SeedPeer__Output>): grpc.ClientUnaryCall;
  GetSeedPeer(argument: _manager_v2_GetSeedPeerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_manager_v2_SeedPeer__Output>): grpc.ClientUnaryCall;
  GetSeedPeer(argument: _manager_v2_GetSeedPeerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_SeedPeer__Output>): grpc.ClientUnaryCall;
  GetSeedPeer(argument: _manager_v2_GetSeedPeerRequest, callback: grpc.requestCallback<_manager_v2_SeedPeer__Output>): grpc.ClientUnaryCall;
  getSeedPeer(argument: _manager_v2_GetSeedPeerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_SeedPeer__Output>): grpc.ClientUnaryCall;
  getSeedPeer(argument: _manager_v2_GetSeedPeerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_manager_v2_SeedPeer__Output>): grpc.ClientUnaryCall;
  getSeedPeer(argument: _manager_v2_GetSeedPeerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_SeedPeer__Output>): grpc.ClientUnaryCall;
  getSeedPeer(argument: _manager_v2_GetSeedPeerRequest, callback: grpc.requestCallback<_manager_v2_SeedPeer__Output>): grpc.ClientUnaryCall;
  
  KeepAlive(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientWritableStream<_manager_v2_KeepAliveRequest>;
  KeepAlive(metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientWritableStream<_manager_v2_KeepAliveRequest>;
  KeepAlive(options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientWritableStream<_manager_v2_KeepAliveRequest>;
  KeepAlive(callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientWritableStream<_manager_v2_KeepAliveRequest>;
  keepAlive(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientWritableStream<_manager_v2_KeepAliveRequest>;
  keepAlive(metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientWritableStream<_manager_v2_KeepAliveRequest>;
  keepAlive(options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientWritableStream<_manager_v2_KeepAliveRequest>;
  keepAlive(callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientWritableStream<_manager_v2_KeepAliveRequest>;
  
  ListSchedulers(argument: _manager_v2_ListSchedulersRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_ListSchedulersResponse__Output>): grpc.ClientUnaryCall;
  ListSchedulers(argument: _manager_v2_ListSchedulersRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_manager_v2_ListSchedulersResponse__Output>): grpc.ClientUnaryCall;
  ListSchedulers(argument: _manager_v2_ListSchedulersRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_ListSchedulersResponse__Output>): grpc.ClientUnaryCall;
  ListSchedulers(argument: _manager_v2_ListSchedulersRequest, callback: grpc.requestCallback<_manager_v2_ListSchedulersResponse__Output>): grpc.ClientUnaryCall;
  listSchedulers(argument: _manager_v2_ListSchedulersRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_ListSchedulersResponse__Output>): grpc.ClientUnaryCall;
  listSchedulers(argument: _manager_v2_ListSchedulersRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_manager_v2_ListSchedulersResponse__Output>): grpc.ClientUnaryCall;
  listSchedulers(argument: _manager_v2_ListSchedulersRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_ListSchedulersResponse__Output>): grpc.ClientUnaryCall;
  listSchedulers(argument: _manager_v2_ListSchedulersRequest, callback: grpc.requestCallback<_manager_v2_ListSchedulersResponse__Output>): grpc.ClientUnaryCall;
  
  ListSeedPeers(argument: _manager_v2_ListSeedPeersRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_ListSeedPeersResponse__Output>): grpc.ClientUnaryCall;
  ListSeedPeers(argument: _manager_v2_ListSeedPeersRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_manager_v2_ListSeedPeersResponse__Output>): grpc.ClientUnaryCall;
  ListSeedPeers(argument: _manager_v2_ListSeedPeersRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_ListSeedPeersResponse__Output>): grpc.ClientUnaryCall;
  ListSeedPeers(argument: _manager_v2_ListSeedPeersRequest, callback: grpc.requestCallback<_manager_v2_ListSeedPeersResponse__Output>): grpc.ClientUnaryCall;
  listSeedPeers(argument: _manager_v2_ListSeedPeersRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_ListSeedPeersResponse__Output>): grpc.ClientUnaryCall;
  listSeedPeers(argument: _manager_v2_ListSeedPeersRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_manager_v2_ListSeedPeersResponse__Output>): grpc.ClientUnaryCall;
  listSeedPeers(argument: _manager_v2_ListSeedPeersRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_ListSeedPeersResponse__Output>): grpc.ClientUnaryCall;
  listSeedPeers(argument: _manager_v2_ListSeedPeersRequest, callback: grpc.requestCallback<_manager_v2_ListSeedPeersResponse__Output>): grpc.ClientUnaryCall;
  
  UpdateScheduler(argument: _manager_v2_UpdateSchedulerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_Scheduler__Output>): grpc.ClientUnaryCall;
  UpdateScheduler(argument: _manager_v2_UpdateSchedulerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_manager_v2_Scheduler__Output>): grpc.ClientUnaryCall;
  UpdateScheduler(argument: _manager_v2_UpdateSchedulerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_Scheduler__Output>): grpc.ClientUnaryCall;
  UpdateScheduler(argument: _manager_v2_UpdateSchedulerRequest, callback: grpc.requestCallback<_manager_v2_Scheduler__Output>): grpc.ClientUnaryCall;
  updateScheduler(argument: _manager_v2_UpdateSchedulerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_Scheduler__Output>): grpc.ClientUnaryCall;
  updateScheduler(argument: _manager_v2_UpdateSchedulerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_manager_v2_Scheduler__Output>): grpc.ClientUnaryCall;
  updateScheduler(argument: _manager_v2_UpdateSchedulerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_Scheduler__Output>): grpc.ClientUnaryCall;
  updateScheduler(argument: _manager_v2_UpdateSchedulerRequest, callback: grpc.requestCallback<_manager_v2_Scheduler__Output>): grpc.ClientUnaryCall;
  
  UpdateSeedPeer(argument: _manager_v2_UpdateSeedPeerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_SeedPeer__Output>): grpc.ClientUnaryCall;
  UpdateSeedPeer(argument: _manager_v2_UpdateSeedPeerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_manager_v2_SeedPeer__Output>): grpc.ClientUnaryCall;
  UpdateSeedPeer(argument: _manager_v2_UpdateSeedPeerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_SeedPeer__Output>): grpc.ClientUnaryCall;
  UpdateSeedPeer(argument: _manager_v2_UpdateSeedPeerRequest, callback: grpc.requestCallback<_manager_v2_SeedPeer__Output>): grpc.ClientUnaryCall;
  updateSeedPeer(argument: _manager_v2_UpdateSeedPeerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_SeedPeer__Output>): grpc.ClientUnaryCall;
  updateSeedPeer(argument: _manager_v2_UpdateSeedPeerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_manager_v2_SeedPeer__Output>): grpc.ClientUnaryCall;
  updateSeedPeer(argument: _manager_v2_UpdateSeedPeerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_manager_v2_SeedPeer__Output>): grpc.ClientUnaryCall;
  updateSeedPeer(argument: _manager_v2_UpdateSeedPeerRequest, callback: grpc.requestCallback<_manager_v2_SeedPeer__Output>): grpc.ClientUnaryCall;
  
}

export interface ManagerHandlers extends grpc.UntypedServiceImplementation {
  DeleteSeedPeer: grpc.handleUnaryCall<_manager_v2_DeleteSeedPeerRequest__Output, _common_v2_Empty>;
  
  GetScheduler: grpc.handleUnaryCall<_manager_v2_GetSchedulerRequest__Output, _manager_v2_Scheduler>;
  
  GetSeedPeer: grpc.handleUnaryCall<_manager_v2_GetSeedPeerRequest__Output, _manager_v2_SeedPeer>;
  
  KeepAlive: grpc.handleClientStreamingCall<_manager_v2_KeepAliveRequest__Output, _common_v2_Empty>;
  
  ListSchedulers: grpc.handleUnaryCall<_manager_v2_ListSchedulersRequest__Output, _manager_v2_ListSchedulersResponse>;
  
  ListSeedPeers: grpc.handleUnaryCall<_manager_v2_ListSeedPeersRequest__Output, _manager_v2_ListSeedPeersResponse>;
  
  UpdateScheduler: grpc.handleUnaryCall<_manager_v2_UpdateSchedulerRequest__Output, _manager_v2_Scheduler>;
  
  UpdateSeedPeer: grpc.handleUnaryCall<_manager_v2_UpdateSeedPeerRequest__Output, _manager_v2_SeedPeer>;
  
}

export interface ManagerDefinition extends grpc.ServiceDefinition {
  DeleteSeedPeer: MethodDefinition<_manager_v2_DeleteSeedPeerRequest, _common_v2_Empty, _manager_v2_DeleteSeedPeerRequest__Output, _common_v2_Empty__Output>
  GetScheduler: MethodDefinition<_manager_v2_GetSchedulerRequest, _manager_v2_Scheduler, _manager_v2_GetSchedulerRequest__Output, _manager_v2_Scheduler__Output>
  GetSeedPeer: MethodDefinition<_manager_v2_GetSeedPeerRequest, _manager_v2_SeedPeer, _manager_v2_GetSeedPeerRequest__Output, _manager_v2_SeedPeer__Output>
  KeepAlive: MethodDefinition<_manager_v2_KeepAliveRequest, _common_v2_Empty, _manager_v2_KeepAliveRequest__Output, _common_v2_Empty__Output>
  ListSchedulers: MethodDefinition<_manager_v2_ListSchedulersRequest, _manager_v2_ListSchedulersResponse, _manager_v2_ListSchedulersRequest__Output, _manager_v2_ListSchedulersResponse__Output>
  ListSeedPeers: MethodDefinition<_manager_v2_ListSeedPeersRequest, _manager_v2_ListSeedPeersResponse, _manager_v2_ListSeedPeersRequest__Output, _manager_v2_ListSeedPeersResponse__Output>
  UpdateScheduler: MethodDefinition<_manager_v2_UpdateSchedulerRequest, _manager_v2_Scheduler, _manager_v2_UpdateSchedulerRequest__Output, _manager_v2_Scheduler__Output>
  UpdateSeedPeer: MethodDefinition<_manager_v2_UpdateSeedPeerRequest, _manager_v2_SeedPeer, _manager_v2_UpdateSeedPeerRequest__Output, _manager_v2_SeedPeer__Output>
}
