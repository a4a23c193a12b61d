/** REST routes of jobs (mounted on /api/v1 and, for PATs of scope `job`, /oapi/v1) and of the peer inventory. */
import type { Request, Response, Router } from 'express';
import { InvalidArgumentError } from '../../common/errors';
import { JOB_TYPES } from '../../common/job-queue';
import type { Principal } from '../auth';
import type { ManagerStore, Page, PeerRecord } from '../store/types';
import type { JobService } from './service';

export interface JobRouteHelpers {
  readonly principal: (req: Request) => Principal;
  readonly pageOf: (req: Request) => Page;
  readonly idParam: (req: Request) => number;
  readonly sendPage: <T>(req: Request, res: Response, page: Page, result: { items: T[]; total: number }) => void;
}

const STATES = ['PENDING', 'SUCCESS', 'FAILURE'] as const;

function oneOf<T extends string>(value: unknown, allowed: readonly T[], name: string): T | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw new InvalidArgumentError(`${name} must be one of ${allowed.join(', ')}`);
}

export function jobRoutes(router: Router, jobs: JobService, h: JobRouteHelpers): void {
  router.post('/jobs', async (req, res) => {
    res.status(200).json(await jobs.create(h.principal(req).user.id, req.body));
  });
  router.get('/jobs', async (req, res) => {
    const page = h.pageOf(req);
    const filter = { type: oneOf(req.query.type, JOB_TYPES, 'type'), state: oneOf(req.query.state, STATES, 'state') };
    h.sendPage(req, res, page, await jobs.list(filter, page));
  });
  router.get('/jobs/:id', async (req, res) => {
    res.json(await jobs.get(h.idParam(req)));
  });
  router.delete('/jobs/:id', async (req, res) => {
    res.json(await jobs.cancel(h.idParam(req), h.principal(req).user.name));
  });
}

function peerView(p: PeerRecord) {
  return {
    id: p.id,
    host_id: p.hostId,
    host_name: p.hostname,
    type: p.type,
    ip: p.ip,
    port: p.port,
    download_port: p.downloadPort,
    idc: p.idc,
    location: p.location,
    scheduler_cluster_id: p.schedulerClusterId,
    created_at: new Date(p.createdAt).toISOString(),
    updated_at: new Date(p.updatedAt).toISOString(),
  };
}

/** The peer inventory sync_peers jobs refresh. */
export function peerRoutes(router: Router, store: ManagerStore, h: JobRouteHelpers & { optionalId: (v: unknown, name: string) => number | undefined }): void {
  router.get('/peers', async (req, res) => {
    const page = h.pageOf(req);
    const r = await store.listPeers(
      {
        schedulerClusterId: h.optionalId(req.query.scheduler_cluster_id, 'scheduler_cluster_id'),
        hostname: typeof req.query.host_name === 'string' && req.query.host_name ? req.query.host_name : undefined,
        ip: typeof req.query.ip === 'string' && req.query.ip ? req.query.ip : undefined,
      },
      page,
    );
    h.sendPage(req, res, page, { items: r.items.map(peerView), total: r.total });
  });
}
