/**
 * A cluster declared in code: the file `dfmanager apply-cluster` reads and the
 * RemoteCluster construct renders. Applying it creates or updates the manager's cluster
 * record (scheduler cluster + seed-peer cluster, linked) so nobody clicks "ADD CLUSTER".
 */
import { z } from 'zod';
import { ipAddress, regex } from './primitives';

const cidr = z.string().refine((v) => {
  const [ip, bits, extra] = v.split('/');
  if (extra !== undefined || bits === undefined || !/^\d{1,3}$/.test(bits)) return false;
  const max = ip.includes(':') ? 128 : 32;
  return ipAddress.safeParse(ip).success && ip !== '' && Number(bits) <= max;
}, 'expected a CIDR such as "10.0.0.0/8"');

export const clusterScopesSchema = z.strictObject({
  /** One IDC, or several separated by "|". */
  idc: z.string().default(''),
  /** "|"-separated from broad to narrow, e.g. "asia|cn|bj". */
  location: z.string().default(''),
  cidrs: z.array(cidr).default([]),
  /** Regular expressions matched against peer hostnames. */
  hostnames: z.array(regex).default([]),
});

export const clusterSpecSchema = z.strictObject({
  /** Explicit id for both the scheduler cluster and the seed-peer cluster; the configs of the cluster's scheduler and seed peer carry it. */
  id: z.number().int().min(1).optional(),
  name: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'expected a lowercase DNS label such as "cluster-b"'),
  bio: z.string().default(''),
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
