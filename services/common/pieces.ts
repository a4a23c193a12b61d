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
