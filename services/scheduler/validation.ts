/**
 * What the scheduler checks in every message before it touches its state: sizes of strings
 * and maps, host fields, the task id recomputed from the download, and task metadata within
 * the bounds dfdaemon uses (services/common/pieces.ts). Pure functions; they throw typed
 * errors the transport maps to INVALID_ARGUMENT.
 */
import { isIP } from 'node:net';
import { InvalidArgumentError } from '../common/errors';
import { blobDigestOf, taskIdOf } from '../common/ids';
import { MAX_CONTENT_LENGTH, MAX_PIECE_COUNT, MAX_PIECE_LENGTH, pieceCountOf, pieceLengthFor, taskMetadataProblem } from '../common/pieces';
import type { Download__Output, Host__Output } from '../proto';

/** Host, peer and task ids (ours are < 200 characters). */
export const MAX_ID_LENGTH = 512;
export const MAX_URL_LENGTH = 16 * 1024;
export const MAX_HEADER_COUNT = 128;
/** Sum of the header names and values of one request. */
export const MAX_HEADER_BYTES = 64 * 1024;
export const MAX_FILTERED_PARAMS = 128;
export const MAX_NAME_LENGTH = 1024;
/** A host announcing a shorter interval is treated as announcing this one. */
export const MIN_ANNOUNCE_INTERVAL_MS = 1000;
/** Largest AnnouncePeer / AnnounceHost message the scheduler server accepts (ours are a few KiB). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/**
 * The caller's IP from grpc-js `call.getPeer()`: "10.0.0.5:51234", "::ffff:10.0.0.5:51234",
 * "::1:51234" (IPv6 without brackets), also "[::1]:51234" and "ipv4:"/"ipv6:" prefixed
 * forms; IPv4-mapped IPv6 is written as IPv4.
 */
export function callerIpOf(peer: string): string {
  const bare = peer.replace(/^ipv[46]:/, '');
  const bracketed = /^\[([^\]]+)\]:\d+$/.exec(bare);
  if (bracketed) return normalizeIp(bracketed[1]);
  const withPort = /^(.+):\d+$/.exec(bare);
  if (withPort && isIP(withPort[1]) !== 0) return normalizeIp(withPort[1]);
  return normalizeIp(bare);
}

/** "::ffff:10.0.0.5" → "10.0.0.5"; IPv6 lower-cased. */
export function normalizeIp(ip: string): string {
  const lower = ip.toLowerCase();
  return lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4 ? lower.slice(7) : lower;
}

function checkString(field: string, value: string, max: number, required = true): void {
  if (required && !value) throw new InvalidArgumentError(`${field} is required`);
  if (value.length > max) throw new InvalidArgumentError(`${field} is ${value.length} characters long; the limit is ${max}`);
}

function checkCount(field: string, value: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) throw new InvalidArgumentError(`${field} ${value} is not an integer in [0, ${max}]`);
}

export function checkId(field: string, value: string): void {
  checkString(field, value, MAX_ID_LENGTH);
}

/** Header maps sent by peers (request and origin response headers). */
export function checkHeaders(field: string, headers: Readonly<Record<string, string>>): void {
  const entries = Object.entries(headers);
  if (entries.length > MAX_HEADER_COUNT) throw new InvalidArgumentError(`${field} has ${entries.length} headers; the limit is ${MAX_HEADER_COUNT}`);
  let bytes = 0;
  for (const [k, v] of entries) bytes += k.length + v.length;
  if (bytes > MAX_HEADER_BYTES) throw new InvalidArgumentError(`${field} is ${bytes} bytes; the limit is ${MAX_HEADER_BYTES}`);
}

/** The fields of an AnnounceHost that the scheduler stores and hands to other peers. */
export function checkHost(h: Host__Output): void {
  checkId('host.id', h.id);
  if (!h.ip) throw new InvalidArgumentError('host.ip is required');
  if (isIP(h.ip) === 0) throw new InvalidArgumentError(`host.ip ${JSON.stringify(h.ip.slice(0, 64))} is not an IP address`);
  if (!(Number.isInteger(h.port) && h.port > 0 && h.port <= 65535)) throw new InvalidArgumentError(`host.port ${h.port} is not a port`);
  if (!(Number.isInteger(h.downloadPort) && h.downloadPort >= 0 && h.downloadPort <= 65535)) throw new InvalidArgumentError(`host.download_port ${h.downloadPort} is not a port`);
  checkString('host.hostname', h.hostname, 255, false);
  checkString('host.network.idc', h.network?.idc ?? '', MAX_NAME_LENGTH, false);
  checkString('host.network.location', h.network?.location ?? '', MAX_NAME_LENGTH, false);
  for (const [field, value] of [
    ['concurrent_upload_limit', h.concurrentUploadLimit],
    ['concurrent_upload_count', h.concurrentUploadCount],
    ['upload_count', h.uploadCount],
    ['upload_failed_count', h.uploadFailedCount],
    ['network.max_tx_bandwidth', h.network?.maxTxBandwidth ?? 0],
    ['network.tx_bandwidth', h.network?.txBandwidth ?? 0],
  ] as const) {
    checkCount(`host.${field}`, value, Number.MAX_SAFE_INTEGER);
  }
}

/** Sizes of a register_peer_request's download. */
export function checkDownload(d: Download__Output): void {
  checkString('download.url', d.url, MAX_URL_LENGTH);
  checkString('download.digest', d.digest ?? '', 256, false);
  checkString('download.tag', d.tag ?? '', MAX_NAME_LENGTH, false);
  checkString('download.application', d.application ?? '', MAX_NAME_LENGTH, false);
  if (d.filteredQueryParams.length > MAX_FILTERED_PARAMS) throw new InvalidArgumentError(`download.filtered_query_params has ${d.filteredQueryParams.length} entries; the limit is ${MAX_FILTERED_PARAMS}`);
  for (const p of d.filteredQueryParams) checkString('download.filtered_query_params entry', p, 256);
  checkHeaders('download.request_header', d.requestHeader);
  if (d.pieceLength !== undefined && d.pieceLength !== null && d.pieceLength !== 0 && taskMetadataProblem(0, d.pieceLength)) {
    throw new InvalidArgumentError(`download.piece_length: ${taskMetadataProblem(0, d.pieceLength)}`);
  }
}

/**
 * The task id a peer sent must be the one its download describes (DESIGN.md id scheme):
 * otherwise one task's peers could be joined to another task's data. An empty filter list
 * is read both ways dfdaemon may have meant it (the default filter, or none).
 */
export function checkTaskId(taskId: string, d: Download__Output): void {
  // Most registrations repeat a download already verified (every peer of a task sends the
  // same one): remember recent matches instead of hashing again.
  const key = `${taskId}\n${d.url}\n${d.tag ?? ''}\n${d.application ?? ''}\n${d.filteredQueryParams.join('&')}\n${d.pieceLength ?? ''}\n${d.digest ?? ''}`;
  if (verifiedDownloads.has(key)) return;
  verifyTaskId(taskId, d);
  if (key.length <= VERIFIED_KEY_MAX_LENGTH) {
    if (verifiedDownloads.size >= VERIFIED_CACHE_SIZE) verifiedDownloads.delete(verifiedDownloads.values().next().value as string);
    verifiedDownloads.add(key);
  }
}

/** Recently verified (task id, download) pairs, oldest first; bounded in count and key length. */
const verifiedDownloads = new Set<string>();
const VERIFIED_CACHE_SIZE = 4096;
const VERIFIED_KEY_MAX_LENGTH = 2048;

function verifyTaskId(taskId: string, d: Download__Output): void {
  const base = { url: d.url, tag: d.tag ?? undefined, application: d.application ?? undefined };
  const lists = d.filteredQueryParams.length > 0 ? [d.filteredQueryParams] : [undefined, []];
  // Candidates in the order dfdaemon most likely used them; the first match ends the search.
  const candidates = lists.flatMap((filteredQueryParams) => [{ ...base, filteredQueryParams }, ...(d.pieceLength ? [{ ...base, filteredQueryParams, pieceLength: d.pieceLength }] : [])]);
  let expected: string | undefined;
  for (const input of candidates) {
    let id: string;
    try {
      id = taskIdOf(input);
    } catch {
      throw new InvalidArgumentError(`download.url ${JSON.stringify(d.url.slice(0, 256))} is not a valid URL`);
    }
    expected ??= id;
    if (id === taskId) {
      const blob = blobDigestOf(d.url);
      if (blob && d.digest && d.digest.toLowerCase() !== blob) throw new InvalidArgumentError(`download.digest ${d.digest.slice(0, 80)} differs from the blob URL's digest ${blob}`);
      return;
    }
  }
  throw new InvalidArgumentError(`task_id ${taskId.slice(0, 80)} does not match the download (url, tag, application, filtered query params); expected ${expected}`);
}

/** Task metadata a peer reports from the origin; empty content may come without a piece length. */
export function checkTaskMetadata(field: string, contentLength: number, pieceLength: number): void {
  if (contentLength === 0 && pieceLength === 0) return;
  const problem = taskMetadataProblem(contentLength, pieceLength);
  if (problem) throw new InvalidArgumentError(`${field}: ${problem}`);
}

/**
 * Piece length for a finished report that gave content length and piece count only: the
 * length dfdaemon would have used, when it yields that count; undefined when none fits.
 */
export function pieceLengthFromCount(contentLength: number, pieceCount: number): number | undefined {
  checkCount('content_length', contentLength, MAX_CONTENT_LENGTH);
  checkCount('piece_count', pieceCount, MAX_PIECE_COUNT);
  if (contentLength === 0) return pieceCount === 0 ? 0 : undefined;
  if (pieceCount === 0) throw new InvalidArgumentError(`piece_count 0 cannot hold content_length ${contentLength}`);
  const length = pieceLengthFor(contentLength);
  return pieceCountOf(contentLength, length) === pieceCount ? length : undefined;
}

/** A finished piece's number and length against what the scheduler knows of the task. */
export function checkPiece(number: number, length: number, task: { contentLength: number | undefined; pieceCount: number; pieceLength: number }): void {
  const known = task.contentLength !== undefined;
  const limit = known ? task.pieceCount : MAX_PIECE_COUNT;
  if (!Number.isSafeInteger(number) || number < 0 || number >= limit) {
    throw new InvalidArgumentError(`piece number ${number} is outside the task's ${limit} pieces`);
  }
  const maxLength = task.pieceLength > 0 ? task.pieceLength : MAX_PIECE_LENGTH;
  if (!Number.isSafeInteger(length) || length < 0 || length > maxLength) throw new InvalidArgumentError(`piece length ${length} is outside [0, ${maxLength}]`);
}
