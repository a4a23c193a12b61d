/**
 * Issue 18: what tracing adds to the piece path. Per piece a download records one event on its
 * parent's batch span (and sends a `traceparent` header); the figure is that bookkeeping per
 * piece with tracing on (exporting to an unreachable collector, so spans are also dropped and
 * counted), beside the same-run cost of checksumming one 4 MiB piece (sha256), which every
 * piece pays anyway.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { Tracing } from '../../services/common/telemetry';
import { DownloadTrace } from '../../services/dfdaemon/tracing';
import { runStandalone, type BenchFigure } from './types';

const PIECE = 4 * 1024 * 1024;

function perOpNs(iterations: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.min(1000, iterations); i++) fn(i);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn(i);
  return Number(process.hrtime.bigint() - t0) / iterations;
}

export async function run(): Promise<BenchFigure[]> {
  const tracing = Tracing.start({ serviceName: 'bench', jaeger: 'http://127.0.0.1:1/v1/traces', registry: new Registry(), env: {} });
  const pieces = 20_000;
  // One download per 256 pieces (a 1 GiB task of 4 MiB pieces), 4 parents each.
  let trace = new DownloadTrace(tracing, 'task', 'peer', { url: 'https://registry.example/v2/x/blobs/sha256:00', requestHeaders: {} });
  const traced = perOpNs(pieces, (i) => {
    if (i % 256 === 0) {
      trace.end({ contentLength: 256 * PIECE });
      trace = new DownloadTrace(tracing, `task-${i}`, 'peer', { url: 'https://registry.example/v2/x/blobs/sha256:00', requestHeaders: {} });
    }
    const parent = `parent-${i % 4}`;
    trace.pieceHeaders(parent, '10.0.0.1');
    trace.pieceFromParent(parent, '10.0.0.1', i % 256, PIECE, 1_000_000);
  });
  trace.end({});
  const data = randomBytes(PIECE);
  const checksum = perOpNs(50, () => createHash('sha256').update(data).digest());
  await tracing.shutdown();
  return [
    {
      area: 'tracing',
      name: 'trace bookkeeping per piece (batch-span event + traceparent)',
      value: traced / 1000,
      unit: 'µs',
      baselineName: 'sha256 of one 4 MiB piece',
      baselineValue: checksum / 1000,
      baselineUnit: 'µs',
      goal: '< 1% of the per-piece checksum',
      met: traced < checksum / 100,
      note: `${pieces} pieces, 256 per task, 4 parents, exporter pointed at a closed port`,
    },
  ];
}

if (require.main === module) runStandalone(run);
