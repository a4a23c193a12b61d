#!/usr/bin/env node
/**
 * `npm run pack:constructs`: builds the @dragonfly-ts/constructs package (constructs/ plus the
 * config schemas from services/common/config, which the services import from the same files)
 * and writes its tarball to build/packages/constructs.tgz.
 *
 * Before packing it checks what a consumer would otherwise find out the hard way: every
 * relative require resolves inside the package, every other require is a Node built-in or a
 * declared (peer) dependency, and every module ships its .d.ts.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const packagesDir = join(root, 'build', 'packages');
const stage = join(packagesDir, 'constructs');
const tarball = join(packagesDir, 'constructs.tgz');

function fail(message) {
  console.error(`pack:constructs: ${message}`);
  process.exit(1);
}

const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const manifest = JSON.parse(readFileSync(join(root, 'constructs', 'package.json'), 'utf8'));
// The default image tag is the repository's version; a package of another version would
// point its users at images that were never built for it.
if (manifest.version !== rootManifest.version) {
  fail(`constructs/package.json "version" (${manifest.version}) differs from package.json "version" (${rootManifest.version}); keep them equal`);
}

rmSync(stage, { recursive: true, force: true });
rmSync(tarball, { force: true });
mkdirSync(stage, { recursive: true });

const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
try {
  execFileSync(process.execPath, [tsc, '-p', join(root, 'constructs', 'tsconfig.package.json')], { cwd: root, stdio: 'inherit' });
} catch {
  fail('tsc failed (see above)');
}

const lib = join(stage, 'lib');
// images.ts reads the version from ../package.json; tsc copies the whole root manifest there.
// Ship only the field that is read, so the package holds no second manifest naming the services.
writeFileSync(join(lib, 'package.json'), `${JSON.stringify({ private: true, version: rootManifest.version }, null, 2)}\n`);

const { scripts: _scripts, devDependencies: _dev, ...published } = manifest;
// The CLI ships as the package's bin. It is named only in the published manifest: in this
// repository the workspace has no lib/ (npx dragonfly-ts runs bin/dragonfly-ts.js of the root).
published.bin = { 'dragonfly-ts': 'lib/constructs/cli.js' };
if (!existsSync(join(lib, 'constructs', 'cli.js'))) fail('lib/constructs/cli.js (the dragonfly-ts bin) was not built');
writeFileSync(join(stage, 'package.json'), `${JSON.stringify(published, null, 2)}\n`);
copyFileSync(join(root, 'constructs', 'README.md'), join(stage, 'README.md'));
if (existsSync(join(root, 'LICENSE'))) copyFileSync(join(root, 'LICENSE'), join(stage, 'LICENSE'));

function* filesUnder(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* filesUnder(path);
    else yield path;
  }
}

const allowed = new Set([...Object.keys(published.dependencies ?? {}), ...Object.keys(published.peerDependencies ?? {})]);
const builtins = new Set(builtinModules);
const problems = [];
for (const file of filesUnder(lib)) {
  if (!file.endsWith('.js')) continue;
  const shown = relative(stage, file);
  if (!existsSync(file.replace(/\.js$/, '.d.ts'))) problems.push(`${shown} has no .d.ts`);
  const source = readFileSync(file, 'utf8');
  for (const [, spec] of source.matchAll(/\brequire\("([^"]+)"\)/g)) {
    if (spec.startsWith('.')) {
      const target = resolve(dirname(file), spec);
      const found = [target, `${target}.js`, `${target}.json`, join(target, 'index.js')].find((p) => existsSync(p));
      if (!found || relative(stage, found).startsWith('..')) problems.push(`${shown} requires "${spec}", which is not in the package`);
      continue;
    }
    const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
    if (!builtins.has(name) && !builtins.has(spec.replace(/^node:/, '')) && !allowed.has(name)) {
      problems.push(`${shown} requires "${spec}", which is neither a Node built-in nor in constructs/package.json dependencies/peerDependencies`);
    }
  }
}
if (problems.length > 0) fail(`the package would not work for its users:\n  ${problems.join('\n  ')}`);

const out = execFileSync('npm', ['pack', stage, '--pack-destination', packagesDir, '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
const [{ filename }] = JSON.parse(out);
renameSync(join(packagesDir, filename), tarball);
console.log(relative(root, tarball));
