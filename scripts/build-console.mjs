// Bundles the manager console (services/manager/console) into build/console: index.html and
// assets/console.{js,css}. Run by `npm run build`; the manager serves the folder at `/`.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'services/manager/console');
const out = join(root, 'build/console');

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });
await build({
  entryPoints: { console: join(src, 'main.tsx') },
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'iife',
  target: ['chrome110', 'firefox110', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: join(out, 'assets'),
  tsconfig: join(src, 'tsconfig.json'),
  logLevel: 'warning',
});
copyFileSync(join(src, 'console.css'), join(out, 'assets/console.css'));
copyFileSync(join(src, 'index.html'), join(out, 'index.html'));
