import { cidrScore, hostnameScore, idcScore, locationScore, searchSchedulerClusters, type SearchCluster } from '../../../services/manager/searcher';

const scopes = (s: Partial<SearchCluster['scopes']> = {}) => ({ idc: '', location: '', cidrs: [], hostnames: [], ...s });
const cluster = (id: number, s: Partial<SearchCluster['scopes']> = {}, isDefault = false): SearchCluster => ({ id, scopes: scopes(s), isDefault });
const order = (clusters: SearchCluster[], peer: Parameters<typeof searchSchedulerClusters>[1]) => searchSchedulerClusters(clusters, peer).map((r) => r.cluster.id);

describe('searcher scope scores', () => {
  test('CIDR: IPv4, IPv6, IPv4-mapped, no match, bad input', () => {
    expect(cidrScore('10.1.2.3', ['192.168.0.0/16', '10.0.0.0/8'])).toBe(1);
    expect(cidrScore('11.1.2.3', ['10.0.0.0/8'])).toBe(0);
    expect(cidrScore('fd00::5', ['fd00::/64'])).toBe(1);
    expect(cidrScore('fd01::5', ['fd00::/64'])).toBe(0);
    expect(cidrScore('::ffff:10.0.0.1', ['10.0.0.0/8'])).toBe(1);
    expect(cidrScore('not-an-ip', ['10.0.0.0/8'])).toBe(0);
    expect(cidrScore('10.0.0.1', ['garbage'])).toBe(0);
    expect(cidrScore('10.0.0.1', [])).toBe(0);
  });
  test('hostname: unanchored regex, invalid patterns never match', () => {
    expect(hostnameScore('node-b-3.example', ['^node-b-\\d+'])).toBe(1);
    expect(hostnameScore('node-a-3', ['node-b'])).toBe(0);
    expect(hostnameScore('xx-gpu-yy', ['gpu'])).toBe(1);
    expect(hostnameScore('node', ['(['])).toBe(0);
  });
  test('IDC: case-insensitive exact or one of |-separated', () => {
    expect(idcScore('Cluster-2', 'cluster-2')).toBe(1);
    expect(idcScore('idc-b', 'idc-a|idc-b')).toBe(1);
    expect(idcScore('idc', 'idc-a|idc-b')).toBe(0);
    expect(idcScore('', 'idc-a')).toBe(0);
    expect(idcScore('idc-a', '')).toBe(0);
  });
  test('location: exact 1, else equal leading elements / 5, capped at 5', () => {
    expect(locationScore('china|bj|hd', 'china|bj|hd')).toBe(1);
    expect(locationScore('china|bj|hd', 'china|bj|cy')).toBeCloseTo(2 / 5);
    expect(locationScore('us|ca', 'china|bj')).toBe(0);
    expect(locationScore('a|b|c|d|e|f|g', 'a|b|c|d|e|f|h')).toBe(1); // 5 of 5 compared
  });
});

describe('searchSchedulerClusters', () => {
  test('seed 000: idc cluster-2 goes to cluster B, everyone else to the default cluster A', () => {
    const clusters = [cluster(1, {}, true), cluster(2, { idc: 'cluster-2' })];
    expect(order(clusters, { hostname: 'node-b', ip: '10.2.0.5', idc: 'cluster-2' })).toEqual([2, 1]);
    expect(order(clusters, { hostname: 'node-a', ip: '10.1.0.5', idc: 'cluster-1' })).toEqual([1, 2]);
    expect(order(clusters, { hostname: 'node-a', ip: '10.1.0.5' })).toEqual([1, 2]);
  });
  test('precedence: CIDR = hostname > IDC > location > default', () => {
    const peer = { hostname: 'gpu-7', ip: '10.9.0.1', idc: 'idc-x', location: 'asia|cn|bj' };
    const byCidr = cluster(1, { cidrs: ['10.9.0.0/16'] });
    const byIdc = cluster(2, { idc: 'idc-x' });
    const byLocation = cluster(3, { location: 'asia|cn|bj' });
    const byDefault = cluster(4, {}, true);
    const byHostname = cluster(5, { hostnames: ['^gpu-'] });
    expect(order([byDefault, byLocation, byIdc, byCidr, byHostname], peer)).toEqual([1, 5, 2, 3, 4]);
    // IDC + location beat CIDR alone (0.39 > 0.3).
    expect(order([byCidr, cluster(6, { idc: 'idc-x', location: 'asia|cn|bj' })], peer)).toEqual([6, 1]);
  });
  test('scores are the documented weighted sum', () => {
    const [r] = searchSchedulerClusters([cluster(1, { cidrs: ['10.0.0.0/8'], hostnames: ['a'], idc: 'x', location: 'l1|l2' }, true)], { hostname: 'a', ip: '10.0.0.1', idc: 'x', location: 'l1|l3' });
    expect(r.score).toBeCloseTo(0.3 + 0.3 + 0.25 + 0.14 * (1 / 5) + 0.01);
  });
  test('equal scores keep ascending cluster id order', () => {
    const clusters = [cluster(9), cluster(3), cluster(5)];
    expect(order(clusters, { hostname: 'h', ip: '1.2.3.4' })).toEqual([3, 5, 9]);
    expect(order([cluster(8, { idc: 'a' }), cluster(2, { idc: 'a' })], { hostname: 'h', ip: '1.2.3.4', idc: 'a' })).toEqual([2, 8]);
  });
  test('no eligible cluster: empty answer', () => {
    expect(searchSchedulerClusters([], { hostname: 'h', ip: '1.2.3.4' })).toEqual([]);
  });
});
