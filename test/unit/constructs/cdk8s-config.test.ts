/**
 * cdk8s.yaml: `npx cdk8s synth` runs what `npm run synth` runs (CI checks that dist/ stays
 * unchanged after it), and its imports pin the Kubernetes API the constructs are written against.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const REPO = join(__dirname, '..', '..', '..');
const config = parse(readFileSync(join(REPO, 'cdk8s.yaml'), 'utf8')) as { language: string; app: string; output: string; imports?: string[] };
const manifest = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string>; devDependencies: Record<string, string> };

test('cdk8s synth builds and runs main.ts like npm run synth, into dist/', () => {
  expect(manifest.devDependencies['cdk8s-cli']).toBeDefined();
  expect(config.language).toBe('typescript');
  expect(config.output).toBe('dist');
  // npm run synth = build, then the program; cdk8s synth must not depend on a build done before it.
  expect(manifest.scripts.synth).toBe('npm run build && node build/main.js');
  expect(config.app).toBe('npm run build --silent && node build/main.js');
});

test('the k8s import is the Kubernetes version whose API cdk8s-plus-28 (the constructs\' k8s module) is generated from', () => {
  const plus = JSON.parse(readFileSync(require.resolve('cdk8s-plus-28/package.json'), 'utf8')) as { description: string };
  const kubernetes = /for Kubernetes (\d+\.\d+\.\d+)/.exec(plus.description)?.[1];
  expect(kubernetes).toBe('1.28.0');
  expect(config.imports).toContain(`k8s@${kubernetes}`);
  for (const file of ['_util.ts', 'central-manager.ts', 'dfdaemon.ts', 'remote-cluster.ts']) {
    expect(readFileSync(join(REPO, 'constructs', file), 'utf8')).toContain("import { k8s } from 'cdk8s-plus-28';");
  }
});
