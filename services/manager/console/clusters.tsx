/** Clusters: list, Add cluster / edit form, delete with confirmation, detail with "Install this cluster". */
import { useState } from 'preact/hooks';
import { api, ApiError, request, type Cluster, type Scheduler, type SeedPeer } from './api';
import { constructSnippet, helmValuesSnippet, type ManagerAddress } from './install-snippet';
import { ConfirmDialog, copyText, ErrorBanner, Field, formatTime, problemsByField, StateBadge, useLoad } from './ui';

const PER_PAGE = 1000;
/** The manager's own ports (constructs/endpoints.ts); the page's port may be a NodePort or a port-forward. */
const MANAGER_GRPC_PORT = 65003;
const MANAGER_REST_PORT = 8080;

export function ClustersPage({ canWrite }: { canWrite: boolean }) {
  const clusters = useLoad(() => api.get<Cluster[]>(`/clusters?per_page=${PER_PAGE}`), []);
  const [deleting, setDeleting] = useState<Cluster | undefined>();
  return (
    <section aria-labelledby="page-title">
      <div class="page-head">
        <h1 id="page-title">Clusters</h1>
        {canWrite && (
          <a class="button primary" href="#/clusters/new">
            Add cluster
          </a>
        )}
      </div>
      <ErrorBanner error={clusters.error} />
      {clusters.data && (
        <table class="table">
          <caption class="visually-hidden">Clusters</caption>
          <thead>
            <tr>
              <th scope="col">ID</th>
              <th scope="col">Name</th>
              <th scope="col">Description</th>
              <th scope="col">IDC</th>
              <th scope="col">Location</th>
              <th scope="col">Default</th>
              <th scope="col">Created</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {clusters.data.map((c) => (
              <tr key={c.id} data-cluster={c.name}>
                <td>{c.id}</td>
                <td>
                  <a href={`#/clusters/${c.id}`}>{c.name}</a>
                </td>
                <td>{c.bio}</td>
                <td>{c.scopes.idc || '—'}</td>
                <td>{c.scopes.location || '—'}</td>
                <td>{c.is_default ? 'Yes' : 'No'}</td>
                <td>{formatTime(c.created_at)}</td>
                <td>
                  {canWrite && (
                    <div class="row-actions">
                      <a class="button" href={`#/clusters/${c.id}/edit`} aria-label={`Edit ${c.name}`}>
                        Edit
                      </a>
                      <button type="button" class="danger" onClick={() => setDeleting(c)} aria-label={`Delete ${c.name}`}>
                        Delete
                      </button>
                    </div>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {deleting && (
        <DeleteCluster
          cluster={deleting}
          onDone={(deleted) => {
            setDeleting(undefined);
            if (deleted) clusters.reload();
          }}
        />
      )}
      {!canWrite && <p class="note">You are signed in with read access: adding, editing and deleting clusters needs the root role.</p>}
    </section>
  );
}

function DeleteCluster({ cluster, onDone }: { cluster: Cluster; onDone: (deleted: boolean) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  return (
    <ConfirmDialog
      open
      title="Delete cluster"
      confirmLabel="Delete"
      busy={busy}
      onCancel={() => onDone(false)}
      onConfirm={() => {
        setBusy(true);
        api.del(`/clusters/${cluster.id}`).then(
          () => onDone(true),
          (err: unknown) => {
            setBusy(false);
            setError(err);
          },
        );
      }}
    >
      <p>
        Delete cluster <strong>{cluster.name}</strong> (ID {cluster.id})? Its schedulers and seed peers stop being served by this record.
      </p>
      <ErrorBanner error={error} />
    </ConfirmDialog>
  );
}

// ---- form ------------------------------------------------------------------------------

interface ClusterFormValues {
  name: string;
  bio: string;
  idc: string;
  location: string;
  cidrs: string;
  hostnames: string;
  isDefault: boolean;
  candidateParentLimit: string;
  filterParentLimit: string;
  jobRateLimit: string;
  seedPeerLoadLimit: string;
  peerLoadLimit: string;
}

const EMPTY_FORM: ClusterFormValues = {
  name: '',
  bio: '',
  idc: '',
  location: '',
  cidrs: '',
  hostnames: '',
  isDefault: false,
  candidateParentLimit: '4',
  filterParentLimit: '40',
  jobRateLimit: '10',
  seedPeerLoadLimit: '2000',
  peerLoadLimit: '200',
};

/** API field paths, longest first matching wins (see problemsByField). */
const FIELD_PATHS = {
  name: 'name',
  bio: 'bio',
  idc: 'scopes.idc',
  location: 'scopes.location',
  cidrs: 'scopes.cidrs',
  hostnames: 'scopes.hostnames',
  isDefault: 'is_default',
  candidateParentLimit: 'scheduler_cluster_config.candidate_parent_limit',
  filterParentLimit: 'scheduler_cluster_config.filter_parent_limit',
  jobRateLimit: 'scheduler_cluster_config.job_rate_limit',
  seedPeerLoadLimit: 'seed_peer_cluster_config.load_limit',
  peerLoadLimit: 'peer_cluster_config.load_limit',
} as const satisfies Record<keyof ClusterFormValues, string>;

function formOf(c: Cluster): ClusterFormValues {
  const n = (v: number | undefined, fallback: string) => (typeof v === 'number' ? String(v) : fallback);
  return {
    name: c.name,
    bio: c.bio,
    idc: c.scopes.idc,
    location: c.scopes.location,
    cidrs: c.scopes.cidrs.join('\n'),
    hostnames: c.scopes.hostnames.join('\n'),
    isDefault: c.is_default,
    candidateParentLimit: n(c.scheduler_cluster_config.candidate_parent_limit, EMPTY_FORM.candidateParentLimit),
    filterParentLimit: n(c.scheduler_cluster_config.filter_parent_limit, EMPTY_FORM.filterParentLimit),
    jobRateLimit: n(c.scheduler_cluster_config.job_rate_limit, EMPTY_FORM.jobRateLimit),
    seedPeerLoadLimit: n(c.seed_peer_cluster_config.load_limit, EMPTY_FORM.seedPeerLoadLimit),
    peerLoadLimit: n(c.peer_cluster_config.load_limit, EMPTY_FORM.peerLoadLimit),
  };
}

const lines = (v: string) =>
  v
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);
/** A number when the text is one; otherwise the text itself, so the API names the field. */
const numberOrText = (v: string): number | string => (v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v);

function bodyOf(v: ClusterFormValues) {
  return {
    name: v.name.trim(),
    bio: v.bio,
    scopes: { idc: v.idc.trim(), location: v.location.trim(), cidrs: lines(v.cidrs), hostnames: lines(v.hostnames) },
    is_default: v.isDefault,
    scheduler_cluster_config: { candidate_parent_limit: numberOrText(v.candidateParentLimit), filter_parent_limit: numberOrText(v.filterParentLimit), job_rate_limit: numberOrText(v.jobRateLimit) },
    seed_peer_cluster_config: { load_limit: numberOrText(v.seedPeerLoadLimit) },
    peer_cluster_config: { load_limit: numberOrText(v.peerLoadLimit) },
  };
}

export function ClusterFormPage({ id, navigate }: { id?: number; navigate: (to: string) => void }) {
  const existing = useLoad(() => (id === undefined ? Promise.resolve(undefined) : api.get<Cluster>(`/clusters/${id}`)), [id]);
  if (existing.loading) return <p aria-busy="true">Loading…</p>;
  if (existing.error) return <ErrorBanner error={existing.error} />;
  return <ClusterForm key={id ?? 'new'} initial={existing.data ? formOf(existing.data) : EMPTY_FORM} id={id} navigate={navigate} />;
}

function ClusterForm({ initial, id, navigate }: { initial: ClusterFormValues; id?: number; navigate: (to: string) => void }) {
  const [values, setValues] = useState(initial);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const { byField, rest } = problemsByField(error, Object.values(FIELD_PATHS));
  const set = (key: keyof ClusterFormValues) => (e: Event) => {
    const t = e.currentTarget as HTMLInputElement;
    setValues((v) => ({ ...v, [key]: t.type === 'checkbox' ? t.checked : t.value }));
  };
  const text = (key: Exclude<keyof ClusterFormValues, 'isDefault'>, label: string, hint?: string, type = 'text') => (
    <Field label={label} hint={hint} error={byField[FIELD_PATHS[key]]}>
      {(p) => <input {...p} name={key} type={type} value={values[key]} onInput={set(key)} />}
    </Field>
  );
  const area = (key: 'cidrs' | 'hostnames', label: string, hint: string) => (
    <Field label={label} hint={hint} error={byField[FIELD_PATHS[key]]}>
      {(p) => <textarea {...p} name={key} rows={3} value={values[key]} onInput={set(key)} />}
    </Field>
  );
  const submit = (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    const saved = id === undefined ? api.post<Cluster>('/clusters', bodyOf(values)) : api.patch<Cluster>(`/clusters/${id}`, bodyOf(values));
    saved.then(
      (c) => navigate(`/clusters/${c.id}`),
      (err: unknown) => {
        setBusy(false);
        setError(err);
      },
    );
  };
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">{id === undefined ? 'Add cluster' : `Edit cluster ${initial.name}`}</h1>
      <form class="form" onSubmit={submit} noValidate>
        <fieldset>
          <legend>Information</legend>
          {text('name', 'Name', 'Lowercase letters, digits and "-", e.g. cluster-2.')}
          {text('bio', 'Description')}
          <div class={`field field-check${byField.is_default ? ' field-invalid' : ''}`}>
            <input id="cluster-is-default" type="checkbox" name="isDefault" checked={values.isDefault} onChange={set('isDefault')} />
            <label for="cluster-is-default">Set as default</label>
            <small class="hint">Peers that match no cluster's scopes use the default cluster.</small>
          </div>
        </fieldset>
        <fieldset>
          <legend>Scopes</legend>
          {text('idc', 'IDC', 'Peers whose host.idc matches are served by this cluster; several separated by "|".')}
          {text('location', 'Location', 'From broad to narrow separated by "|", e.g. asia|cn|bj.')}
          {area('cidrs', 'CIDRs', 'One per line, e.g. 10.0.0.0/8.')}
          {area('hostnames', 'Hostnames', 'Regular expressions matched against peer hostnames, one per line.')}
        </fieldset>
        <fieldset>
          <legend>Config</legend>
          {text('candidateParentLimit', 'Candidate parent limit', '1 to 20.', 'number')}
          {text('filterParentLimit', 'Filter parent limit', '10 to 1000.', 'number')}
          {text('jobRateLimit', 'Job rate limit', 'Jobs per second.', 'number')}
          {text('seedPeerLoadLimit', 'Seed peer load limit', '1 to 50000.', 'number')}
          {text('peerLoadLimit', 'Peer load limit', '1 to 2000.', 'number')}
        </fieldset>
        {rest && (
          <p class="banner banner-error" role="alert">
            {rest}
          </p>
        )}
        <div class="actions">
          <a class="button" href={id === undefined ? '#/clusters' : `#/clusters/${id}`}>
            Cancel
          </a>
          <button type="submit" class="primary" disabled={busy}>
            Save
          </button>
        </div>
      </form>
    </section>
  );
}

// ---- detail ----------------------------------------------------------------------------

interface Detail {
  cluster: Cluster;
  schedulers: Scheduler[];
  seedPeers: SeedPeer[];
  /** Peers the manager knows of, or why the count is unavailable. */
  peers: { count: number } | { unavailable: string };
}

async function loadDetail(id: number): Promise<Detail> {
  const cluster = await api.get<Cluster>(`/clusters/${id}`);
  const [schedulers, seedPeers, peers] = await Promise.all([
    api.get<Scheduler[]>(`/schedulers?scheduler_cluster_id=${cluster.scheduler_cluster_id}&per_page=${PER_PAGE}`),
    cluster.seed_peer_cluster_id ? api.get<SeedPeer[]>(`/seed-peers?seed_peer_cluster_id=${cluster.seed_peer_cluster_id}&per_page=${PER_PAGE}`) : Promise.resolve([]),
    request<unknown[]>('GET', `/peers?scheduler_cluster_id=${cluster.scheduler_cluster_id}&per_page=1`).then(
      (a) => ({ count: a.total ?? a.body.length }),
      (err: unknown) => ({ unavailable: err instanceof ApiError && err.status === 404 ? 'this manager keeps no peer inventory (no /api/v1/peers)' : (err as Error).message }),
    ),
  ]);
  return { cluster, schedulers, seedPeers, peers };
}

export function ClusterDetailPage({ id, canWrite, navigate }: { id: number; canWrite: boolean; navigate: (to: string) => void }) {
  const detail = useLoad(() => loadDetail(id), [id]);
  const [deleting, setDeleting] = useState(false);
  if (detail.loading && !detail.data) return <p aria-busy="true">Loading…</p>;
  if (detail.error || !detail.data) return <ErrorBanner error={detail.error} />;
  const { cluster: c, schedulers, seedPeers, peers } = detail.data;
  const activeSchedulers = schedulers.filter((s) => s.state === 'active').length;
  const activeSeedPeers = seedPeers.filter((s) => s.state === 'active').length;
  return (
    <section aria-labelledby="page-title">
      <div class="page-head">
        <h1 id="page-title">Cluster {c.name}</h1>
        {canWrite && (
          <div class="actions">
            <a class="button" href={`#/clusters/${c.id}/edit`}>
              Edit
            </a>
            <button type="button" class="danger" onClick={() => setDeleting(true)}>
              Delete
            </button>
          </div>
        )}
      </div>
      <dl class="facts">
        <dt>Scheduler cluster ID</dt>
        <dd>{c.scheduler_cluster_id}</dd>
        <dt>Seed peer cluster ID</dt>
        <dd>{c.seed_peer_cluster_id || '—'}</dd>
        <dt>Description</dt>
        <dd>{c.bio || '—'}</dd>
        <dt>Default</dt>
        <dd>{c.is_default ? 'Yes' : 'No'}</dd>
        <dt>IDC</dt>
        <dd>{c.scopes.idc || '—'}</dd>
        <dt>Location</dt>
        <dd>{c.scopes.location || '—'}</dd>
        <dt>CIDRs</dt>
        <dd>{c.scopes.cidrs.join(', ') || '—'}</dd>
        <dt>Hostnames</dt>
        <dd>{c.scopes.hostnames.join(', ') || '—'}</dd>
        <dt>Candidate parent limit</dt>
        <dd>{c.scheduler_cluster_config.candidate_parent_limit ?? '—'}</dd>
        <dt>Filter parent limit</dt>
        <dd>{c.scheduler_cluster_config.filter_parent_limit ?? '—'}</dd>
        <dt>Seed peer load limit</dt>
        <dd>{c.seed_peer_cluster_config.load_limit ?? '—'}</dd>
        <dt>Peer load limit</dt>
        <dd>{c.peer_cluster_config.load_limit ?? '—'}</dd>
      </dl>
      <ul class="counts" aria-label="Counts">
        <li>
          <strong data-count="schedulers">{activeSchedulers}</strong> of {schedulers.length} schedulers active
        </li>
        <li>
          <strong data-count="seed-peers">{activeSeedPeers}</strong> of {seedPeers.length} seed peers active
        </li>
        <li>
          {'count' in peers ? (
            <>
              <strong data-count="peers">{peers.count}</strong> peers
            </>
          ) : (
            <>Peers: not available ({peers.unavailable})</>
          )}
        </li>
      </ul>
      <h2>Schedulers</h2>
      <HostTable rows={schedulers.map((s) => ({ id: s.id, hostname: s.host_name, address: `${s.ip}:${s.port}`, idc: s.idc, location: s.location, state: s.state, seen: s.last_keep_alive_at, extra: s.features.join(', ') }))} extraLabel="Features" empty="No scheduler has registered for this cluster yet." />
      <h2>Seed peers</h2>
      <HostTable rows={seedPeers.map((s) => ({ id: s.id, hostname: s.host_name, address: `${s.ip}:${s.port}`, idc: s.idc, location: s.location, state: s.state, seen: s.last_keep_alive_at, extra: `${s.type}, download port ${s.download_port}` }))} extraLabel="Type" empty="No seed peer has registered for this cluster yet." />
      <InstallPanel cluster={c} />
      {deleting && (
        <DeleteCluster
          cluster={c}
          onDone={(deleted) => {
            setDeleting(false);
            if (deleted) navigate('/clusters');
          }}
        />
      )}
    </section>
  );
}

interface HostRow {
  id: number;
  hostname: string;
  address: string;
  idc: string;
  location: string;
  state: string;
  seen: string | null;
  extra: string;
}

function HostTable({ rows, extraLabel, empty }: { rows: HostRow[]; extraLabel: string; empty: string }) {
  if (rows.length === 0) return <p class="note">{empty}</p>;
  return (
    <table class="table">
      <thead>
        <tr>
          <th scope="col">ID</th>
          <th scope="col">Hostname</th>
          <th scope="col">Address</th>
          <th scope="col">IDC</th>
          <th scope="col">Location</th>
          <th scope="col">State</th>
          <th scope="col">Last keep-alive</th>
          <th scope="col">{extraLabel}</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.id}>
            <td>{r.id}</td>
            <td>{r.hostname}</td>
            <td>
              <code>{r.address}</code>
            </td>
            <td>{r.idc || '—'}</td>
            <td>{r.location || '—'}</td>
            <td>
              <StateBadge state={r.state} />
            </td>
            <td>{formatTime(r.seen)}</td>
            <td>{r.extra}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function InstallPanel({ cluster }: { cluster: Cluster }) {
  const [manager, setManager] = useState<ManagerAddress>({ host: location.hostname, grpcPort: MANAGER_GRPC_PORT, restPort: MANAGER_REST_PORT });
  const [format, setFormat] = useState<'construct' | 'helm'>('construct');
  const [copied, setCopied] = useState<string>('');
  const snippet = format === 'construct' ? constructSnippet(cluster, manager) : helmValuesSnippet(cluster, manager);
  return (
    <section class="panel" aria-labelledby="install-title">
      <h2 id="install-title">Install this cluster</h2>
      <p>
        Deploy this cluster's scheduler, seed peer and peers in its Kubernetes cluster with the <code>RemoteCluster</code> construct, or with these Helm-style values. Both point at the manager
        below and carry this record's IDs and scopes.
      </p>
      <div class="inline-fields">
        <Field label="Manager host" hint="The address the other cluster reaches this manager at, e.g. its Service DNS name.">
          {(p) => <input {...p} value={manager.host} onInput={(e) => setManager({ ...manager, host: e.currentTarget.value })} />}
        </Field>
        <Field label="Manager gRPC port">
          {(p) => <input {...p} type="number" value={manager.grpcPort} onInput={(e) => setManager({ ...manager, grpcPort: Number(e.currentTarget.value) })} />}
        </Field>
        <Field label="Manager REST port">
          {(p) => <input {...p} type="number" value={manager.restPort} onInput={(e) => setManager({ ...manager, restPort: Number(e.currentTarget.value) })} />}
        </Field>
      </div>
      <div role="group" aria-label="Snippet format" class="tabs">
        <button type="button" aria-pressed={format === 'construct'} onClick={() => (setFormat('construct'), setCopied(''))}>
          RemoteCluster construct
        </button>
        <button type="button" aria-pressed={format === 'helm'} onClick={() => (setFormat('helm'), setCopied(''))}>
          Helm values
        </button>
      </div>
      <pre class="snippet" tabIndex={0} aria-label={format === 'construct' ? 'RemoteCluster construct code' : 'Helm values'}>
        <code>{snippet}</code>
      </pre>
      <div class="actions">
        <button
          type="button"
          class="primary"
          onClick={() => {
            setCopied('');
            copyText(snippet).then(
              () => setCopied(`Copied the ${format === 'construct' ? 'RemoteCluster code' : 'Helm values'} to the clipboard.`),
              (err: unknown) => setCopied(`Copy failed: ${(err as Error).message}`),
            );
          }}
        >
          Copy
        </button>
        <span role="status">{copied}</span>
      </div>
    </section>
  );
}
