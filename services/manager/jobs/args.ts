/** The body of `POST /api/v1/jobs`, validated per job type; errors name the field (`args.url`). */
import { z } from 'zod';
import { JOB_TYPES, PREHEAT_SCOPES } from '../../common/job-queue';

const MANIFEST_PATH = /^\/v2\/(.+)\/manifests\/([^/]+)$/;
const MAX_HEADERS = 64;

const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http or https URL' }).max(4096, 'expected at most 4096 characters');
const headers = z
  .record(z.string().min(1).max(256).regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected an HTTP header name'), z.string().max(8192).regex(/^[^\r\n]*$/, 'expected a header value without line breaks'))
  .refine((h) => Object.keys(h).length <= MAX_HEADERS, `expected at most ${MAX_HEADERS} headers`)
  .default({});
/** Seconds; the job's deadline. Default: the manager's `job.timeout`. */
const timeout = z.number().int('expected whole seconds').min(1, 'expected 1..604800 seconds').max(604_800, 'expected 1..604800 seconds').optional();
const short = z.string().max(1024, 'expected at most 1024 characters').default('');

export const preheatArgsSchema = z
  .strictObject({
    type: z.enum(['image', 'file']),
    url: httpUrl,
    /** Go-era `&`-separated names ("Expires&Signature"); empty: the default list. */
    filteredQueryParams: short,
    headers,
    username: z.string().max(1024).default(''),
    password: z.string().max(4096).default(''),
    tag: short,
    application: short,
    platform: z
      .string()
      .regex(/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/, 'expected os/arch[/variant], e.g. linux/amd64')
      .default('linux/amd64'),
    scope: z.enum(PREHEAT_SCOPES).default('single_seed_peer'),
    timeout,
  })
  .superRefine((a, ctx) => {
    if (a.type === 'image' && URL.canParse(a.url) && !MANIFEST_PATH.test(new URL(a.url).pathname)) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'an image preheat needs a manifest URL: <scheme>://<registry>/v2/<repository>/manifests/<tag or digest>' });
    }
    if (a.password && !a.username) ctx.addIssue({ code: 'custom', path: ['username'], message: 'password given without username' });
  });

export const taskArgsSchema = z
  .strictObject({
    task_id: z.string().regex(/^[a-f0-9]{64}$/, 'expected a task id: 64 lowercase hex characters').optional(),
    url: httpUrl.optional(),
    tag: short,
    application: short,
    filtered_query_params: short,
    timeout,
  })
  .superRefine((a, ctx) => {
    if (!a.task_id === !a.url) ctx.addIssue({ code: 'custom', path: a.task_id ? ['url'] : ['task_id'], message: 'give exactly one of task_id or url' });
  });

export const syncPeersArgsSchema = z.strictObject({ timeout }).default({});

const clusterIds = z
  .array(z.number().int('expected a cluster id').min(1, 'expected a cluster id of 1 or more'))
  .max(1000, 'expected at most 1000 clusters')
  .refine((ids) => new Set(ids).size === ids.length, 'lists a cluster twice')
  .optional();

const common = { scheduler_cluster_ids: clusterIds };

export const createJobSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('preheat'), args: preheatArgsSchema, ...common }),
    z.strictObject({ type: z.literal('get_task'), args: taskArgsSchema, ...common }),
    z.strictObject({ type: z.literal('delete_task'), args: taskArgsSchema, ...common }),
    z.strictObject({ type: z.literal('sync_peers'), args: syncPeersArgsSchema, ...common }),
  ],
  { error: `expected type to be one of ${JOB_TYPES.join(', ')}` },
);

export type CreateJobBody = z.output<typeof createJobSchema>;
export type PreheatArgs = z.output<typeof preheatArgsSchema>;
export type TaskArgs = z.output<typeof taskArgsSchema>;

export function manifestRefOf(url: string): { base: string; repository: string; reference: string } {
  const u = new URL(url);
  const m = MANIFEST_PATH.exec(u.pathname);
  if (!m) throw new Error(`not a manifest URL: ${url}`);
  return { base: `${u.protocol}//${u.host}`, repository: m[1], reference: decodeURIComponent(m[2]) };
}

const SECRET_HEADERS = /^(authorization|proxy-authorization|cookie)$/i;

/** Args as stored and shown: the password and credential headers are never echoed. */
export function redactArgs(args: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...args };
  if (typeof out.password === 'string' && out.password !== '') out.password = '******';
  if (out.headers && typeof out.headers === 'object') {
    out.headers = Object.fromEntries(Object.entries(out.headers as Record<string, string>).map(([k, v]) => [k, SECRET_HEADERS.test(k) ? '******' : v]));
  }
  return out;
}
