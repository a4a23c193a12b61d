/** The manager console: sign in, then clusters, jobs, users and tokens, all through the REST API. Hash routes (#/clusters/2). */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, clearSession, loadSession, saveSession, setUnauthenticatedHandler, type Session, type User } from './api';
import { ClusterDetailPage, ClusterFormPage, ClustersPage } from './clusters';
import { JobsPage } from './jobs';
import { ErrorBanner, problemsByField, Field } from './ui';
import { PasswordPage, TokensPage, UsersPage } from './users';

function currentRoute(): string {
  const hash = location.hash.replace(/^#/, '');
  return hash.startsWith('/') ? hash : '/clusters';
}

function navigate(to: string): void {
  location.hash = `#${to}`;
}

interface Me {
  user: User;
  roles: string[];
}

function App() {
  const [session, setSession] = useState<Session | undefined>(loadSession);
  const [me, setMe] = useState<Me | undefined>();
  const [meError, setMeError] = useState<unknown>();
  const [route, setRoute] = useState(currentRoute);

  useEffect(() => {
    const onHash = () => setRoute(currentRoute());
    window.addEventListener('hashchange', onHash);
    setUnauthenticatedHandler(() => {
      clearSession();
      setSession(undefined);
      setMe(undefined);
    });
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => {
    if (!session) return;
    setMeError(undefined);
    Promise.all([api.get<User>(`/users/${session.userId}`), api.get<string[]>(`/users/${session.userId}/roles`)]).then(([user, roles]) => setMe({ user, roles }), setMeError);
  }, [session]);

  // Move focus to the new page's heading so keyboard and screen-reader users land on it.
  useEffect(() => {
    const heading = document.getElementById('page-title');
    if (heading && document.activeElement === document.body) {
      heading.setAttribute('tabindex', '-1');
      heading.focus();
    }
  }, [route, me]);

  if (!session) return <SignIn onSignedIn={setSession} />;
  if (meError) return <ErrorBanner error={meError} />;
  if (!me) return <p aria-busy="true">Loading…</p>;

  const canWrite = me.roles.includes('root');
  const signOut = () => {
    void fetch('/api/v1/users/signout', { method: 'POST', credentials: 'same-origin' }).catch(() => undefined);
    clearSession();
    setSession(undefined);
    setMe(undefined);
    navigate('/clusters');
  };
  const section = route.split('/')[1];
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Dragonfly</span>
        <nav aria-label="Main">
          <a href="#/clusters" aria-current={section === 'clusters' ? 'page' : undefined}>
            Clusters
          </a>
          <a href="#/jobs/preheats" aria-current={section === 'jobs' ? 'page' : undefined}>
            Jobs
          </a>
          {canWrite && (
            <a href="#/users" aria-current={section === 'users' ? 'page' : undefined}>
              Users
            </a>
          )}
          <a href="#/tokens" aria-current={section === 'tokens' ? 'page' : undefined}>
            Personal access tokens
          </a>
        </nav>
        <div class="account">
          <span>
            {me.user.name} <small>({me.roles.join(', ') || 'no role'})</small>
          </span>
          <a href="#/password">Change password</a>
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Page route={route} canWrite={canWrite} userId={me.user.id} />
      </main>
    </>
  );
}

function Page({ route, canWrite, userId }: { route: string; canWrite: boolean; userId: number }) {
  const parts = route.split('/').filter(Boolean);
  const id = (s: string | undefined) => (s && /^\d+$/.test(s) ? Number(s) : undefined);
  if (parts[0] === 'clusters') {
    if (parts[1] === 'new') return canWrite ? <ClusterFormPage navigate={navigate} /> : <NoAccess />;
    const clusterId = id(parts[1]);
    if (clusterId !== undefined && parts[2] === 'edit') return canWrite ? <ClusterFormPage id={clusterId} navigate={navigate} /> : <NoAccess />;
    if (clusterId !== undefined && parts.length === 2) return <ClusterDetailPage id={clusterId} canWrite={canWrite} navigate={navigate} />;
    if (parts.length === 1) return <ClustersPage canWrite={canWrite} />;
  }
  if (parts[0] === 'jobs') return <JobsPage tab={parts[1] === 'tasks' ? 'tasks' : 'preheats'} canWrite={canWrite} />;
  if (parts[0] === 'users' && parts.length === 1) return canWrite ? <UsersPage canWrite={canWrite} selfId={userId} /> : <NoAccess />;
  if (parts[0] === 'tokens' && parts.length === 1) return <TokensPage canWrite={canWrite} />;
  if (parts[0] === 'password' && parts.length === 1) return <PasswordPage userId={userId} />;
  return (
    <section>
      <h1 id="page-title" tabIndex={-1}>
        Not found
      </h1>
      <p>
        No page at <code>{route}</code>. <a href="#/clusters">Clusters</a>
      </p>
    </section>
  );
}

function NoAccess() {
  return (
    <section>
      <h1 id="page-title" tabIndex={-1}>
        Permission denied
      </h1>
      <p>This page needs the root role.</p>
    </section>
  );
}

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const { byField, rest } = problemsByField(error, ['name', 'password']);
  const submit = (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    api.post<{ token: string }>('/users/signin', { name: name.trim(), password }).then(
      (s) => onSignedIn(saveSession(s.token)),
      (err: unknown) => {
        setBusy(false);
        setError(err);
      },
    );
  };
  return (
    <main class="signin" id="main">
      <form class="form card" onSubmit={submit} noValidate aria-labelledby="page-title">
        <h1 id="page-title">Dragonfly</h1>
        <p class="hint">Sign in to the manager console.</p>
        <Field label="Name" error={byField.name}>
          {(p) => <input {...p} name="name" autocomplete="username" value={name} onInput={(e) => setName(e.currentTarget.value)} />}
        </Field>
        <Field label="Password" error={byField.password}>
          {(p) => <input {...p} name="password" type="password" autocomplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />}
        </Field>
        {rest && (
          <p class="banner banner-error" role="alert">
            {rest}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}

render(<App />, document.getElementById('app')!);
