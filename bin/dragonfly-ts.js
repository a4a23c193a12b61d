#!/usr/bin/env node
// `npx dragonfly-ts` from a checkout of this repository. After `npm ci` nothing is compiled yet,
// so the TypeScript sources run directly: each repository .ts file is transpiled in memory by
// the typescript devDependency when it is first required. Without typescript (production
// install), the compiled CLI from `npm run build` runs instead.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
let ts;
try {
  ts = require('typescript');
} catch {
  ts = undefined;
}

let cli;
if (ts) {
  const nodeModules = path.join(root, 'node_modules') + path.sep;
  const compile = (module, filename) => {
    const source = fs.readFileSync(filename, 'utf8');
    const { outputText } = ts.transpileModule(source, {
      fileName: filename,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, resolveJsonModule: true, sourceMap: false },
    });
    module._compile(outputText, filename);
  };
  require.extensions['.ts'] = (module, filename) => {
    if (filename.startsWith(nodeModules)) throw new Error(`dragonfly-ts: will not transpile ${filename}`);
    compile(module, filename);
  };
  cli = require(path.join(root, 'constructs', 'cli.ts'));
} else {
  const built = path.join(root, 'build', 'constructs', 'cli.js');
  if (!fs.existsSync(built)) {
    process.stderr.write('dragonfly-ts: neither the typescript package nor a build is here; run `npm ci` (with dev dependencies) or `npm run build`\n');
    process.exit(1);
  }
  cli = require(built);
}
process.exitCode = cli.main(process.argv.slice(2));
