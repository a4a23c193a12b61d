/**
 * `npm run bench`: runs every test/bench/*.bench module in turn (one at a time: they
 * measure throughput on a 2-core machine), prints the figures, and writes
 * docs/benchmarks.md with each figure beside its same-run baseline and the published
 * numbers of the anchors, plus docs/benchmarks.svg (figure / baseline ratios).
 *
 * `npm run bench -- manager scheduler` runs only those areas; with BENCH_WRITE=1 their sections
 * of docs/benchmarks.md are replaced by the new figures.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BenchFigure, type BenchModule, printFigures } from './types';

const ROOT = join(__dirname, '../../..');

interface AreaResult {
  readonly area: string;
  readonly figures: BenchFigure[];
  readonly error?: string;
  readonly seconds: number;
}

/** Published figures of the projects we compare against (../shared/reference/peers-and-benchmarks.md). */
const ANCHORS: ReadonlyArray<readonly [string, string, string]> = [
  ['Dragonfly (seed 004, Go dfdaemon, chart 1.1.65)', '1 GB image, local cache hit', '4.5 s (first pull 7 s)'],
  ['Dragonfly (Rust client, Vortex TCP, 16C32G LAN)', '1 GB peer-to-peer download', '1.562 s (gRPC: 1.651 s)'],
  ['Dragonfly quick start (kind, alpine:3.19)', 'back-to-source / remote-peer / local hit', '37.9 s / 6.9 s / 5.5 s'],
  ['Spegel v0.3.0 (10 × D8ds_v5, ghcr.io)', '1 GB-1 layer, cold concurrent create, p50', '24.11 s vs 25.82 s without Spegel'],
  ['Spegel v0.3.0', '1 GB-4 layers, cold concurrent create, p50', '12.24 s vs 12.45 s without Spegel'],
  ['Spegel v0.3.0', '1 GB-1 layer, rolling update, p50', '4.67 s vs 6.07 s without Spegel'],
  ['Kraken (README)', '3 GB image to 2600 hosts, 300 MB/s cap', 'p50 10 s, p99 18 s'],
  ['Dragonfly images (build/images/*/Dockerfile)', 'manager, scheduler, dfdaemon runtime image', 'alpine:3.20 + one static Go binary + curl + grpc_health_probe; no published size found'],
];

function fmt(v: number | undefined): string {
  if (v === undefined || Number.isNaN(v)) return '–';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function ratioOf(f: BenchFigure): number | undefined {
  if (f.baselineValue === undefined || f.baselineValue === 0 || (f.baselineUnit && f.baselineUnit !== f.unit)) return undefined;
  return f.value / f.baselineValue;
}

function markdown(results: readonly AreaResult[], startedAt: Date): string {
  const lines = [
    '# Benchmarks',
    '',
    `Written by \`npm run bench\` on ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC (2 cores, Node ${process.versions.node}).`,
    'Every figure sits beside a baseline measured in the same run on the same machine; only those ratios carry over to other machines.',
    'A figure whose name says "floor" is work that any implementation of the figure beside it must do, measured without the implementation: a goal past it cannot be met on that machine; a "reference" is such work that the machine\'s state can make cheaper (docs/data-path-cost.md, "What this machine allows").',
    '',
    '![figure / baseline](benchmarks.svg)',
    '',
  ];
  for (const r of results) lines.push(...section(r));
  lines.push('## Published numbers of the anchors', '', '| project | what | published |', '|---|---|---|');
  for (const [who, what, value] of ANCHORS) lines.push(`| ${who} | ${what} | ${value} |`);
  lines.push('', 'Sources: ../shared/reference/peers-and-benchmarks.md and seed 004 (the user documents this project was created from).', '');
  return lines.join('\n');
}

/** One area's section of docs/benchmarks.md, from its "## area" heading to the blank line after its table. */
function section(r: AreaResult, measuredAt?: Date): string[] {
  const when = measuredAt ? ` Measured ${measuredAt.toISOString().slice(0, 16).replace('T', ' ')} UTC by \`npm run bench -- ${r.area}\`.` : '';
  const lines = [`## ${r.area}`, '', `Run time ${r.seconds.toFixed(0)} s.${when}`, ''];
  if (r.error) lines.push(`**Did not complete:** ${r.error}`, '');
  if (r.figures.length === 0) return lines;
  lines.push('| figure | value | same-run baseline | ratio | goal | met |', '|---|---|---|---|---|---|');
  for (const f of r.figures) {
    const base = f.baselineName ? `${f.baselineName}: ${fmt(f.baselineValue)} ${f.baselineUnit ?? f.unit}` : '–';
    const ratio = ratioOf(f);
    lines.push(`| ${f.name}${f.note ? ` <br><sub>${f.note}</sub>` : ''} | ${fmt(f.value)} ${f.unit} | ${base} | ${ratio === undefined ? '–' : `${ratio.toFixed(2)}×`} | ${f.goal ?? '–'} | ${f.met === undefined ? '–' : f.met ? 'yes' : '**no**'} |`);
  }
  lines.push('');
  return lines;
}

/**
 * docs/benchmarks.md with the sections of the areas just run replaced (a run of some areas
 * keeps the other areas' figures from their last run); areas not in the file are left out.
 */
function replaceSections(doc: string, results: readonly AreaResult[], measuredAt: Date): string {
  let out = doc;
  for (const r of results) {
    const start = out.indexOf(`\n## ${r.area}\n`);
    if (start < 0) continue;
    const next = out.indexOf('\n## ', start + 1);
    out = out.slice(0, start + 1) + section(r, measuredAt).join('\n') + (next < 0 ? '' : out.slice(next));
  }
  return out;
}

/** A horizontal bar chart of figure/baseline ratios (the figures that have a same-unit baseline). */
function svgChart(results: readonly AreaResult[]): string {
  const rows = results.flatMap((r) => r.figures.map((f) => ({ label: `${r.area}: ${f.name}`, ratio: ratioOf(f) }))).filter((x): x is { label: string; ratio: number } => x.ratio !== undefined);
  const width = 900;
  const rowH = 22;
  const left = 430;
  const max = Math.max(1.5, ...rows.map((r) => r.ratio));
  const scale = (width - left - 60) / max;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const bars = rows.map((r, i) => {
    const y = 30 + i * rowH;
    const w = Math.max(1, r.ratio * scale);
    return `<text x="${left - 8}" y="${y + 15}" text-anchor="end" font-size="12">${esc(r.label.slice(0, 70))}</text>` +
      `<rect x="${left}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="#3b82f6"/>` +
      `<text x="${left + w + 4}" y="${y + 15}" font-size="12">${r.ratio.toFixed(2)}×</text>`;
  });
  const height = 50 + rows.length * rowH;
  const one = left + scale;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    '<rect width="100%" height="100%" fill="white"/>',
    `<text x="10" y="18" font-size="14" font-weight="bold">figure / same-run baseline (1.0× = as fast as the baseline for rates, as long for times)</text>`,
    ...bars,
    `<line x1="${one}" y1="26" x2="${one}" y2="${height - 10}" stroke="#dc2626" stroke-dasharray="4 3"/>`,
    '</svg>',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const files = readdirSync(__dirname).filter((f) => f.endsWith('.bench.js')).sort();
  const startedAt = new Date();
  const results: AreaResult[] = [];
  for (const file of files) {
    const area = file.replace(/\.bench\.js$/, '');
    if (only.length && !only.includes(area)) continue;
    console.log(`\n### ${area}`);
    const t0 = process.hrtime.bigint();
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const mod = require(join(__dirname, file)) as BenchModule;
      const figures = await mod.run();
      printFigures(figures);
      results.push({ area, figures, seconds: Number(process.hrtime.bigint() - t0) / 1e9 });
    } catch (err) {
      console.error(`${area} failed: ${(err as Error).stack ?? String(err)}`);
      results.push({ area, figures: [], error: (err as Error).message, seconds: Number(process.hrtime.bigint() - t0) / 1e9 });
    }
  }
  if (only.length === 0) {
    writeFileSync(join(ROOT, 'docs/benchmarks.md'), markdown(results, startedAt));
    writeFileSync(join(ROOT, 'docs/benchmarks.svg'), svgChart(results));
    console.log('\nwrote docs/benchmarks.md and docs/benchmarks.svg');
  } else if (process.env.BENCH_WRITE === '1') {
    const file = join(ROOT, 'docs/benchmarks.md');
    writeFileSync(file, replaceSections(readFileSync(file, 'utf8'), results.filter((r) => !r.error), startedAt));
    console.log(`\nreplaced the ${only.join(', ')} section(s) of docs/benchmarks.md (docs/benchmarks.svg is redrawn by a full run)`);
  }
  process.exitCode = results.some((r) => r.error) ? 1 : 0;
}

void main();
