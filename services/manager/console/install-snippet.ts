/**
 * "Install this cluster": the RemoteCluster construct call and the equivalent Helm-style values
 * (the keys seed 000 lists for cluster B) for one cluster record. Pure, so tests call it directly.
 */

export interface SnippetCluster {
  id: number;
  name: string;
  bio: string;
  scopes: { idc: string; location: string; cidrs: string[]; hostnames: string[] };
  scheduler_cluster_id: number;
  seed_peer_cluster_id: number;
  scheduler_cluster_config: { candidate_parent_limit?: number; filter_parent_limit?: number; job_rate_limit?: number };
}

export interface ManagerAddress {
  /** Host name the other cluster reaches the manager by. */
  host: string;
  grpcPort: number;
  restPort: number;
}

const str = (v: string) => JSON.stringify(v);
/** A YAML scalar that stays a string whatever it holds. */
const yamlStr = (v: string) => (/^[A-Za-z0-9._/-][A-Za-z0-9._/:-]*$/.test(v) && !v.endsWith(':') && !/^(true|false|null|yes|no|on|off|~|[-+.\d][\d.eE+-]*)$/i.test(v) ? v : JSON.stringify(v));

export function constructSnippet(c: SnippetCluster, m: ManagerAddress): string {
  const scopes: string[] = [];
  if (c.scopes.idc) scopes.push(`idc: ${str(c.scopes.idc)}`);
  if (c.scopes.location) scopes.push(`location: ${str(c.scopes.location)}`);
  if (c.scopes.cidrs.length > 0) scopes.push(`cidrs: [${c.scopes.cidrs.map(str).join(', ')}]`);
  if (c.scopes.hostnames.length > 0) scopes.push(`hostnames: [${c.scopes.hostnames.map(str).join(', ')}]`);
  const config = c.scheduler_cluster_config;
  const configEntries = (['candidate_parent_limit', 'filter_parent_limit', 'job_rate_limit'] as const).filter((k) => typeof config[k] === 'number').map((k) => `${k}: ${config[k]}`);
  const lines = [
    "import { App, Chart } from 'cdk8s';",
    "import { RemoteCluster } from 'dragonfly-ts';",
    '',
    'const app = new App();',
    `const chart = new Chart(app, ${str(c.name)}, { namespace: ${str(c.name)} });`,
    `new RemoteCluster(chart, 'dragonfly', {`,
    `  manager: { host: ${str(m.host)}, grpcPort: ${m.grpcPort}, restPort: ${m.restPort} },`,
    `  clusterId: ${c.scheduler_cluster_id},`,
    `  clusterName: ${str(c.name)},`,
    ...(c.bio ? [`  bio: ${str(c.bio)},`] : []),
    `  scopes: { ${scopes.join(', ')} },`,
    ...(configEntries.length > 0 ? [`  clusterConfig: { ${configEntries.join(', ')} },`] : []),
    '  // The registration Job sends a personal access token of scope cluster (Personal access tokens, as root); store it first:',
    `  // kubectl -n ${c.name} create secret generic dragonfly-manager-token --from-literal=token=<token>`,
    "  managerTokenSecret: { name: 'dragonfly-manager-token', key: 'token' },",
    '});',
    'app.synth();',
  ];
  if (c.scheduler_cluster_id === 1) {
    lines.splice(2, 0, '// Cluster 1 is the default cluster that comes with the manager (CentralManager + DragonflyCluster); RemoteCluster takes an id of 2 or more.');
  }
  if (scopes.length === 0) lines.splice(2, 0, '// This record has no scopes: RemoteCluster refuses empty scopes, set an IDC, location, CIDR or hostname first.');
  if (c.scheduler_cluster_id !== c.seed_peer_cluster_id) {
    lines.splice(2, 0, `// Seed peer cluster id ${c.seed_peer_cluster_id} differs from scheduler cluster id ${c.scheduler_cluster_id}; RemoteCluster uses one id for both.`);
  }
  return lines.join('\n') + '\n';
}

export function helmValuesSnippet(c: SnippetCluster, m: ManagerAddress): string {
  const grpcAddr = `${m.host}:${m.grpcPort}`;
  const host: string[] = [];
  if (c.scopes.idc) host.push(`      idc: ${yamlStr(c.scopes.idc.split('|')[0])}`);
  if (c.scopes.location) host.push(`      location: ${yamlStr(c.scopes.location)}`);
  return [
    `# ${c.name}: scheduler cluster ID ${c.scheduler_cluster_id}, seed peer cluster ID ${c.seed_peer_cluster_id}`,
    'scheduler:',
    '  config:',
    '    manager:',
    `      addr: ${yamlStr(grpcAddr)}`,
    `      schedulerClusterID: ${c.scheduler_cluster_id}`,
    '',
    'seedPeer:',
    '  config:',
    '    scheduler:',
    '      manager:',
    '        netAddrs:',
    '          - type: tcp',
    `            addr: ${yamlStr(grpcAddr)}`,
    '        seedPeer:',
    '          enable: true',
    `          clusterID: ${c.seed_peer_cluster_id}`,
    '',
    'dfdaemon:',
    '  config:',
    ...(host.length > 0 ? ['    host:', ...host] : []),
    '    scheduler:',
    '      manager:',
    '        netAddrs:',
    '          - type: tcp',
    `            addr: ${yamlStr(grpcAddr)}`,
    '',
    'manager:',
    '  enable: false',
    '',
    'externalManager:',
    '  enable: true',
    `  host: ${yamlStr(m.host)}`,
    `  restPort: ${m.restPort}`,
    `  grpcPort: ${m.grpcPort}`,
    '',
  ].join('\n');
}
