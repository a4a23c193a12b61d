/**
 * `pprofPort`: an HTTP endpoint for on-demand CPU profiles, the Node counterpart of Go's
 * net/http/pprof. GET /debug/pprof/profile?seconds=N returns a V8 .cpuprofile (open it in
 * Chrome DevTools).
 */
import * as http from 'node:http';
import { Session } from 'node:inspector';
import { listen } from './http';

export async function startPprofServer(port: number, host = '127.0.0.1'): Promise<http.Server | undefined> {
  if (port < 0) return undefined;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/debug/pprof/profile') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'try /debug/pprof/profile?seconds=10' }));
      return;
    }
    const seconds = Math.min(Math.max(Number(url.searchParams.get('seconds') ?? 10) || 10, 1), 300);
    const session = new Session();
    session.connect();
    session.post('Profiler.enable', () =>
      session.post('Profiler.start', () => {
        setTimeout(() => {
          session.post('Profiler.stop', (err, result) => {
            session.disconnect();
            if (err) {
              res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ message: err.message }));
              return;
            }
            res.writeHead(200, { 'content-type': 'application/json', 'content-disposition': 'attachment; filename="cpu.cpuprofile"' });
            res.end(JSON.stringify(result.profile));
          });
        }, seconds * 1000);
      }),
    );
  });
  await listen(server, { host, port });
  return server;
}
