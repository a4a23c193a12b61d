/**
 * A Prometheus of our own for a test: Debian's `prometheus` binary with its own config, port
 * and data dir under the lab's work dir (never the system service), scraping the given targets
 * every second; `query` answers PromQL instant queries.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ManagedProcess, waitFor } from './exec';

export interface ScrapeTarget {
  readonly address: string;
  readonly labels: Record<string, string>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export class TestPrometheus {
  private constructor(
    private readonly process: ManagedProcess,
    readonly port: number,
  ) {}

  static async start(dir: string, targets: readonly ScrapeTarget[]): Promise<TestPrometheus> {
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
    const config = {
      global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
      scrape_configs: [{ job_name: 'dragonfly', static_configs: targets.map((t) => ({ targets: [t.address], labels: t.labels })) }],
    };
    const configFile = path.join(dir, 'prometheus.yml');
    // JSON is YAML.
    fs.writeFileSync(configFile, JSON.stringify(config, null, 2));
    const port = await freePort();
    const proc = ManagedProcess.start('prometheus', 'prometheus', [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ], { logFile: path.join(dir, 'prometheus.log') });
    const p = new TestPrometheus(proc, port);
    await waitFor(`prometheus ready (log: ${proc.log().slice(-500)})`, async () => ((await fetch(`http://127.0.0.1:${port}/-/ready`).then((r) => r.ok).catch(() => false)) ? true : undefined), 60_000, 300);
    return p;
  }

  /** An instant query; the vector's samples as {labels, value}. */
  async query(promql: string): Promise<Array<{ labels: Record<string, string>; value: number }>> {
    const res = await fetch(`http://127.0.0.1:${this.port}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as { status: string; error?: string; data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
    if (body.status !== 'success') throw new Error(`PromQL ${promql} failed: ${body.error}`);
    return (body.data?.result ?? []).map((r) => ({ labels: r.metric, value: Number(r.value[1]) }));
  }

  /** Targets Prometheus currently scrapes successfully. */
  async upTargets(): Promise<number> {
    return (await this.query('sum(up)'))[0]?.value ?? 0;
  }

  async stop(): Promise<void> {
    await this.process.stop();
  }
}
