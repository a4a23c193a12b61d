/** The committed dist/ is exactly what `npm run synth` produces from main.ts. */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'cdk8s';
import { buildSeedTopology } from '../../../main';

const DIST = join(__dirname, '..', '..', '..', 'dist');

test('dist/ equals a fresh synthesis of main.ts byte for byte (run `npm run synth` and commit dist/ if this fails)', () => {
  const outdir = mkdtempSync(join(tmpdir(), 'dragonfly-synth-'));
  try {
    const app = new App({ outdir });
    buildSeedTopology(app);
    app.synth();
    const fresh = readdirSync(outdir).sort();
    expect(fresh).toEqual(['cluster-a.k8s.yaml', 'cluster-b.k8s.yaml']);
    expect(readdirSync(DIST).sort()).toEqual(fresh);
    for (const file of fresh) {
      const committed = readFileSync(join(DIST, file));
      const synthesized = readFileSync(join(outdir, file));
      expect({ file, same: committed.equals(synthesized) }).toEqual({ file, same: true });
    }
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
});
