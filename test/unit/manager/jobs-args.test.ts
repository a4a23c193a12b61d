/** Job bodies: per-type validation naming the field, and what is never echoed back. */
import { createJobSchema, manifestRefOf, redactArgs } from '../../../services/manager/jobs/args';
import { problemsOf } from '../../../services/manager/validation';

function problems(body: unknown): string[] {
  const r = createJobSchema.safeParse(body);
  return r.success ? [] : problemsOf(r.error).map((p) => `${p.path}: ${p.message}`);
}

describe('createJobSchema', () => {
  it('fills upstream defaults for an image preheat', () => {
    const r = createJobSchema.parse({ type: 'preheat', args: { type: 'image', url: 'https://ghcr.io/v2/org/app/manifests/v1' } });
    expect(r.args).toMatchObject({ platform: 'linux/amd64', scope: 'single_seed_peer', tag: '', application: '', headers: {} });
    expect(r.scheduler_cluster_ids).toBeUndefined();
  });

  it.each([
    [{ type: 'preheat', args: { type: 'image', url: 'ftp://x/v2/a/manifests/b' } }, 'args.url'],
    [{ type: 'preheat', args: { type: 'layer', url: 'https://x/v2/a/manifests/b' } }, 'args.type'],
    [{ type: 'preheat', args: { type: 'file', url: 'https://x/f', headers: { 'bad header': 'v' } } }, 'args.headers'],
    [{ type: 'preheat', args: { type: 'file', url: 'https://x/f', headers: { h: 'a\r\nb' } } }, 'args.headers.h'],
    [{ type: 'preheat', args: { type: 'file', url: 'https://x/f', password: 'p' } }, 'args.username'],
    [{ type: 'preheat', args: { type: 'file', url: 'https://x/f', timeout: 0 } }, 'args.timeout'],
    [{ type: 'delete_task', args: { task_id: 'a'.repeat(64), url: 'https://x/f' } }, 'args.url'],
    [{ type: 'sync_peers', args: {}, scheduler_cluster_ids: [1, 1] }, 'scheduler_cluster_ids'],
    [{ type: 'sync_peers', args: {}, scheduler_cluster_ids: [0] }, 'scheduler_cluster_ids.0'],
    [{ type: 'sync_peers', args: {}, extra: true }, 'extra'],
  ])('%j is refused at %s', (body, field) => {
    expect(problems(body).some((p) => p.startsWith(`${field}:`) || p.startsWith(`${field}.`))).toBe(true);
  });

  it('splits a manifest URL and redacts credentials', () => {
    expect(manifestRefOf('https://r.example:5000/v2/a/b/c/manifests/sha256:abc')).toEqual({ base: 'https://r.example:5000', repository: 'a/b/c', reference: 'sha256:abc' });
    expect(redactArgs({ url: 'u', password: 'secret', headers: { Authorization: 'Bearer t', 'x-a': '1' } })).toEqual({ url: 'u', password: '******', headers: { Authorization: '******', 'x-a': '1' } });
  });
});
