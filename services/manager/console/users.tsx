/** Users (list, change role; root only), Personal access tokens (create, shown once, revoke), change own password. */
import { useState } from 'preact/hooks';
import { api, saveSession, type PersonalAccessToken, type User } from './api';
import { ConfirmDialog, ErrorBanner, Field, formatTime, problemsByField, StateBadge, useLoad } from './ui';

const ROLES = ['root', 'guest'] as const;

async function loadUsers(): Promise<Array<User & { role: string }>> {
  const users = await api.get<User[]>('/users?per_page=1000');
  return Promise.all(users.map(async (u) => ({ ...u, role: (await api.get<string[]>(`/users/${u.id}/roles`)).join(', ') })));
}

export function UsersPage({ canWrite, selfId }: { canWrite: boolean; selfId: number }) {
  const users = useLoad(loadUsers, []);
  const [error, setError] = useState<unknown>();
  const changeRole = async (user: User & { role: string }, role: string) => {
    setError(undefined);
    try {
      await api.put(`/users/${user.id}/roles/${role}`);
      for (const old of user.role.split(', ').filter((r) => r && r !== role)) await api.del(`/users/${user.id}/roles/${old}`);
    } catch (err) {
      setError(err);
    }
    users.reload();
  };
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">Users</h1>
      <ErrorBanner error={users.error ?? error} />
      {users.data && (
        <table class="table">
          <thead>
            <tr>
              <th scope="col">ID</th>
              <th scope="col">Name</th>
              <th scope="col">Email</th>
              <th scope="col">State</th>
              <th scope="col">Role</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            {users.data.map((u) => (
              <tr key={u.id} data-user={u.name}>
                <td>{u.id}</td>
                <td>{u.name}</td>
                <td>{u.email || '—'}</td>
                <td>
                  <StateBadge state={u.state} />
                </td>
                <td>
                  {canWrite && u.id !== selfId ? (
                    <>
                      <label class="visually-hidden" for={`role-${u.id}`}>
                        Role of {u.name}
                      </label>
                      <select id={`role-${u.id}`} value={ROLES.find((r) => u.role.split(', ').includes(r)) ?? ''} onChange={(e) => void changeRole(u, e.currentTarget.value)}>
                        {!ROLES.some((r) => u.role.split(', ').includes(r)) && <option value="">(none)</option>}
                        {ROLES.map((r) => (
                          <option key={r} value={r}>
                            {r}
                          </option>
                        ))}
                      </select>
                    </>
                  ) : (
                    u.role || '(none)'
                  )}
                </td>
                <td>{formatTime(u.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

const SCOPES = ['job', 'cluster'] as const;

export function TokensPage({ canWrite }: { canWrite: boolean }) {
  const tokens = useLoad(() => api.get<PersonalAccessToken[]>('/personal-access-tokens?per_page=1000'), []);
  const [revoking, setRevoking] = useState<PersonalAccessToken | undefined>();
  const [revokeError, setRevokeError] = useState<unknown>();
  const [shown, setShown] = useState<PersonalAccessToken | undefined>();
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">Personal access tokens</h1>
      {canWrite && (
        <CreateToken
          onCreated={(t) => {
            setShown(t);
            tokens.reload();
          }}
        />
      )}
      {shown?.token && (
        <div class="banner banner-ok" role="status">
          <p>
            Token <strong>{shown.name}</strong> created. Copy it now: it is not shown again.
          </p>
          <label for="new-token">New token</label>
          <input id="new-token" class="token" readOnly value={shown.token} onFocus={(e) => e.currentTarget.select()} />
        </div>
      )}
      <ErrorBanner error={tokens.error ?? revokeError} />
      {tokens.data && tokens.data.length === 0 && <p class="note">No personal access tokens.</p>}
      {tokens.data && tokens.data.length > 0 && (
        <table class="table">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Description</th>
              <th scope="col">Scopes</th>
              <th scope="col">State</th>
              <th scope="col">Expires</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {tokens.data.map((t) => (
              <tr key={t.id} data-token={t.name}>
                <td>{t.name}</td>
                <td>{t.bio || '—'}</td>
                <td>{t.scopes.length > 0 ? t.scopes.join(', ') : 'all'}</td>
                <td>
                  <StateBadge state={t.state} />
                </td>
                <td>{formatTime(t.expired_at)}</td>
                <td>
                  {canWrite && (
                    <button type="button" class="danger" aria-label={`Revoke ${t.name}`} onClick={() => setRevoking(t)}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {revoking && (
        <ConfirmDialog
          open
          title="Revoke token"
          confirmLabel="Revoke"
          onCancel={() => setRevoking(undefined)}
          onConfirm={() => {
            setRevokeError(undefined);
            api.del(`/personal-access-tokens/${revoking.id}`).then(
              () => {
                if (shown?.id === revoking.id) setShown(undefined);
                setRevoking(undefined);
                tokens.reload();
              },
              (err: unknown) => {
                setRevoking(undefined);
                setRevokeError(err);
              },
            );
          }}
        >
          <p>
            Revoke token <strong>{revoking.name}</strong>? Programs using it lose access at once.
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}

function CreateToken({ onCreated }: { onCreated: (t: PersonalAccessToken) => void }) {
  const [name, setName] = useState('');
  const [bio, setBio] = useState('');
  const [scopes, setScopes] = useState<string[]>([]);
  const [expires, setExpires] = useState('');
  const [error, setError] = useState<unknown>();
  const { byField, rest } = problemsByField(error, ['name', 'bio', 'scopes', 'expired_at']);
  const submit = (e: Event) => {
    e.preventDefault();
    setError(undefined);
    let expiredAt: string | undefined;
    if (expires !== '') {
      const d = new Date(`${expires}T23:59:59`);
      expiredAt = Number.isNaN(d.getTime()) ? expires : d.toISOString();
    }
    api.post<PersonalAccessToken>('/personal-access-tokens', { name: name.trim(), bio, scopes, ...(expiredAt ? { expired_at: expiredAt } : {}) }).then((t) => {
      setName('');
      setBio('');
      setScopes([]);
      setExpires('');
      onCreated(t);
    }, setError);
  };
  return (
    <form class="form" onSubmit={submit} noValidate aria-labelledby="token-title">
      <h2 id="token-title">Create token</h2>
      <Field label="Name" error={byField.name}>
        {(p) => <input {...p} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
      </Field>
      <Field label="Description" error={byField.bio}>
        {(p) => <input {...p} value={bio} onInput={(e) => setBio(e.currentTarget.value)} />}
      </Field>
      <Field label="Expiration" hint="Default: one year from now." error={byField.expired_at}>
        {(p) => <input {...p} type="date" value={expires} onInput={(e) => setExpires(e.currentTarget.value)} />}
      </Field>
      <fieldset>
        <legend>Scopes</legend>
        <small class="hint">None chosen: every scope.</small>
        {SCOPES.map((s) => (
          <div class="field field-check" key={s}>
            <input id={`scope-${s}`} type="checkbox" checked={scopes.includes(s)} onChange={(e) => setScopes(e.currentTarget.checked ? [...scopes, s] : scopes.filter((x) => x !== s))} />
            <label for={`scope-${s}`}>{s}</label>
          </div>
        ))}
        {byField.scopes && <span class="field-error">{byField.scopes}</span>}
      </fieldset>
      {rest && (
        <p class="banner banner-error" role="alert">
          {rest}
        </p>
      )}
      <div class="actions">
        <button type="submit" class="primary">
          Save
        </button>
      </div>
    </form>
  );
}

export function PasswordPage({ userId }: { userId: number }) {
  const [old, setOld] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState<unknown>();
  const [done, setDone] = useState(false);
  const { byField, rest } = problemsByField(error, ['old_password', 'new_password']);
  const mismatch = again !== '' && again !== next ? 'The two new passwords differ.' : undefined;
  const submit = (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setDone(false);
    if (next !== again) return;
    // The change ends every older session; the answer carries this one's successor.
    api.post<{ token?: string }>(`/users/${userId}/reset_password`, { old_password: old, new_password: next }).then((answer) => {
      if (answer?.token) saveSession(answer.token);
      setOld('');
      setNext('');
      setAgain('');
      setDone(true);
    }, setError);
  };
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">Change password</h1>
      <form class="form" onSubmit={submit} noValidate>
        <Field label="Old password" error={byField.old_password}>
          {(p) => <input {...p} type="password" autocomplete="current-password" value={old} onInput={(e) => setOld(e.currentTarget.value)} />}
        </Field>
        <Field label="New password" hint="8 to 20 characters." error={byField.new_password}>
          {(p) => <input {...p} type="password" autocomplete="new-password" value={next} onInput={(e) => setNext(e.currentTarget.value)} />}
        </Field>
        <Field label="Confirm new password" error={mismatch}>
          {(p) => <input {...p} type="password" autocomplete="new-password" value={again} onInput={(e) => setAgain(e.currentTarget.value)} />}
        </Field>
        {rest && (
          <p class="banner banner-error" role="alert">
            {rest}
          </p>
        )}
        <div class="actions">
          <button type="submit" class="primary" disabled={Boolean(mismatch)}>
            Save
          </button>
          {done && <span role="status">Password changed.</span>}
        </div>
      </form>
    </section>
  );
}
