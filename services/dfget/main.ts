#!/usr/bin/env node
/** dfget <url> -O <file>: download through the local dfdaemon, or directly when none answers. */
import { SingleBar, Presets } from 'cli-progress';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { CommanderError, UsageError, parseArgs, type DfgetOptions } from './options';
import { DaemonUnreachableError, DfgetError, downloadDirect, downloadViaDaemon, exists, verifyOutput, type DownloadOutcome, type Progress } from './download';

export interface DfgetIo {
  readonly stderr: { write(s: string): unknown; isTTY?: boolean };
  /** Connect timeout for the daemon probe (tests shorten it). */
  readonly connectTimeoutMs?: number;
}

/** Runs one download with parsed options; returns the outcome or throws DfgetError. */
export async function runDfget(options: DfgetOptions, io: DfgetIo): Promise<DownloadOutcome> {
  const say = (s: string) => io.stderr.write(`dfget: ${s}\n`);
  const verbose = (s: string) => options.verbose && say(s);
  if (!options.overwrite && (await exists(options.output))) throw new DfgetError(`${options.output} already exists (use --overwrite)`);
  const dir = path.dirname(options.output);
  const dirStat = await fs.stat(dir).catch(() => undefined);
  if (!dirStat?.isDirectory()) throw new DfgetError(`output directory ${dir} does not exist`);

  const bar = options.progress && io.stderr.isTTY ? new SingleBar({ stream: io.stderr as NodeJS.WriteStream, hideCursor: true, format: '[{duration_formatted}] [{bar}] {percentage}% | {value}/{total} bytes | eta {eta_formatted}' }, Presets.shades_classic) : undefined;
  let started = false;
  const onProgress = (p: Progress) => {
    if (!bar) return;
    if (!started) {
      bar.start(p.total || 1, 0);
      started = true;
    }
    if (p.total) bar.setTotal(p.total);
    bar.update(p.done);
  };

  let outcome: DownloadOutcome;
  try {
    verbose(`downloading ${options.url} through dfdaemon at ${options.endpoint}`);
    try {
      outcome = await downloadViaDaemon(options, onProgress, io.connectTimeoutMs);
    } catch (err) {
      if (!(err instanceof DaemonUnreachableError)) throw err;
      if (options.disableBackToSource) throw new DfgetError(`${err.message}, and --disable-back-to-source forbids a direct download`);
      say(`${err.message}; downloading directly from the origin instead`);
      outcome = await downloadDirect(options, onProgress);
    }
  } finally {
    if (started) bar?.stop();
  }
  // The direct path hashed while writing; the daemon's file is checked here.
  if (options.digest && outcome.via === 'dfdaemon') await verifyOutput(options.output, options.digest);
  verbose(`wrote ${outcome.contentLength} bytes to ${options.output} via ${outcome.via}${outcome.taskId ? ` (task ${outcome.taskId})` : ''}`);
  return outcome;
}

/** The CLI: parses argv, runs, and maps every expected failure to one line on stderr and a non-zero code. */
export async function main(argv: readonly string[] = process.argv, io: DfgetIo = { stderr: process.stderr }): Promise<number> {
  let options: DfgetOptions;
  try {
    options = parseArgs(argv, process.cwd(), (s) => io.stderr.write(s));
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof UsageError) {
      io.stderr.write(`dfget: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  try {
    await runDfget(options, io);
    return 0;
  } catch (err) {
    if (err instanceof DfgetError) {
      io.stderr.write(`dfget: ${err.message}\n`);
      return 1;
    }
    const e = err as NodeJS.ErrnoException;
    io.stderr.write(`dfget: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}\n`);
    return 1;
  }
}

if (require.main === module) {
  void main().then((code) => process.exit(code));
}
