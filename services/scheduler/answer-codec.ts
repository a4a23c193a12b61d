/**
 * The AnnouncePeerResponse encoder of the scheduler's gRPC server. Answers with parents are
 * most of what the scheduler sends, and encoding them was its largest single cost
 * (proto-loader converts the whole object with fromObject, then encodes it, every time):
 * here each parent's host, which changes only when the host announces again, is encoded
 * once and its bytes reused, and the rest of a candidate parent and the task are written
 * field by field.
 * Anything else goes through the generic fromObject + encode, so the bytes decode to the
 * same message either way (test/unit/scheduler/answer-codec.test.ts).
 */
import type * as grpc from '@grpc/grpc-js';
import { Writer, type Type } from 'protobufjs';
import { protobufRoot, type AnnouncePeerResponse, type Host as HostProto, type Peer as PeerProto, type Task as TaskProto } from '../proto';

// Field numbers and wire types (scheduler.proto, common.proto).
const LEN = 2;
const VARINT = 0;
const tag = (field: number, wire: number): number => (field << 3) | wire;
const RESPONSE_NORMAL = tag(2, LEN);
const NORMAL_PARENT = tag(1, LEN);
const NORMAL_TASK = tag(2, LEN);
const PEER_ID = tag(1, LEN);
const PEER_PRIORITY = tag(2, VARINT);
const PEER_STATE = tag(4, LEN);
const PEER_HOST = tag(6, LEN);
const PEER_NEED_BACK_TO_SOURCE = tag(7, VARINT);
const PEER_FINISHED_PIECE_COUNT = tag(8, VARINT);
const TASK_ID = tag(1, LEN);
const TASK_TYPE = tag(2, VARINT);
const TASK_URL = tag(3, LEN);
const TASK_DIGEST = tag(4, LEN);
const TASK_TAG = tag(5, LEN);
const TASK_APPLICATION = tag(6, LEN);
const TASK_CONTENT_LENGTH = tag(7, VARINT);
const TASK_PIECE_COUNT = tag(8, VARINT);
const TASK_SIZE_SCOPE = tag(9, VARINT);
const TASK_STATE = tag(10, LEN);
const TASK_PEER_COUNT = tag(11, VARINT);
const TASK_HAS_AVAILABLE_PEER = tag(12, VARINT);
const TASK_RESPONSE_HEADER = tag(13, LEN);
const TASK_PIECE_LENGTH = tag(14, VARINT);
const MAP_KEY = tag(1, LEN);
const MAP_VALUE = tag(2, LEN);

/** The keys of a candidate parent the field-by-field path writes; any other key takes the generic path. */
const CANDIDATE_KEYS = new Set(['id', 'priority', 'state', 'host', 'needBackToSource', 'finishedPieceCount']);
/** The keys of an answer's task the field-by-field path writes (no pieces). */
const TASK_KEYS = new Set(['id', 'type', 'url', 'digest', 'tag', 'application', 'contentLength', 'pieceCount', 'pieceLength', 'sizeScope', 'state', 'peerCount', 'hasAvailablePeer', 'responseHeader']);

export class AnnouncePeerResponseCodec {
  private readonly response: Type;
  private readonly peer: Type;
  private readonly host: Type;
  private readonly task: Type;
  private readonly priorities: Readonly<Record<string, number>>;
  private readonly taskTypes: Readonly<Record<string, number>>;
  private readonly sizeScopes: Readonly<Record<string, number>>;
  /** Encoded hosts by the (cached, immutable) host object of the wire shapes. */
  private readonly hostBytes = new WeakMap<HostProto, Uint8Array>();

  constructor() {
    const root = protobufRoot('scheduler.proto');
    this.response = root.lookupType('scheduler.v2.AnnouncePeerResponse');
    this.peer = root.lookupType('common.v2.Peer');
    this.host = root.lookupType('common.v2.Host');
    this.task = root.lookupType('common.v2.Task');
    this.priorities = root.lookupEnum('common.v2.Priority').values;
    this.taskTypes = root.lookupEnum('common.v2.TaskType').values;
    this.sizeScopes = root.lookupEnum('common.v2.SizeScope').values;
  }

  encode(message: AnnouncePeerResponse): Buffer {
    const normal = message.normalTaskResponse;
    if (!normal || Object.keys(message).length !== 1) return this.generic(this.response, message);
    const w = Writer.create();
    w.uint32(RESPONSE_NORMAL).fork();
    for (const parent of normal.candidateParents ?? []) this.writeCandidate(w, parent);
    if (normal.task) this.writeTask(w, normal.task);
    w.ldelim();
    return asBuffer(w.finish());
  }

  private writeCandidate(w: Writer, parent: PeerProto): void {
    const priority = parent.priority === undefined ? 0 : this.priorities[parent.priority as string];
    if (priority === undefined || !parent.host || !Object.keys(parent).every((k) => CANDIDATE_KEYS.has(k))) {
      w.uint32(NORMAL_PARENT).bytes(this.generic(this.peer, parent));
      return;
    }
    w.uint32(NORMAL_PARENT).fork();
    if (parent.id) w.uint32(PEER_ID).string(parent.id);
    if (priority !== 0) w.uint32(PEER_PRIORITY).int32(priority);
    if (parent.state) w.uint32(PEER_STATE).string(parent.state);
    w.uint32(PEER_HOST).bytes(this.hostOf(parent.host));
    if (parent.needBackToSource) w.uint32(PEER_NEED_BACK_TO_SOURCE).bool(true);
    if (parent.finishedPieceCount) w.uint32(PEER_FINISHED_PIECE_COUNT).uint32(parent.finishedPieceCount);
    w.ldelim();
  }

  private writeTask(w: Writer, task: TaskProto): void {
    const type = task.type === undefined ? 0 : this.taskTypes[task.type as string];
    const sizeScope = task.sizeScope === undefined ? 0 : this.sizeScopes[task.sizeScope as string];
    const header = task.responseHeader;
    const plain =
      type !== undefined &&
      sizeScope !== undefined &&
      (task.contentLength === undefined || typeof task.contentLength === 'number') &&
      (task.pieceLength === undefined || typeof task.pieceLength === 'number') &&
      Object.keys(task).every((k) => TASK_KEYS.has(k)) &&
      (header === undefined || Object.values(header).every((v) => typeof v === 'string'));
    if (!plain) {
      w.uint32(NORMAL_TASK).bytes(this.generic(this.task, task));
      return;
    }
    w.uint32(NORMAL_TASK).fork();
    if (task.id) w.uint32(TASK_ID).string(task.id);
    if (type !== 0) w.uint32(TASK_TYPE).int32(type);
    if (task.url) w.uint32(TASK_URL).string(task.url);
    // proto3 `optional`: present whenever set, even when empty.
    if (task.digest != null) w.uint32(TASK_DIGEST).string(task.digest);
    if (task.tag != null) w.uint32(TASK_TAG).string(task.tag);
    if (task.application != null) w.uint32(TASK_APPLICATION).string(task.application);
    if (task.contentLength) w.uint32(TASK_CONTENT_LENGTH).uint64(task.contentLength);
    if (task.pieceCount) w.uint32(TASK_PIECE_COUNT).uint32(task.pieceCount);
    if (sizeScope !== 0) w.uint32(TASK_SIZE_SCOPE).int32(sizeScope);
    if (task.state) w.uint32(TASK_STATE).string(task.state);
    if (task.peerCount) w.uint32(TASK_PEER_COUNT).uint32(task.peerCount);
    if (task.hasAvailablePeer) w.uint32(TASK_HAS_AVAILABLE_PEER).bool(true);
    if (header) for (const key of Object.keys(header)) w.uint32(TASK_RESPONSE_HEADER).fork().uint32(MAP_KEY).string(key).uint32(MAP_VALUE).string(header[key]).ldelim();
    if (task.pieceLength) w.uint32(TASK_PIECE_LENGTH).uint64(task.pieceLength);
    w.ldelim();
  }

  private hostOf(host: HostProto): Uint8Array {
    let bytes = this.hostBytes.get(host);
    if (!bytes) {
      bytes = this.host.encode(this.host.fromObject(host)).finish();
      this.hostBytes.set(host, bytes);
    }
    return bytes;
  }

  private generic(type: Type, value: object): Buffer {
    return asBuffer(type.encode(type.fromObject(value)).finish());
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The scheduler service definition with AnnouncePeer answers encoded by AnnouncePeerResponseCodec. */
export function withAnswerCodec(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const codec = new AnnouncePeerResponseCodec();
  const announce = definition.AnnouncePeer as grpc.MethodDefinition<unknown, AnnouncePeerResponse>;
  return { ...definition, AnnouncePeer: { ...announce, responseSerialize: (value: AnnouncePeerResponse) => codec.encode(value) } };
}
