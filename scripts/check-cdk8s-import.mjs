#!/usr/bin/env node
/**
 * `npm run imports:check`: `cdk8s import` (the `imports:` of cdk8s.yaml) reproduces the API
 * modules this repository uses. The constructs take the Kubernetes API from cdk8s-plus-28's
 * `k8s` module, so the generated imports/k8s.ts must declare exactly what
 * cdk8s-plus-28/lib/imports/k8s.d.ts declares; any other generated module must equal its
 * committed copy (imports/<name>.ts or constructs/imports/<name>.ts).
 *
 * `cdk8s import` downloads the Kubernetes schema from raw.githubusercontent.com. With
 * `--from <dir>` the script compares an imports directory generated elsewhere instead.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const work = mkdtempSync(join(tmpdir(), 'dragonfly-cdk8s-import-'));

function run() {
  const fromIndex = process.argv.indexOf('--from');
  let importsDir;
  if (fromIndex > 0) {
    importsDir = resolve(process.argv[fromIndex + 1] ?? '');
  } else {
    importsDir = join(work, 'imports');
    const cli = join(root, 'node_modules', 'cdk8s-cli', 'bin', 'cdk8s');
    execFileSync(process.execPath, [cli, 'import', '--output', importsDir, '--check-upgrade=false'], { cwd: root, stdio: 'inherit' });
  }
  const modules = readdirSync(importsDir).filter((f) => f.endsWith('.ts'));
  if (modules.length === 0) throw new Error(`cdk8s import wrote no modules into ${importsDir}`);
  const problems = [];
  for (const file of modules) {
    const generated = join(importsDir, file);
    if (file === 'k8s.ts') {
      const out = join(work, 'k8s-declarations');
      const tsc = require.resolve('typescript/bin/tsc');
      execFileSync(process.execPath, [tsc, generated, '--declaration', '--emitDeclarationOnly', '--skipLibCheck', '--target', 'ES2020', '--module', 'commonjs', '--outDir', out,
        // cdk8s and constructs from this repository, wherever the generated file lies.
        '--baseUrl', join(root, 'node_modules')], {
        cwd: root,
        stdio: 'inherit',
      });
      const shipped = readFileSync(require.resolve('cdk8s-plus-28/lib/imports/k8s.d.ts'), 'utf8');
      if (readFileSync(join(out, 'k8s.d.ts'), 'utf8') !== shipped) {
        problems.push('imports/k8s.ts declares a different API than cdk8s-plus-28/lib/imports/k8s.d.ts (the k8s module the constructs use); align cdk8s.yaml "imports: k8s@<version>" with cdk8s-plus-28');
      }
      continue;
    }
    const committed = [join(root, 'imports', file), join(root, 'constructs', 'imports', file)].find((p) => existsSync(p));
    if (!committed) problems.push(`${file}: generated, but no committed imports/${file} or constructs/imports/${file}`);
    else if (readFileSync(committed, 'utf8') !== readFileSync(generated, 'utf8')) problems.push(`${file}: differs from the committed ${committed.slice(root.length + 1)}; rerun cdk8s import and commit it`);
  }
  if (problems.length > 0) throw new Error(problems.join('\n'));
  console.log(`cdk8s import reproduces ${modules.join(', ')}`);
}

try {
  run();
} catch (err) {
  console.error(`imports:check: ${err.message}`);
  process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
