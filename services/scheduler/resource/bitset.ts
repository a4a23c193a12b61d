import { MAX_PIECE_COUNT } from '../../common/pieces';

/**
 * A growable bitset of piece numbers with a cached population count. It never grows past
 * MAX_PIECE_COUNT bits (32 KiB): a larger number is a caller's bug, not an allocation.
 */
export class PieceBitset {
  private words: Uint32Array;
  private count = 0;

  constructor(capacity = 64) {
    this.words = new Uint32Array(Math.max(1, Math.ceil(capacity / 32)));
  }

  get size(): number {
    return this.count;
  }

  has(n: number): boolean {
    const w = n >>> 5;
    return w < this.words.length && (this.words[w] & (1 << (n & 31))) !== 0;
  }

  /** Sets bit n; returns true when it was not set before. */
  set(n: number): boolean {
    if (!Number.isSafeInteger(n) || n < 0 || n >= MAX_PIECE_COUNT) throw new RangeError(`piece number ${n} is outside [0, ${MAX_PIECE_COUNT})`);
    const w = n >>> 5;
    if (w >= this.words.length) {
      const grown = new Uint32Array(Math.max(w + 1, this.words.length * 2));
      grown.set(this.words);
      this.words = grown;
    }
    const mask = 1 << (n & 31);
    if (this.words[w] & mask) return false;
    this.words[w] |= mask;
    this.count++;
    return true;
  }

  /** Sets bits 0..n-1 (a peer that holds the whole task), a word at a time. */
  fill(n: number): void {
    if (n <= 0) return;
    this.set(n - 1);
    const full = n >>> 5;
    for (let w = 0; w < full; w++) this.words[w] = 0xffffffff;
    if (n & 31) this.words[full] |= (1 << (n & 31)) - 1;
    let count = 0;
    for (let w = 0; w < this.words.length; w++) count += popcount(this.words[w]);
    this.count = count;
  }

  /** True when this set holds at least one number that `other` lacks. */
  hasAnyNotIn(other: PieceBitset): boolean {
    if (this.count === 0) return false;
    if (other.count === 0) return true;
    const a = this.words;
    const b = other.words;
    for (let i = 0; i < a.length; i++) {
      const mine = a[i];
      if (mine !== 0 && (mine & ~(i < b.length ? b[i] : 0)) !== 0) return true;
    }
    return false;
  }

  toArray(): number[] {
    const out: number[] = [];
    for (let w = 0; w < this.words.length; w++) {
      let bits = this.words[w];
      while (bits !== 0) {
        const low = bits & -bits;
        out.push(w * 32 + (31 - Math.clz32(low)));
        bits ^= low;
      }
    }
    return out;
  }
}

function popcount(word: number): number {
  let v = word - ((word >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}
