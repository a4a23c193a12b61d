/**
 * Local disk failures, told apart from network ones: a full or failing disk of this host is
 * never a parent's fault (no blocking, no piece-failed report) and retrying the transfer
 * cannot help, so it ends the download at once with the path and the free space.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { LocalStorageError } from '../common/errors';

/** errno codes that only a local file operation produces. */
const LOCAL_IO_CODES = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EFBIG', 'ENOMEM', 'EMFILE', 'ENFILE']);

/** True for an error of this host's own file system (disk full, I/O error, read-only, quota). */
export function isLocalIoError(err: unknown): boolean {
  if (err instanceof LocalStorageError) return true;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && LOCAL_IO_CODES.has(code);
}

/** Free bytes for an unprivileged writer on the file system holding `dir` (its nearest existing ancestor). */
export async function freeBytesAt(dir: string): Promise<number> {
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      const st = await fsp.statfs(d);
      return st.bavail * st.bsize;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || path.dirname(d) === d) throw err;
    }
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** The typed error for a local I/O failure at `file`, naming the path and the free space there. */
export async function localStorageError(err: unknown, file: string): Promise<LocalStorageError> {
  if (err instanceof LocalStorageError) return err;
  const e = err as NodeJS.ErrnoException;
  const free = await freeBytesAt(path.dirname(file)).catch(() => undefined);
  const freeText = free === undefined ? 'free space unknown' : `${formatBytes(free)} free`;
  const code = e.code ? ` ${e.code}` : '';
  return new LocalStorageError(`local storage error${code} at ${file}: ${e.message} (${freeText})`, {
    code: e.code,
    path: file,
    freeBytes: free,
  });
}

/** Re-throws `err` as a LocalStorageError when it is a local I/O error, else unchanged. */
export async function rethrowLocalIo(err: unknown, file: string): Promise<never> {
  throw isLocalIoError(err) ? await localStorageError(err, file) : err;
}

/**
 * Refuses a download that cannot fit: `needed` bytes must be free at `dir` beyond what other
 * downloads in progress have reserved. Checked before any byte is served, so a client gets a
 * clear error instead of a 200 whose body is cut when the disk fills.
 */
export async function ensureSpace(dir: string, needed: number, reservedByOthers: number, free = freeBytesAt): Promise<void> {
  if (needed <= 0) return;
  const available = await free(dir);
  if (available - reservedByOthers >= needed) return;
  throw new LocalStorageError(
    `not enough disk space at ${dir}: the content needs ${formatBytes(needed)}, ${formatBytes(available)} free` +
      (reservedByOthers > 0 ? ` of which ${formatBytes(reservedByOthers)} are reserved by downloads in progress` : ''),
    { code: 'ENOSPC', path: dir, freeBytes: available, neededBytes: needed },
  );
}
