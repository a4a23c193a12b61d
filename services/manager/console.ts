/** A minimal console at GET /: sign in, then list clusters (with scopes), schedulers and seed peers via the REST API. */
export const CONSOLE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>Dragonfly manager</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}code{font-size:90%}</style>
</head><body>
<h1>Dragonfly manager</h1>
<form id="signin"><input name="name" placeholder="name" value="root"> <input name="password" type="password" placeholder="password"> <button>Sign in</button> <span id="status"></span></form>
<div id="content"></div>
<script>
const $ = (s) => document.querySelector(s);
const esc = (v) => String(v).replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
let token = '';
async function api(path) {
  const r = await fetch('/api/v1' + path + (path.includes('?') ? '&' : '?') + 'per_page=1000', { headers: { Authorization: 'Bearer ' + token } });
  if (!r.ok) throw new Error(path + ': ' + r.status + ' ' + (await r.json()).message);
  return r.json();
}
function table(title, rows, cols) {
  return '<h2>' + title + '</h2><table><tr>' + cols.map((c) => '<th>' + c[0] + '</th>').join('') + '</tr>' +
    rows.map((r) => '<tr>' + cols.map((c) => '<td>' + esc(c[1](r)) + '</td>').join('') + '</tr>').join('') + '</table>';
}
async function load() {
  const [clusters, schedulers, seedPeers] = await Promise.all([api('/clusters'), api('/schedulers'), api('/seed-peers')]);
  $('#content').innerHTML =
    table('Clusters', clusters, [['id', (c) => c.id], ['name', (c) => c.name], ['default', (c) => c.is_default], ['scopes', (c) => JSON.stringify(c.scopes)], ['config', (c) => JSON.stringify(c.scheduler_cluster_config)]]) +
    table('Schedulers', schedulers, [['id', (s) => s.id], ['host', (s) => s.host_name], ['ip', (s) => s.ip + ':' + s.port], ['cluster', (s) => s.scheduler_cluster_id], ['state', (s) => s.state], ['features', (s) => s.features.join(',')]]) +
    table('Seed peers', seedPeers, [['id', (p) => p.id], ['host', (p) => p.host_name], ['ip', (p) => p.ip + ':' + p.port], ['cluster', (p) => p.seed_peer_cluster_id], ['state', (p) => p.state]]);
}
$('#signin').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const r = await fetch('/api/v1/users/signin', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: f.get('name'), password: f.get('password') }) });
  const body = await r.json();
  if (!r.ok) { $('#status').textContent = body.message; return; }
  token = body.token; $('#status').textContent = 'signed in';
  load().catch((err) => { $('#status').textContent = err.message; });
});
</script></body></html>`;
