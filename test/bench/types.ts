/**
 * Every benchmark in test/bench exports `run(): Promise<BenchFigure[]>`; run-all.ts runs them
 * in turn and writes docs/benchmarks.md. Each figure sits beside a baseline measured in the
 * same run (direct origin, raw disk, loopback) so the ratio holds on a noisy machine.
 */
export interface BenchFigure {
  /** Which issue/area: "manager", "scheduler", "dfdaemon", "proxy", "e2e". */
  readonly area: string;
  /** What was measured, e.g. "ListSchedulers with Redis cache". */
  readonly name: string;
  readonly value: number;
  /** "ops/s", "ms", "MiB/s", "s", "MiB"... */
  readonly unit: string;
  /** The same-run baseline, e.g. "MySQL point select". */
  readonly baselineName?: string;
  readonly baselineValue?: number;
  readonly baselineUnit?: string;
  /** The goal in words, e.g. "≥ 10,000 decisions/s". */
  readonly goal?: string;
  /** Whether the goal was met (undefined: no goal). */
  readonly met?: boolean;
  /** How it was measured (sizes, concurrency), one line. */
  readonly note?: string;
}

export interface BenchModule {
  run(): Promise<BenchFigure[]>;
}

/** Prints figures as a table; benches call this when run on their own. */
export function printFigures(figures: readonly BenchFigure[]): void {
  for (const f of figures) {
    const base = f.baselineName ? ` | baseline ${f.baselineName}: ${fmt(f.baselineValue)} ${f.baselineUnit ?? f.unit}` : '';
    const goal = f.goal ? ` | goal ${f.goal}: ${f.met ? 'met' : 'NOT met'}` : '';
    console.log(`[${f.area}] ${f.name}: ${fmt(f.value)} ${f.unit}${base}${goal}`);
  }
}

/**
 * The entry point of a bench run on its own (`node build/test/bench/x.bench.js`): prints its
 * figures and their notes, then exits (0, or 1 with the error) so lingering servers or sockets
 * of the bench cannot keep the process alive.
 */
export function runStandalone(run: () => Promise<BenchFigure[]>): void {
  run().then(
    (figures) => {
      printFigures(figures);
      for (const f of figures) if (f.note) console.log(`  ${f.name}: ${f.note}`);
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}

function fmt(v: number | undefined): string {
  if (v === undefined) return '-';
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2);
}
