/** Headless Chromium for console tests: the system browser, a fresh profile, and every console error recorded. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type ConsoleMessage, type Page } from 'puppeteer-core';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];

export interface BrowserSession {
  browser: Browser;
  page: Page;
  /** Console errors and uncaught exceptions, with the URL they came from. */
  problems: Array<{ text: string; url: string }>;
  close(): Promise<void>;
}

export async function openBrowser(origin: string, viewport = { width: 1280, height: 900 }): Promise<BrowserSession> {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: install the Debian package "chromium" (scripts/e2e/install-deps.sh does) or set CHROMIUM_PATH`);
  const profile = mkdtempSync(join(tmpdir(), 'console-chromium-'));
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, userDataDir: profile, timeout: 30_000, protocolTimeout: 30_000, defaultViewport: viewport });
  try {
    await browser.defaultBrowserContext().overridePermissions(origin, ['clipboard-read', 'clipboard-write', 'clipboard-sanitized-write']);
    const page = await browser.newPage();
    page.setDefaultTimeout(20_000);
    const problems: BrowserSession['problems'] = [];
    page.on('console', (msg: ConsoleMessage) => {
      if (msg.type() === 'error') problems.push({ text: msg.text(), url: msg.location()?.url ?? '' });
    });
    page.on('pageerror', (err: unknown) => problems.push({ text: `uncaught: ${err instanceof Error ? err.message : String(err)}`, url: page.url() }));
    return {
      browser,
      page,
      problems,
      async close() {
        await browser.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}
