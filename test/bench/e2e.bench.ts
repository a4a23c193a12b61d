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
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FIGURES_FILE, readE2eFigures, REPO_ROOT, type FiguresFile } from '../e2e/walkthrough-figures';
import { runStandalone, type BenchFigure } from './types';

/** The image smoke test (cold starts, sizes) runs when scripts/images/build.sh has written the archives. */
const TESTS = ['test/e2e/walkthrough.test.ts', 'test/e2e/fanout.test.ts', ...(fs.existsSync(path.join(REPO_ROOT, 'build/images/dfdaemon.tar')) ? ['test/e2e/images.test.ts'] : [])];

function lastRunAt(): string {
  if (!fs.existsSync(FIGURES_FILE)) return 'never';
  return (JSON.parse(fs.readFileSync(FIGURES_FILE, 'utf8')) as FiguresFile).updated;
}

/** Runs the e2e tests in a child jest; resolves with its exit code (or the signal that ended it). */
function runE2eTests(): Promise<number | string> {
  const jest = path.join(REPO_ROOT, 'node_modules/jest/bin/jest.js');
  const child = spawn(process.execPath, [jest, ...TESTS, '--selectProjects', 'e2e', '--runInBand'], { cwd: REPO_ROOT, stdio: 'inherit', timeout: 30 * 60_000 });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
}

export async function run(): Promise<BenchFigure[]> {
  if (process.env.BENCH_E2E !== 'reuse') {
    const before = lastRunAt();
    const exit = await runE2eTests();
    if (exit !== 0) {
      // A failed check still records the figures measured before it; say so rather than hide them.
      if (lastRunAt() === before) throw new Error(`the e2e tests failed (exit ${exit}) and recorded no figures`);
      console.warn(`the e2e tests failed (exit ${exit}); reporting the figures they recorded`);
    }
  }
  const updated = lastRunAt();
  const figures = readE2eFigures();
  if (figures.length === 0) throw new Error('no e2e figures recorded yet: run without BENCH_E2E=reuse (needs root) or `npm run test:e2e`');
  const when = `measured ${updated.slice(0, 16).replace('T', ' ')} UTC`;
  return figures.map((f) => ({ ...f, note: f.note ? `${f.note}; ${when}` : when }));
}

if (require.main === module) runStandalone(run);
