/**
 * The searcher: ranks scheduler clusters for a peer by how well the cluster's scopes fit it.
 * score = 0.3·CIDR + 0.3·hostname + 0.25·IDC + 0.14·location + 0.01·default, best first;
 * equal scores keep ascending cluster id order.
 */
import { BlockList, isIP } from 'node:net';
import type { ClusterScopes } from '../common/config/cluster-spec';

export const SEARCH_WEIGHTS = { cidr: 0.3, hostname: 0.3, idc: 0.25, location: 0.14, isDefault: 0.01 } as const;
const MAX_LOCATION_ELEMENTS = 5;

export interface SearchPeer {
  readonly hostname: string;
  readonly ip: string;
  readonly idc?: string;
  readonly location?: string;
}

export interface SearchCluster {
  readonly id: number;
  readonly scopes: ClusterScopes;
  readonly isDefault: boolean;
}

export interface RankedCluster<C extends SearchCluster> {
  readonly cluster: C;
  readonly score: number;
}

/** 1 when the ip lies in any CIDR (IPv4, IPv6, and IPv4-mapped IPv6 addresses). */
export function cidrScore(ip: string, cidrs: readonly string[]): number {
  if (!ip || cidrs.length === 0) return 0;
  const unmapped = ip.toLowerCase().startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
  const family = isIP(unmapped);
  if (family === 0) return 0;
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [net, bits] = cidr.split('/');
    const netFamily = isIP(net);
    if (netFamily === 0 || bits === undefined) continue;
    try {
      list.addSubnet(net, Number(bits), netFamily === 4 ? 'ipv4' : 'ipv6');
    } catch {
      // an invalid CIDR in stored scopes never matches
    }
  }
  return list.check(unmapped, family === 4 ? 'ipv4' : 'ipv6') ? 1 : 0;
}

/** 1 when any pattern (an unanchored regular expression) matches the hostname. */
export function hostnameScore(hostname: string, patterns: readonly string[]): number {
  if (!hostname) return 0;
  for (const pattern of patterns) {
    try {
      if (new RegExp(pattern).test(hostname)) return 1;
    } catch {
      // an invalid pattern in stored scopes never matches
    }
  }
  return 0;
}

/** 1 when the peer IDC equals the scope IDC or one of its "|"-separated elements, ignoring case. */
export function idcScore(peerIdc: string | undefined, scopeIdc: string): number {
  if (!peerIdc || !scopeIdc) return 0;
  const idc = peerIdc.toLowerCase();
  if (idc === scopeIdc.toLowerCase()) return 1;
  return scopeIdc.split('|').some((e) => e.trim().toLowerCase() === idc) ? 1 : 0;
}

/** Exact match 1; otherwise equal leading "|"-separated elements (at most 5) over 5. */
export function locationScore(peerLocation: string | undefined, scopeLocation: string): number {
  if (!peerLocation || !scopeLocation) return 0;
  const a = peerLocation.toLowerCase();
  const b = scopeLocation.toLowerCase();
  if (a === b) return 1;
  const pa = a.split('|');
  const pb = b.split('|');
  let equal = 0;
  for (let i = 0; i < Math.min(pa.length, pb.length, MAX_LOCATION_ELEMENTS); i++) {
    if (pa[i] !== pb[i]) break;
    equal++;
  }
  return equal / MAX_LOCATION_ELEMENTS;
}

export function scoreCluster(peer: SearchPeer, cluster: SearchCluster): number {
  const s = cluster.scopes;
  return (
    SEARCH_WEIGHTS.cidr * cidrScore(peer.ip, s.cidrs) +
    SEARCH_WEIGHTS.hostname * hostnameScore(peer.hostname, s.hostnames) +
    SEARCH_WEIGHTS.idc * idcScore(peer.idc, s.idc) +
    SEARCH_WEIGHTS.location * locationScore(peer.location, s.location) +
    SEARCH_WEIGHTS.isDefault * (cluster.isDefault ? 1 : 0)
  );
}

/**
 * Ranks the eligible clusters (the caller passes only clusters with at least one active
 * scheduler that has the `schedule` feature) best first; ties by ascending id.
 */
export function searchSchedulerClusters<C extends SearchCluster>(clusters: readonly C[], peer: SearchPeer): RankedCluster<C>[] {
  return clusters
    .map((cluster) => ({ cluster, score: scoreCluster(peer, cluster) }))
    .sort((a, b) => (Math.abs(b.score - a.score) > 1e-9 ? b.score - a.score : a.cluster.id - b.cluster.id));
}
