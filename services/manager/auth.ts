/**
 * Users, roles, sessions (JWT) and personal access tokens. RBAC is two roles: `root` may
 * write, `guest` may read. Transport-free; the REST middleware calls `authenticate*`.
 */
import bcrypt from 'bcryptjs';
import { createHash, randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { z } from 'zod';
import { ConflictError, FailedPreconditionError, NotFoundError, PermissionDeniedError, UnauthenticatedError } from '../common/errors';
import type { SigninLimiter } from './signin-limiter';
import type { ManagerStore, PersonalAccessTokenRecord, UserRecord } from './store/types';
import { parseInput } from './validation';

export const ROOT_ROLE = 'root';
export const GUEST_ROLE = 'guest';
export const ROLES = [ROOT_ROLE, GUEST_ROLE] as const;
export const PAT_SCOPES = ['job', 'cluster'] as const;
const BCRYPT_COST = 10;

export interface Principal {
  user: UserRecord;
  roles: string[];
  /** How the request authenticated. */
  via: 'jwt' | 'pat';
}

export const signinSchema = z.strictObject({
  name: z.string().min(3, 'expected 3 to 10 characters').max(10, 'expected 3 to 10 characters'),
  password: z.string().min(8, 'expected 8 to 20 characters').max(20, 'expected 8 to 20 characters'),
});

const passwordSchema = signinSchema.shape.password;

/** `old_password` is needed when users change their own password; root resetting someone else's omits it. */
export const resetPasswordSchema = z.strictObject({ old_password: z.string().max(256).optional(), new_password: passwordSchema });

export const signupSchema = signinSchema.extend({ email: z.email('expected an email address').max(254, 'expected at most 254 characters').or(z.literal('')).default('') });

export const tokenBodySchema = z.strictObject({
  name: z.string().min(1).max(256),
  bio: z.string().max(1024).default(''),
  /** What the token may call; a token grants only the scopes it lists. */
  scopes: z.array(z.enum(PAT_SCOPES)).min(1, `expected at least one of ${PAT_SCOPES.join(', ')}`),
  state: z.enum(['active', 'inactive']).default('active'),
  /** RFC 3339 time; default one year from now. */
  expired_at: z.iso.datetime({ offset: true }).optional(),
});

/** A user as the API shows it; `email` only to the user themself and to root (`viewer` unset: internal callers). */
export function userView(u: UserRecord, viewer?: Principal) {
  const showEmail = !viewer || viewer.user.id === u.id || viewer.roles.includes(ROOT_ROLE);
  return { id: u.id, name: u.name, email: showEmail ? u.email : '', state: u.state, created_at: new Date(u.createdAt).toISOString(), updated_at: new Date(u.updatedAt).toISOString() };
}

export function tokenView(t: PersonalAccessTokenRecord, showToken = false) {
  return {
    id: t.id,
    name: t.name,
    bio: t.bio,
    scopes: t.scopes,
    state: t.state,
    expired_at: new Date(t.expiredAt).toISOString(),
    user_id: t.userId,
    created_at: new Date(t.createdAt).toISOString(),
    updated_at: new Date(t.updatedAt).toISOString(),
    ...(showToken ? { token: t.token } : {}),
  };
}

/** A short digest of the password hash carried in each session: changing the password ends every older session. */
function passwordStamp(user: UserRecord): string {
  return createHash('sha256').update(user.passwordHash).digest('base64url').slice(0, 16);
}

export class AuthService {
  constructor(
    private readonly store: ManagerStore,
    private readonly jwtKey: string,
    private readonly sessionTtlMs: number,
    private readonly options: { signupEnabled: boolean; limiter: SigninLimiter },
  ) {}

  /** `address`: the client's socket address, for the per-address limit. */
  async signin(body: unknown, address: string): Promise<{ token: string; expire: string }> {
    const { name, password } = parseInput(signinSchema, body);
    this.options.limiter.check(name, address);
    const user = await this.store.getUserByName(name);
    if (!user || !(await bcrypt.compare(password, user.passwordHash))) {
      this.options.limiter.failed(name, address);
      throw new UnauthenticatedError('incorrect name or password');
    }
    if (user.state !== 'enable') throw new UnauthenticatedError(`user ${name} is disabled`);
    this.options.limiter.succeeded(name);
    return this.issueSession(user);
  }

  /** A session JWT; it names the password it was issued under, so a password change ends it. */
  issueSession(user: UserRecord): { token: string; expire: string } {
    const expire = new Date(Date.now() + this.sessionTtlMs);
    const token = jwt.sign({ id: user.id, pwd: passwordStamp(user) }, this.jwtKey, { algorithm: 'HS256', expiresIn: Math.floor(this.sessionTtlMs / 1000) });
    return { token, expire: expire.toISOString() };
  }

  /** Self-service when `auth.signup.enable`; otherwise only root (`caller`) creates users. */
  async signup(body: unknown, caller: Principal | undefined): Promise<UserRecord> {
    if (!this.options.signupEnabled && !caller?.roles.includes(ROOT_ROLE)) {
      throw new PermissionDeniedError('signup is disabled (auth.signup.enable: false): ask root to create the user (root calls this endpoint signed in)');
    }
    const { name, password, email } = parseInput(signupSchema, body);
    if (await this.store.getUserByName(name)) throw new ConflictError(`user ${name} already exists`);
    const user = await this.store.createUser({ name, email, passwordHash: await bcrypt.hash(password, BCRYPT_COST) });
    await this.store.addUserRole(user.id, GUEST_ROLE);
    return user;
  }

  /**
   * Sets user `userId`'s password. Users change their own with the old one (a stolen session alone
   * cannot lock the owner out); root resets anyone else's without it.
   */
  async resetPassword(caller: Principal, userId: number, body: unknown): Promise<{ token: string; expire: string } | undefined> {
    const self = caller.user.id === userId;
    if (!self && !caller.roles.includes(ROOT_ROLE)) throw new PermissionDeniedError('permission denied: only root resets another user\'s password');
    const { old_password, new_password } = parseInput(resetPasswordSchema, body);
    const user = await this.getUser(userId);
    if (self && (old_password === undefined || !(await bcrypt.compare(old_password, user.passwordHash)))) {
      const message = old_password === undefined ? 'required when changing your own password' : 'incorrect password';
      throw new FailedPreconditionError(`old_password: ${message}`, { errors: [{ path: 'old_password', message }] });
    }
    await this.store.updateUserPassword(user.id, await bcrypt.hash(new_password, BCRYPT_COST));
    // Every older session of this user ends here; the caller changing their own password gets a new one.
    return self ? this.issueSession(await this.getUser(user.id)) : undefined;
  }

  async authenticateJwt(token: string): Promise<Principal> {
    let claims: unknown;
    try {
      claims = jwt.verify(token, this.jwtKey, { algorithms: ['HS256'] });
    } catch (err) {
      throw new UnauthenticatedError(err instanceof jwt.TokenExpiredError ? 'token expired' : 'invalid token');
    }
    const { id, pwd } = typeof claims === 'object' && claims !== null ? (claims as { id?: unknown; pwd?: unknown }) : {};
    if (typeof id !== 'number') throw new UnauthenticatedError('invalid token');
    const user = await this.store.getUser(id);
    if (!user || user.state !== 'enable') throw new UnauthenticatedError('user of this token no longer exists or is disabled');
    if (pwd !== passwordStamp(user)) throw new UnauthenticatedError('the password changed since this session began; sign in again');
    return { user, roles: await this.store.rolesOf(user.id), via: 'jwt' };
  }

  /** A personal access token for the open API; `scope` must be one the token lists. The caller still checks the owner's current roles. */
  async authenticatePat(token: string, scope: (typeof PAT_SCOPES)[number]): Promise<Principal> {
    const pat = await this.store.findPersonalAccessToken(token);
    if (!pat) throw new UnauthenticatedError('invalid personal access token');
    if (pat.state !== 'active') throw new PermissionDeniedError('personal access token is inactive');
    if (pat.expiredAt <= Date.now()) throw new PermissionDeniedError('personal access token expired');
    if (!pat.scopes.includes(scope)) throw new PermissionDeniedError(`personal access token lacks scope ${scope}`);
    const user = await this.store.getUser(pat.userId);
    if (!user || user.state !== 'enable') throw new PermissionDeniedError('owner of this personal access token no longer exists or is disabled');
    return { user, roles: await this.store.rolesOf(user.id), via: 'pat' };
  }

  /** root writes, guest reads. */
  authorize(principal: Principal, write: boolean): void {
    if (principal.roles.includes(ROOT_ROLE)) return;
    if (!write && principal.roles.includes(GUEST_ROLE)) return;
    throw new PermissionDeniedError(write ? 'permission denied: writing needs the root role' : 'permission denied: no role grants read access');
  }

  async getUser(id: number): Promise<UserRecord> {
    const user = await this.store.getUser(id);
    if (!user) throw new NotFoundError(`user ${id} not found`);
    return user;
  }

  async createToken(userId: number, body: unknown): Promise<PersonalAccessTokenRecord> {
    const b = parseInput(tokenBodySchema, body);
    return this.store.createPersonalAccessToken({
      name: b.name,
      bio: b.bio,
      scopes: b.scopes,
      state: b.state,
      expiredAt: b.expired_at ? Date.parse(b.expired_at) : Date.now() + 365 * 24 * 3600 * 1000,
      userId,
      token: randomBytes(24).toString('base64url'),
    });
  }

  async updateToken(id: number, body: unknown): Promise<PersonalAccessTokenRecord> {
    const b = parseInput(tokenBodySchema.partial(), body);
    return this.store.updatePersonalAccessToken(id, { name: b.name, bio: b.bio, scopes: b.scopes, state: b.state, expiredAt: b.expired_at ? Date.parse(b.expired_at) : undefined });
  }
}

/** The JWT signing key: configured, or generated once and kept in the database (shared by replicas). */
export async function resolveJwtKey(store: ManagerStore, configured: string): Promise<string> {
  if (configured) return configured;
  return store.getOrSetSetting('jwt_key', randomBytes(32).toString('hex'));
}

/** The well-known demo password, used only with `auth.demoCredentials: true`. */
export const DEMO_ROOT_PASSWORD = 'dragonfly';

/** What seedStore did with root's password, for the start-up log. */
export type RootPasswordOutcome = 'created' | 'rotated' | 'unchanged' | 'kept';

/**
 * root's password from `auth.rootPassword` (or the demo one), applied at every start: a changed
 * Secret plus a restart rotates it. Empty and no demo: an existing root keeps its password.
 */
export function rootPasswordOf(auth: { rootPassword: string; demoCredentials: boolean }): string | undefined {
  if (auth.rootPassword) return auth.rootPassword;
  return auth.demoCredentials ? DEMO_ROOT_PASSWORD : undefined;
}

/** First-start data (roles, user root, cluster-1) and root's password from the config. Idempotent. */
export async function seedStore(store: ManagerStore, rootPassword: string | undefined): Promise<RootPasswordOutcome> {
  for (const role of ROLES) await store.ensureRole(role);
  let outcome: RootPasswordOutcome = 'kept';
  const existingRoot = await store.getUserByName('root');
  if (!existingRoot) {
    if (rootPassword === undefined) {
      throw new FailedPreconditionError('auth.rootPassword is empty and there is no user root yet: set auth.rootPassword (e.g. env DFMANAGER__auth__rootPassword from a Secret), or auth.demoCredentials: true for the well-known demo password');
    }
    try {
      const root = await store.createUser({ name: 'root', email: '', passwordHash: await bcrypt.hash(rootPassword, BCRYPT_COST) });
      await store.addUserRole(root.id, ROOT_ROLE);
      outcome = 'created';
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err; // another replica seeded it
    }
  } else if (rootPassword !== undefined) {
    if (await bcrypt.compare(rootPassword, existingRoot.passwordHash)) outcome = 'unchanged';
    else {
      await store.updateUserPassword(existingRoot.id, await bcrypt.hash(rootPassword, BCRYPT_COST));
      outcome = 'rotated';
    }
  }
  const existing = (await store.getSchedulerCluster(1)) ?? (await store.listSchedulerClusters({ name: 'cluster-1' })).items[0];
  if (!existing) {
    try {
      await store.createCluster(
        { name: 'cluster-1', bio: '', config: { candidate_parent_limit: 4, filter_parent_limit: 40, job_rate_limit: 10 }, clientConfig: { load_limit: 200 }, scopes: { idc: '', location: '', cidrs: [], hostnames: [] }, isDefault: true },
        { name: 'cluster-1', bio: '', config: { load_limit: 2000 } },
        1,
      );
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
  }
  return outcome;
}
