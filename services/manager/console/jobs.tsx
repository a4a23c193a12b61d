/**
 * Jobs → Preheats / Tasks on the manager's jobs API (POST/GET /api/v1/jobs, upstream shape).
 * A manager without that API answers 404 (or 503 when jobs need Redis): the page says so.
 */
import { useState } from 'preact/hooks';
import { api, ApiError, type Cluster, type Job } from './api';
import { ErrorBanner, Field, formatTime, problemsByField, StateBadge, useLoad } from './ui';

type JobsAvailability = { ok: true; jobs: Job[] } | { ok: false; why: string };

async function loadJobs(): Promise<JobsAvailability> {
  try {
    return { ok: true, jobs: await api.get<Job[]>('/jobs?per_page=100') };
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return { ok: false, why: 'This manager has no jobs API (GET /api/v1/jobs answered 404): preheat, task search and task deletion are unavailable.' };
    if (err instanceof ApiError && err.status === 503) return { ok: false, why: `The jobs API is unavailable: ${err.message}` };
    throw err;
  }
}

export function JobsPage({ tab, canWrite }: { tab: 'preheats' | 'tasks'; canWrite: boolean }) {
  const jobs = useLoad(loadJobs, []);
  const clusters = useLoad(() => api.get<Cluster[]>('/clusters?per_page=1000'), []);
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">Jobs</h1>
      <nav class="tabs" aria-label="Job kinds">
        <a href="#/jobs/preheats" aria-current={tab === 'preheats' ? 'page' : undefined}>
          Preheats
        </a>
        <a href="#/jobs/tasks" aria-current={tab === 'tasks' ? 'page' : undefined}>
          Tasks
        </a>
      </nav>
      <ErrorBanner error={jobs.error ?? clusters.error} />
      {jobs.data && !jobs.data.ok && (
        <p class="banner banner-warning" role="status" data-jobs-api="missing">
          {jobs.data.why}
        </p>
      )}
      {jobs.data?.ok && (
        <>
          {canWrite && tab === 'preheats' && <PreheatForm clusters={clusters.data ?? []} onCreated={jobs.reload} />}
          {canWrite && tab === 'tasks' && <TaskForms clusters={clusters.data ?? []} onCreated={jobs.reload} />}
          <JobList jobs={jobs.data.jobs.filter((j) => (tab === 'preheats' ? j.type === 'preheat' : j.type !== 'preheat'))} />
        </>
      )}
    </section>
  );
}

function ClusterChoice({ clusters, chosen, onChange }: { clusters: Cluster[]; chosen: number[]; onChange: (ids: number[]) => void }) {
  return (
    <fieldset>
      <legend>Clusters</legend>
      <small class="hint">None chosen: every cluster.</small>
      {clusters.map((c) => (
        <div class="field field-check" key={c.id}>
          <input
            id={`job-cluster-${c.id}`}
            type="checkbox"
            checked={chosen.includes(c.scheduler_cluster_id)}
            onChange={(e) => onChange(e.currentTarget.checked ? [...chosen, c.scheduler_cluster_id] : chosen.filter((id) => id !== c.scheduler_cluster_id))}
          />
          <label for={`job-cluster-${c.id}`}>{c.name}</label>
        </div>
      ))}
    </fieldset>
  );
}

const PREHEAT_FIELDS = ['args.type', 'args.url', 'args.platform', 'args.tag', 'args.application', 'args.filteredQueryParams', 'args.username', 'args.password', 'scheduler_cluster_ids'];

function PreheatForm({ clusters, onCreated }: { clusters: Cluster[]; onCreated: () => void }) {
  const [v, setV] = useState({ type: 'image', url: '', platform: 'linux/amd64', tag: '', application: '', filteredQueryParams: '', username: '', password: '' });
  const [chosen, setChosen] = useState<number[]>([]);
  const [error, setError] = useState<unknown>();
  const [created, setCreated] = useState<Job | undefined>();
  const { byField, rest } = problemsByField(error, PREHEAT_FIELDS);
  const input = (key: keyof typeof v, label: string, type = 'text', hint?: string) => (
    <Field label={label} hint={hint} error={byField[`args.${key}`]}>
      {(p) => <input {...p} type={type} value={v[key]} autocomplete={type === 'password' ? 'off' : undefined} onInput={(e) => setV({ ...v, [key]: e.currentTarget.value })} />}
    </Field>
  );
  const submit = (e: Event) => {
    e.preventDefault();
    setError(undefined);
    const args: Record<string, string> = { type: v.type, url: v.url.trim() };
    for (const key of ['tag', 'application', 'filteredQueryParams', 'username', 'password'] as const) if (v[key] !== '') args[key] = v[key];
    if (v.type === 'image' && v.platform !== '') args.platform = v.platform;
    api.post<Job>('/jobs', { type: 'preheat', args, ...(chosen.length > 0 ? { scheduler_cluster_ids: chosen } : {}) }).then(
      (job) => {
        setCreated(job);
        onCreated();
      },
      setError,
    );
  };
  return (
    <form class="form" onSubmit={submit} noValidate aria-labelledby="preheat-title">
      <h2 id="preheat-title">Create preheat</h2>
      <Field label="Type" error={byField['args.type']}>
        {(p) => (
          <select {...p} value={v.type} onChange={(e) => setV({ ...v, type: e.currentTarget.value })}>
            <option value="image">image</option>
            <option value="file">file</option>
          </select>
        )}
      </Field>
      {input('url', 'URL', 'url', v.type === 'image' ? 'Image manifest URL, e.g. https://ghcr.io/v2/org/app/manifests/1.0' : 'File URL')}
      {v.type === 'image' && input('platform', 'Platform', 'text', 'For an image index, e.g. linux/amd64.')}
      {input('tag', 'Tag')}
      {input('application', 'Application')}
      {input('filteredQueryParams', 'Filtered query params', 'text', 'Separated by "&", e.g. Expires&Signature.')}
      {v.type === 'image' && input('username', 'Username')}
      {v.type === 'image' && input('password', 'Password', 'password')}
      <ClusterChoice clusters={clusters} chosen={chosen} onChange={setChosen} />
      {byField.scheduler_cluster_ids && <p class="field-error">{byField.scheduler_cluster_ids}</p>}
      {rest && (
        <p class="banner banner-error" role="alert">
          {rest}
        </p>
      )}
      <div class="actions">
        <button type="submit" class="primary">
          Save
        </button>
        {created && <span role="status">Created job {created.id}.</span>}
      </div>
    </form>
  );
}

function TaskForms({ clusters, onCreated }: { clusters: Cluster[]; onCreated: () => void }) {
  const [taskId, setTaskId] = useState('');
  const [url, setUrl] = useState('');
  const [chosen, setChosen] = useState<number[]>([]);
  const [error, setError] = useState<unknown>();
  const [status, setStatus] = useState('');
  const { byField, rest } = problemsByField(error, ['args.task_id', 'args.url', 'scheduler_cluster_ids']);
  const run = (type: 'get_task' | 'delete_task') => {
    setError(undefined);
    const args: Record<string, string> = {};
    if (taskId.trim()) args.task_id = taskId.trim();
    if (url.trim()) args.url = url.trim();
    api.post<Job>('/jobs', { type, args, ...(chosen.length > 0 ? { scheduler_cluster_ids: chosen } : {}) }).then(
      (job) => {
        setStatus(`Created ${type} job ${job.id}.`);
        onCreated();
      },
      setError,
    );
  };
  return (
    <form class="form" onSubmit={(e) => (e.preventDefault(), run('get_task'))} noValidate aria-labelledby="task-title">
      <h2 id="task-title">Search or delete a task</h2>
      <Field label="Task ID" error={byField['args.task_id']}>
        {(p) => <input {...p} value={taskId} onInput={(e) => setTaskId(e.currentTarget.value)} />}
      </Field>
      <Field label="URL" hint="Instead of a task ID: the URL it was downloaded from." error={byField['args.url']}>
        {(p) => <input {...p} type="url" value={url} onInput={(e) => setUrl(e.currentTarget.value)} />}
      </Field>
      <ClusterChoice clusters={clusters} chosen={chosen} onChange={setChosen} />
      {rest && (
        <p class="banner banner-error" role="alert">
          {rest}
        </p>
      )}
      <div class="actions">
        <button type="submit" class="primary">
          Search
        </button>
        <button type="button" class="danger" onClick={() => run('delete_task')}>
          Delete task
        </button>
        <span role="status">{status}</span>
      </div>
    </form>
  );
}

function targetOf(job: Job): string {
  const target = job.args?.url ?? job.args?.task_id;
  return typeof target === 'string' ? target : '';
}

function JobList({ jobs }: { jobs: Job[] }) {
  if (jobs.length === 0) return <p class="note">No jobs yet.</p>;
  return (
    <table class="table">
      <thead>
        <tr>
          <th scope="col">ID</th>
          <th scope="col">Type</th>
          <th scope="col">State</th>
          <th scope="col">Target</th>
          <th scope="col">Result per cluster</th>
          <th scope="col">Created</th>
        </tr>
      </thead>
      <tbody>
        {jobs.map((j) => (
          <tr key={j.id}>
            <td>{j.id}</td>
            <td>{j.type}</td>
            <td>
              <StateBadge state={j.state ?? j.status ?? 'UNKNOWN'} />
            </td>
            <td>
              <code>{targetOf(j)}</code>
            </td>
            <td>
              <pre class="result">{j.result === undefined || j.result === null ? '—' : JSON.stringify(j.result, null, 1)}</pre>
            </td>
            <td>{formatTime(j.created_at)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
