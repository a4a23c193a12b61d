/**
 * Loads the .proto contracts at run time (protobufjs through @grpc/proto-loader) and
 * exposes them with the TypeScript types generated into ./gen by `npm run proto:gen`.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import type { ProtoGrpcType as ManagerProto } from './gen/manager';
import type { ProtoGrpcType as SchedulerProto } from './gen/scheduler';
import type { ProtoGrpcType as DfdaemonProto } from './gen/dfdaemon';

/** Must match the flags in scripts/proto-gen.mjs, or the generated types lie. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

function protoRoot(): string {
  // Compiled code runs from build/services/proto; ts-jest runs from services/proto.
  const fromBuild = path.resolve(__dirname, '../../../services/proto');
  return __dirname.includes(`${path.sep}build${path.sep}`) ? fromBuild : __dirname;
}

function load<T>(file: string): T {
  const def = protoLoader.loadSync(file, { ...PROTO_LOADER_OPTIONS, includeDirs: [protoRoot()] });
  return grpc.loadPackageDefinition(def) as unknown as T;
}

let roots: Map<string, protobuf.Root> | undefined;

/**
 * The protobufjs reflection of one .proto file (field names camelCased as proto-loader does),
 * loaded once per process: for the few hot messages a service encodes itself.
 */
export function protobufRoot(file: 'scheduler.proto' | 'manager.proto' | 'dfdaemon.proto'): protobuf.Root {
  roots ??= new Map();
  let root = roots.get(file);
  if (!root) {
    root = new protobuf.Root();
    const dir = protoRoot();
    root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(dir, target));
    root.loadSync(file, { keepCase: false });
    root.resolveAll();
    roots.set(file, root);
  }
  return root;
}

let cache: { manager: ManagerProto; scheduler: SchedulerProto; dfdaemon: DfdaemonProto } | undefined;

/** All packages, loaded once per process. */
export function protos(): { manager: ManagerProto; scheduler: SchedulerProto; dfdaemon: DfdaemonProto } {
  cache ??= {
    manager: load<ManagerProto>('manager.proto'),
    scheduler: load<SchedulerProto>('scheduler.proto'),
    dfdaemon: load<DfdaemonProto>('dfdaemon.proto'),
  };
  return cache;
}

export const managerService = (): grpc.ServiceDefinition => protos().manager.manager.v2.Manager.service;
export const schedulerService = (): grpc.ServiceDefinition => protos().scheduler.scheduler.v2.Scheduler.service;
export const dfdaemonUploadService = (): grpc.ServiceDefinition => protos().dfdaemon.dfdaemon.v2.DfdaemonUpload.service;
export const dfdaemonDownloadService = (): grpc.ServiceDefinition => protos().dfdaemon.dfdaemon.v2.DfdaemonDownload.service;

// Message types, re-exported under short names for the services.
export type { AnnouncePeerRequest, AnnouncePeerRequest__Output } from './gen/scheduler/v2/AnnouncePeerRequest';
export type { AnnouncePeerResponse, AnnouncePeerResponse__Output } from './gen/scheduler/v2/AnnouncePeerResponse';
export type { AnnounceHostRequest, AnnounceHostRequest__Output } from './gen/scheduler/v2/AnnounceHostRequest';
export type { SchedulerClient } from './gen/scheduler/v2/Scheduler';
export type { SchedulerHandlers } from './gen/scheduler/v2/Scheduler';
export type { ManagerClient, ManagerHandlers } from './gen/manager/v2/Manager';
export type { DfdaemonUploadClient, DfdaemonUploadHandlers } from './gen/dfdaemon/v2/DfdaemonUpload';
export type { DfdaemonDownloadClient, DfdaemonDownloadHandlers } from './gen/dfdaemon/v2/DfdaemonDownload';
export type { Download, Download__Output } from './gen/common/v2/Download';
export type { Host, Host__Output } from './gen/common/v2/Host';
export type { Peer, Peer__Output } from './gen/common/v2/Peer';
export type { Piece, Piece__Output } from './gen/common/v2/Piece';
export type { Task, Task__Output } from './gen/common/v2/Task';
