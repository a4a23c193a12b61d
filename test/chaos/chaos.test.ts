/**
 * Issue 12's chaos suite: the operator's bad day, on netns hosts with every program a separate
 * process. Each fault of the issue's table, and kill -9 of each program at a seeded-random
 * moment of a pull, plus restarts of the manager's own MariaDB and Redis: every pull must either
 * complete with the right bytes or fail with a clear error, and not one byte that leaves a proxy
 * or dfget may differ from the content (compared byte by byte, not only by digest). Files are
 * CHAOS_FILE_MIB (default 24) MiB instead of the issue's 512 MiB, to keep the run near 5 minutes.
 *
 * CHAOS_SEED replays a run (the seed is printed at the start and in the closing table).
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { ChaosLab, Ledger, PEER_NAMES, PORTS, SMALL_DISK_MIB, seededRandom, sleep, type ChaosFile, type PullResult } from './chaos-lab';

jest.setTimeout(240_000);

const SEED = process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : Math.floor(Math.random() * 2 ** 31);
const MIB = 1024 * 1024;
const FILE_BYTES = Number(process.env.CHAOS_FILE_MIB ?? 24) * MIB;
const random = seededRandom(SEED);
/** A moment inside a transfer: 100 ms to 1.6 s after it started. */
const somewhenMs = () => Math.round(100 + random() * 1500);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];

describe('chaos: every pull completes or fails cleanly, 0 corrupt bytes (issue 12)', () => {
  const ledger = new Ledger();
  let cl: ChaosLab;
  let fileNo = 0;
  const newFile = (label: string, bytes = FILE_BYTES): ChaosFile => cl.addFile(`${++fileNo}-${label}`, bytes, random);
  const mustComplete = (r: PullResult) => expect(`${r.via} on ${r.host}: ${r.outcome} (${r.detail})`).toMatch(/: completed /);
  const neverCorrupt = (r: PullResult) => {
    expect(r.corruptBytes).toBe(0);
    expect(`${r.via} on ${r.host}: ${r.outcome} (${r.detail})`).not.toMatch(/failed-unclearly/);
  };

  beforeAll(async () => {
    process.stdout.write(`chaos: seed ${SEED} (CHAOS_SEED=${SEED} replays this run), files of ${FILE_BYTES / MIB} MiB\n`);
    cl = await ChaosLab.start(ledger);
    // Slow enough links that a kill lands inside a transfer, fast enough for a short run.
    await cl.originHost.shape({ rateMbit: 160 });
    await cl.hosts.seed.shape({ rateMbit: 400 });
  }, 300_000);

  afterEach(async () => {
    await cl?.restartAll();
  });

  afterAll(async () => {
    process.stdout.write(`\nchaos results\n${ledger.table(SEED)}\n`);
    const bad = ledger.pulls.filter((p) => p.outcome !== 'completed');
    if (bad.length > 0) process.stdout.write(`not completed:\n${bad.map((p) => `  ${p.via} ${p.host} ${p.file}: ${p.outcome}, ${p.corruptBytes} corrupt bytes: ${p.detail}`).join('\n')}\n`);
    await cl?.teardown();
  });

  it('walkthrough pull: the seed goes to the origin, the peers share', async () => {
    const f = newFile('walkthrough');
    mustComplete(await cl.dfget('peer-1', f));
    const [a, b] = await Promise.all([cl.proxyGet('peer-2', f), cl.dfget('peer-3', f)]);
    mustComplete(a);
    mustComplete(b);
  });

  it('scheduler killed mid-download (parent alive): finished from the seed', async () => {
    const f = newFile('scheduler-killed');
    const pull = cl.proxyGet('peer-2', f);
    await sleep(somewhenMs());
    await cl.kill9('scheduler');
    mustComplete(await pull);
  });

  it('seed peer killed mid-transfer: the missing pieces come from the origin', async () => {
    const f = newFile('seed-killed');
    const pull = cl.dfget('peer-1', f);
    await sleep(somewhenMs());
    await cl.kill9('seed');
    mustComplete(await pull);
  });

  it('scheduler killed, then the only parent killed: back to source keeping the finished pieces', async () => {
    const f = newFile('scheduler-then-parent');
    const pull = cl.proxyGet('peer-3', f);
    await sleep(somewhenMs());
    await cl.kill9('scheduler');
    await sleep(Math.round(random() * 500));
    await cl.kill9('seed');
    mustComplete(await pull);
  });

  it('scheduler restarted: the next pulls find it at once', async () => {
    await cl.kill9('scheduler');
    await cl.restart('scheduler');
    const f = newFile('after-scheduler-restart');
    const [a, b] = await Promise.all([cl.dfget('peer-1', f), cl.proxyGet('peer-3', f)]);
    mustComplete(a);
    mustComplete(b);
  });

  it('manager down, a peer started while it is down: pulls still complete', async () => {
    await cl.kill9('manager');
    await cl.kill9('peer-2');
    await cl.restart('peer-2');
    const f = newFile('manager-down');
    mustComplete(await cl.dfget('peer-2', f));
    mustComplete(await cl.proxyGet('peer-1', f));
  });

  it('Redis killed under the manager: pulls complete', async () => {
    await cl.kill9('redis');
    const f = newFile('redis-down');
    const [a, b] = await Promise.all([cl.dfget('peer-3', f), cl.proxyGet('peer-1', f)]);
    mustComplete(a);
    mustComplete(b);
  });

  it('MariaDB restarted under the manager: pulls complete before and after', async () => {
    const f = newFile('mariadb-restart');
    const pull = cl.dfget('peer-1', f);
    await sleep(somewhenMs());
    await cl.kill9('mariadb');
    mustComplete(await pull);
    await cl.restart('mariadb');
    mustComplete(await cl.proxyGet('peer-2', f));
  });

  it('one byte flipped in the parents’ stored content: another peer still gets the right bytes', async () => {
    const f = newFile('flipped-parent');
    mustComplete(await cl.dfget('peer-1', f));
    cl.flipStoredByte('peer-1', f, Math.floor(random() * f.content.length));
    cl.flipStoredByte('seed', f, Math.floor(random() * f.content.length));
    mustComplete(await cl.dfget('peer-2', f));
  });

  it('the same flipped byte read locally (dfget cache hit, proxy, after a restart): never served (item 1)', async () => {
    const f = newFile('flipped-local');
    mustComplete(await cl.dfget('peer-3', f));
    mustComplete(await cl.proxyGet('peer-2', f));
    mustComplete(await cl.proxyGet('peer-1', f));
    // Every case runs (and lands in the table) before any is judged.
    const reads: PullResult[] = [];
    cl.flipStoredByte('peer-3', f, Math.floor(random() * f.content.length));
    reads.push(await cl.dfget('peer-3', f));
    cl.flipStoredByte('peer-2', f, Math.floor(random() * f.content.length));
    reads.push(await cl.proxyGet('peer-2', f));
    // A restart re-checks finished tasks.
    cl.flipStoredByte('peer-1', f, Math.floor(random() * f.content.length));
    await cl.kill9('peer-1');
    await cl.restart('peer-1');
    reads.push(await cl.proxyGet('peer-1', f));
    for (const r of reads) neverCorrupt(r);
  });

  it('dfget output never shares storage with the cache; --hard-link is the opt-in', async () => {
    const f = newFile('output-copy');
    const first = await cl.dfget('peer-1', f, { keepOutput: true });
    mustComplete(first);
    const stored = cl.storedContentPath('peer-1', f);
    expect(stored).toBeDefined();
    expect(fs.statSync(first.output).ino).not.toBe(fs.statSync(stored!).ino);
    // The user edits their file: the cache, and the next reader, must not change.
    const fd = fs.openSync(first.output, 'r+');
    fs.writeSync(fd, Buffer.from([f.content[7] ^ 0xff]), 0, 1, 7);
    fs.closeSync(fd);
    ledger.fault('edited a dfget output file');
    mustComplete(await cl.dfget('peer-1', f));
    const linked = await cl.dfget('peer-1', f, { keepOutput: true, extraArgs: ['--hard-link'] });
    mustComplete(linked);
    expect(fs.statSync(linked.output).ino).toBe(fs.statSync(stored!).ino);
    fs.rmSync(first.output, { force: true });
    fs.rmSync(linked.output, { force: true });
  });

  it(`disk full (${SMALL_DISK_MIB} MiB tmpfs): dfget and the proxy get a clear error before any byte, naming the space`, async () => {
    const f = newFile('disk-full', (SMALL_DISK_MIB + 16) * MIB);
    ledger.fault(`a ${SMALL_DISK_MIB + 16} MiB file on a ${SMALL_DISK_MIB} MiB disk`);
    const d = await cl.dfget('peer-4', f);
    expect(d.outcome).toBe('failed-cleanly');
    expect(d.stderr).toMatch(/disk space|ENOSPC/);
    const p = await cl.proxyGet('peer-4', f);
    expect(p.outcome).toBe('failed-cleanly');
    expect(p.status).toBe(507);
    expect(p.detail).toMatch(/disk space/);
  });

  it('REST bodies with a bad or unsupported Content-Encoding, and an oversized bio, are refused with 4xx JSON', async () => {
    const base = `http://${cl.hosts.manager.ip}:${PORTS.managerRest}/api/v1`;
    const signin = (headers: Record<string, string>, body: Buffer | string) => fetch(`${base}/users/signin`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const cases: Array<[string, Promise<Response>, number]> = [
      ['unsupported Content-Encoding', signin({ 'content-encoding': 'compress' }, '{}'), 415],
      ['gzip header over garbage', signin({ 'content-encoding': 'gzip' }, Buffer.from('not gzip at all')), 400],
      ['bad JSON', signin({}, '{"name":'), 400],
    ];
    const login = await (await signin({ 'content-encoding': 'gzip' }, zlib.gzipSync(JSON.stringify({ name: 'root', password: 'dragonfly' })))).json();
    cases.push([
      '1 MB bio',
      fetch(`${base}/personal-access-tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${(login as { token: string }).token}` },
        body: JSON.stringify({ name: 'chaos', bio: 'x'.repeat(1_000_000 - 100), scopes: ['job'] }),
      }),
      422,
    ]);
    for (const [what, pending, status] of cases) {
      ledger.fault(`REST: ${what}`);
      const r = await pending;
      const body = (await r.json()) as { message?: string };
      expect(`${what}: ${r.status}`).toBe(`${what}: ${status}`);
      expect(typeof body.message).toBe('string');
    }
  });

  const PROGRAMS = ['manager', 'scheduler', 'seed', 'own-peer', 'other-peer', 'mariadb', 'redis', 'origin'] as const;
  it.each(PROGRAMS.map((p) => [p]))('kill -9 of %s at a random moment of a pull', async (program) => {
    const f = newFile(`kill-${program}`);
    const puller = pick(PEER_NAMES.filter((n) => n !== 'peer-4'));
    const other = pick(PEER_NAMES.filter((n) => n !== 'peer-4' && n !== puller));
    if (program === 'other-peer') mustComplete(await cl.dfget(other, f));
    const via = random() < 0.5 ? 'dfget' : 'proxy';
    const pull = via === 'dfget' ? cl.dfget(puller, f) : cl.proxyGet(puller, f);
    await sleep(somewhenMs());
    const victim = program === 'own-peer' ? puller : program === 'other-peer' ? other : program;
    await cl.kill9(victim);
    const r = await pull;
    neverCorrupt(r);
    // Only the loss of the puller's own daemon or of the origin may fail a pull.
    if (program !== 'own-peer' && program !== 'origin') mustComplete(r);
    await cl.restartAll();
    // And afterwards everything works again.
    mustComplete(await cl.proxyGet(pick(PEER_NAMES.filter((n) => n !== 'peer-4')), f));
  });

  it('closing tally: 0 corrupt bytes, every pull completed or failed cleanly', () => {
    expect(ledger.pulls.length).toBeGreaterThan(0);
    expect(ledger.corruptBytes).toBe(0);
    expect(ledger.failedUnclearly).toBe(0);
  });
});
