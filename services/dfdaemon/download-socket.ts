/**
 * The download API's unix socket. DfdaemonDownload.DownloadTask names a file the daemon writes
 * (as root on a node), so it is served on this socket only, never on TCP, and the socket is
 * created with its final mode and group before anyone can connect: it is bound inside a
 * private (0700) directory, chmod/chown'ed there, then renamed into place.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { InvalidArgumentError, startGrpcServer, type GrpcServerHandle } from '../common';
import { dfdaemonDownloadService } from '../proto';
import { downloadHandlers } from './grpc-services';
import type { TaskManager } from './task-manager';

export interface DownloadSocketOptions {
  readonly socket: string;
  /** Octal, e.g. "0600". */
  readonly socketMode: string;
  /** Group name or gid; '' keeps the daemon's group. */
  readonly socketGroup: string | number;
}

/** gid of a group given by name (looked up in /etc/group) or number. */
export async function gidOf(group: string | number, groupFile = '/etc/group'): Promise<number> {
  if (typeof group === 'number') return group;
  if (/^\d+$/.test(group)) return Number(group);
  const text = await fsp.readFile(groupFile, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new InvalidArgumentError(`download.downloadGRPC.unixListen.socketGroup: no group named "${group}" in ${groupFile}`);
}

export interface DownloadSocketHandle {
  readonly path: string;
  close(): Promise<void>;
}

export async function serveDownloadSocket(engine: TaskManager, options: DownloadSocketOptions): Promise<DownloadSocketHandle> {
  const mode = parseInt(options.socketMode, 8);
  const gid = options.socketGroup === '' ? undefined : await gidOf(options.socketGroup);
  const dir = path.dirname(options.socket);
  await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
  const staging = await fsp.mkdtemp(path.join(dir, '.dfdaemon-sock-'));
  let server: GrpcServerHandle | undefined;
  try {
    const bound = path.join(staging, 's');
    server = await startGrpcServer(`unix:${bound}`, [
      { name: 'dfdaemon.v2.DfdaemonDownload', definition: dfdaemonDownloadService(), handlers: downloadHandlers(engine) },
    ]);
    await fsp.chmod(bound, mode);
    if (gid !== undefined) await fsp.chown(bound, -1, gid);
    // A stale socket from an earlier run is replaced; rename is atomic, so the path never
    // names a socket with looser permissions.
    await fsp.rename(bound, options.socket);
  } catch (err) {
    await server?.shutdown(0);
    throw err;
  } finally {
    await fsp.rm(staging, { recursive: true, force: true });
  }
  const handle = server;
  return {
    path: options.socket,
    close: async () => {
      await handle.shutdown(2000);
      await fsp.rm(options.socket, { force: true });
    },
  };
}
