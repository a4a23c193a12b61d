// Generates TypeScript types for services/proto/*.proto with @grpc/proto-loader's
// proto-loader-gen-types. With --check, generates into a temp dir and fails when the
// committed services/proto/gen differs (stale generated code).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const protoDir = join(root, 'services/proto');
const genDir = join(protoDir, 'gen');
const check = process.argv.includes('--check');
const protos = readdirSync(protoDir).filter((f) => f.endsWith('.proto')).sort();
const bin = join(root, 'node_modules/@grpc/proto-loader/build/bin/proto-loader-gen-types.js');

function generate(outDir) {
  rmSync(outDir, { recursive: true, force: true });
  // These options must match PROTO_LOADER_OPTIONS in services/proto/index.ts.
  execFileSync(process.execPath, [bin, '--grpcLib=@grpc/grpc-js', `--outDir=${outDir}`,
    ...protos, '--longs=Number', '--enums=String', '--defaults', '--oneofs', `--includeDirs=${protoDir}`],
  { cwd: protoDir, stdio: ['ignore', 'ignore', 'inherit'] });
  // The generator writes the absolute proto path into each file; keep the output
  // independent of where the repository is checked out.
  for (const file of listFiles(outDir)) {
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.split(`${protoDir}/`).join('services/proto/'));
  }
}

function listFiles(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? listFiles(p) : [p];
  });
}

if (!check) {
  generate(genDir);
  console.log(`generated ${listFiles(genDir).length} files into ${relative(root, genDir)}`);
} else {
  const tmp = mkdtempSync(join(tmpdir(), 'proto-gen-'));
  try {
    generate(tmp);
    const fresh = listFiles(tmp).map((p) => relative(tmp, p)).sort();
    const committed = listFiles(genDir).map((p) => relative(genDir, p)).sort();
    const stale = fresh.filter((f) => !committed.includes(f) || readFileSync(join(tmp, f), 'utf8') !== readFileSync(join(genDir, f), 'utf8'));
    const extra = committed.filter((f) => !fresh.includes(f));
    if (stale.length || extra.length) {
      console.error(`services/proto/gen is stale (changed: ${stale.join(', ') || '-'}; extra: ${extra.join(', ') || '-'}); run npm run proto:gen`);
      process.exit(1);
    }
    console.log(`services/proto/gen is up to date (${fresh.length} files)`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
