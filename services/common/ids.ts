/** Identifiers shared by every service (Dragonfly's id scheme). */
import { createHash, randomUUID } from 'node:crypto';

/** Query params dropped from task ids by default: cloud-storage signatures and containerd's `ns`. */
export const DEFAULT_FILTERED_QUERY_PARAMS: readonly string[] = [
  'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature', 'X-Amz-Security-Token', 'X-Amz-User-Agent',
  'X-Goog-Algorithm', 'X-Goog-Credential', 'X-Goog-Date', 'X-Goog-Expires', 'X-Goog-SignedHeaders', 'X-Goog-Signature',
  'OSSAccessKeyId', 'Expires', 'Signature', 'SecurityToken',
  'X-Obs-Date', 'X-Obs-Security-Token', 'AccessKeyId',
  'q-sign-algorithm', 'q-ak', 'q-sign-time', 'q-key-time', 'q-header-list', 'q-url-param-list', 'q-signature', 'x-cos-security-token',
  'ns',
];

const BLOB_URL = /^(.*):\/\/(.*)\/v2\/(.*)\/blobs\/(sha256:[a-f0-9]{64})(?:[?#].*)?$/;

/** The last URL blobDigestOf matched and its answer: one request asks for the same URL several times (routing, task id, digest check). */
let lastBlobUrl: string | undefined;
let lastBlobDigest: string | undefined;

/** `/blobs/sha256:` and the 64 hex digits after it. */
const BLOB_TAIL_LENGTH = '/blobs/sha256:'.length + 64;
/** What `.` in BLOB_URL does not match. */
const LINE_TERMINATOR = /[\n\r\u2028\u2029]/;

/**
 * BLOB_URL's answer for a URL that ends with `/blobs/sha256:<64 lower-case hex>` (every blob URL
 * the proxy builds), without the regex's backtracking over its three `.*` (about a microsecond
 * per URL, once per cache hit); null for any other URL (the regex decides). Such a URL matches
 * exactly when it has no line terminator and a `://`, then a `/v2/` ending at or before that tail;
 * the three groups are greedy, so the digest matched is then the tail's.
 */
function trailingBlobDigest(url: string): string | undefined | null {
  const tail = url.length - BLOB_TAIL_LENGTH;
  if (tail < 0 || !url.startsWith('/blobs/sha256:', tail)) return null;
  for (let i = url.length - 64; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return null;
  }
  const scheme = url.indexOf('://');
  const v2 = scheme < 0 ? -1 : url.indexOf('/v2/', scheme + 3);
  if (v2 < 0 || v2 + 4 > tail || LINE_TERMINATOR.test(url)) return undefined;
  return url.slice(tail + 7);
}

/** The digest ("sha256:<hex>") of an OCI blob URL, or undefined. */
export function blobDigestOf(url: string): string | undefined {
  if (url === lastBlobUrl) return lastBlobDigest;
  const trailing = trailingBlobDigest(url);
  const digest = trailing !== null ? trailing : BLOB_URL.exec(url)?.[4];
  lastBlobUrl = url;
  lastBlobDigest = digest;
  return digest;
}

/** Splits a Go-era `&`-separated filter ("Expires&Signature&ns") into names. */
export function parseFilter(filter: string): string[] {
  return filter.split('&').map((s) => s.trim()).filter(Boolean);
}

/** The URL with filtered query params removed (WHATWG parse; query dropped if nothing remains). */
export function filterUrl(rawUrl: string, filtered: readonly string[]): string {
  const url = new URL(rawUrl);
  url.hash = '';
  if (url.search) {
    const kept = new URLSearchParams();
    for (const [k, v] of url.searchParams) if (!filtered.includes(k)) kept.append(k, v);
    url.search = kept.toString();
  }
  let out = url.toString();
  if (url.pathname === '/' && !url.search) out = out.replace(/\/$/, '');
  return out;
}

export interface TaskIdInput {
  readonly url: string;
  readonly tag?: string;
  readonly application?: string;
  readonly filteredQueryParams?: readonly string[];
  readonly pieceLength?: number;
}

/**
 * Task id per DESIGN.md: an OCI blob URL's id is its digest's hex (so the same layer is one
 * task whichever registry path or mirror it came through); any other URL's id is
 * sha256(filtered url ‖ tag ‖ application ‖ piece length ‖ "STANDARD").
 */
export function taskIdOf(input: TaskIdInput): string {
  const digest = blobDigestOf(input.url);
  if (digest) return digest.slice('sha256:'.length);
  const filtered = filterUrl(input.url, input.filteredQueryParams ?? DEFAULT_FILTERED_QUERY_PARAMS);
  const parts = [filtered, input.tag ?? '', input.application ?? '', input.pieceLength ? String(input.pieceLength) : '', 'STANDARD'];
  return createHash('sha256').update(parts.join('')).digest('hex');
}

/** Host id: `<ip>-<hostname>`, `-seed` appended for seed peers. */
export function hostIdOf(ip: string, hostname: string, seed = false): string {
  return `${ip}-${hostname}${seed ? SEED_SUFFIX : ''}`;
}

/** Peer id: `<ip>-<hostname>-<uuid>`, `-seed` appended for seed peers. */
export function peerIdOf(ip: string, hostname: string, seed = false): string {
  return `${ip}-${hostname}-${randomUUID()}${seed ? SEED_SUFFIX : ''}`;
}

export const SEED_SUFFIX = '-seed';

export function isSeedId(id: string): boolean {
  return id.endsWith(SEED_SUFFIX);
}

/** Piece id: `<taskId>-<number>`. */
export function pieceIdOf(taskId: string, number: number): string {
  return `${taskId}-${number}`;
}
