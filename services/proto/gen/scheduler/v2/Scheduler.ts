// Original file: services/proto/scheduler.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AnnounceHostRequest as _scheduler_v2_AnnounceHostRequest, AnnounceHostRequest__Output as _scheduler_v2_AnnounceHostRequest__Output } from '../../scheduler/v2/AnnounceHostRequest';
import type { AnnouncePeerRequest as _scheduler_v2_AnnouncePeerRequest, AnnouncePeerRequest__Output as _scheduler_v2_AnnouncePeerRequest__Output } from '../../scheduler/v2/AnnouncePeerRequest';
import type { AnnouncePeerResponse as _scheduler_v2_AnnouncePeerResponse, AnnouncePeerResponse__Output as _scheduler_v2_AnnouncePeerResponse__Output } from '../../scheduler/v2/AnnouncePeerResponse';
import type { DeleteHostRequest as _scheduler_v2_DeleteHostRequest, DeleteHostRequest__Output as _scheduler_v2_DeleteHostRequest__Output } from '../../scheduler/v2/DeleteHostRequest';
import type { DeletePeerRequest as _scheduler_v2_DeletePeerRequest, DeletePeerRequest__Output as _scheduler_v2_DeletePeerRequest__Output } from '../../scheduler/v2/DeletePeerRequest';
import type { DeleteTaskRequest as _scheduler_v2_DeleteTaskRequest, DeleteTaskRequest__Output as _scheduler_v2_DeleteTaskRequest__Output } from '../../scheduler/v2/DeleteTaskRequest';
import type { Empty as _common_v2_Empty, Empty__Output as _common_v2_Empty__Output } from '../../common/v2/Empty';
import type { ListHostsRequest as _scheduler_v2_ListHostsRequest, ListHostsRequest__Output as _scheduler_v2_ListHostsRequest__Output } from '../../scheduler/v2/ListHostsRequest';
import type { ListHostsResponse as _scheduler_v2_ListHostsResponse, ListHostsResponse__Output as _scheduler_v2_ListHostsResponse__Output } from '../../scheduler/v2/ListHostsResponse';
import type { Peer as _common_v2_Peer, Peer__Output as _common_v2_Peer__Output } from '../../common/v2/Peer';
import type { StatPeerRequest as _scheduler_v2_StatPeerRequest, StatPeerRequest__Output as _scheduler_v2_StatPeerRequest__Output } from '../../scheduler/v2/StatPeerRequest';
import type { StatTaskRequest as _scheduler_v2_StatTaskRequest, StatTaskRequest__Output as _scheduler_v2_StatTaskRequest__Output } from '../../scheduler/v2/StatTaskRequest';
import type { Task as _common_v2_Task, Task__Output as _common_v2_Task__Output } from '../../common/v2/Task';

export interface SchedulerClient extends grpc.Client {
  AnnounceHost(argument: _scheduler_v2_AnnounceHostRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  AnnounceHost(argument: _scheduler_v2_AnnounceHostRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  AnnounceHost(argument: _scheduler_v2_AnnounceHostRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  AnnounceHost(argument: _scheduler_v2_AnnounceHostRequest, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  announceHost(argument: _scheduler_v2_AnnounceHostRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  announceHost(argument: _scheduler_v2_AnnounceHostRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  announceHost(argument: _scheduler_v2_AnnounceHostRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  announceHost(argument: _scheduler_v2_AnnounceHostRequest, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  
  AnnouncePeer(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_scheduler_v2_AnnouncePeerRequest, _scheduler_v2_AnnouncePeerResponse__Output>;
  AnnouncePeer(options?: grpc.CallOptions): grpc.ClientDuplexStream<_scheduler_v2_AnnouncePeerRequest, _scheduler_v2_AnnouncePeerResponse__Output>;
  announcePeer(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_scheduler_v2_AnnouncePeerRequest, _scheduler_v2_AnnouncePeerResponse__Output>;
  announcePeer(options?: grpc.CallOptions): grpc.ClientDuplexStream<_scheduler_v2_AnnouncePeerRequest, _scheduler_v2_AnnouncePeerResponse__Output>;
  
  DeleteHost(argument: _scheduler_v2_DeleteHostRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  DeleteHost(argument: _scheduler_v2_DeleteHostRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  DeleteHost(argument: _scheduler_v2_DeleteHostRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  DeleteHost(argument: _scheduler_v2_DeleteHostRequest, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deleteHost(argument: _scheduler_v2_DeleteHostRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deleteHost(argument: _scheduler_v2_DeleteHostRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deleteHost(argument: _scheduler_v2_DeleteHostRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deleteHost(argument: _scheduler_v2_DeleteHostRequest, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  
  DeletePeer(argument: _scheduler_v2_DeletePeerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  DeletePeer(argument: _scheduler_v2_DeletePeerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  DeletePeer(argument: _scheduler_v2_DeletePeerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  DeletePeer(argument: _scheduler_v2_DeletePeerRequest, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deletePeer(argument: _scheduler_v2_DeletePeerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deletePeer(argument: _scheduler_v2_DeletePeerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deletePeer(argument: _scheduler_v2_DeletePeerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deletePeer(argument: _scheduler_v2_DeletePeerRequest, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  
  DeleteTask(argument: _scheduler_v2_DeleteTaskRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  DeleteTask(argument: _scheduler_v2_DeleteTaskRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  DeleteTask(argument: _scheduler_v2_DeleteTaskRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  DeleteTask(argument: _scheduler_v2_DeleteTaskRequest, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deleteTask(argument: _scheduler_v2_DeleteTaskRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deleteTask(argument: _scheduler_v2_DeleteTaskRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deleteTask(argument: _scheduler_v2_DeleteTaskRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deleteTask(argument: _scheduler_v2_DeleteTaskRequest, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  
  ListHosts(argument: _scheduler_v2_ListHostsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_scheduler_v2_ListHostsResponse__Output>): grpc.ClientUnaryCall;
  ListHosts(argument: _scheduler_v2_ListHostsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_scheduler_v2_ListHostsResponse__Output>): grpc.ClientUnaryCall;
  ListHosts(argument: _scheduler_v2_ListHostsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_scheduler_v2_ListHostsResponse__Output>): grpc.ClientUnaryCall;
  ListHosts(argument: _scheduler_v2_ListHostsRequest, callback: grpc.requestCallback<_scheduler_v2_ListHostsResponse__Output>): grpc.ClientUnaryCall;
  listHosts(argument: _scheduler_v2_ListHostsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_scheduler_v2_ListHostsResponse__Output>): grpc.ClientUnaryCall;
  listHosts(argument: _scheduler_v2_ListHostsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_scheduler_v2_ListHostsResponse__Output>): grpc.ClientUnaryCall;
  listHosts(argument: _scheduler_v2_ListHostsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_scheduler_v2_ListHostsResponse__Output>): grpc.ClientUnaryCall;
  listHosts(argument: _scheduler_v2_ListHostsRequest, callback: grpc.requestCallback<_scheduler_v2_ListHostsResponse__Output>): grpc.ClientUnaryCall;
  
  StatPeer(argument: _scheduler_v2_StatPeerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Peer__Output>): grpc.ClientUnaryCall;
  StatPeer(argument: _scheduler_v2_StatPeerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Peer__Output>): grpc.ClientUnaryCall;
  StatPeer(argument: _scheduler_v2_StatPeerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Peer__Output>): grpc.ClientUnaryCall;
  StatPeer(argument: _scheduler_v2_StatPeerRequest, callback: grpc.requestCallback<_common_v2_Peer__Output>): grpc.ClientUnaryCall;
  statPeer(argument: _scheduler_v2_StatPeerRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Peer__Output>): grpc.ClientUnaryCall;
  statPeer(argument: _scheduler_v2_StatPeerRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Peer__Output>): grpc.ClientUnaryCall;
  statPeer(argument: _scheduler_v2_StatPeerRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Peer__Output>): grpc.ClientUnaryCall;
  statPeer(argument: _scheduler_v2_StatPeerRequest, callback: grpc.requestCallback<_common_v2_Peer__Output>): grpc.ClientUnaryCall;
  
  StatTask(argument: _scheduler_v2_StatTaskRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Task__Output>): grpc.ClientUnaryCall;
  StatTask(argument: _scheduler_v2_StatTaskRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Task__Output>): grpc.ClientUnaryCall;
  StatTask(argument: _scheduler_v2_StatTaskRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Task__Output>): grpc.ClientUnaryCall;
  StatTask(argument: _scheduler_v2_StatTaskRequest, callback: grpc.requestCallback<_common_v2_Task__Output>): grpc.ClientUnaryCall;
  statTask(argument: _scheduler_v2_StatTaskRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Task__Output>): grpc.ClientUnaryCall;
  statTask(argument: _scheduler_v2_StatTaskRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Task__Output>): grpc.ClientUnaryCall;
  statTask(argument: _scheduler_v2_StatTaskRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Task__Output>): grpc.ClientUnaryCall;
  statTask(argument: _scheduler_v2_StatTaskRequest, callback: grpc.requestCallback<_common_v2_Task__Output>): grpc.ClientUnaryCall;
  
}

export interface SchedulerHandlers extends grpc.UntypedServiceImplementation {
  AnnounceHost: grpc.handleUnaryCall<_scheduler_v2_AnnounceHostRequest__Output, _common_v2_Empty>;
  
  AnnouncePeer: grpc.handleBidiStreamingCall<_scheduler_v2_AnnouncePeerRequest__Output, _scheduler_v2_AnnouncePeerResponse>;
  
  DeleteHost: grpc.handleUnaryCall<_scheduler_v2_DeleteHostRequest__Output, _common_v2_Empty>;
  
  DeletePeer: grpc.handleUnaryCall<_scheduler_v2_DeletePeerRequest__Output, _common_v2_Empty>;
  
  DeleteTask: grpc.handleUnaryCall<_scheduler_v2_DeleteTaskRequest__Output, _common_v2_Empty>;
  
  ListHosts: grpc.handleUnaryCall<_scheduler_v2_ListHostsRequest__Output, _scheduler_v2_ListHostsResponse>;
  
  StatPeer: grpc.handleUnaryCall<_scheduler_v2_StatPeerRequest__Output, _common_v2_Peer>;
  
  StatTask: grpc.handleUnaryCall<_scheduler_v2_StatTaskRequest__Output, _common_v2_Task>;
  
}

export interface SchedulerDefinition extends grpc.ServiceDefinition {
  AnnounceHost: MethodDefinition<_scheduler_v2_AnnounceHostRequest, _common_v2_Empty, _scheduler_v2_AnnounceHostRequest__Output, _common_v2_Empty__Output>
  AnnouncePeer: MethodDefinition<_scheduler_v2_AnnouncePeerRequest, _scheduler_v2_AnnouncePeerResponse, _scheduler_v2_AnnouncePeerRequest__Output, _scheduler_v2_AnnouncePeerResponse__Output>
  DeleteHost: MethodDefinition<_scheduler_v2_DeleteHostRequest, _common_v2_Empty, _scheduler_v2_DeleteHostRequest__Output, _common_v2_Empty__Output>
  DeletePeer: MethodDefinition<_scheduler_v2_DeletePeerRequest, _common_v2_Empty, _scheduler_v2_DeletePeerRequest__Output, _common_v2_Empty__Output>
  DeleteTask: MethodDefinition<_scheduler_v2_DeleteTaskRequest, _common_v2_Empty, _scheduler_v2_DeleteTaskRequest__Output, _common_v2_Empty__Output>
  ListHosts: MethodDefinition<_scheduler_v2_ListHostsRequest, _scheduler_v2_ListHostsResponse, _scheduler_v2_ListHostsRequest__Output, _scheduler_v2_ListHostsResponse__Output>
  StatPeer: MethodDefinition<_scheduler_v2_StatPeerRequest, _common_v2_Peer, _scheduler_v2_StatPeerRequest__Output, _common_v2_Peer__Output>
  StatTask: MethodDefinition<_scheduler_v2_StatTaskRequest, _common_v2_Task, _scheduler_v2_StatTaskRequest__Output, _common_v2_Task__Output>
}
