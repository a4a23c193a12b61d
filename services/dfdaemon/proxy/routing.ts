/**
 * Pure routing decisions of the registry-mirror proxy: which upstream URL a request goes
 * to, whether it travels through P2P or straight to the origin, and which task-id inputs
 * and headers go with it. No I/O here, so every rule is unit-testable on its own.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { blobDigestOf, parseFilter } from '../../common/ids';
import type { DfdaemonConfig, ProxyRule } from '../../common/config/dfdaemon';
import { ProxyRefusal, type ProxyPolicy } from './policy';

export const HEADER = {
  registry: 'x-dragonfly-registry',
  useP2P: 'x-dragonfly-use-p2p',
  tag: 'x-dragonfly-tag',
  application: 'x-dragonfly-application',
  filteredQueryParams: 'x-dragonfly-filtered-query-params',
  /** Go-era spelling of the same thing, `&`-separated. */
  filter: 'x-dragonfly-filter',
  priority: 'x-dragonfly-priority',
  taskId: 'X-Dragonfly-Task-ID',
  downloadFinished: 'X-Dragonfly-Task-Download-Finished',
  errorType: 'X-Dragonfly-Error-Type',
} as const;

/** Connection-scoped headers (RFC 9110 §7.6.1) that a proxy must not forward. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export type ProxyMode = 'p2p' | 'pass-through';

export interface RouteDecision {
  /** Absolute upstream URL (for mirror requests: the registry plus the request's path and query, `ns` removed). */
  readonly upstream: URL;
  /** The upstream the caller asked for, before a proxy rule's redirect/useHTTPS: what the allow-list checks. */
  readonly requested: URL;
  readonly mode: ProxyMode;
  /** Mirror request (origin-form, from containerd) or a plain forward-proxy request (absolute URI). */
  readonly kind: 'mirror' | 'forward';
  /** Skip TLS verification to this upstream (registryMirror.insecure). */
  readonly insecure: boolean;
  /** Mirror requests: the request target's path after URL normalisation (what admit checks), parsed once by route. */
  readonly originPath?: string;
}

export class RouteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RouteError';
  }
}

/** Registry strings from `ns=` / X-Dragonfly-Registry: scheme added when missing; docker.io's API host. */
export function registryBase(value: string): URL {
  let text = value.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) text = `https://${text}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RouteError(`invalid registry "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RouteError(`unsupported registry scheme in "${value}"`);
  // containerd names Docker Hub "docker.io"; its registry API lives on index.docker.io.
  if (url.hostname === 'docker.io') url.hostname = 'index.docker.io';
  return url;
}

/**
 * An origin-form target ("/v2/..."), parsed as a path: "//host/v2/x" stays the path
 * "//host/v2/x" instead of naming a host, and an unparsable one is a RouteError.
 */
export function parseOriginForm(originForm: string): URL {
  try {
    return new URL(`http://placeholder${originForm}`);
  } catch {
    throw new RouteError(`invalid request target "${originForm.slice(0, 200)}"`);
  }
}

/** Most registry strings whose parsed base is kept (they come from a header: bounded). */
const MAX_REGISTRY_BASES = 64;
/** Parsed registry bases by the string that named them: the few registries a node pulls from, each parsed once. */
const registryBases = new Map<string, { readonly origin: string; readonly prefix: string } | RouteError>();

/** registryBase's origin and path prefix (trailing slashes removed), remembered per string. */
function registryOriginOf(value: string): { readonly origin: string; readonly prefix: string } {
  let known = registryBases.get(value);
  if (known === undefined) {
    try {
      const base = registryBase(value);
      known = { origin: base.origin, prefix: base.pathname.replace(/\/+$/, '') };
    } catch (err) {
      if (!(err instanceof RouteError)) throw err;
      known = err;
    }
    if (registryBases.size >= MAX_REGISTRY_BASES) registryBases.delete(registryBases.keys().next().value as string);
    registryBases.set(value, known);
  }
  if (known instanceof RouteError) throw new RouteError(known.message);
  return known;
}

/**
 * An origin-form target of path characters URL parsing leaves as they are, with no query or
 * only `ns=<plain value>` (what containerd sends): path, ns.
 */
const PLAIN_TARGET = /^(\/[A-Za-z0-9._~:@+-]*(?:\/[A-Za-z0-9._~:@+-]*)*)(?:\?ns=([A-Za-z0-9._~:-]*))?$/;
/** A "." or ".." path segment (URL parsing removes them). */
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/;

/** A query of only `ns=<plain value>` (what containerd sends): no form decoding needed to read or drop it. */
const NS_ONLY = /^\?ns=([A-Za-z0-9._~:-]*)$/;

/**
 * The registry named by a mirror request (X-Dragonfly-Registry when allowed, else `ns=`, else
 * registryMirror.url) and the upstream URL: that registry's origin and path prefix, then the
 * request's normalised path and its query without `ns` (form-serialised). One parse of the
 * target and one of the result.
 */
function mirrorUpstream(config: DfdaemonConfig['proxy'], rawUrl: string, headerRegistry: string | undefined): { upstream: URL; path: string } {
  const plainTarget = PLAIN_TARGET.exec(rawUrl);
  if (plainTarget !== null && !DOT_SEGMENT.test(plainTarget[1])) {
    // Nothing in it that URL parsing would change (no escapes, dot segments or characters it encodes): the target is its own normal form.
    const { origin, prefix } = registryOriginOf(headerRegistry || plainTarget[2] || config.registryMirror.url);
    return { upstream: new URL(`${origin}${prefix}${plainTarget[1]}`), path: plainTarget[1] };
  }
  const parsed = parseOriginForm(rawUrl);
  let ns: string | null = null;
  let query = '';
  if (parsed.search !== '') {
    const plain = NS_ONLY.exec(parsed.search);
    if (plain) ns = plain[1];
    else {
      const params = parsed.searchParams;
      ns = params.get('ns');
      params.delete('ns');
      query = params.toString();
    }
  }
  const { origin, prefix } = registryOriginOf(headerRegistry || ns || config.registryMirror.url);
  // The path is already normalised (no dot segments, percent-encoded): parsing it again after the origin leaves it as is.
  return { upstream: new URL(`${origin}${prefix}${parsed.pathname}${query === '' ? '' : `?${query}`}`), path: parsed.pathname };
}

/** The URL with query and fragment stripped: what rules are matched against. */
export function ruleSubject(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

export function firstMatchingRule(rules: readonly ProxyRule[], url: URL, compiled?: readonly RegExp[]): ProxyRule | undefined {
  const subject = ruleSubject(url);
  for (let i = 0; i < rules.length; i++) {
    const re = compiled?.[i] ?? new RegExp(rules[i].regx);
    if (re.test(subject)) return rules[i];
  }
  return undefined;
}

/**
 * Decides where a request goes. `rawUrl` is the request target as received: origin-form
 * ("/v2/...") for mirror requests, absolute ("http://host/...") for forward-proxy requests.
 */
export function route(
  config: DfdaemonConfig['proxy'],
  method: string,
  rawUrl: string,
  headers: IncomingHttpHeaders,
  compiledRules?: readonly RegExp[],
): RouteDecision {
  let upstream: URL;
  let kind: RouteDecision['kind'];
  let insecure = false;
  let forceDirect = false;
  let originPath: string | undefined;
  if (/^https?:\/\//i.test(rawUrl)) {
    kind = 'forward';
    try {
      upstream = new URL(rawUrl);
    } catch {
      throw new RouteError(`invalid request URL "${rawUrl}"`);
    }
  } else if (rawUrl.startsWith('/')) {
    kind = 'mirror';
    // registryMirror.dynamic (Go-era key): whether X-Dragonfly-Registry may pick the upstream.
    const headerRegistry = config.registryMirror.dynamic ? single(headers[HEADER.registry]) : undefined;
    ({ upstream, path: originPath } = mirrorUpstream(config, rawUrl, headerRegistry));
    insecure = config.registryMirror.insecure;
    forceDirect = config.registryMirror.direct;
  } else {
    throw new RouteError(`unsupported request target "${rawUrl}"`);
  }
  // A mirror upstream is built without a fragment; a forward URL may carry one ("#" too).
  if (kind === 'forward') upstream.hash = '';

  const rule = firstMatchingRule(config.proxies, upstream, compiledRules);
  // What the caller asked for stays as it was: a copy only when a rule rewrites the upstream.
  let requested = upstream;
  if (rule && (rule.redirect || (rule.useHTTPS && upstream.protocol === 'http:'))) {
    requested = new URL(upstream);
    if (rule.redirect) upstream.host = rule.redirect;
    if (rule.useHTTPS && upstream.protocol === 'http:') {
      upstream.protocol = 'https:';
      if (upstream.port === '80') upstream.port = '';
    }
  }
  const forcedP2P = single(headers[HEADER.useP2P])?.toLowerCase() === 'true';
  const p2p = method === 'GET' && !forceDirect && (forcedP2P || (rule !== undefined && !rule.direct));
  return { upstream, requested, mode: p2p ? 'p2p' : 'pass-through', kind, insecure, originPath };
}

/** Methods a mirror request may use: containerd only pulls. */
const MIRROR_METHODS = new Set(['GET', 'HEAD']);

/**
 * Default deny: a mirror request must be a GET/HEAD under /v2/ to an allowed registry; an
 * absolute-URI request must name a whiteList host. Throws ProxyRefusal otherwise.
 */
export function admit(policy: ProxyPolicy, method: string, rawUrl: string, decision: RouteDecision): void {
  if (decision.kind === 'forward') {
    policy.checkForward(decision.requested);
    return;
  }
  if (!MIRROR_METHODS.has(method)) {
    throw new ProxyRefusal(403, `method ${method} is not allowed: mirror requests are GET or HEAD under /v2/`);
  }
  // Checked after URL normalisation, so /v2/../api and /v2/%2e%2e/api do not escape.
  const pathname = decision.originPath ?? parseOriginForm(rawUrl).pathname;
  if (pathname !== '/v2' && !pathname.startsWith('/v2/')) {
    throw new ProxyRefusal(403, `path ${pathname.slice(0, 200)} is not allowed: mirror requests are GET or HEAD under /v2/`);
  }
  policy.checkMirrorUpstream(decision.requested);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Headers to send to the origin: the client's, minus hop-by-hop ones, Host and our own X-Dragonfly-* controls. */
export function forwardableHeaders(headers: IncomingHttpHeaders, options: { dropRange?: boolean } = {}): Record<string, string | string[]> {
  const connectionScoped = new Set(
    (single(headers.connection) ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (name === 'host' || HOP_BY_HOP.has(name) || connectionScoped.has(name) || name.startsWith('x-dragonfly-')) continue;
    if (options.dropRange && name === 'range') continue;
    out[name] = value;
  }
  return out;
}

/**
 * Headers of a stored origin response that may be replayed to a later client (who may not be
 * the one whose request fetched it): what describes the content, never cookies, auth
 * challenges, hop-by-hop or framing headers.
 */
export const STORED_RESPONSE_HEADERS: ReadonlySet<string> = new Set([
  'content-type',
  'content-encoding',
  'content-language',
  'content-disposition',
  'docker-content-digest',
  'docker-distribution-api-version',
  'etag',
  'last-modified',
  'cache-control',
  'expires',
]);

/** Only the allow-listed headers of a stored response. */
export function storedHeadersToReplay(headers: Readonly<Record<string, string | string[] | undefined>>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (value !== undefined && STORED_RESPONSE_HEADERS.has(lower)) out[lower] = value;
  }
  return out;
}

/** Response headers of a live answer safe to pass on to its client (hop-by-hop removed). */
export function replayableHeaders(headers: Readonly<Record<string, string | string[] | undefined>>, drop: readonly string[] = []): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const dropped = new Set(drop);
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(lower) || dropped.has(lower)) continue;
    out[lower] = value;
  }
  return out;
}

export interface TaskInputs {
  readonly tag?: string;
  readonly application?: string;
  readonly filteredQueryParams: readonly string[];
  readonly priority?: number;
  /** For OCI blob URLs: the digest the engine verifies the content against. */
  readonly digest?: string;
}

/** proxy.defaultFilter as parsed last time (one config value: every request without a filter header shares it, frozen). */
let parsedDefaultFilter: { readonly text: string; readonly names: readonly string[] } | undefined;

function defaultFilterOf(text: string): readonly string[] {
  if (parsedDefaultFilter?.text !== text) parsedDefaultFilter = { text, names: Object.freeze(parseFilter(text)) };
  return parsedDefaultFilter.names;
}

/** Task-id inputs from X-Dragonfly-* headers, falling back to proxy.defaultTag/defaultApplication/defaultFilter. */
export function taskInputs(config: DfdaemonConfig['proxy'], headers: IncomingHttpHeaders, upstream: URL): TaskInputs {
  const tag = single(headers[HEADER.tag]) ?? config.defaultTag;
  const application = single(headers[HEADER.application]) ?? config.defaultApplication;
  const listHeader = single(headers[HEADER.filteredQueryParams]);
  const goFilter = single(headers[HEADER.filter]);
  const filteredQueryParams =
    listHeader !== undefined
      ? listHeader.split(',').map((s) => s.trim()).filter(Boolean)
      : goFilter !== undefined
        ? parseFilter(goFilter)
        : defaultFilterOf(config.defaultFilter);
  const priorityText = single(headers[HEADER.priority]);
  const priority = priorityText !== undefined && /^\d+$/.test(priorityText) ? Number(priorityText) : undefined;
  return {
    tag: tag || undefined,
    application: application || undefined,
    filteredQueryParams,
    priority,
    digest: blobDigestOf(upstream.toString()),
  };
}

export type ParsedRange =
  | { readonly kind: 'none' }
  | { readonly kind: 'multi' }
  | { readonly kind: 'invalid' }
  /** `bytes=a-b` (end undefined for `bytes=a-`) or suffix `bytes=-n`. */
  | { readonly kind: 'single'; readonly start?: number; readonly end?: number; readonly suffix?: number };

/** Parses a Range header; only single byte ranges are served from P2P. */
export function parseRange(header: string | undefined): ParsedRange {
  if (header === undefined || header.trim() === '') return { kind: 'none' };
  const m = /^\s*bytes\s*=\s*(.+)$/i.exec(header);
  if (!m) return { kind: 'invalid' };
  const specs = m[1].split(',').map((s) => s.trim()).filter(Boolean);
  if (specs.length !== 1) return specs.length === 0 ? { kind: 'invalid' } : { kind: 'multi' };
  const r = /^(\d*)-(\d*)$/.exec(specs[0]);
  if (!r || (r[1] === '' && r[2] === '')) return { kind: 'invalid' };
  if (r[1] === '') return { kind: 'single', suffix: Number(r[2]) };
  const start = Number(r[1]);
  const end = r[2] === '' ? undefined : Number(r[2]);
  if (end !== undefined && end < start) return { kind: 'invalid' };
  return { kind: 'single', start, end };
}

/** Resolves a parsed single range against a known length: inclusive [start, end], or undefined if unsatisfiable. */
export function resolveRange(range: Extract<ParsedRange, { kind: 'single' }>, contentLength: number): { start: number; end: number } | undefined {
  if (contentLength <= 0) return undefined;
  if (range.suffix !== undefined) {
    if (range.suffix === 0) return undefined;
    return { start: Math.max(0, contentLength - range.suffix), end: contentLength - 1 };
  }
  const start = range.start ?? 0;
  if (start >= contentLength) return undefined;
  const end = Math.min(range.end ?? contentLength - 1, contentLength - 1);
  return { start, end };
}
