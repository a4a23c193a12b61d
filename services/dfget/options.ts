/** dfget's command line, parsed and checked into plain options (no I/O). */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import * as path from 'node:path';
import { parseDuration } from '../common/config/primitives';
import { dfdaemonConfigSchema } from '../common/config/dfdaemon';

export const DEFAULT_SOCKET = dfdaemonConfigSchema.parse({}).download.downloadGRPC.unixListen.socket;
const DEFAULT_TIMEOUT = '2h';

export interface DfgetOptions {
  readonly url: string;
  /** Absolute output path. */
  readonly output: string;
  /** gRPC target: "unix:<path>" of the daemon's download socket. */
  readonly endpoint: string;
  readonly digest?: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly tag?: string;
  readonly application?: string;
  readonly filteredQueryParams: readonly string[];
  readonly disableBackToSource: boolean;
  readonly overwrite: boolean;
  /** Opt-in: the output is a hardlink to dfdaemon's cache file (see --hard-link). */
  readonly hardLink: boolean;
  readonly timeoutMs: number;
  readonly progress: boolean;
  readonly verbose: boolean;
}

/** A usage problem: printed as one line, exit 2 like commander's own usage errors. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

function parseHeader(value: string, previous: Record<string, string>): Record<string, string> {
  const i = value.indexOf(':');
  const name = i > 0 ? value.slice(0, i).trim() : '';
  if (!name || /\s/.test(name)) throw new InvalidArgumentError(`expected "Name: value", got "${value}"`);
  return { ...previous, [name]: value.slice(i + 1).trim() };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

/**
 * "unix:/path" or "/path/x.sock" → a grpc-js target. The daemon serves its download API on
 * this unix socket only (a caller names a file the daemon writes), so host:port is refused.
 */
export function endpointTarget(endpoint: string): string {
  const e = endpoint.trim();
  const socket = e.startsWith('unix:') ? e.slice('unix:'.length).replace(/^\/\/(?=\/)/, '') : e;
  if (!socket || /^[a-z]+:\/\//i.test(socket) || /^(\[[0-9a-fA-F:]+\]|[^\s:/]+):\d{1,5}$/.test(socket)) {
    throw new UsageError(`--endpoint: expected the dfdaemon's unix socket path (download.downloadGRPC.unixListen.socket, default ${DEFAULT_SOCKET}), got "${endpoint}"; the download API is not served over TCP`);
  }
  return `unix:${path.resolve(socket)}`;
}

export function buildProgram(): Command {
  return new Command('dfget')
    .description('download a file through the local dfdaemon (P2P), falling back to a direct download when no dfdaemon answers')
    .argument('<url>', 'URL to download (http, https)')
    .requiredOption('-O, --output <file>', 'where to write the file')
    .option('-e, --endpoint <socket>', "the dfdaemon's download API unix socket", DEFAULT_SOCKET)
    .option('--digest <algo:hex>', 'verify the output file (sha256:<hex> or sha512:<hex>)')
    .option('-H, --header <header>', 'request header "Name: value" (repeatable)', parseHeader, {})
    .option('--tag <tag>', 'task id tag')
    .option('--application <name>', 'task id application')
    .addOption(new Option('--filtered-query-param <name>', 'query param left out of the task id (repeatable, or comma list)').argParser(collect).default([]))
    .option('--disable-back-to-source', 'fail instead of going to the origin when no peer has the file', false)
    .option('--overwrite', 'replace an existing output file', false)
    .option('--hard-link', "make the output a hardlink to dfdaemon's cached copy instead of a reflink or copy (no extra disk space, but editing the output corrupts the cache for every later reader, and a cache repair changes the output)", false)
    .option('--timeout <duration>', 'give up after this long, e.g. 30s, 10m, 2h', DEFAULT_TIMEOUT)
    .option('--no-progress', 'do not show a progress bar')
    .option('--verbose', 'print what dfget is doing', false)
    .exitOverride()
    .showHelpAfterError(false);
}

interface RawOpts {
  output: string;
  endpoint: string;
  digest?: string;
  header: Record<string, string>;
  tag?: string;
  application?: string;
  filteredQueryParam: string[];
  disableBackToSource: boolean;
  overwrite: boolean;
  hardLink: boolean;
  timeout: string;
  progress: boolean;
  verbose: boolean;
}

/**
 * Parses argv (as process.argv: node, script, args...). Throws CommanderError for --help /
 * commander usage errors (its message already printed) and UsageError for bad values.
 */
export function parseArgs(argv: readonly string[], cwd = process.cwd(), writeErr: (s: string) => void = (s) => process.stderr.write(s)): DfgetOptions {
  const program = buildProgram().configureOutput({ writeErr });
  program.parse([...argv]);
  const raw = program.opts<RawOpts>();
  const url = program.args[0];
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`invalid URL "${url}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`unsupported URL scheme "${parsed.protocol}" (http and https are supported)`);
  const digest = raw.digest?.toLowerCase();
  if (digest !== undefined && !DIGEST.test(digest)) throw new UsageError(`--digest: expected sha256:<64 hex> or sha512:<128 hex>, got "${raw.digest}"`);
  const timeoutMs = parseDuration(raw.timeout);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--timeout: expected a duration such as 30s, 10m or 2h, got "${raw.timeout}"`);
  if (!raw.output.trim()) throw new UsageError('-O/--output: expected a file path');
  return {
    url: parsed.toString(),
    output: path.resolve(cwd, raw.output),
    endpoint: endpointTarget(raw.endpoint),
    digest,
    headers: raw.header,
    tag: raw.tag,
    application: raw.application,
    filteredQueryParams: raw.filteredQueryParam,
    disableBackToSource: raw.disableBackToSource,
    overwrite: raw.overwrite,
    hardLink: raw.hardLink,
    timeoutMs,
    progress: raw.progress,
    verbose: raw.verbose,
  };
}

export { CommanderError };
