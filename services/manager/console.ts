/**
 * The console's static files: built by `npm run build` (scripts/build-console.mjs) from
 * services/manager/console into build/console, served by the manager at `/` and `/assets/`.
 */
import express, { type Express, type Response } from 'express';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** build/console seen from the compiled manager (build/services/manager) or from its source (services/manager, under ts-jest). */
export function findConsoleDir(): string | undefined {
  const candidates = [resolve(__dirname, '../../console'), resolve(__dirname, '../../build/console')];
  return candidates.find((dir) => existsSync(join(dir, 'index.html')));
}

/** Same-origin only: the console loads nothing from anywhere else and cannot be framed. */
const CONSOLE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

function secureHeaders(res: Response): void {
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'same-origin');
}

/** Mounts `GET /` and `/assets/*`; without a build, `GET /` says how to make one. */
export function mountConsole(app: Express, dir: string | undefined): void {
  app.get('/', (_req, res) => {
    if (!dir) {
      res.status(503).type('text/plain').send('The console is not built: run `npm run build` (it writes build/console), then restart the manager. The REST API is at /api/v1.\n');
      return;
    }
    secureHeaders(res);
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(join(dir, 'index.html'));
  });
  if (dir) {
    app.use('/assets', express.static(join(dir, 'assets'), { index: false, redirect: false, fallthrough: true, setHeaders: (res) => secureHeaders(res) }));
  }
}
