/**
 * Whole contents of small finished tasks held in memory, so a cache hit of a config or a thin
 * layer is answered from a Buffer instead of an fstat + read round trip through the libuv
 * thread pool. TaskStore owns it: it only ever puts bytes there that it has just checked
 * against the task's digest, and drops a task's copy when the task is removed or its content
 * file is no longer the verified one (noticed within TaskStore's heldRecheckMs; until then the
 * copy, not the file, is what hits get).
 *
 * Bounded twice: no entry larger than `maxEntryBytes`, and at most `maxBytes` of content in
 * all (least recently used out first).
 */

export interface HeldContent {
  readonly content: Buffer;
  /** Identity of the content file (TaskEntry's stamp) when the bytes were read and checked. */
  readonly stamp: string;
  /** When (monotonic ms) the content file was last seen with that identity (TaskStore.contentInMemory). */
  checkedAt: number;
}

export class SmallContentCache {
  private readonly held = new Map<string, HeldContent>();
  private heldBytes = 0;

  constructor(
    readonly maxBytes: number,
    readonly maxEntryBytes: number,
  ) {}

  /** Whether content of `length` bytes may be held at all. */
  fits(length: number): boolean {
    return length > 0 && length <= this.maxEntryBytes && length <= this.maxBytes;
  }

  /** The held copy (now the most recently used), if any. */
  get(taskId: string): HeldContent | undefined {
    const h = this.held.get(taskId);
    if (h === undefined) return undefined;
    this.held.delete(taskId);
    this.held.set(taskId, h);
    return h;
  }

  /** Holds `content`, evicting the least recently used copies until it fits; false when it cannot fit. */
  set(taskId: string, content: Buffer, stamp: string, checkedAt = performance.now()): boolean {
    if (!this.fits(content.length)) return false;
    this.delete(taskId);
    while (this.heldBytes + content.length > this.maxBytes) {
      const oldest = this.held.keys().next();
      if (oldest.done) break;
      this.delete(oldest.value);
    }
    this.held.set(taskId, { content, stamp, checkedAt });
    this.heldBytes += content.length;
    return true;
  }

  delete(taskId: string): void {
    const h = this.held.get(taskId);
    if (h === undefined) return;
    this.held.delete(taskId);
    this.heldBytes -= h.content.length;
  }

  clear(): void {
    this.held.clear();
    this.heldBytes = 0;
  }

  get size(): number {
    return this.held.size;
  }

  get bytes(): number {
    return this.heldBytes;
  }
}
