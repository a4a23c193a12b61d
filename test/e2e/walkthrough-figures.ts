/**
 * Figures measured by the e2e walkthrough and fan-out tests, kept as BenchFigure[] in
 * .e2e-work/figures.json so the bench runner can include the last e2e run's numbers
 * (`readE2eFigures()`); each test merges its own figures in by name.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BenchFigure } from '../bench/types';

/** The repository root, whether this file runs from its source (jest) or from build/ (the bench runner). */
const twoUp = path.resolve(__dirname, '../..');
export const REPO_ROOT = fs.existsSync(path.join(twoUp, 'tsconfig.json')) ? twoUp : path.dirname(twoUp);
export const FIGURES_FILE = path.join(REPO_ROOT, '.e2e-work', 'figures.json');

export interface FiguresFile {
  readonly updated: string;
  readonly figures: BenchFigure[];
}

/** Figures of the last e2e run(s); empty if none has run on this checkout. */
export function readE2eFigures(file = FIGURES_FILE): BenchFigure[] {
  if (!fs.existsSync(file)) return [];
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as FiguresFile;
  return parsed.figures;
}

/**
 * Replaces the figures whose name starts with `replacePrefix` (a test's whole previous set, so a
 * run with other sizes leaves no stale rows) or has the same name; keeps the others; atomic.
 */
export function recordE2eFigures(figures: readonly BenchFigure[], replacePrefix: string, file = FIGURES_FILE): void {
  const names = new Set(figures.map((f) => f.name));
  const kept = readE2eFigures(file).filter((f) => !names.has(f.name) && !f.name.startsWith(replacePrefix));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ updated: new Date().toISOString(), figures: [...kept, ...figures] } satisfies FiguresFile, null, 2));
  fs.renameSync(tmp, file);
}
