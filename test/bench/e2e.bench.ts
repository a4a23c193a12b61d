/**
 * The e2e figures (issue 8): seed 000's walkthrough per-pull times beside a direct registry
 * pull, and the fan-out run (8 nodes, slow origin) beside 8 direct pulls. They come from the
 * e2e tests themselves (netns hosts, real containerd and docker-registry), which record them
 * in .e2e-work/figures.json; this bench runs those two tests and reads what they wrote.
 *
 * BENCH_E2E=reuse takes the figures of the last e2e run on this checkout instead (the tests
 * need root, network namespaces and the Debian packages of scripts/e2e/install-deps.sh, and
 * take about 10 minutes); the note on each figure then says when it was measured.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FIGURES_FILE, readE2eFigures, type FiguresFile } from '../e2e/walkthrough-figures';
import { printFigures, type BenchFigure } from './types';

const ROOT = path.resolve(__dirname, '../../..');
/** The tests write under the repository root (this file runs from build/test/bench). */
const FIGURES = path.join(ROOT, path.relative(path.resolve(__dirname, '../..'), FIGURES_FILE));
const TESTS = ['test/e2e/walkthrough.test.ts', 'test/e2e/fanout.test.ts'];

function lastRunAt(): string {
  if (!fs.existsSync(FIGURES)) return 'never';
  return (JSON.parse(fs.readFileSync(FIGURES, 'utf8')) as FiguresFile).updated;
}

export async function run(): Promise<BenchFigure[]> {
  await Promise.resolve();
  if (process.env.BENCH_E2E !== 'reuse') {
    const before = lastRunAt();
    const jest = path.join(ROOT, 'node_modules/jest/bin/jest.js');
    const res = spawnSync(process.execPath, [jest, ...TESTS, '--selectProjects', 'e2e', '--runInBand'], { cwd: ROOT, stdio: 'inherit', timeout: 30 * 60_000 });
    if (res.status !== 0) {
      // A failed check still records the figures measured before it; say so rather than hide them.
      if (lastRunAt() === before) throw new Error(`the e2e tests failed (exit ${res.status ?? res.signal}) and recorded no figures`);
      console.warn(`the e2e tests failed (exit ${res.status ?? res.signal}); reporting the figures they recorded`);
    }
  }
  const updated = lastRunAt();
  const figures = readE2eFigures(FIGURES);
  if (figures.length === 0) throw new Error('no e2e figures recorded yet: run without BENCH_E2E=reuse (needs root) or `npm run test:e2e`');
  const when = `measured ${updated.slice(0, 16).replace('T', ' ')} UTC`;
  return figures.map((f) => ({ ...f, note: f.note ? `${f.note}; ${when}` : when }));
}

if (require.main === module) {
  void run().then(printFigures, (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
