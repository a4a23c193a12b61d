import { Registry } from 'prom-client';
import { createDfdaemonMetrics, recordHeldBytes } from '../../../services/dfdaemon/metrics';

describe('dfdaemon metrics: local_cache bytes of hits answered from memory', () => {
  it('are tallied and taken into download_bytes_total when read: exact at every read, never twice', async () => {
    const reg = new Registry();
    const m = createDfdaemonMetrics(reg);
    recordHeldBytes(m, 100);
    recordHeldBytes(m, 50);
    m.downloadBytes.inc({ source: 'local_cache' }, 7);
    m.downloadBytes.inc({ source: 'remote_peer' }, 3);
    const read = async (): Promise<Record<string, number>> => Object.fromEntries((await m.downloadBytes.get()).values.map((v) => [String(v.labels.source), v.value]));
    expect(await read()).toEqual({ local_cache: 157, remote_peer: 3 });
    expect(await read()).toEqual({ local_cache: 157, remote_peer: 3 });
    recordHeldBytes(m, 1);
    expect(await reg.metrics()).toMatch(/dragonfly_dfdaemon_download_bytes_total\{source="local_cache"\} 158\n/);
    expect(await read()).toEqual({ local_cache: 158, remote_peer: 3 });
  });
});
