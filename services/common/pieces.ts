/** Piece-length math: how a task's content is cut into pieces. */

export const MIN_PIECE_LENGTH = 4 * 1024 * 1024;
export const MAX_PIECE_LENGTH = 64 * 1024 * 1024;

/**
 * Piece length for a content length: next power of two of len/500, clamped to
 * [4 MiB, 64 MiB] (so up to ~2 GB uses 4 MiB pieces and a task has at most ~500-1000 pieces).
 */
export function pieceLengthFor(contentLength: number): number {
  if (!Number.isFinite(contentLength) || contentLength <= 0) return MIN_PIECE_LENGTH;
  const target = Math.floor(contentLength / 500);
  let len = MIN_PIECE_LENGTH;
  while (len < target && len < MAX_PIECE_LENGTH) len *= 2;
  return len;
}

export function pieceCountOf(contentLength: number, pieceLength: number): number {
  return contentLength === 0 ? 0 : Math.ceil(contentLength / pieceLength);
}

/** Offset and length of piece `n`; the last piece holds the remainder. */
export function pieceRange(n: number, contentLength: number, pieceLength: number): { offset: number; length: number } {
  const offset = n * pieceLength;
  if (n < 0 || offset >= contentLength) throw new RangeError(`piece ${n} is outside content of ${contentLength} bytes`);
  return { offset, length: Math.min(pieceLength, contentLength - offset) };
}

/** Piece numbers that overlap bytes [start, start+length). */
export function piecesInRange(start: number, length: number, pieceLength: number): number[] {
  if (length <= 0) return [];
  const first = Math.floor(start / pieceLength);
  const last = Math.floor((start + length - 1) / pieceLength);
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

/** Largest content a task may have (1 TiB); a claim beyond it is refused, not allocated for. */
export const MAX_CONTENT_LENGTH = 2 ** 40;
/** Most pieces a valid task can have: the largest content cut at the smallest piece length. */
export const MAX_PIECE_COUNT = Math.ceil(MAX_CONTENT_LENGTH / MIN_PIECE_LENGTH);

/**
 * Why a (contentLength, pieceLength) pair that came over the network cannot describe a task, or
 * undefined when it can. Shared by the scheduler (peers' reports) and dfdaemon (the scheduler's
 * answers) so that both sides enforce the same bounds.
 */
export function taskMetadataProblem(contentLength: number, pieceLength: number): string | undefined {
  if (!Number.isSafeInteger(contentLength) || contentLength < 0) return `content length ${contentLength} is not a non-negative integer`;
  if (contentLength > MAX_CONTENT_LENGTH) return `content length ${contentLength} exceeds the maximum of ${MAX_CONTENT_LENGTH} bytes`;
  if (!Number.isSafeInteger(pieceLength) || pieceLength < MIN_PIECE_LENGTH || pieceLength > MAX_PIECE_LENGTH) {
    return `piece length ${pieceLength} is outside [${MIN_PIECE_LENGTH}, ${MAX_PIECE_LENGTH}]`;
  }
  return undefined;
}
