/**
 * A cluster declared in code: the file `dfmanager apply-cluster` reads and the
 * RemoteCluster construct renders. Applying it creates or updates the manager's cluster
 * record (scheduler cluster + seed-peer cluster, linked) so nobody clicks "ADD CLUSTER".
 */
import { z } from 'zod';
import { ipAddress, regex } from './primitives';

/**
 * Length limits of the cluster's text fields (stated in docs/manager-rest.md): these are sent
 * to every scheduler and peer in ListSchedulers answers, so they must stay small.
 */
export const CLUSTER_TEXT_LIMITS = { bio: 1024, idc: 1024, location: 1024, cidr: 64, cidrs: 256, hostname: 1024, hostnames: 256 } as const;

const cidr = z.string().max(CLUSTER_TEXT_LIMITS.cidr).refine((v) => {
  const [ip, bits, extra] = v.split('/');
  if (extra !== undefined || bits === undefined || !/^\d{1,3}$/.test(bits)) return false;
  const max = ip.includes(':') ? 128 : 32;
  return ipAddress.safeParse(ip).success && ip !== '' && Number(bits) <= max;
}, 'expected a CIDR such as "10.0.0.0/8"');

export const clusterScopesSchema = z.strictObject({
  /** One IDC, or several separated by "|". */
  idc: z.string().max(CLUSTER_TEXT_LIMITS.idc).default(''),
  /** "|"-separated from broad to narrow, e.g. "asia|cn|bj". */
  location: z.string().max(CLUSTER_TEXT_LIMITS.location).default(''),
  cidrs: z.array(cidr).max(CLUSTER_TEXT_LIMITS.cidrs).default([]),
  /** Regular expressions matched against peer hostnames. */
  hostnames: z.array(z.string().max(CLUSTER_TEXT_LIMITS.hostname).pipe(regex)).max(CLUSTER_TEXT_LIMITS.hostnames).default([]),
});

export const clusterSpecSchema = z.strictObject({
  /** Explicit id for both the scheduler cluster and the seed-peer cluster; the configs of the cluster's scheduler and seed peer carry it. */
  id: z.number().int().min(1).optional(),
  name: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'expected a lowercase DNS label such as "cluster-b"'),
  bio: z.string().max(CLUSTER_TEXT_LIMITS.bio).default(''),
  scopes: clusterScopesSchema.prefault({}),
  is_default: z.boolean().default(false),
  scheduler_cluster_config: z
    .strictObject({
      candidate_parent_limit: z.number().int().min(1).max(20).default(4),
      filter_parent_limit: z.number().int().min(10).max(1000).default(40),
      job_rate_limit: z.number().int().min(1).default(10),
    })
    .prefault({}),
  seed_peer_cluster_config: z.strictObject({ load_limit: z.number().int().min(1).max(50000).default(2000) }).prefault({}),
  peer_cluster_config: z.strictObject({ load_limit: z.number().int().min(1).max(2000).default(200) }).prefault({}),
});

export type ClusterScopes = z.output<typeof clusterScopesSchema>;
export type ClusterSpecInput = z.input<typeof clusterSpecSchema>;
export type ClusterSpec = z.output<typeof clusterSpecSchema>;
