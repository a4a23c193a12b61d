/**
 * Round-trips every message type of every .proto contract through encode/decode with a
 * value in every field (nested messages, maps, repeated fields, oneofs, enums, 64-bit ints),
 * with the same loader options the services use.
 */
import * as protobuf from 'protobufjs';
import { join } from 'node:path';
import { readdirSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { protos, PROTO_LOADER_OPTIONS, managerService, schedulerService, dfdaemonUploadService, dfdaemonDownloadService } from '../../../services/proto';

const PROTO_DIR = join(__dirname, '../../../services/proto');

function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(PROTO_DIR, target.replace(/^.*[\\/]/, ''));
  root.loadSync(readdirSync(PROTO_DIR).filter((f) => f.endsWith('.proto')).map((f) => join(PROTO_DIR, f)), { keepCase: false });
  root.resolveAll();
  return root;
}

function allMessageTypes(ns: protobuf.NamespaceBase): protobuf.Type[] {
  const out: protobuf.Type[] = [];
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type) out.push(nested);
    if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) out.push(...allMessageTypes(nested));
  }
  return out;
}

/** A distinct non-default value for every scalar type; nested messages filled recursively (depth-bounded). */
function sampleValue(field: protobuf.Field, depth: number, seed: number): unknown {
  if (field.resolvedType instanceof protobuf.Enum) {
    const values = Object.keys(field.resolvedType.values);
    return values[values.length - 1];
  }
  if (field.resolvedType instanceof protobuf.Type) return depth > 3 ? {} : sampleMessage(field.resolvedType, depth + 1, seed + 1);
  switch (field.type) {
    case 'string': return `${field.name}-${seed}`;
    case 'bool': return true;
    case 'bytes': return Buffer.from(JSON.stringify({ field: field.name }));
    case 'int64': return -(2 ** 40) - seed;
    case 'uint64': return 2 ** 40 + seed;
    case 'int32': return -7 - seed;
    case 'uint32': return 7 + seed;
    case 'double': case 'float': return 0.5;
    default: throw new Error(`no sample for ${field.type}`);
  }
}

function sampleMessage(type: protobuf.Type, depth = 0, seed = 1): Record<string, unknown> {
  const obj: Record<string, unknown> = {};
  const oneofFields = new Set(type.oneofsArray.flatMap((o) => (o.name.startsWith('_') ? [] : o.fieldsArray.slice(1).map((f) => f.name))));
  for (const field of type.fieldsArray) {
    if (oneofFields.has(field.name)) continue; // only the first member of a real oneof is set
    const value = sampleValue(field, depth, seed);
    if (field.map) obj[field.name] = { key1: value, key2: value };
    else if (field.repeated) obj[field.name] = [value, value];
    else obj[field.name] = value;
  }
  return obj;
}

const root = loadRoot();
const types = allMessageTypes(root).filter((t) => !t.fullName.startsWith('.google') && !t.fullName.startsWith('.grpc'));

describe('proto contracts', () => {
  it('declare the messages the design lists', () => {
    const names = types.map((t) => t.fullName);
    for (const expected of [
      '.manager.v2.UpdateSchedulerRequest', '.manager.v2.KeepAliveRequest', '.manager.v2.ListSchedulersRequest', '.manager.v2.UpdateSeedPeerRequest',
      '.scheduler.v2.AnnounceHostRequest', '.scheduler.v2.AnnouncePeerRequest', '.scheduler.v2.AnnouncePeerResponse',
      '.dfdaemon.v2.DownloadTaskRequest', '.dfdaemon.v2.DownloadTaskResponse', '.dfdaemon.v2.SyncPiecesRequest', '.dfdaemon.v2.SyncPiecesResponse',
    ]) expect(names).toContain(expected);
    expect(types.length).toBeGreaterThan(50);
  });

  it.each(types.map((t) => [t.fullName, t] as const))('%s round-trips with every field set', (_name, type) => {
    const sample = sampleMessage(type);
    const bytes = type.encode(type.fromObject(sample)).finish();
    const decoded = type.toObject(type.decode(bytes), { longs: Number, enums: String, bytes: Buffer, oneofs: false });
    expect(decoded).toEqual(type.toObject(type.fromObject(sample), { longs: Number, enums: String, bytes: Buffer, oneofs: false }));
    // Every field that was set survives: nothing is silently dropped by the schema.
    for (const key of Object.keys(sample)) expect(decoded).toHaveProperty(key);
  });

  it('every oneof member of the peer stream round-trips on its own', () => {
    for (const typeName of ['scheduler.v2.AnnouncePeerRequest', 'scheduler.v2.AnnouncePeerResponse', 'dfdaemon.v2.DownloadTaskResponse']) {
      const type = root.lookupType(typeName);
      const oneof = type.oneofsArray.find((o) => !o.name.startsWith('_'))!;
      for (const member of oneof.fieldsArray) {
        const msg = type.fromObject({ [member.name]: sampleValue(member, 1, 3) });
        const decoded = type.toObject(type.decode(type.encode(msg).finish()), { oneofs: true }) as Record<string, unknown>;
        expect(decoded[oneof.name]).toBe(member.name);
      }
    }
  });

  it('the runtime loader (used by the services) exposes all four services with the generated options', () => {
    expect(PROTO_LOADER_OPTIONS).toMatchObject({ longs: Number, enums: String, defaults: true, oneofs: true });
    expect(Object.keys(managerService())).toEqual(expect.arrayContaining(['ListSchedulers', 'UpdateScheduler', 'KeepAlive', 'GetScheduler', 'UpdateSeedPeer']));
    expect(schedulerService().AnnouncePeer.requestStream && schedulerService().AnnouncePeer.responseStream).toBe(true);
    expect(dfdaemonUploadService().SyncPieces.responseStream).toBe(true);
    expect(Object.keys(dfdaemonDownloadService())).toEqual(expect.arrayContaining(['DownloadTask', 'StatTask', 'DeleteTask']));
    expect(typeof protos().scheduler.scheduler.v2.Scheduler).toBe('function');
  });

  it('messages serialize through the grpc-js service definitions (what goes on the wire)', () => {
    const method = schedulerService().AnnouncePeer as grpc.MethodDefinition<unknown, unknown>;
    const req = { hostId: 'h', taskId: 't', peerId: 'p', registerPeerRequest: { download: { url: 'https://x/y', requestHeader: { Authorization: 'Bearer z' }, pieceLength: 4194304 } } };
    const back = method.requestDeserialize(method.requestSerialize(req)) as Record<string, unknown>;
    expect(back).toMatchObject({ hostId: 'h', request: 'registerPeerRequest', registerPeerRequest: { download: { url: 'https://x/y', requestHeader: { Authorization: 'Bearer z' }, pieceLength: 4194304 } } });
  });
});
