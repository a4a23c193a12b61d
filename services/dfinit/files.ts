/** File changes as data: planned first, printed as a diff for --dry-run, applied atomically. */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export interface FileChange {
  readonly path: string;
  /** Current content; null when the file does not exist. */
  readonly before: string | null;
  /** Wanted content; null to delete the file. */
  readonly after: string | null;
  /** Why, one line for the report. */
  readonly reason: string;
}

export async function readIfExists(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Writes through a temp file in the same directory and renames it over the target, so readers never see half a file. */
export async function writeAtomic(file: string, content: string, mode = 0o644): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await fs.open(tmp, 'wx', mode);
    try {
      await handle.writeFile(content, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** Applies changes in order; deletions also remove a directory they leave empty when `pruneDirs` lists it. */
export async function applyChanges(changes: readonly FileChange[], pruneDirs: ReadonlySet<string> = new Set()): Promise<void> {
  for (const change of changes) {
    if (change.after === null) {
      await fs.rm(change.path, { force: true });
      const dir = path.dirname(change.path);
      if (pruneDirs.has(dir)) {
        const left = await fs.readdir(dir).catch(() => ['?']);
        if (left.length === 0) await fs.rmdir(dir).catch(() => undefined);
      }
    } else {
      await writeAtomic(change.path, change.after);
    }
  }
}

/** A unified-style line diff (LCS), enough for the small files dfinit touches. */
export function renderDiff(change: FileChange): string {
  const a = change.before === null ? [] : splitLines(change.before);
  const b = change.after === null ? [] : splitLines(change.after);
  const header = `--- ${change.before === null ? '/dev/null' : change.path}\n+++ ${change.after === null ? '/dev/null' : change.path}\n`;
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push(`  ${a[i]}`);
      i++;
      j++;
    } else if (j < b.length && (i === a.length || lcs[i][j + 1] >= lcs[i + 1][j])) {
      out.push(`+ ${b[j++]}`);
    } else {
      out.push(`- ${a[i++]}`);
    }
  }
  return `${header}${out.join('\n')}\n`;
}

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}
