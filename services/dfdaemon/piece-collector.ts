/**
 * The parents of one download and which pieces each holds: one SyncPieces stream per parent
 * (opened through `openSync`, so tests pass fake parents), every announcement checked against
 * the task as we know it. A parent that announces a piece the task does not have, or whose
 * stream fails before it announced anything, is blocked; `onChange` fires whenever what the
 * parents can offer changes (the P2P fetch then looks again).
 */
import type { EventEmitter } from 'node:events';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Peer__Output } from '../proto';
import type { SyncPiecesResponse__Output } from '../proto/gen/dfdaemon/v2/SyncPiecesResponse';

/** Most parents one download talks to at once (upstream's candidateParentLimit tops out at 20). */
export const MAX_PARENTS = 32;
const PIECE_DIGEST = /^crc32:\d{1,10}$/;

const validPort = (p: number) => Number.isInteger(p) && p > 0 && p < 65536;

/** The part of a grpc-js server-streaming call the collector uses. */
export interface SyncStream extends EventEmitter {
  cancel(): void;
}

export interface Parent {
  readonly peerId: string;
  readonly hostId: string;
  readonly ip: string;
  readonly grpcPort: number;
  readonly downloadPort: number;
  /** A seed peer (SUPER_HOST): children spare it when normal parents can share (see P2PFetch). */
  readonly isSeed: boolean;
  /** Piece number → crc32 digest, as announced. */
  readonly digests: Map<number, string>;
  /** Pieces being fetched from it now. */
  inflight: number;
  blocked: boolean;
  syncEnded: boolean;
  call?: SyncStream;
}

export interface PieceCollectorOptions {
  readonly selfPeerId: string;
  /** Pieces of the task (undefined before its metadata is known: every announcement is then refused). */
  pieceCount(): number | undefined;
  openSync(parent: Parent): SyncStream;
  /** A parent was blocked; `report`: tell the scheduler (piece `pieceNumber`, if any, failed from it). */
  onBlocked(parent: Parent, pieceNumber: number | undefined, report: boolean): void;
  onChange(): void;
  readonly log: Logger;
}

export class PieceCollector {
  private readonly parents = new Map<string, Parent>();
  private readonly failed = new Set<string>();

  constructor(private readonly o: PieceCollectorOptions) {}

  /**
   * Adds the scheduler's candidates (known, failed, ourselves and bad addresses skipped) and
   * starts syncing each; with `sync` false their streams wait for `syncDeferred` (a one-piece
   * task first asks a parent for its piece directly, see TaskDownload.onePieceDirect).
   */
  add(candidates: readonly Peer__Output[], sync = true): void {
    for (const c of candidates) {
      if (!c.host || this.parents.has(c.id) || this.failed.has(c.id) || c.id === this.o.selfPeerId) continue;
      if (this.parents.size >= MAX_PARENTS) break;
      if (!c.id || c.id.length > 512 || !net.isIP(c.host.ip) || !validPort(c.host.port) || !validPort(c.host.downloadPort)) {
        this.o.log.warn({ parent: c.id.slice(0, 128), ip: c.host.ip.slice(0, 64), port: c.host.port, downloadPort: c.host.downloadPort }, 'ignoring a candidate parent with an unusable address');
        continue;
      }
      const parent: Parent = {
        peerId: c.id,
        hostId: c.host.id,
        ip: c.host.ip,
        grpcPort: c.host.port,
        downloadPort: c.host.downloadPort,
        isSeed: c.host.type === 'SUPER_HOST',
        digests: new Map(),
        inflight: 0,
        blocked: false,
        syncEnded: false,
      };
      this.parents.set(c.id, parent);
      if (sync) this.sync(parent);
    }
    this.o.onChange();
  }

  /** Opens the streams `add` left closed (blocked parents stay closed). */
  syncDeferred(): void {
    for (const p of this.parents.values()) if (!p.call && !p.blocked && !p.syncEnded) this.sync(p);
  }

  private sync(parent: Parent): void {
    const call = this.o.openSync(parent);
    parent.call = call;
    call.on('data', (p: SyncPiecesResponse__Output) => {
      const count = this.o.pieceCount();
      // Only pieces of this task as we know it: a number past the end or a foreign digest is not a piece.
      if (count === undefined || !Number.isInteger(p.number) || p.number < 0 || p.number >= count || !PIECE_DIGEST.test(p.digest)) {
        this.o.log.warn({ parent: parent.peerId, piece: p.number }, 'parent announced a piece this task does not have: blocking it');
        this.block(parent, undefined, true);
        this.o.onChange();
        return;
      }
      parent.digests.set(p.number, p.digest);
      this.o.onChange();
    });
    const ended = (err?: Error) => {
      parent.syncEnded = true;
      if (err && !parent.blocked && (err as grpc.ServiceError).code !== grpc.status.CANCELLED) {
        this.o.log.debug({ parent: parent.peerId, err: err.message }, 'SyncPieces ended with error');
        if (parent.digests.size === 0) this.block(parent, undefined, false);
      }
      this.o.onChange();
    };
    call.on('error', (err: Error) => ended(err));
    call.on('end', () => ended());
  }

  block(parent: Parent, pieceNumber: number | undefined, report: boolean): void {
    if (parent.blocked) return;
    parent.blocked = true;
    this.failed.add(parent.peerId);
    parent.call?.cancel();
    this.o.onBlocked(parent, pieceNumber, report);
  }

  blockAll(): void {
    for (const p of this.parents.values()) this.block(p, undefined, false);
  }

  usable(): Parent[] {
    return [...this.parents.values()].filter((p) => !p.blocked);
  }

  /** Peer ids we blocked: the scheduler is asked not to offer them again. */
  failedIds(): string[] {
    return [...this.failed];
  }

  /**
   * True while a usable parent may still provide one of `missing`: it announced one, or (unless
   * `openSyncsCount` is false, after they stayed idle too long) its sync is still open.
   */
  hopeful(missing: readonly number[], openSyncsCount = true): boolean {
    return this.usable().some((p) => (openSyncsCount && !p.syncEnded) || missing.some((n) => p.digests.has(n)));
  }

  /** Parents ever added (blocked ones included): grows when the scheduler sends more. */
  get size(): number {
    return this.parents.size;
  }

  /** Stops every SyncPieces stream. */
  cancelAll(): void {
    for (const p of this.parents.values()) p.call?.cancel();
  }
}
