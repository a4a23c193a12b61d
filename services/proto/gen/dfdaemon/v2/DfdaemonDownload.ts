// Original file: services/proto/dfdaemon.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { DeleteTaskRequest as _dfdaemon_v2_DeleteTaskRequest, DeleteTaskRequest__Output as _dfdaemon_v2_DeleteTaskRequest__Output } from '../../dfdaemon/v2/DeleteTaskRequest';
import type { DownloadTaskRequest as _dfdaemon_v2_DownloadTaskRequest, DownloadTaskRequest__Output as _dfdaemon_v2_DownloadTaskRequest__Output } from '../../dfdaemon/v2/DownloadTaskRequest';
import type { DownloadTaskResponse as _dfdaemon_v2_DownloadTaskResponse, DownloadTaskResponse__Output as _dfdaemon_v2_DownloadTaskResponse__Output } from '../../dfdaemon/v2/DownloadTaskResponse';
import type { Empty as _common_v2_Empty, Empty__Output as _common_v2_Empty__Output } from '../../common/v2/Empty';
import type { StatTaskRequest as _dfdaemon_v2_StatTaskRequest, StatTaskRequest__Output as _dfdaemon_v2_StatTaskRequest__Output } from '../../dfdaemon/v2/StatTaskRequest';
import type { Task as _common_v2_Task, Task__Output as _common_v2_Task__Output } from '../../common/v2/Task';

export interface DfdaemonDownloadClient extends grpc.Client {
  DeleteTask(argument: _dfdaemon_v2_DeleteTaskRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  DeleteTask(argument: _dfdaemon_v2_DeleteTaskRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  DeleteTask(argument: _dfdaemon_v2_DeleteTaskRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  DeleteTask(argument: _dfdaemon_v2_DeleteTaskRequest, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deleteTask(argument: _dfdaemon_v2_DeleteTaskRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deleteTask(argument: _dfdaemon_v2_DeleteTaskRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deleteTask(argument: _dfdaemon_v2_DeleteTaskRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  deleteTask(argument: _dfdaemon_v2_DeleteTaskRequest, callback: grpc.requestCallback<_common_v2_Empty__Output>): grpc.ClientUnaryCall;
  
  DownloadTask(argument: _dfdaemon_v2_DownloadTaskRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_dfdaemon_v2_DownloadTaskResponse__Output>;
  DownloadTask(argument: _dfdaemon_v2_DownloadTaskRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_dfdaemon_v2_DownloadTaskResponse__Output>;
  downloadTask(argument: _dfdaemon_v2_DownloadTaskRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_dfdaemon_v2_DownloadTaskResponse__Output>;
  downloadTask(argument: _dfdaemon_v2_DownloadTaskRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_dfdaemon_v2_DownloadTaskResponse__Output>;
  
  StatTask(argument: _dfdaemon_v2_StatTaskRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Task__Output>): grpc.ClientUnaryCall;
  StatTask(argument: _dfdaemon_v2_StatTaskRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Task__Output>): grpc.ClientUnaryCall;
  StatTask(argument: _dfdaemon_v2_StatTaskRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Task__Output>): grpc.ClientUnaryCall;
  StatTask(argument: _dfdaemon_v2_StatTaskRequest, callback: grpc.requestCallback<_common_v2_Task__Output>): grpc.ClientUnaryCall;
  statTask(argument: _dfdaemon_v2_StatTaskRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Task__Output>): grpc.ClientUnaryCall;
  statTask(argument: _dfdaemon_v2_StatTaskRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_common_v2_Task__Output>): grpc.ClientUnaryCall;
  statTask(argument: _dfdaemon_v2_StatTaskRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_common_v2_Task__Output>): grpc.ClientUnaryCall;
  statTask(argument: _dfdaemon_v2_StatTaskRequest, callback: grpc.requestCallback<_common_v2_Task__Output>): grpc.ClientUnaryCall;
  
}

export interface DfdaemonDownloadHandlers extends grpc.UntypedServiceImplementation {
  DeleteTask: grpc.handleUnaryCall<_dfdaemon_v2_DeleteTaskRequest__Output, _common_v2_Empty>;
  
  DownloadTask: grpc.handleServerStreamingCall<_dfdaemon_v2_DownloadTaskRequest__Output, _dfdaemon_v2_DownloadTaskResponse>;
  
  StatTask: grpc.handleUnaryCall<_dfdaemon_v2_StatTaskRequest__Output, _common_v2_Task>;
  
}

export interface DfdaemonDownloadDefinition extends grpc.ServiceDefinition {
  DeleteTask: MethodDefinition<_dfdaemon_v2_DeleteTaskRequest, _common_v2_Empty, _dfdaemon_v2_DeleteTaskRequest__Output, _common_v2_Empty__Output>
  DownloadTask: MethodDefinition<_dfdaemon_v2_DownloadTaskRequest, _dfdaemon_v2_DownloadTaskResponse, _dfdaemon_v2_DownloadTaskRequest__Output, _dfdaemon_v2_DownloadTaskResponse__Output>
  StatTask: MethodDefinition<_dfdaemon_v2_StatTaskRequest, _common_v2_Task, _dfdaemon_v2_StatTaskRequest__Output, _common_v2_Task__Output>
}
