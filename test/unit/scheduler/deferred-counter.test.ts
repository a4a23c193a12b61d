/**
 * The scheduler's counters fed at scrape time: a scrape shows exactly what direct increments
 * would have shown, sums carry over from scrape to scrape, and the pending sums are emptied
 * by each scrape (bounded by what changed in between).
 */
import { Counter, Registry } from 'prom-client';
import { DeferredCounter } from '../../../services/scheduler/deferred-counter';
import { SchedulerUpstreamMetrics } from '../../../services/scheduler/upstream-metrics';
import { Peer } from '../../../services/scheduler/resource/model';
import { makeHost, makeTask } from './helpers';

/** Upstream metrics on a fresh registry, with two peers of one task on one normal host. */
function upstreamWithTwoPeers() {
  const r = new Registry();
  const m = new SchedulerUpstreamMetrics(r, { enableHost: false });
  const host = makeHost();
  const task = makeTask();
  return { r, m, task, host, a: new Peer('a', task, host, 0), b: new Peer('b', task, host, 0) };
}

const series = async (r: Registry, name: string): Promise<{ labels: Record<string, string | number>; value: number }[]> =>
  ((await r.getMetricsAsJSON()).find((m) => m.name === name)?.values ?? []).map((v) => ({ labels: v.labels as Record<string, string | number>, value: v.value }));

describe('DeferredCounter', () => {
  it('shows at each scrape the same series and sums as direct increments', async () => {
    const deferred = new Registry();
    const direct = new Registry();
    const d = new DeferredCounter({ name: 'x_total', help: 'x', labelNames: ['a', 'b'], registers: [deferred] });
    const c = new Counter({ name: 'x_total', help: 'x', labelNames: ['a', 'b'], registers: [direct] });
    const steps: [string, string, number][] = [['1', 'p', 1], ['1', 'p', 2], ['2', 'q', 5], ['1', 'q', 1]];
    for (const [round, cut] of [[0, 2], [2, 4]]) {
      for (const [a, b, n] of steps.slice(round, cut)) {
        d.add(`${a}|${b}`, { a, b }, n);
        c.inc({ a, b }, n);
      }
      expect(await series(deferred, 'x_total')).toEqual(await series(direct, 'x_total'));
    }
    expect(await series(deferred, 'x_total')).toEqual(expect.arrayContaining([{ labels: { a: '1', b: 'p' }, value: 3 }, { labels: { a: '2', b: 'q' }, value: 5 }]));
    // Scraped: nothing pending any more; a series touched again starts from its label set anew.
    expect(d.at('1|p')).toBeUndefined();
    (d.at('1|p') ?? d.open('1|p', { a: '1', b: 'p' })).value += 4;
    expect((await series(deferred, 'x_total')).find((s) => s.labels.a === '1' && s.labels.b === 'p')?.value).toBe(7);
  });

  it('feeds the upstream peer and piece counters with the peer\'s labels', async () => {
    const { r, m, a, b } = upstreamWithTwoPeers();
    m.registered(a, { tag: 'tag|1', application: 'app', priority: 'LEVEL3' });
    m.registered(b, { tag: 'tag', application: '1|app', priority: 'LEVEL3' });
    m.peerEvent(a, 'Download', 'ReceivedNormal');
    m.piece(a, 'REMOTE_PEER', 10, b);
    m.piece(a, 'REMOTE_PEER', 5, b);
    m.piece(b, 'BACK_TO_SOURCE', 7, undefined);
    expect(await series(r, 'dragonfly_scheduler_register_peer_total')).toEqual(
      expect.arrayContaining([
        { labels: { priority: 'LEVEL3', task_type: 'STANDARD', task_tag: 'tag|1', task_app: 'app', host_type: 'normal' }, value: 1 },
        { labels: { priority: 'LEVEL3', task_type: 'STANDARD', task_tag: 'tag', task_app: '1|app', host_type: 'normal' }, value: 1 },
      ]),
    );
    expect(await series(r, 'dragonfly_scheduler_download_peer_started_total')).toEqual([{ labels: { priority: 'LEVEL3', task_type: 'STANDARD', task_tag: 'tag|1', task_app: 'app', host_type: 'normal' }, value: 1 }]);
    expect(await series(r, 'dragonfly_scheduler_traffic')).toEqual(
      expect.arrayContaining([
        { labels: { type: 'REMOTE_PEER', task_type: 'STANDARD', task_tag: 'tag|1', task_app: 'app', host_type: 'normal' }, value: 15 },
        { labels: { type: 'BACK_TO_SOURCE', task_type: 'STANDARD', task_tag: 'tag', task_app: '1|app', host_type: 'normal' }, value: 7 },
      ]),
    );
    expect(await series(r, 'dragonfly_scheduler_download_piece_finished_total')).toHaveLength(2);
  });

  it('peers with the same labels share one label set; past the bounded cache every peer still counts under its own labels', async () => {
    const { r, m, task, host, a, b } = upstreamWithTwoPeers();
    m.registered(a, { tag: 'same', application: 'x', priority: 'LEVEL1' });
    m.registered(b, { tag: 'same', application: 'x', priority: 'LEVEL1' });
    expect(a.metricSeries).toBeDefined();
    expect(b.metricSeries).toBe(a.metricSeries);
    const peers = Array.from({ length: 1500 }, (_, i) => new Peer(`p${i}`, task, host, 0));
    for (const [i, p] of peers.entries()) m.registered(p, { tag: `tag-${i}`, application: '', priority: 'LEVEL0' });
    const registered = await series(r, 'dragonfly_scheduler_register_peer_total');
    expect(registered).toHaveLength(1501);
    expect(registered.find((v) => v.labels.task_tag === 'same')?.value).toBe(2);
    expect(registered.find((v) => v.labels.task_tag === 'tag-1499')).toEqual({ labels: { priority: 'LEVEL0', task_type: 'STANDARD', task_tag: 'tag-1499', task_app: '', host_type: 'normal' }, value: 1 });
  });
});
