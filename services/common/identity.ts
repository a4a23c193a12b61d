/**
 * Component identities carried in certificates as a URI SAN, e.g. `spiffe://dragonfly/manager`
 * or `spiffe://dragonfly/cluster/2/scheduler`. No dependencies: constructs/ uses it to write
 * cert-manager Certificates, the programs to check callers (tls.ts).
 */
export type ComponentRole = 'manager' | 'scheduler' | 'seed-peer' | 'peer';
export const COMPONENT_ROLES: readonly ComponentRole[] = ['manager', 'scheduler', 'seed-peer', 'peer'];

export interface ComponentIdentity {
  readonly role: ComponentRole;
  /** Scheduler cluster id (scheduler, seed peer, peer); undefined for the manager. */
  readonly clusterId?: number;
}

const URI_PREFIX = 'spiffe://dragonfly/';

/** The URI SAN a component's certificate carries. */
export function identityUri(id: ComponentIdentity): string {
  if (id.role === 'manager') return `${URI_PREFIX}manager`;
  if (!id.clusterId || !Number.isInteger(id.clusterId) || id.clusterId < 1) throw new Error(`a ${id.role} identity needs a cluster id of 1 or more`);
  return `${URI_PREFIX}cluster/${id.clusterId}/${id.role}`;
}

export function parseIdentityUri(uri: string): ComponentIdentity | undefined {
  if (uri === `${URI_PREFIX}manager`) return { role: 'manager' };
  const m = /^spiffe:\/\/dragonfly\/cluster\/([1-9]\d{0,9})\/(scheduler|seed-peer|peer)$/.exec(uri);
  return m ? { role: m[2] as ComponentRole, clusterId: Number(m[1]) } : undefined;
}

