/**
 * One AnnouncePeer stream of one download, as the download sees it: `send` for our reports,
 * and the scheduler's answers as a bounded queue read with a timeout (`next`, `waitForAnswer`)
 * or as an async iterator. The stream is any duplex with the grpc-js event surface, so tests
 * drive it with a fake.
 */
import type { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { AnnouncePeerRequest, AnnouncePeerResponse__Output } from '../proto';
import { SchedulerTimeoutError } from './download-errors';

/** The part of a grpc-js client duplex stream the session uses. */
export interface AnnounceStream extends EventEmitter {
  write(req: AnnouncePeerRequest): unknown;
  end(): unknown;
  cancel(): void;
  readonly writableEnded: boolean;
  readonly destroyed: boolean;
}

export type PeerReport = Omit<AnnouncePeerRequest, 'hostId' | 'taskId' | 'peerId'>;

/** Answers a download may leave unread; a scheduler sending more is misbehaving and its stream is cancelled. */
export const MAX_QUEUED_ANSWERS = 1024;

export class SchedulerSession implements AsyncIterable<AnnouncePeerResponse__Output> {
  private readonly queue: AnnouncePeerResponse__Output[] = [];
  /** undefined: open; null: ended cleanly; Error: failed. */
  private endState: Error | null | undefined;
  private waiter: (() => void) | undefined;

  constructor(
    private readonly stream: AnnounceStream | undefined,
    private readonly ids: { readonly hostId: string; readonly taskId: string; readonly peerId: string },
    hooks: { onStreamError?: (err: grpc.ServiceError) => void } = {},
  ) {
    if (!stream) {
      this.endState = null;
      return;
    }
    stream.on('data', (r: AnnouncePeerResponse__Output) => {
      if (this.queue.length >= MAX_QUEUED_ANSWERS) {
        this.endState ??= new Error(`scheduler sent more than ${MAX_QUEUED_ANSWERS} unread answers`);
        stream.cancel();
      } else this.queue.push(r);
      this.wake();
    });
    stream.on('error', (err: grpc.ServiceError) => {
      this.endState ??= err;
      hooks.onStreamError?.(err);
      this.wake();
    });
    stream.on('end', () => {
      this.endState ??= null;
      this.wake();
    });
  }

  /** A session with no scheduler behind it (origin without a scheduler): reports go nowhere. */
  static detached(): SchedulerSession {
    return new SchedulerSession(undefined, { hostId: '', taskId: '', peerId: '' });
  }

  get connected(): boolean {
    return this.stream !== undefined;
  }

  /** undefined while open; null when the scheduler ended the stream; the error when it failed. */
  get ended(): Error | null | undefined {
    return this.endState;
  }

  /** Answers received and not read yet. */
  get pending(): number {
    return this.queue.length;
  }

  send(report: PeerReport): void {
    if (!this.stream || this.stream.writableEnded || this.stream.destroyed) return;
    this.stream.write({ ...this.ids, ...report });
  }

  /** Half-closes our side (the scheduler then ends the stream). */
  close(): void {
    if (this.stream && !this.stream.writableEnded) this.stream.end();
  }

  cancel(): void {
    this.stream?.cancel();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /**
   * Resolves 'answer' when an answer is queued, 'ended' when the stream is over and nothing is
   * queued, 'timeout' after `timeoutMs`, 'woken' when `interrupt` is called meanwhile.
   */
  waitForAnswer(timeoutMs: number): { result: Promise<'answer' | 'ended' | 'timeout' | 'woken'>; interrupt: () => void } {
    let interrupt: () => void = () => undefined;
    const result = new Promise<'answer' | 'ended' | 'timeout' | 'woken'>((resolve) => {
      if (this.queue.length > 0) return resolve('answer');
      if (this.endState !== undefined) return resolve('ended');
      let done = false;
      const settle = (v: 'answer' | 'ended' | 'timeout' | 'woken') => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (this.waiter === onWake) this.waiter = undefined;
        resolve(v);
      };
      const onWake = () => settle(this.queue.length > 0 ? 'answer' : 'ended');
      this.waiter = onWake;
      const timer = setTimeout(() => settle('timeout'), timeoutMs);
      interrupt = () => settle('woken');
    });
    return { result, interrupt };
  }

  /** Next answer (undefined once the stream is over); SchedulerTimeoutError after `timeoutMs` of silence. */
  async next(timeoutMs: number): Promise<AnnouncePeerResponse__Output | undefined> {
    const got = await this.waitForAnswer(timeoutMs).result;
    if (got === 'timeout') throw new SchedulerTimeoutError(`scheduler gave no answer within ${timeoutMs} ms`);
    return this.queue.shift();
  }

  /** The next queued answer, if any, without waiting. */
  take(): AnnouncePeerResponse__Output | undefined {
    return this.queue.shift();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<AnnouncePeerResponse__Output> {
    for (;;) {
      const r = await this.next(2 ** 31 - 1);
      if (!r) return;
      yield r;
    }
  }
}
