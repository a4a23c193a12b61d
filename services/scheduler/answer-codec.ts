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

type NormalTaskResponse = NonNullable<AnnouncePeerResponse['normalTaskResponse']>;

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
    return this.direct(normal) ?? this.withWriter(normal);
  }

  /**
   * The answer with parents through protobufjs's Writer: candidates and task field by field,
   * anything unusual in them through the generic encoder. Public for the tests, which hold the
   * direct path to its bytes.
   */
  withWriter(normal: NormalTaskResponse): Buffer {
    const w = Writer.create();
    w.uint32(RESPONSE_NORMAL).fork();
    for (const parent of normal.candidateParents ?? []) this.writeCandidate(w, parent);
    if (normal.task) this.writeTask(w, normal.task);
    w.ldelim();
    return asBuffer(w.finish());
  }

  /**
   * The common answer in one pass into one buffer: sizes first, then bytes, no Writer
   * operations or intermediate buffers. The same bytes as withWriter (and so as protobufjs):
   * undefined, and so withWriter, for anything but plain values (numbers that are
   * non-negative integers in their field's range, strings shorter than protobufjs's 40-character
   * UTF-8 switch only when ASCII, where its own UTF-8 writer and Buffer's could differ).
   */
  private direct(normal: NormalTaskResponse): Buffer | undefined {
    const parents = normal.candidateParents ?? [];
    const sizes = this.parentSizes;
    sizes.length = 0;
    let body = 0;
    for (const parent of parents) {
      const size = this.candidateSize(parent);
      if (size < 0) return undefined;
      sizes.push(size);
      body += 1 + varintSize(size) + size;
    }
    const task = normal.task;
    let taskSize = 0;
    if (task) {
      taskSize = this.taskSize(task);
      if (taskSize < 0) return undefined;
      body += 1 + varintSize(taskSize) + taskSize;
    }
    const buf = Buffer.allocUnsafe(1 + varintSize(body) + body);
    buf[0] = RESPONSE_NORMAL;
    let pos = writeVarint(buf, 1, body);
    for (let k = 0; k < parents.length; k++) {
      const parent = parents[k];
      buf[pos++] = NORMAL_PARENT;
      pos = writeVarint(buf, pos, sizes[k]);
      if (parent.id) pos = writeString(buf, pos, PEER_ID, parent.id);
      const priority = parent.priority === undefined ? 0 : (this.priorities[parent.priority as string]);
      if (priority !== 0) pos = writeVarint(buf, writeVarint(buf, pos, PEER_PRIORITY), priority);
      if (parent.state) pos = writeString(buf, pos, PEER_STATE, parent.state);
      const host = this.hostOf(parent.host as HostProto);
      buf[pos++] = PEER_HOST;
      pos = writeVarint(buf, pos, host.length);
      buf.set(host, pos);
      pos += host.length;
      if (parent.needBackToSource) {
        buf[pos++] = PEER_NEED_BACK_TO_SOURCE;
        buf[pos++] = 1;
      }
      if (parent.finishedPieceCount) pos = writeVarint(buf, writeVarint(buf, pos, PEER_FINISHED_PIECE_COUNT), parent.finishedPieceCount);
    }
    if (task) {
      buf[pos++] = NORMAL_TASK;
      this.writeDirectTask(buf, writeVarint(buf, pos, taskSize), task);
    }
    return buf;
  }

  /** Reused per encode (encode is synchronous). */
  private readonly parentSizes: number[] = [];

  /** Encoded size of a candidate parent's body, or -1 when it needs the Writer path. */
  private candidateSize(parent: PeerProto): number {
    if (!parent.host || !Object.keys(parent).every((k) => CANDIDATE_KEYS.has(k))) return -1;
    const priority = parent.priority === undefined ? 0 : this.priorities[parent.priority as string];
    if (priority === undefined) return -1;
    let size = 0;
    if (parent.id) {
      const n = plainStringSize(parent.id);
      if (n < 0) return -1;
      size += 1 + varintSize(n) + n;
    }
    if (priority !== 0) size += 1 + varintSize(priority);
    if (parent.state) {
      const n = plainStringSize(parent.state);
      if (n < 0) return -1;
      size += 1 + varintSize(n) + n;
    }
    const host = this.hostOf(parent.host);
    size += 1 + varintSize(host.length) + host.length;
    if (parent.needBackToSource) size += 2;
    const count = parent.finishedPieceCount;
    if (count) {
      if (!isUint(count, UINT32_MAX)) return -1;
      size += 1 + varintSize(count);
    }
    return size;
  }

  /** Encoded size of an answer's task, or -1 when it needs the Writer path. */
  private taskSize(task: TaskProto): number {
    if (!Object.keys(task).every((k) => TASK_KEYS.has(k))) return -1;
    const type = task.type === undefined ? 0 : this.taskTypes[task.type as string];
    const sizeScope = task.sizeScope === undefined ? 0 : this.sizeScopes[task.sizeScope as string];
    if (type === undefined || sizeScope === undefined) return -1;
    let size = 0;
    const str = (value: unknown, always: boolean): boolean => {
      if (always ? value == null : !value) return true;
      const n = plainStringSize(value);
      if (n < 0) return false;
      size += 1 + varintSize(n) + n;
      return true;
    };
    const num = (value: unknown, max: number): boolean => {
      if (!value) return true;
      if (!isUint(value, max)) return false;
      size += 1 + varintSize(value);
      return true;
    };
    if (!str(task.id, false) || !str(task.url, false) || !str(task.digest, true) || !str(task.tag, true) || !str(task.application, true) || !str(task.state, false)) return -1;
    if (!num(task.contentLength, Number.MAX_SAFE_INTEGER) || !num(task.pieceLength, Number.MAX_SAFE_INTEGER) || !num(task.pieceCount, UINT32_MAX) || !num(task.peerCount, UINT32_MAX)) return -1;
    if (type !== 0) size += 1 + varintSize(type);
    if (sizeScope !== 0) size += 1 + varintSize(sizeScope);
    if (task.hasAvailablePeer) size += 2;
    const header = task.responseHeader;
    if (header) {
      for (const key of Object.keys(header)) {
        const k = plainStringSize(key);
        const v = plainStringSize(header[key]);
        if (k < 0 || v < 0) return -1;
        const entry = 1 + varintSize(k) + k + 1 + varintSize(v) + v;
        size += 1 + varintSize(entry) + entry;
      }
    }
    return size;
  }

  /** The task's fields in withWriter's order; only called after taskSize accepted it. */
  private writeDirectTask(buf: Buffer, pos: number, task: TaskProto): number {
    const type = task.type === undefined ? 0 : (this.taskTypes[task.type as string]);
    const sizeScope = task.sizeScope === undefined ? 0 : (this.sizeScopes[task.sizeScope as string]);
    if (task.id) pos = writeString(buf, pos, TASK_ID, task.id);
    if (type !== 0) pos = writeVarint(buf, writeVarint(buf, pos, TASK_TYPE), type);
    if (task.url) pos = writeString(buf, pos, TASK_URL, task.url);
    if (task.digest != null) pos = writeString(buf, pos, TASK_DIGEST, task.digest);
    if (task.tag != null) pos = writeString(buf, pos, TASK_TAG, task.tag);
    if (task.application != null) pos = writeString(buf, pos, TASK_APPLICATION, task.application);
    if (task.contentLength) pos = writeVarint(buf, writeVarint(buf, pos, TASK_CONTENT_LENGTH), task.contentLength as number);
    if (task.pieceCount) pos = writeVarint(buf, writeVarint(buf, pos, TASK_PIECE_COUNT), task.pieceCount);
    if (sizeScope !== 0) pos = writeVarint(buf, writeVarint(buf, pos, TASK_SIZE_SCOPE), sizeScope);
    if (task.state) pos = writeString(buf, pos, TASK_STATE, task.state);
    if (task.peerCount) pos = writeVarint(buf, writeVarint(buf, pos, TASK_PEER_COUNT), task.peerCount);
    if (task.hasAvailablePeer) {
      buf[pos++] = TASK_HAS_AVAILABLE_PEER;
      buf[pos++] = 1;
    }
    const header = task.responseHeader;
    if (header) {
      for (const key of Object.keys(header)) {
        const value = header[key];
        const k = plainStringSize(key);
        const v = plainStringSize(value);
        buf[pos++] = TASK_RESPONSE_HEADER;
        pos = writeVarint(buf, pos, 1 + varintSize(k) + k + 1 + varintSize(v) + v);
        pos = writeString(buf, pos, MAP_KEY, key);
        pos = writeString(buf, pos, MAP_VALUE, value);
      }
    }
    if (task.pieceLength) pos = writeVarint(buf, writeVarint(buf, pos, TASK_PIECE_LENGTH), task.pieceLength as number);
    return pos;
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

const UINT32_MAX = 0xffff_ffff;

/** A non-negative integer no greater than `max` (written as a plain varint by protobufjs). */
function isUint(value: unknown, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max;
}

function varintSize(value: number): number {
  let n = 1;
  while (value > 127) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

function writeVarint(buf: Buffer, pos: number, value: number): number {
  while (value > 127) {
    buf[pos++] = (value % 128) | 128;
    value = Math.floor(value / 128);
  }
  buf[pos++] = value;
  return pos;
}

/**
 * UTF-8 size of a string the direct path writes byte for byte as protobufjs does, or -1:
 * protobufjs writes strings under 40 characters with its own UTF-8 writer, which differs from
 * Buffer's on lone surrogates, so short ones are taken only when ASCII.
 */
function plainStringSize(value: unknown): number {
  if (typeof value !== 'string') return -1;
  if (value.length >= 40) return Buffer.byteLength(value);
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 127) return -1;
  return value.length;
}

/** A length-delimited string field (tag < 128); only after plainStringSize accepted the value. */
function writeString(buf: Buffer, pos: number, tagByte: number, value: string): number {
  buf[pos++] = tagByte;
  if (value.length < 40) {
    pos = writeVarint(buf, pos, value.length);
    for (let i = 0; i < value.length; i++) buf[pos++] = value.charCodeAt(i);
    return pos;
  }
  const n = Buffer.byteLength(value);
  pos = writeVarint(buf, pos, n);
  return pos + buf.write(value, pos, n, 'utf8');
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
