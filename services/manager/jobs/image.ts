/**
 * Resolves an image preheat into the blob URLs of its layers: fetch the manifest (an index
 * or manifest list picks `platform`), answering the registry's token challenge with the
 * given credentials or anonymously. Manifests fetched by digest are checked against it.
 */
import { createHash } from 'node:crypto';
import { FailedPreconditionError, InvalidArgumentError, UnavailableError } from '../../common/errors';
import { manifestRefOf } from './args';

const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
];
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_LAYERS = 1000;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

export interface ImageLayer {
  readonly url: string;
  readonly digest: string;
  readonly size: number;
}

export interface ResolvedImage {
  readonly layers: ImageLayer[];
  /** Headers the seed peers send for each blob (the user's, plus the registry token). */
  readonly headers: Record<string, string>;
}

export interface ResolveImageOptions {
  readonly url: string;
  readonly platform: string;
  readonly username: string;
  readonly password: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
}

interface Descriptor {
  mediaType?: string;
  digest?: unknown;
  size?: unknown;
  platform?: { os?: string; architecture?: string; variant?: string };
}

/** Parses `Bearer realm="...",service="...",scope="..."`. */
function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  for (const m of header.slice(space + 1).matchAll(/([a-zA-Z_]+)="([^"]*)"/g)) params[m[1].toLowerCase()] = m[2];
  return { scheme, params };
}

async function readCapped(res: Response, what: string): Promise<Buffer> {
  const length = Number(res.headers.get('content-length') ?? 0);
  if (length > MAX_MANIFEST_BYTES) throw new FailedPreconditionError(`${what} is ${length} bytes, more than ${MAX_MANIFEST_BYTES}`);
  const body = Buffer.from(await res.arrayBuffer());
  if (body.length > MAX_MANIFEST_BYTES) throw new FailedPreconditionError(`${what} is more than ${MAX_MANIFEST_BYTES} bytes`);
  return body;
}

export class RegistryClient {
  private authorization: string | undefined;

  constructor(private readonly options: ResolveImageOptions) {}

  private basic(): string | undefined {
    const { username, password } = this.options;
    return username ? `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` : undefined;
  }

  private async request(url: string, headers: Record<string, string>): Promise<Response> {
    try {
      return await fetch(url, { headers, redirect: 'follow', signal: AbortSignal.timeout(this.options.timeoutMs) });
    } catch (err) {
      throw new UnavailableError(`registry ${new URL(url).host} unreachable: ${(err as Error).message}`);
    }
  }

  /** Answers a 401 challenge once: a bearer token from the realm, or basic credentials. */
  private async authenticate(res: Response): Promise<boolean> {
    const header = res.headers.get('www-authenticate');
    if (!header || this.authorization) return false;
    const { scheme, params } = parseChallenge(header);
    if (scheme === 'basic') {
      this.authorization = this.basic();
      return this.authorization !== undefined;
    }
    if (scheme !== 'bearer' || !params.realm) return false;
    const realm = new URL(params.realm);
    if (params.service) realm.searchParams.set('service', params.service);
    if (params.scope) realm.searchParams.set('scope', params.scope);
    const basic = this.basic();
    const tokenRes = await this.request(realm.toString(), basic ? { authorization: basic } : {});
    if (!tokenRes.ok) {
      await tokenRes.body?.cancel();
      throw new FailedPreconditionError(`registry token service ${realm.host} answered ${tokenRes.status}${basic ? ' for the given username/password' : ' to an anonymous request; give args.username and args.password'}`);
    }
    const body = JSON.parse((await readCapped(tokenRes, 'token response')).toString('utf8')) as { token?: unknown; access_token?: unknown };
    const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : undefined;
    if (!token) throw new FailedPreconditionError(`registry token service ${realm.host} returned no token`);
    this.authorization = `Bearer ${token}`;
    return true;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...this.options.headers, ...extra, ...(this.authorization ? { authorization: this.authorization } : {}) };
  }

  async manifest(url: string, expectedDigest?: string): Promise<{ mediaType: string; body: Record<string, unknown> }> {
    let res = await this.request(url, this.headers({ accept: MANIFEST_TYPES.join(', ') }));
    if (res.status === 401 && (await this.authenticate(res))) {
      await res.body?.cancel();
      res = await this.request(url, this.headers({ accept: MANIFEST_TYPES.join(', ') }));
    }
    if (!res.ok) {
      await res.body?.cancel();
      const hint = res.status === 401 || res.status === 403 ? ' (check args.username / args.password)' : res.status === 404 ? ' (no such repository or tag)' : '';
      throw new FailedPreconditionError(`registry answered ${res.status} for manifest ${url}${hint}`);
    }
    const raw = await readCapped(res, `manifest ${url}`);
    if (expectedDigest) {
      const actual = `sha256:${createHash('sha256').update(raw).digest('hex')}`;
      if (actual !== expectedDigest) throw new FailedPreconditionError(`manifest ${url} has digest ${actual}, expected ${expectedDigest}`);
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new FailedPreconditionError(`manifest ${url} is not JSON`);
    }
    const mediaType = (typeof body.mediaType === 'string' ? body.mediaType : '') || (res.headers.get('content-type') ?? '').split(';')[0].trim();
    return { mediaType, body };
  }

  get authorizationHeader(): string | undefined {
    return this.authorization;
  }
}

function pickPlatform(manifests: Descriptor[], platform: string): Descriptor | undefined {
  const [os, architecture, variant] = platform.split('/');
  const matches = manifests.filter((m) => m.platform?.os === os && m.platform?.architecture === architecture);
  return (variant ? matches.find((m) => m.platform?.variant === variant) : undefined) ?? (variant ? undefined : matches.find((m) => !m.platform?.variant) ?? matches[0]);
}

export async function resolveImage(options: ResolveImageOptions): Promise<ResolvedImage> {
  const { base, repository } = manifestRefOf(options.url);
  const client = new RegistryClient(options);
  let { mediaType, body } = await client.manifest(options.url);
  if (Array.isArray(body.manifests)) {
    const entries = body.manifests as Descriptor[];
    const chosen = pickPlatform(entries, options.platform);
    if (!chosen || typeof chosen.digest !== 'string' || !DIGEST.test(chosen.digest)) {
      const offered = entries.map((m) => [m.platform?.os, m.platform?.architecture, m.platform?.variant].filter(Boolean).join('/')).join(', ');
      throw new InvalidArgumentError(`args.platform: image has no ${options.platform} manifest (it offers ${offered || 'none'})`);
    }
    ({ mediaType, body } = await client.manifest(`${base}/v2/${repository}/manifests/${chosen.digest}`, chosen.digest));
  }
  if (!Array.isArray(body.layers)) throw new FailedPreconditionError(`manifest ${options.url} (${mediaType || 'unknown media type'}) lists no layers`);
  const layers = body.layers as Descriptor[];
  if (layers.length > MAX_LAYERS) throw new FailedPreconditionError(`manifest lists ${layers.length} layers, more than ${MAX_LAYERS}`);
  const seen = new Set<string>();
  const out: ImageLayer[] = [];
  for (const [i, l] of layers.entries()) {
    if (typeof l.digest !== 'string' || !DIGEST.test(l.digest)) throw new FailedPreconditionError(`manifest layer ${i} has no sha256 digest`);
    if (seen.has(l.digest)) continue;
    seen.add(l.digest);
    out.push({ url: `${base}/v2/${repository}/blobs/${l.digest}`, digest: l.digest, size: typeof l.size === 'number' ? l.size : 0 });
  }
  const auth = client.authorizationHeader;
  return { layers: out, headers: { ...options.headers, ...(auth ? { authorization: auth } : {}) } };
}
