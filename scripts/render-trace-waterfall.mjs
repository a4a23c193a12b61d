#!/usr/bin/env node
/**
 * Draws one trace (the JSON the observability e2e test writes with DF_TRACE_OUT: spans with
 * traceId, spanId, parentSpanId, name, service, startNs, endNs, attributes) as a waterfall:
 * one row per span, indented under its parent, bars on a shared time axis, coloured by
 * service. Renders the SVG to PNG with Chromium (puppeteer-core).
 *
 *   node scripts/render-trace-waterfall.mjs trace.json docs/images/seed-000-trace.png
 *
 * CHROMIUM (default /usr/bin/chromium) names the browser binary.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import puppeteer from 'puppeteer-core';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: render-trace-waterfall.mjs <trace.json> <out.png|out.svg>');
  process.exit(2);
}
const spans = JSON.parse(readFileSync(input, 'utf8'));
if (!Array.isArray(spans) || spans.length === 0) throw new Error(`${input} holds no spans`);

const byId = new Map(spans.map((s) => [s.spanId, s]));
const children = new Map();
for (const s of spans) {
  const p = byId.has(s.parentSpanId) ? s.parentSpanId : '';
  if (!children.has(p)) children.set(p, []);
  children.get(p).push(s);
}
for (const list of children.values()) list.sort((a, b) => (BigInt(a.startNs) < BigInt(b.startNs) ? -1 : 1));
const rows = [];
const walk = (parent, depth) => {
  for (const s of children.get(parent) ?? []) {
    rows.push({ s, depth });
    walk(s.spanId, depth + 1);
  }
};
walk('', 0);

const t0 = rows.reduce((m, r) => (BigInt(r.s.startNs) < m ? BigInt(r.s.startNs) : m), BigInt(rows[0].s.startNs));
const t1 = rows.reduce((m, r) => (BigInt(r.s.endNs) > m ? BigInt(r.s.endNs) : m), 0n);
const totalMs = Number(t1 - t0) / 1e6;
const COLORS = { 'dragonfly-dfdaemon': '#2f7ed8', 'dragonfly-scheduler': '#e4a11b', 'dragonfly-seed-peer': '#3aa655', 'dragonfly-manager': '#8e44ad' };
const esc = (t) => String(t).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

const LABEL_W = 520;
const BAR_W = 760;
const ROW_H = 24;
const TOP = 56;
const width = LABEL_W + BAR_W + 120;
const height = TOP + rows.length * ROW_H + 40;
const x = (ns) => LABEL_W + (Number(BigInt(ns) - t0) / 1e6 / totalMs) * BAR_W;
const detail = (s) => {
  const a = s.attributes ?? {};
  const bits = [];
  if (a['dragonfly.bytes'] !== undefined) bits.push(`${(Number(a['dragonfly.bytes']) / 2 ** 20).toFixed(1)} MiB`);
  if (a['dragonfly.pieces'] !== undefined) bits.push(`${a['dragonfly.pieces']} pieces`);
  if (a['dragonfly.schedule.decision']) bits.push(`decision ${a['dragonfly.schedule.decision']}`);
  if (a['http.request.method']) bits.push(a['http.request.method']);
  return bits.join(', ');
};
let body = '';
const ticks = 5;
for (let i = 0; i <= ticks; i++) {
  const tx = LABEL_W + (BAR_W * i) / ticks;
  body += `<line x1="${tx}" y1="${TOP - 8}" x2="${tx}" y2="${height - 30}" stroke="#ddd"/><text x="${tx}" y="${TOP - 14}" font-size="11" text-anchor="middle" fill="#555">${((totalMs * i) / ticks).toFixed(0)} ms</text>`;
}
rows.forEach(({ s, depth }, i) => {
  const y = TOP + i * ROW_H;
  const color = COLORS[s.service] ?? '#888';
  const bx = x(s.startNs);
  const bw = Math.max(2, x(s.endNs) - bx);
  const ms = Number(BigInt(s.endNs) - BigInt(s.startNs)) / 1e6;
  if (i % 2 === 0) body += `<rect x="0" y="${y}" width="${width}" height="${ROW_H}" fill="#f7f7f7"/>`;
  const host = s.resource?.['host.name'] ? ` <tspan fill="#888" font-size="10">@${esc(s.resource['host.name'])}</tspan>` : '';
  body += `<text x="${8 + depth * 14}" y="${y + 16}" font-size="12" fill="#222"><tspan fill="${color}" font-weight="bold">${esc(s.service.replace('dragonfly-', ''))}</tspan> ${esc(s.name)}${host}</text>`;
  body += `<rect x="${bx}" y="${y + 5}" width="${bw}" height="${ROW_H - 10}" rx="2" fill="${color}"${s.status?.code === 2 ? ' stroke="#c0392b" stroke-width="2"' : ''}/>`;
  const label = `${ms.toFixed(ms < 10 ? 1 : 0)} ms${detail(s) ? ` · ${detail(s)}` : ''}`;
  const lx = bx + bw + 6 > LABEL_W + BAR_W - 150 ? bx - 6 : bx + bw + 6;
  body += `<text x="${lx}" y="${y + 16}" font-size="11" fill="#444" text-anchor="${lx < bx ? 'end' : 'start'}">${esc(label)}</text>`;
});
const root = rows[0].s;
const title = `${rows.length} spans, ${new Set(rows.map((r) => r.s.service)).size} services, ${totalMs.toFixed(0)} ms — ${String(root.attributes?.['http.url'] ?? root.name)}`;
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, Arial, sans-serif"><rect width="100%" height="100%" fill="#fff"/><text x="8" y="22" font-size="14" font-weight="bold">${esc(title.length > 170 ? `${title.slice(0, 167)}...` : title)}</text>${body}</svg>`;

mkdirSync(dirname(output), { recursive: true });
if (output.endsWith('.svg')) {
  writeFileSync(output, svg);
} else {
  const browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width, height, deviceScaleFactor: 1 });
    await page.setContent(`<html><body style="margin:0">${svg}</body></html>`);
    await page.screenshot({ path: output, clip: { x: 0, y: 0, width, height } });
  } finally {
    await browser.close();
  }
}
console.log(`${output}: ${rows.length} spans, ${totalMs.toFixed(0)} ms`);
