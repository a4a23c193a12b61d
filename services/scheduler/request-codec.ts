/**
 * The AnnouncePeerRequest decoder of the scheduler's gRPC server. proto-loader decodes every
 * message with protobufjs and then converts it with toObject (defaults filled in, enums and
 * 64-bit numbers converted), two passes and two objects per message; the messages that make up
 * nearly all of a stream (register, started, piece finished, reschedule, finished) are read
 * here in one pass straight into the object proto-loader would give, keys in the same order.
 * Anything else, and anything unusual in those (an unknown field, a wire type that does not
 * match, a field given twice, an enum value without a name, a length past the end of its
 * message, a map key "__proto__"), goes to proto-loader's own decoder, so hostile input meets
 * exactly the decoder it met before (test/unit/scheduler/request-codec.test.ts holds the two
 * to the same results).
 */
import type * as grpc from '@grpc/grpc-js';
import type { AnnouncePeerRequest__Output } from '../proto';

const LEN = 2;
const VARINT = 0;

const PRIORITIES = ['LEVEL0', 'LEVEL1', 'LEVEL2', 'LEVEL3', 'LEVEL4', 'LEVEL5', 'LEVEL6'] as const;
const TRAFFIC_TYPES = ['BACK_TO_SOURCE', 'REMOTE_PEER', 'LOCAL_PEER'] as const;
const TASK_TYPES = ['STANDARD'] as const;

/** Thrown inside the fast path to hand the message to the generic decoder (one instance, no stack per throw). */
class Bail extends Error {}
const BAIL = new Bail('not for the fast path');

class Reader {
  pos = 0;

  constructor(readonly buf: Buffer) {}

  /** A uint32 varint as protobufjs reads it (at most 5 bytes, the 5th holding 4 bits). */
  uint32(end: number): number {
    let value = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (this.pos >= end) throw BAIL;
      const b = this.buf[this.pos++];
      value = (value | ((b & 127) << shift)) >>> 0;
      if (b < 128) return value;
    }
    if (this.pos >= end) throw BAIL;
    const b = this.buf[this.pos++];
    if (b >= 16) throw BAIL;
    return (value | (b << 28)) >>> 0;
  }

  /** A 64-bit varint as protobufjs's LongBits: [lo, hi] as unsigned 32-bit halves. */
  private long(end: number): [number, number] {
    let lo = 0;
    let hi = 0;
    let i = 0;
    for (; i < 4; i++) {
      if (this.pos >= end) throw BAIL;
      const b = this.buf[this.pos++];
      lo = (lo | ((b & 127) << (i * 7))) >>> 0;
      if (b < 128) return [lo, hi];
    }
    if (this.pos >= end) throw BAIL;
    let b = this.buf[this.pos++];
    lo = (lo | ((b & 127) << 28)) >>> 0;
    hi = (hi | ((b & 127) >> 4)) >>> 0;
    if (b < 128) return [lo, hi];
    for (i = 0; i < 5; i++) {
      if (this.pos >= end) throw BAIL;
      b = this.buf[this.pos++];
      hi = (hi | ((b & 127) << (i * 7 + 3))) >>> 0;
      if (b < 128) return [lo, hi];
    }
    throw BAIL;
  }

  /** uint64 as proto-loader gives it with longs: Number. */
  uint64(end: number): number {
    const [lo, hi] = this.long(end);
    return lo + hi * 4294967296;
  }

  /** int64 as proto-loader gives it with longs: Number. */
  int64(end: number): number {
    const [lo, hi] = this.long(end);
    if (hi >>> 31) {
      const l = (~lo + 1) >>> 0;
      let h = ~hi >>> 0;
      if (!l) h = (h + 1) >>> 0;
      return -(l + h * 4294967296);
    }
    return lo + hi * 4294967296;
  }

  bool(end: number): boolean {
    return this.uint32(end) !== 0;
  }

  /** An enum value by name; a value without a name goes to the generic decoder. */
  enumOf<T extends string>(names: readonly T[], end: number): T {
    const v = this.uint32(end);
    if (v >= names.length) throw BAIL;
    return names[v];
  }

  /** The end of a length-delimited field that must lie within `end`. */
  delimited(end: number): number {
    const len = this.uint32(end);
    const stop = this.pos + len;
    if (stop > end) throw BAIL;
    return stop;
  }

  string(end: number): string {
    const stop = this.delimited(end);
    const s = this.buf.toString('utf8', this.pos, stop);
    this.pos = stop;
    return s;
  }

  /** The next tag: [field number, wire type]. */
  tag(end: number): [number, number] {
    const t = this.uint32(end);
    return [t >>> 3, t & 7];
  }
}

/** Field numbers seen in one message (singular fields may appear once on the fast path). */
function once(seen: number, field: number): number {
  const bit = 1 << field;
  if (seen & bit) throw BAIL;
  return seen | bit;
}

function expectWire(actual: number, wanted: number): void {
  if (actual !== wanted) throw BAIL;
}

type Obj = Record<string, unknown>;

function readDownload(r: Reader, end: number): Obj {
  const filteredQueryParams: string[] = [];
  const requestHeader: Record<string, string> = {};
  let url = '';
  let type: string = TASK_TYPES[0];
  let priority: string = PRIORITIES[0];
  let disableBackToSource = false;
  let needBackToSource = false;
  let metadataOnly = false;
  let overwrite = false;
  let forceHardLink = false;
  let digest: string | undefined;
  let tag: string | undefined;
  let application: string | undefined;
  let pieceLength: number | undefined;
  let outputPath: string | undefined;
  let timeoutMs: number | undefined;
  let remoteIp: string | undefined;
  let seen = 0;
  while (r.pos < end) {
    const [field, wire] = r.tag(end);
    if (field !== 8 && field !== 9) seen = once(seen, field);
    switch (field) {
      case 1:
        expectWire(wire, LEN);
        url = r.string(end);
        break;
      case 2:
        expectWire(wire, LEN);
        digest = r.string(end);
        break;
      case 4:
        expectWire(wire, VARINT);
        type = r.enumOf(TASK_TYPES, end);
        break;
      case 5:
        expectWire(wire, LEN);
        tag = r.string(end);
        break;
      case 6:
        expectWire(wire, LEN);
        application = r.string(end);
        break;
      case 7:
        expectWire(wire, VARINT);
        priority = r.enumOf(PRIORITIES, end);
        break;
      case 8:
        expectWire(wire, LEN);
        filteredQueryParams.push(r.string(end));
        break;
      case 9: {
        expectWire(wire, LEN);
        const stop = r.delimited(end);
        let key = '';
        let value = '';
        let entrySeen = 0;
        while (r.pos < stop) {
          const [f, w] = r.tag(stop);
          entrySeen = once(entrySeen, f);
          expectWire(w, LEN);
          if (f === 1) key = r.string(stop);
          else if (f === 2) value = r.string(stop);
          else throw BAIL;
        }
        if (key === '__proto__') throw BAIL;
        requestHeader[key] = value;
        break;
      }
      case 10:
        expectWire(wire, VARINT);
        pieceLength = r.uint64(end);
        break;
      case 11:
        expectWire(wire, LEN);
        outputPath = r.string(end);
        break;
      case 12:
        expectWire(wire, VARINT);
        timeoutMs = r.uint64(end);
        break;
      case 13:
        expectWire(wire, VARINT);
        disableBackToSource = r.bool(end);
        break;
      case 14:
        expectWire(wire, VARINT);
        needBackToSource = r.bool(end);
        break;
      case 15:
        expectWire(wire, VARINT);
        metadataOnly = r.bool(end);
        break;
      case 16:
        expectWire(wire, LEN);
        remoteIp = r.string(end);
        break;
      case 17:
        expectWire(wire, VARINT);
        overwrite = r.bool(end);
        break;
      case 18:
        expectWire(wire, VARINT);
        forceHardLink = r.bool(end);
        break;
      default:
        // range (3) and anything unknown.
        throw BAIL;
    }
  }
  const d: Obj = { filteredQueryParams, requestHeader, url, type, priority, disableBackToSource, needBackToSource, metadataOnly, overwrite, forceHardLink };
  // proto3 optional fields: present ones, each with its synthetic oneof, in field order.
  if (digest !== undefined) {
    d.digest = digest;
    d._digest = 'digest';
  }
  if (tag !== undefined) {
    d.tag = tag;
    d._tag = 'tag';
  }
  if (application !== undefined) {
    d.application = application;
    d._application = 'application';
  }
  if (pieceLength !== undefined) {
    d.pieceLength = pieceLength;
    d._pieceLength = 'pieceLength';
  }
  if (outputPath !== undefined) {
    d.outputPath = outputPath;
    d._outputPath = 'outputPath';
  }
  if (timeoutMs !== undefined) {
    d.timeoutMs = timeoutMs;
    d._timeoutMs = 'timeoutMs';
  }
  if (remoteIp !== undefined) {
    d.remoteIp = remoteIp;
    d._remoteIp = 'remoteIp';
  }
  return d;
}

function readPiece(r: Reader, end: number): Obj {
  const p: Obj = { number: 0, offset: 0, length: 0, digest: '', trafficType: TRAFFIC_TYPES[0], costNs: 0, createdAtMs: 0 };
  let parentId: string | undefined;
  let seen = 0;
  while (r.pos < end) {
    const [field, wire] = r.tag(end);
    seen = once(seen, field);
    switch (field) {
      case 1:
        expectWire(wire, VARINT);
        p.number = r.uint32(end);
        break;
      case 2:
        expectWire(wire, LEN);
        parentId = r.string(end);
        break;
      case 3:
        expectWire(wire, VARINT);
        p.offset = r.uint64(end);
        break;
      case 4:
        expectWire(wire, VARINT);
        p.length = r.uint64(end);
        break;
      case 5:
        expectWire(wire, LEN);
        p.digest = r.string(end);
        break;
      case 6:
        expectWire(wire, VARINT);
        p.trafficType = r.enumOf(TRAFFIC_TYPES, end);
        break;
      case 7:
        expectWire(wire, VARINT);
        p.costNs = r.uint64(end);
        break;
      case 8:
        expectWire(wire, VARINT);
        p.createdAtMs = r.int64(end);
        break;
      default:
        throw BAIL;
    }
  }
  if (parentId !== undefined) {
    p.parentId = parentId;
    p._parentId = 'parentId';
  }
  return p;
}

/** A message whose only field is one embedded message (field 1): register, piece finished. */
function readWrapper(r: Reader, end: number, key: string, read: (r: Reader, end: number) => Obj): Obj {
  let inner: Obj | null = null;
  while (r.pos < end) {
    const [field, wire] = r.tag(end);
    if (field !== 1 || inner !== null) throw BAIL;
    expectWire(wire, LEN);
    const stop = r.delimited(end);
    inner = read(r, stop);
  }
  return { [key]: inner };
}

function readReschedule(r: Reader, end: number): Obj {
  const candidateParentIds: string[] = [];
  let description: string | undefined;
  while (r.pos < end) {
    const [field, wire] = r.tag(end);
    expectWire(wire, LEN);
    if (field === 1) candidateParentIds.push(r.string(end));
    else if (field === 2 && description === undefined) description = r.string(end);
    else throw BAIL;
  }
  const o: Obj = { candidateParentIds };
  if (description !== undefined) {
    o.description = description;
    o._description = 'description';
  }
  return o;
}

function readPeerFinished(r: Reader, end: number): Obj {
  const o: Obj = { contentLength: 0, pieceCount: 0 };
  let seen = 0;
  while (r.pos < end) {
    const [field, wire] = r.tag(end);
    seen = once(seen, field);
    expectWire(wire, VARINT);
    if (field === 1) o.contentLength = r.uint64(end);
    else if (field === 2) o.pieceCount = r.uint32(end);
    else throw BAIL;
  }
  return o;
}

/** The oneof members read here: field number → [key, reader of the member's body]. */
const MEMBERS: ReadonlyMap<number, readonly [string, (r: Reader, end: number) => Obj]> = new Map([
  [4, ['registerPeerRequest', (r: Reader, end: number) => readWrapper(r, end, 'download', readDownload)]],
  [
    5,
    [
      'downloadPeerStartedRequest',
      (r: Reader, end: number) => {
        if (r.pos !== end) throw BAIL;
        return {};
      },
    ],
  ],
  [7, ['reschedulePeerRequest', readReschedule]],
  [8, ['downloadPeerFinishedRequest', readPeerFinished]],
  [12, ['downloadPieceFinishedRequest', (r: Reader, end: number) => readWrapper(r, end, 'piece', readPiece)]],
  [13, ['downloadPieceBackToSourceFinishedRequest', (r: Reader, end: number) => readWrapper(r, end, 'piece', readPiece)]],
] as const);

/**
 * The request as proto-loader's deserializer would give it, or undefined when the message is
 * not one this decoder takes (the caller then uses proto-loader's).
 */
export function decodeAnnouncePeerRequest(buf: Buffer): AnnouncePeerRequest__Output | undefined {
  const r = new Reader(buf);
  const end = buf.length;
  let hostId = '';
  let taskId = '';
  let peerId = '';
  let member: string | undefined;
  let body: Obj | undefined;
  let seen = 0;
  try {
    while (r.pos < end) {
      const [field, wire] = r.tag(end);
      seen = once(seen, field);
      expectWire(wire, LEN);
      if (field === 1) hostId = r.string(end);
      else if (field === 2) taskId = r.string(end);
      else if (field === 3) peerId = r.string(end);
      else {
        const m = MEMBERS.get(field);
        // Other members, or two members of the oneof in one message.
        if (!m || member !== undefined) throw BAIL;
        const stop = r.delimited(end);
        member = m[0];
        body = m[1](r, stop);
        if (r.pos !== stop) throw BAIL;
      }
    }
  } catch (err) {
    if (err === BAIL) return undefined;
    throw err;
  }
  const out: Obj = { hostId, taskId, peerId };
  if (member !== undefined) {
    out[member] = body;
    out.request = member;
  }
  return out as unknown as AnnouncePeerRequest__Output;
}

/** The service definition with AnnouncePeer requests read by decodeAnnouncePeerRequest, proto-loader's decoder behind it. */
export function withRequestCodec(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const announce = definition.AnnouncePeer as grpc.MethodDefinition<unknown, unknown>;
  const generic = announce.requestDeserialize;
  return { ...definition, AnnouncePeer: { ...announce, requestDeserialize: (buf: Buffer) => decodeAnnouncePeerRequest(buf) ?? generic(buf) } };
}
