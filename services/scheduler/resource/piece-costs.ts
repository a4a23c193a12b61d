/**
 * Rolling windows of piece download costs for the bad-parent test, for all the peers of one
 * task in a few shared Float64Arrays instead of one typed array (three heap objects and an
 * off-heap buffer) per peer that ever served a piece. Finished peers stay parents, and so
 * keep their window, until peerTTL: per-peer objects were most of what every major GC had to
 * walk. A peer takes a slot on its first sample and gives it back when the store drops it.
 *
 * Slot layout: [count, sum, sum of squares, last cost, cost 0 … cost WINDOW-1].
 */
export const COST_WINDOW = 100;

const COUNT = 0;
const SUM = 1;
const SUM_SQ = 2;
const LAST = 3;
const HEADER = 4;
const STRIDE = HEADER + COST_WINDOW;
/** Slots per chunk once a task has that many serving peers (about 53 KB of doubles). */
const CHUNK_SLOTS = 64;
/** Slots of the first chunk; it doubles up to CHUNK_SLOTS, so a task with few parents stays small. */
const FIRST_SLOTS = 4;

export class PieceCosts {
  private readonly chunks: Float64Array[] = [];
  private readonly free: number[] = [];
  /** Slots handed out so far (free or not): the next new slot's number. */
  private next = 0;

  /** Slots in use. */
  get size(): number {
    return this.next - this.free.length;
  }

  /** Slots the storage holds (in use or free): bounded by the most peers that had a window at once. */
  get capacity(): number {
    return this.chunks.length === 0 ? 0 : (this.chunks.length - 1) * CHUNK_SLOTS + this.chunks[0].length / STRIDE;
  }

  /** A slot with an empty window. */
  alloc(): number {
    const slot = this.free.length > 0 ? (this.free.pop() as number) : this.next++;
    const chunk = this.chunkFor(slot);
    const at = (slot % CHUNK_SLOTS) * STRIDE;
    chunk[at + COUNT] = 0;
    chunk[at + SUM] = 0;
    chunk[at + SUM_SQ] = 0;
    chunk[at + LAST] = 0;
    return slot;
  }

  /** Gives the slot back (the peer left the store). */
  release(slot: number): void {
    if (!(slot >= 0 && slot < this.next)) throw new RangeError(`piece-cost slot ${slot} was never handed out`);
    this.free.push(slot);
  }

  /** Adds a cost (ns) to the slot's window, evicting the oldest once the window is full. */
  record(slot: number, costNs: number): void {
    const chunk = this.chunks[Math.floor(slot / CHUNK_SLOTS)];
    const at = (slot % CHUNK_SLOTS) * STRIDE;
    const count = chunk[at + COUNT];
    const cell = at + HEADER + (count % COST_WINDOW);
    if (count >= COST_WINDOW) {
      const old = chunk[cell];
      chunk[at + SUM] -= old;
      chunk[at + SUM_SQ] -= old * old;
    }
    chunk[cell] = costNs;
    chunk[at + SUM] += costNs;
    chunk[at + SUM_SQ] += costNs * costNs;
    chunk[at + COUNT] = count + 1;
    chunk[at + LAST] = costNs;
  }

  /**
   * Upstream's bad-parent test: with ≥ 2 samples, the last cost is more than 20× the mean of
   * the earlier ones (window not full) or above mean + 3σ (window full).
   */
  isSlow(slot: number): boolean {
    const chunk = this.chunks[Math.floor(slot / CHUNK_SLOTS)];
    const at = (slot % CHUNK_SLOTS) * STRIDE;
    const count = chunk[at + COUNT];
    const n = Math.min(count, COST_WINDOW);
    if (n < 2) return false;
    const last = chunk[at + LAST];
    const prevN = n - 1;
    const mean = (chunk[at + SUM] - last) / prevN;
    if (count < COST_WINDOW) return last > 20 * mean;
    const variance = Math.max(0, (chunk[at + SUM_SQ] - last * last) / prevN - mean * mean);
    return last > mean + 3 * Math.sqrt(variance);
  }

  private chunkFor(slot: number): Float64Array {
    const index = Math.floor(slot / CHUNK_SLOTS);
    if (index < this.chunks.length) {
      const chunk = this.chunks[index];
      if (index > 0 || (slot % CHUNK_SLOTS) * STRIDE < chunk.length) return chunk;
      // The first chunk doubles until it is a whole one.
      let slots = chunk.length / STRIDE;
      while (slots <= slot) slots *= 2;
      const grown = new Float64Array(Math.min(CHUNK_SLOTS, slots) * STRIDE);
      grown.set(chunk);
      this.chunks[0] = grown;
      return grown;
    }
    // Slots are handed out in order, so a new chunk is always the next one.
    const chunk = new Float64Array((index === 0 ? FIRST_SLOTS : CHUNK_SLOTS) * STRIDE);
    this.chunks.push(chunk);
    return chunk;
  }
}
