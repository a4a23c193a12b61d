/**
 * REST API under /api/v1 (JWT + RBAC) and /oapi/v1 (personal access tokens), express 5.
 * Handlers only parse the request and call the domain services; one middleware maps
 * every error to `{message, ...}` with the status from services/common/errors.
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { DragonflyError, errorBody, httpStatusOf, InvalidArgumentError, NotFoundError, PermissionDeniedError, UnauthenticatedError } from '../common/errors';
import { AuthService, PAT_SCOPES, ROOT_ROLE, tokenView, userView, type Principal } from './auth';
import { SigninRateLimitedError } from './signin-limiter';
import { ClusterService, SchedulerClusterService, SeedPeerClusterService } from './clusters';
import type { ManagerMetrics } from './metrics';
import type { Registry } from './registry';
import type { ManagerStore, Page, SchedulerRecord, SeedPeerRecord } from './store/types';
import { parseInput } from './validation';
import { findConsoleDir, mountConsole } from './console';
import { jobRoutes, peerRoutes } from './jobs/routes';
import { JobService } from './jobs/service';

export interface RestDeps {
  store: ManagerStore;
  auth: AuthService;
  registry: Registry;
  logger: Logger;
  metrics?: ManagerMetrics;
  /** Jobs; without it the job routes answer 503 (no Redis). */
  jobs?: JobService;
}

type AuthedRequest = Request & { principal?: Principal };

const pageSchema = z.object({
  page: z.coerce.number().int().min(1, 'expected a page number ≥ 1').default(1),
  per_page: z.coerce.number().int().min(1, 'expected 1..10000000').max(10_000_000, 'expected 1..10000000').default(10),
});

function pageOf(req: Request): Page {
  const q = parseInput(pageSchema, { page: req.query.page, per_page: req.query.per_page }, 'query');
  return { page: q.page, perPage: q.per_page };
}

function idParam(req: Request, name = 'id'): number {
  const raw = req.params[name];
  const id = Number(raw);
  if (!Number.isInteger(id) || id < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return id;
}

function nameFilter(req: Request): { name?: string } {
  return typeof req.query.name === 'string' && req.query.name !== '' ? { name: req.query.name } : {};
}

/** Sends a page of items with a `Link` header (first/prev/next/last) and `X-Total-Count`. */
function sendPage<T>(req: Request, res: Response, page: Page, result: { items: T[]; total: number }): void {
  const last = Math.max(1, Math.ceil(result.total / page.perPage));
  const url = new URL(req.originalUrl, 'http://manager');
  const link = (p: number, rel: string) => {
    url.searchParams.set('page', String(p));
    url.searchParams.set('per_page', String(page.perPage));
    return `<${url.pathname}${url.search}>; rel="${rel}"`;
  };
  const links = [link(1, 'first')];
  if (page.page > 1) links.push(link(Math.min(page.page - 1, last), 'prev'));
  if (page.page < last) links.push(link(page.page + 1, 'next'));
  links.push(link(last, 'last'));
  res.setHeader('Link', links.join(', '));
  res.setHeader('X-Total-Count', String(result.total));
  res.json(result.items);
}

function bearer(req: Request): string | undefined {
  const header = req.headers.authorization;
  if (header && /^bearer\s+/i.test(header)) return header.replace(/^bearer\s+/i, '').trim();
  return undefined;
}

const SESSION_COOKIE = 'jwt';
const SESSION_COOKIE_OPTIONS = { httpOnly: true, sameSite: 'strict', path: '/' } as const;

/** A session JWT: the Authorization header or the session cookie, never the query string (it ends up in logs and Referer headers). */
function sessionToken(req: Request): string | undefined {
  return bearer(req) ?? cookie(req, SESSION_COOKIE);
}

function cookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

function schedulerView(s: SchedulerRecord) {
  return {
    id: s.id,
    host_name: s.hostname,
    ip: s.ip,
    port: s.port,
    idc: s.idc,
    location: s.location,
    state: s.state,
    features: s.features,
    scheduler_cluster_id: s.schedulerClusterId,
    last_keep_alive_at: s.lastKeepAliveAt ? new Date(s.lastKeepAliveAt).toISOString() : null,
    created_at: new Date(s.createdAt).toISOString(),
    updated_at: new Date(s.updatedAt).toISOString(),
  };
}

function seedPeerView(p: SeedPeerRecord) {
  return {
    id: p.id,
    host_name: p.hostname,
    type: p.type,
    ip: p.ip,
    port: p.port,
    download_port: p.downloadPort,
    idc: p.idc,
    location: p.location,
    state: p.state,
    seed_peer_cluster_id: p.seedPeerClusterId,
    last_keep_alive_at: p.lastKeepAliveAt ? new Date(p.lastKeepAliveAt).toISOString() : null,
    created_at: new Date(p.createdAt).toISOString(),
    updated_at: new Date(p.updatedAt).toISOString(),
  };
}

const optionalId = (v: unknown, name: string): number | undefined => {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
  return n;
};

function clusterRoutes(router: Router, clusters: ClusterService): void {
  router.post('/clusters', async (req, res) => {
    res.status(201).json(await clusters.create(req.body));
  });
  router.get('/clusters', async (req, res) => {
    const page = pageOf(req);
    sendPage(req, res, page, await clusters.list(nameFilter(req), page));
  });
  router.get('/clusters/:id', async (req, res) => {
    res.json(await clusters.get(idParam(req)));
  });
  router.patch('/clusters/:id', async (req, res) => {
    res.json(await clusters.update(idParam(req), req.body));
  });
  router.delete('/clusters/:id', async (req, res) => {
    await clusters.delete(idParam(req));
    res.status(200).json({});
  });
}

export function createRestApp(deps: RestDeps): express.Express {
  const { store, auth, registry, logger, metrics } = deps;
  const jobs = deps.jobs ?? new JobService(store, undefined, { timeoutMs: 3_600_000, attempts: 1, noSchedulerTimeoutMs: 15_000, registryTimeoutMs: 60_000 }, logger);
  const onChange = () => registry.invalidate();
  const clusters = new ClusterService(store, onChange);
  const schedulerClusters = new SchedulerClusterService(store, onChange);
  const seedPeerClusters = new SeedPeerClusterService(store, onChange);

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(express.json({ limit: '1mb' }));

  if (metrics) {
    app.use((req, res, next) => {
      const end = metrics.httpDuration.startTimer();
      res.on('finish', () => {
        const route = req.route ? `${req.baseUrl}${String((req.route as { path: string }).path)}` : 'unmatched';
        end({ method: req.method, route });
        metrics.httpRequests.inc({ method: req.method, route, code: String(res.statusCode) });
      });
      next();
    });
  }

  app.get('/healthy', (_req, res) => {
    res.type('text/plain').send('OK');
  });
  mountConsole(app, findConsoleDir());

  // ---- /api/v1 ------------------------------------------------------------------
  const api = express.Router();
  api.post('/users/signin', async (req, res) => {
    const session = await auth.signin(req.body, req.socket.remoteAddress ?? 'unknown');
    // HttpOnly: page scripts cannot read it; SameSite=Strict: other sites cannot make the browser send it.
    res.cookie(SESSION_COOKIE, session.token, { expires: new Date(session.expire), ...SESSION_COOKIE_OPTIONS, secure: req.secure });
    res.json(session);
  });

  /** The signed-in user, if the request carries a valid session (signup works without one when enabled; a stale cookie counts as none). */
  const optionalPrincipal = async (req: Request): Promise<Principal | undefined> => {
    const token = sessionToken(req);
    return token ? auth.authenticateJwt(token).catch(() => undefined) : undefined;
  };
  api.post('/users/signup', async (req, res) => {
    res.status(201).json(userView(await auth.signup(req.body, await optionalPrincipal(req))));
  });

  api.post('/users/signout', (req, res) => {
    // Sessions are stateless JWTs: signing out drops the cookie; the console also forgets its copy.
    res.clearCookie(SESSION_COOKIE, { ...SESSION_COOKIE_OPTIONS, secure: req.secure });
    res.json({});
  });

  const authenticate = async (req: AuthedRequest, _res: Response, next: NextFunction) => {
    const token = sessionToken(req);
    if (!token) throw new UnauthenticatedError('missing token: sign in at POST /api/v1/users/signin and send Authorization: Bearer <token> (or the session cookie)');
    req.principal = await auth.authenticateJwt(token);
    next();
  };
  const principal = (req: Request): Principal => (req as AuthedRequest).principal!;

  // Users change their own password (with the old one); root resets anyone's.
  api.post('/users/:id/reset_password', authenticate, async (req, res) => {
    const session = await auth.resetPassword(principal(req), idParam(req), req.body);
    if (!session) {
      res.json({});
      return;
    }
    if (cookie(req, SESSION_COOKIE) !== undefined) res.cookie(SESSION_COOKIE, session.token, { expires: new Date(session.expire), ...SESSION_COOKIE_OPTIONS, secure: req.secure });
    res.json(session);
  });

  const jwtAuth = async (req: AuthedRequest, res: Response, next: NextFunction) => {
    await authenticate(req, res, () => undefined);
    auth.authorize(req.principal!, req.method !== 'GET' && req.method !== 'HEAD');
    next();
  };
  api.use(jwtAuth);

  api.get('/users', async (req, res) => {
    const page = pageOf(req);
    const r = await store.listUsers(page);
    sendPage(req, res, page, { items: r.items.map((u) => userView(u, principal(req))), total: r.total });
  });
  api.get('/users/:id', async (req, res) => {
    res.json(userView(await auth.getUser(idParam(req)), principal(req)));
  });
  api.get('/users/:id/roles', async (req, res) => {
    const user = await auth.getUser(idParam(req));
    res.json(await store.rolesOf(user.id));
  });
  api.get('/users/:id/roles/:role', async (req, res) => {
    const user = await auth.getUser(idParam(req));
    const roles = await store.rolesOf(user.id);
    if (!roles.includes(req.params.role)) throw new NotFoundError(`user ${user.id} does not have role ${req.params.role}`);
    res.json({ user_id: user.id, role: req.params.role });
  });
  api.put('/users/:id/roles/:role', async (req, res) => {
    const user = await auth.getUser(idParam(req));
    await store.addUserRole(user.id, req.params.role);
    res.json({ user_id: user.id, role: req.params.role });
  });
  api.delete('/users/:id/roles/:role', async (req, res) => {
    const user = await auth.getUser(idParam(req));
    await store.removeUserRole(user.id, req.params.role);
    res.json({});
  });
  api.get('/roles', async (_req, res) => {
    res.json(await store.listRoles());
  });

  clusterRoutes(api, clusters);

  api.post('/scheduler-clusters', async (req, res) => {
    res.status(201).json(await schedulerClusters.create(req.body));
  });
  api.get('/scheduler-clusters', async (req, res) => {
    const page = pageOf(req);
    sendPage(req, res, page, await schedulerClusters.list(nameFilter(req), page));
  });
  api.get('/scheduler-clusters/:id', async (req, res) => {
    res.json(await schedulerClusters.get(idParam(req)));
  });
  api.patch('/scheduler-clusters/:id', async (req, res) => {
    res.json(await schedulerClusters.update(idParam(req), req.body));
  });
  api.delete('/scheduler-clusters/:id', async (req, res) => {
    await schedulerClusters.delete(idParam(req));
    res.json({});
  });

  api.post('/seed-peer-clusters', async (req, res) => {
    res.status(201).json(await seedPeerClusters.create(req.body));
  });
  api.get('/seed-peer-clusters', async (req, res) => {
    const page = pageOf(req);
    sendPage(req, res, page, await seedPeerClusters.list(nameFilter(req), page));
  });
  api.get('/seed-peer-clusters/:id', async (req, res) => {
    res.json(await seedPeerClusters.get(idParam(req)));
  });
  api.patch('/seed-peer-clusters/:id', async (req, res) => {
    res.json(await seedPeerClusters.update(idParam(req), req.body));
  });
  api.put('/seed-peer-clusters/:id/scheduler-clusters/:scheduler_cluster_id', async (req, res) => {
    await seedPeerClusters.link(idParam(req), idParam(req, 'scheduler_cluster_id'));
    res.json({});
  });
  api.delete('/seed-peer-clusters/:id', async (req, res) => {
    await seedPeerClusters.delete(idParam(req));
    res.json({});
  });

  api.get('/schedulers', async (req, res) => {
    const page = pageOf(req);
    const state = req.query.state === 'active' || req.query.state === 'inactive' ? req.query.state : undefined;
    const r = await store.listSchedulers({ schedulerClusterId: optionalId(req.query.scheduler_cluster_id, 'scheduler_cluster_id'), state }, page);
    sendPage(req, res, page, { items: r.items.map(schedulerView), total: r.total });
  });
  api.get('/schedulers/:id', async (req, res) => {
    const s = await store.getScheduler(idParam(req));
    if (!s) throw new NotFoundError(`scheduler ${req.params.id} not found`);
    res.json(schedulerView(s));
  });
  api.delete('/schedulers/:id', async (req, res) => {
    await registry.deleteSchedulerById(idParam(req));
    res.json({});
  });
  api.get('/seed-peers', async (req, res) => {
    const page = pageOf(req);
    const state = req.query.state === 'active' || req.query.state === 'inactive' ? req.query.state : undefined;
    const r = await store.listSeedPeers({ seedPeerClusterId: optionalId(req.query.seed_peer_cluster_id, 'seed_peer_cluster_id'), state }, page);
    sendPage(req, res, page, { items: r.items.map(seedPeerView), total: r.total });
  });
  api.get('/seed-peers/:id', async (req, res) => {
    const p = await store.getSeedPeer(idParam(req));
    if (!p) throw new NotFoundError(`seed peer ${req.params.id} not found`);
    res.json(seedPeerView(p));
  });
  api.delete('/seed-peers/:id', async (req, res) => {
    await registry.deleteSeedPeerById(idParam(req));
    res.json({});
  });

  // Tokens: root sees and edits every token, others only their own.
  const ownToken = async (req: Request) => {
    const t = await store.getPersonalAccessToken(idParam(req));
    const p = principal(req);
    if (!t || (t.userId !== p.user.id && !p.roles.includes(ROOT_ROLE))) throw new NotFoundError(`personal access token ${String(req.params.id)} not found`);
    return t;
  };
  api.post('/personal-access-tokens', async (req, res) => {
    res.status(201).json(tokenView(await auth.createToken(principal(req).user.id, req.body), true));
  });
  api.get('/personal-access-tokens', async (req, res) => {
    const page = pageOf(req);
    const p = principal(req);
    const r = await store.listPersonalAccessTokens(p.roles.includes(ROOT_ROLE) ? {} : { userId: p.user.id }, page);
    sendPage(req, res, page, { items: r.items.map((t) => tokenView(t)), total: r.total });
  });
  api.get('/personal-access-tokens/:id', async (req, res) => {
    res.json(tokenView(await ownToken(req)));
  });
  api.patch('/personal-access-tokens/:id', async (req, res) => {
    const t = await ownToken(req);
    res.json(tokenView(await auth.updateToken(t.id, req.body)));
  });
  api.delete('/personal-access-tokens/:id', async (req, res) => {
    const t = await ownToken(req);
    await store.deletePersonalAccessToken(t.id);
    res.json({});
  });
  const jobHelpers = { principal, pageOf, idParam: (req: Request) => idParam(req), sendPage, optionalId };
  jobRoutes(api, jobs, jobHelpers);
  peerRoutes(api, store, jobHelpers);
  app.use('/api/v1', api);

  // ---- /oapi/v1: personal access tokens ------------------------------------------
  const oapi = express.Router();
  /** A token's scope lets it call this part of the API; its owner's roles (read now, not when it was made) decide what it may do there. */
  const patAuth = (scope: (typeof PAT_SCOPES)[number]) => async (req: AuthedRequest, _res: Response, next: NextFunction) => {
    const token = bearer(req);
    if (!token) throw new UnauthenticatedError('missing personal access token: send Authorization: Bearer <token>');
    req.principal = await auth.authenticatePat(token, scope);
    auth.authorize(req.principal, req.method !== 'GET' && req.method !== 'HEAD');
    next();
  };
  oapi.use('/clusters', patAuth('cluster'));
  clusterRoutes(oapi, clusters);
  oapi.use('/jobs', patAuth('job'));
  jobRoutes(oapi, jobs, jobHelpers);
  app.use('/oapi/v1', oapi);

  app.use((req, _res, next) => next(new NotFoundError(`no route ${req.method} ${req.path}`)));

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let error = err;
    const parserError = err as { type?: string; status?: number; message?: string };
    if (parserError.type === 'entity.parse.failed') error = new InvalidArgumentError(`request body is not valid JSON: ${parserError.message ?? ''}`);
    else if (parserError.type === 'entity.too.large') error = new InvalidArgumentError('request body too large');
    else if (parserError.status === 415) {
      // Unsupported Content-Encoding or charset.
      res.status(415).json({ message: `unsupported request body: ${parserError.message ?? ''}`, kind: 'UnsupportedMediaType' });
      return;
    } else if (!(err instanceof DragonflyError) && typeof parserError.status === 'number' && parserError.status >= 400 && parserError.status < 500) {
      // The body parser's other refusals: a body that does not decode (bad gzip/deflate/br data), aborted or of the wrong size.
      error = new InvalidArgumentError(`request body could not be read: ${parserError.message ?? ''}`);
    } else if (err instanceof PermissionDeniedError || err instanceof UnauthenticatedError) logger.debug({ path: req.path, err: err.message }, 'request refused');
    if (error instanceof SigninRateLimitedError) res.setHeader('Retry-After', String(error.retryAfterSeconds));
    const status = httpStatusOf(error);
    if (status >= 500) logger.error({ err, method: req.method, path: req.path }, 'request failed');
    res.status(status).json(errorBody(error));
  });
  return app;
}
