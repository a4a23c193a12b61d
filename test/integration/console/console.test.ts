/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call -- response bodies are arbitrary JSON checked field by field */
/**
 * Seed 000's console steps in real headless Chromium against a manager on MariaDB: sign in as
 * root/dragonfly, see cluster-1, ADD CLUSTER cluster-2 with IDC cluster-2, open its detail and
 * copy the install snippet, edit and delete a cluster, create and revoke a token, change a
 * role and a password; a guest sees no write buttons; no console errors anywhere.
 * Screenshots go to docs/console/ with UPDATE_CONSOLE_SCREENSHOTS=1 (npm run console:screenshots),
 * otherwise to a temporary folder.
 */
import type { ClientWritableStream } from '@grpc/grpc-js';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ElementHandle, Page } from 'puppeteer-core';
import type { ManagerHandle } from '../../../services/manager/server';
import type { ManagerClient } from '../../../services/proto';
import { call, http, managerClient, managerConfig, restUrl, signin, startTestManager, waitFor } from '../../unit/manager/helpers';
import { dropDatabase, dropRedisPrefix, MYSQL, REDIS_ADDR, uniqueName } from '../manager/db';
import { openBrowser, type BrowserSession } from './browser';

const dbname = uniqueName('console');
const keyPrefix = `${dbname}:`;
const SCREENSHOTS = process.env.UPDATE_CONSOLE_SCREENSHOTS === '1' ? resolve(__dirname, '../../../docs/console') : mkdtempSync(join(tmpdir(), 'console-shots-'));

jest.setTimeout(180_000);

const VIEWPORT = { width: 1280, height: 1600 };

/** A scheduler's or seed peer's keep-alive stream, one message every 300 ms, as the programs send it. */
function keepAliveLoop(client: ManagerClient, msg: { sourceType: string; hostname: string; ip: string; clusterId: number }): () => void {
  const stream = client.KeepAlive(() => undefined) as unknown as ClientWritableStream<unknown>;
  const send = () => stream.write(msg);
  send();
  const timer = setInterval(send, 300);
  return () => {
    clearInterval(timer);
    stream.end();
  };
}

describe('console in headless Chromium (MariaDB)', () => {
  let m: ManagerHandle;
  let cleanup: () => void;
  let client: ManagerClient;
  let session: BrowserSession;
  let page: Page;
  let root: string;
  let origin: string;
  let jobsApi: boolean;
  /** Failed API responses a step provokes on purpose (Chromium logs each as a console error). */
  const expectedFailures: Array<{ status: number; path: string }> = [];
  const keepAlives: Array<() => void> = [];

  beforeAll(async () => {
    const c = managerConfig({ database: { type: 'mysql', mysql: { ...MYSQL, dbname }, redis: { addrs: [REDIS_ADDR], keyPrefix } } });
    cleanup = c.cleanup;
    m = await startTestManager(c.config);
    origin = restUrl(m);
    root = await signin(m);
    client = managerClient(m.grpcPort);
    // Cluster A's scheduler and seed peer, as they register at start-up, so cluster-1's detail has hosts.
    await call(client, 'UpdateScheduler', { sourceType: 'SCHEDULER_SOURCE', hostname: 'scheduler-a', ip: '10.1.0.10', port: 8002, schedulerClusterId: 1, features: ['schedule', 'preheat'] });
    await call(client, 'UpdateSeedPeer', { sourceType: 'SEED_PEER_SOURCE', hostname: 'seed-peer-a', ip: '10.1.0.11', port: 65000, downloadPort: 65002, type: 'super', seedPeerClusterId: 1 });
    keepAlives.push(keepAliveLoop(client, { sourceType: 'SCHEDULER_SOURCE', hostname: 'scheduler-a', ip: '10.1.0.10', clusterId: 1 }));
    keepAlives.push(keepAliveLoop(client, { sourceType: 'SEED_PEER_SOURCE', hostname: 'seed-peer-a', ip: '10.1.0.11', clusterId: 1 }));
    await waitFor(async () => (await m.store.listSchedulers({ state: 'active' })).total === 1 && (await m.store.listSeedPeers({ state: 'active' })).total === 1);
    // Built in parallel (its own issue): 404 without it, 503 when it needs Redis it cannot reach.
    const jobsStatus = (await http(m, 'GET', '/api/v1/jobs', root)).status;
    jobsApi = jobsStatus === 200;
    if (!jobsApi) expectedFailures.push({ status: jobsStatus, path: '/api/v1/jobs' });
    if ((await http(m, 'GET', '/api/v1/peers', root)).status === 404) expectedFailures.push({ status: 404, path: '/api/v1/peers' });
    mkdirSync(SCREENSHOTS, { recursive: true });
    session = await openBrowser(origin, VIEWPORT);
    page = session.page;
    await page.bringToFront();
  });

  afterAll(async () => {
    for (const stop of keepAlives) stop();
    await session?.close();
    client?.close();
    await m?.stop();
    cleanup?.();
    await dropDatabase(dbname);
    await dropRedisPrefix(keyPrefix);
    if (process.env.UPDATE_CONSOLE_SCREENSHOTS !== '1') rmSync(SCREENSHOTS, { recursive: true, force: true });
  });

  // ---- helpers -------------------------------------------------------------------------

  const shot = async (name: string) => {
    // The view is tall enough for every page: a full-page capture would resize it, and Chromium restores
    // the size lazily, shifting the page under the next click.
    await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), clip: { x: 0, y: 0, width: VIEWPORT.width, height: Math.min(VIEWPORT.height, await page.evaluate(() => Math.ceil(Math.max(...[...document.querySelectorAll('#app, dialog[open]')].map((e) => e.getBoundingClientRect().bottom))) + 24)) } });
  };
  /** The control whose accessible name is `name` (its <label>), of `role`. */
  const control = (name: string, role = 'textbox') => page.waitForSelector(`::-p-aria([name="${name}"][role="${role}"])`) as Promise<ElementHandle<HTMLInputElement>>;
  const button = (name: string) => control(name, 'button');
  const link = (name: string) => control(name, 'link');
  const fill = async (name: string, value: string, role = 'textbox') => {
    const el = await control(name, role);
    await el.focus();
    await page.keyboard.down('Control');
    await page.keyboard.press('a');
    await page.keyboard.up('Control');
    await page.keyboard.press('Backspace');
    if (value !== '') await page.keyboard.type(value);
    return el;
  };
  const heading = async (text: string) => {
    try {
      await page.waitForFunction((t) => document.querySelector('h1')?.textContent === t, {}, text);
    } catch (err) {
      const seen = await page.evaluate(() => `${location.hash} h1=${JSON.stringify(document.querySelector('h1')?.textContent)} ${document.querySelector('main')?.textContent?.slice(0, 300) ?? ''}`);
      throw new Error(`heading "${text}" did not appear (${seen}): ${(err as Error).message}`, { cause: err });
    }
  };
  const errorNextTo = (el: ElementHandle<HTMLInputElement>) =>
    el.evaluate((input) => {
      const ids = (input.getAttribute('aria-describedby') ?? '').split(' ').filter(Boolean);
      return ids.map((id) => document.getElementById(id)).find((n) => n?.classList.contains('field-error'))?.textContent ?? '';
    });
  /** Clicks Copy and waits for its status line; the clipboard's content afterwards. */
  const copySnippet = async (what: string) => {
    await (await button('Copy')).click();
    await page.waitForFunction(() => /^Cop/.test(document.querySelector('.panel [role="status"]')?.textContent ?? ''));
    expect(await page.$eval('.panel [role="status"]', (e) => e.textContent)).toBe(`Copied the ${what} to the clipboard.`);
    return page.evaluate(() => navigator.clipboard.readText());
  };
  const writeControls = () => page.$$eval('a[href="#/clusters/new"], a[href$="/edit"], button.danger, button[type="submit"]', (els) => els.map((e) => e.textContent ?? ''));

  // ---- the walk ------------------------------------------------------------------------

  test('every field of every form has a <label>', async () => {
    await page.goto(`${origin}/`, { waitUntil: 'load' });
    await control('Name');
    const unlabelled = await page.$$eval('input, select, textarea', (els) => els.filter((e) => !(e as HTMLInputElement).labels?.length).map((e) => e.outerHTML));
    expect(unlabelled).toEqual([]);
  });

  test('sign in as root/dragonfly with the keyboard: Name, Tab, Password, Enter', async () => {
    await fill('Name', 'root');
    await page.keyboard.press('Tab');
    await page.keyboard.type('wrong-password');
    await page.keyboard.press('Enter');
    await page.waitForSelector('::-p-text(incorrect name or password)');
    expectedFailures.push({ status: 401, path: '/api/v1/users/signin' });
    await shot('sign-in');
    await fill('Password', 'dragonfly');
    await page.keyboard.press('Enter');
    await heading('Clusters');
  });

  test('the clusters list shows cluster-1, the default cluster', async () => {
    const row = await page.waitForSelector('tr[data-cluster="cluster-1"]');
    expect(await row!.evaluate((r) => [...r.querySelectorAll('td')].map((td) => td.textContent))).toEqual(expect.arrayContaining(['1', 'cluster-1', 'Yes']));
    await shot('clusters');
  });

  test('cluster-1 detail: its scheduler and seed peer with state and address', async () => {
    await (await link('cluster-1')).click();
    await heading('Cluster cluster-1');
    await page.waitForSelector('::-p-text(10.1.0.10:8002)');
    await page.waitForSelector('::-p-text(10.1.0.11:65000)');
    expect(await page.$eval('[data-count="schedulers"]', (e) => e.textContent)).toBe('1');
    expect(await page.$eval('[data-count="seed-peers"]', (e) => e.textContent)).toBe('1');
    const states = await page.$$eval('.badge', (els) => els.map((e) => e.textContent));
    expect(states).toEqual(['active', 'active']);
    await shot('cluster-detail');
  });

  test('ADD CLUSTER cluster-2 with IDC cluster-2; an API error shows next to its field', async () => {
    await (await link('Clusters')).click();
    await (await link('Add cluster')).click();
    await heading('Add cluster');
    await fill('Name', 'cluster-2');
    await fill('Description', 'cluster B of seed 000');
    await fill('IDC', 'cluster-2');
    const cidrs = await fill('CIDRs', '10.2.0.0/99');
    await (await button('Save')).click();
    await page.waitForSelector('.field-error');
    expectedFailures.push({ status: 422, path: '/api/v1/clusters' });
    expect(await errorNextTo(cidrs)).toMatch(/CIDR/);
    expect(await cidrs.evaluate((e) => e.getAttribute('aria-invalid'))).toBe('true');
    await shot('add-cluster-error');
    await fill('CIDRs', '10.2.0.0/16');
    expect(await (await control('Set as default', 'checkbox')).evaluate((e) => e.checked)).toBe(false);
    await fill('Candidate parent limit', '5', 'spinbutton');
    await shot('add-cluster');
    await (await button('Save')).click();
    await heading('Cluster cluster-2');
    const listed = await http(m, 'GET', '/api/v1/clusters?name=cluster-2', root);
    expect(listed.body).toHaveLength(1);
    expect(listed.body[0]).toMatchObject({ id: 2, scopes: { idc: 'cluster-2', cidrs: ['10.2.0.0/16'] }, is_default: false, scheduler_cluster_config: { candidate_parent_limit: 5 } });
  });

  test('cluster-2 detail: copy the RemoteCluster code and the Helm values; both name cluster 2 and its IDC scope', async () => {
    expect(page.url()).toMatch(/#\/clusters\/2$/);
    await page.waitForSelector('::-p-text(Install this cluster)');
    await fill('Manager host', 'dragonfly-manager.cluster-a.svc.cluster.local');
    const construct = await copySnippet('RemoteCluster code');
    expect(construct).toContain("import { RemoteCluster } from 'dragonfly-ts';");
    expect(construct).toContain('clusterId: 2,');
    expect(construct).toContain('clusterName: "cluster-2",');
    expect(construct).toContain('scopes: { idc: "cluster-2", cidrs: ["10.2.0.0/16"] },');
    expect(construct).toContain('manager: { host: "dragonfly-manager.cluster-a.svc.cluster.local", grpcPort: 65003, restPort: 8080 },');
    await shot('install-construct');
    await (await button('Helm values')).click();
    await page.waitForFunction(() => document.querySelector('pre.snippet')?.textContent?.includes('schedulerClusterID'));
    const values = await copySnippet('Helm values');
    expect(values).toContain('schedulerClusterID: 2');
    expect(values).toContain('clusterID: 2');
    expect(values).toContain('idc: cluster-2');
    expect(values).toContain('addr: dragonfly-manager.cluster-a.svc.cluster.local:65003');
    await shot('install-helm-values');
  });

  test('edit cluster-2: the form holds the record, Save patches it', async () => {
    await (await link('Clusters')).click();
    await (await link('Edit cluster-2')).click();
    await heading('Edit cluster cluster-2');
    expect(await (await control('IDC')).evaluate((e) => e.value)).toBe('cluster-2');
    await fill('Location', 'asia|cn|bj');
    await fill('Peer load limit', '300', 'spinbutton');
    await shot('edit-cluster');
    await (await button('Save')).click();
    await heading('Cluster cluster-2');
    const r = await http(m, 'GET', '/api/v1/clusters/2', root);
    expect(r.body).toMatchObject({ scopes: { idc: 'cluster-2', location: 'asia|cn|bj', cidrs: ['10.2.0.0/16'] }, peer_cluster_config: { load_limit: 300 }, bio: 'cluster B of seed 000' });
  });

  test('delete a cluster: Escape cancels, Delete in the confirmation removes it', async () => {
    expect((await http(m, 'POST', '/api/v1/clusters', root, { name: 'cluster-3', scopes: { idc: 'cluster-3' } })).status).toBe(201);
    await (await link('Clusters')).click();
    await (await button('Delete cluster-3')).click();
    await page.waitForSelector('dialog[open]');
    await page.keyboard.press('Escape');
    await page.waitForSelector('dialog[open]', { hidden: true });
    expect((await http(m, 'GET', '/api/v1/clusters/3', root)).status).toBe(200);
    await (await button('Delete cluster-3')).click();
    await page.waitForSelector('dialog[open]');
    await shot('delete-cluster');
    await (await page.waitForSelector('dialog[open] button.danger'))!.click();
    await page.waitForSelector('tr[data-cluster="cluster-3"]', { hidden: true });
    expect((await http(m, 'GET', '/api/v1/clusters/3', root)).status).toBe(404);
    expect(await page.$$eval('tr[data-cluster]', (rows) => rows.map((r) => r.getAttribute('data-cluster')))).toEqual(['cluster-1', 'cluster-2']);
  });

  test('personal access tokens: create with a scope, shown once and working, then revoked', async () => {
    await (await link('Personal access tokens')).click();
    await heading('Personal access tokens');
    await fill('Name', 'ci-apply');
    await (await control('cluster', 'checkbox')).click();
    await (await button('Save')).click();
    const tokenInput = await control('New token');
    const token = await tokenInput.evaluate((e) => e.value);
    expect(token.length).toBeGreaterThan(20);
    const withToken = await fetch(`${origin}/oapi/v1/clusters`, { headers: { authorization: `Bearer ${token}` } });
    expect(withToken.status).toBe(200);
    expect(await page.$eval('tr[data-token="ci-apply"]', (r) => r.textContent)).toContain('cluster');
    await shot('tokens');
    // Shown once: a reload lists the token without its secret.
    await page.reload({ waitUntil: 'load' });
    await page.waitForSelector('tr[data-token="ci-apply"]');
    expect(await page.$('#new-token')).toBeNull();
    expect(await page.content()).not.toContain(token);
    await (await button('Revoke ci-apply')).click();
    await (await page.waitForSelector('dialog[open] button.danger'))!.click();
    await page.waitForSelector('tr[data-token="ci-apply"]', { hidden: true });
    expect((await fetch(`${origin}/oapi/v1/clusters`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
  });

  test('jobs: the preheat and task pages work on the jobs API, or say it is missing', async () => {
    await (await link('Jobs')).click();
    await heading('Jobs');
    if (jobsApi) {
      await page.waitForSelector('::-p-text(Create preheat)');
      await control('URL');
      await (await link('Tasks')).click();
      await page.waitForSelector('::-p-text(Search or delete a task)');
      await control('Task ID');
    } else {
      const banner = await page.waitForSelector('[data-jobs-api="missing"]');
      expect(await banner!.evaluate((e) => e.textContent)).toMatch(/no jobs API|jobs API is unavailable/);
      expect(await page.$('form')).toBeNull();
    }
    await (await link('Preheats')).click();
    await shot('jobs');
  });

  test('users: root lists users and changes a role', async () => {
    expect((await http(m, 'POST', '/api/v1/users/signup', root, { name: 'guest1', password: 'guest-pass-1' })).status).toBe(201);
    await (await link('Users')).click();
    await heading('Users');
    const guestId = (await http(m, 'GET', '/api/v1/users', root)).body.find((u: { name: string }) => u.name === 'guest1').id as number;
    const select = await control('Role of guest1', 'combobox');
    await select.select('root');
    await waitFor(async () => JSON.stringify((await http(m, 'GET', `/api/v1/users/${guestId}/roles`, root)).body) === '["root"]');
    await page.waitForFunction(() => document.querySelector<HTMLSelectElement>('tr[data-user="guest1"] select')?.value === 'root');
    await (await control('Role of guest1', 'combobox')).select('guest');
    await waitFor(async () => JSON.stringify((await http(m, 'GET', `/api/v1/users/${guestId}/roles`, root)).body) === '["guest"]');
    await page.waitForFunction(() => document.querySelector<HTMLSelectElement>('tr[data-user="guest1"] select')?.value === 'guest');
    expect(await page.$('tr[data-user="root"] select')).toBeNull(); // root cannot demote itself here
    await shot('users');
  });

  test('sign out, then a guest sees every page without a write button and changes its own password', async () => {
    await (await button('Sign out')).click();
    await control('Password');
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await fill('Name', 'guest1');
    await fill('Password', 'guest-pass-1');
    await page.keyboard.press('Enter');
    await heading('Clusters');
    await page.waitForSelector('tr[data-cluster="cluster-2"]');
    expect(await writeControls()).toEqual([]);
    expect(await page.$('a[href="#/users"]')).toBeNull();
    await shot('guest-clusters');
    await (await link('cluster-2')).click();
    await heading('Cluster cluster-2');
    await page.waitForSelector('::-p-text(Install this cluster)');
    expect(await writeControls()).toEqual([]);
    for (const [name, title] of [
      ['Personal access tokens', 'Personal access tokens'],
      ['Jobs', 'Jobs'],
    ]) {
      await (await link(name)).click();
      await heading(title);
      await page.waitForNetworkIdle({ idleTime: 200 });
      expect(await writeControls()).toEqual([]);
    }
    await page.goto(`${origin}/#/clusters/new`, { waitUntil: 'load' });
    await heading('Permission denied');

    await (await link('Change password')).click();
    await heading('Change password');
    await fill('Old password', 'not-my-password');
    await fill('New password', 'guest-pass-2');
    const again = await fill('Confirm new password', 'guest-pass-2');
    await (await button('Save')).click();
    const old = await control('Old password');
    await page.waitForFunction((el) => (el.getAttribute('aria-invalid') ?? '') === 'true', {}, old);
    expect(await errorNextTo(old)).toBe('incorrect password');
    expectedFailures.push({ status: 422, path: '/api/v1/users/2/reset_password' });
    await fill('Old password', 'guest-pass-1');
    expect(await errorNextTo(again)).toBe('');
    await (await button('Save')).click();
    await page.waitForSelector('::-p-text(Password changed.)');
    await shot('change-password');
    await signin(m, 'guest1', 'guest-pass-2');
    await expect(signin(m, 'guest1', 'guest-pass-1')).rejects.toThrow(/401/);
  });

  test('no JavaScript errors; the only console errors are the failed requests the steps asked for', () => {
    const unexpected = session.problems.filter((p) => {
      const status = /status of (\d{3})/.exec(p.text)?.[1];
      const path = p.url ? new URL(p.url).pathname : '';
      return !(status && expectedFailures.some((f) => f.status === Number(status) && f.path === path));
    });
    expect(unexpected).toEqual([]);
  });
});
