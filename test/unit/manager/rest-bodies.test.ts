/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-assignment -- response bodies are arbitrary JSON checked field by field */
/**
 * Issue 12, item 5: request bodies that do not decode are 400/415 with a JSON message (not 500),
 * and every string field has the length limit docs/manager-rest.md states.
 */
import * as zlib from 'node:zlib';
import { CLUSTER_TEXT_LIMITS } from '../../../services/common/config/cluster-spec';
import type { ManagerHandle } from '../../../services/manager/server';
import { http, managerConfig, restUrl, signin, startTestManager, type JsonBody } from './helpers';

describe('manager REST request bodies', () => {
  let m: ManagerHandle;
  let cleanup: () => void;
  let root: string;

  beforeAll(async () => {
    const c = managerConfig();
    cleanup = c.cleanup;
    m = await startTestManager(c.config);
    root = await signin(m);
  });
  afterAll(async () => {
    await m?.stop();
    cleanup?.();
  });

  async function post(path: string, headers: Record<string, string>, body: Buffer | string): Promise<{ status: number; body: JsonBody }> {
    const res = await fetch(`${restUrl(m)}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${root}`, ...headers }, body });
    return { status: res.status, body: (await res.json()) as JsonBody };
  }

  test.each([
    ['an unsupported Content-Encoding', 415, { 'content-encoding': 'compress' }, '{}', /unsupported request body: unsupported content encoding "compress"/],
    ['two stacked encodings', 415, { 'content-encoding': 'gzip, br' }, '{}', /unsupported content encoding/],
    ['an unsupported charset', 415, { 'content-type': 'application/json; charset=latin9' }, '{}', /unsupported charset/],
    ['gzip that is not gzip', 400, { 'content-encoding': 'gzip' }, 'not gzip at all', /request body could not be read/],
    ['deflate that is not deflate', 400, { 'content-encoding': 'deflate' }, 'garbage', /request body could not be read/],
    ['brotli that is not brotli', 400, { 'content-encoding': 'br' }, 'xx', /request body could not be read/],
    ['JSON that is not JSON', 400, {}, '{"name":', /request body is not valid JSON/],
  ])('%s → HTTP %s with a JSON message', async (_what, status, headers, body, message) => {
    const r = await post('/api/v1/users/signin', headers, body);
    expect(r.status).toBe(status);
    expect(r.body.message).toMatch(message);
    expect(typeof r.body.kind).toBe('string');
  });

  test('a well-formed gzip body is decoded', async () => {
    const r = await post('/api/v1/users/signin', { 'content-encoding': 'gzip' }, zlib.gzipSync(JSON.stringify({ name: 'root', password: 'dragonfly' })));
    expect(r.status).toBe(200);
    expect(typeof r.body.token).toBe('string');
  });

  test('a token bio over 1024 characters is refused with its field path, and the 1024th fits', async () => {
    const long = await http(m, 'POST', '/api/v1/personal-access-tokens', root, { name: 'big', bio: 'x'.repeat(1025), scopes: ['job'] });
    expect(long.status).toBe(422);
    expect(long.body.errors).toEqual([expect.objectContaining({ path: 'bio' })]);
    expect((await http(m, 'POST', '/api/v1/personal-access-tokens', root, { name: 'fits', bio: 'x'.repeat(1024), scopes: ['job'] })).status).toBe(201);
  });

  test('cluster text fields have limits: bio, idc, location, cidrs, hostnames', async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['bio', { bio: 'b'.repeat(CLUSTER_TEXT_LIMITS.bio + 1) }],
      ['scopes.idc', { scopes: { idc: 'i'.repeat(CLUSTER_TEXT_LIMITS.idc + 1) } }],
      ['scopes.location', { scopes: { location: 'l'.repeat(CLUSTER_TEXT_LIMITS.location + 1) } }],
      ['scopes.cidrs', { scopes: { cidrs: Array.from({ length: CLUSTER_TEXT_LIMITS.cidrs + 1 }, () => '10.0.0.0/8') } }],
      ['scopes.hostnames.0', { scopes: { hostnames: ['h'.repeat(CLUSTER_TEXT_LIMITS.hostname + 1)] } }],
    ];
    for (const [field, body] of cases) {
      const r = await http(m, 'POST', '/api/v1/scheduler-clusters', root, { name: 'limits', ...body });
      expect(`${field}: ${r.status}`).toBe(`${field}: 422`);
      expect(r.body.errors.map((e: { path: string }) => e.path)).toContain(field);
    }
    const ok = await http(m, 'POST', '/api/v1/scheduler-clusters', root, { name: 'limits', bio: 'b'.repeat(CLUSTER_TEXT_LIMITS.bio) });
    expect(ok.status).toBe(201);
  });

  test('an email over 254 characters is refused at sign-up', async () => {
    const r = await http(m, 'POST', '/api/v1/users/signup', root, { name: 'longmail', password: 'password1', email: `${'a'.repeat(250)}@example.com` });
    expect(r.status).toBe(422);
    expect(r.body.errors.map((e: { path: string }) => e.path)).toContain('email');
  });
});
