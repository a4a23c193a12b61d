/** Builders for scheduler unit tests: hosts, tasks and peers without gRPC. */
import { Host, Peer, Task, type HostInfo } from '../../../services/scheduler/resource/model';

let seq = 0;

export function makeHost(over: Partial<HostInfo> = {}): Host {
  seq++;
  const info: HostInfo = {
    id: `10.0.0.${seq}-host${seq}`,
    type: 'NORMAL_HOST',
    hostname: `host${seq}`,
    ip: `10.0.0.${seq}`,
    port: 65000,
    downloadPort: 65002,
    idc: '',
    location: '',
    disableShared: false,
    concurrentUploadLimit: 10,
    concurrentUploadCount: 0,
    uploadCount: 0,
    uploadFailedCount: 0,
    maxTxBandwidth: 0,
    txBandwidth: 0,
    schedulerClusterId: 1,
    ...over,
  };
  return new Host(info, 0, 0);
}

export function makeTask(pieceCount = 10, pieceLength = 4 * 1024 * 1024): Task {
  seq++;
  const task = new Task({ id: `task-${seq}`, url: `http://origin/file-${seq}`, filteredQueryParams: [], requestHeader: {} }, 0);
  task.setMetadata(pieceCount * pieceLength, pieceLength);
  return task;
}

/** A peer of `task` on `host` in `state`, holding `pieces`; pool-indexed like the service does. */
export function makePeer(task: Task, host: Host, state: Peer['state'], pieces: number[] = []): Peer {
  seq++;
  const peer = new Peer(`${host.info.ip}-${host.info.hostname}-peer${seq}`, task, host, 0);
  peer.state = state;
  for (const n of pieces) peer.markPiece(n);
  task.peers.set(peer.id, peer);
  host.peers.add(peer);
  if (state === 'BackToSource') task.originPeers.add(peer);
  if (state === 'BackToSource' || state === 'Succeeded' || (state === 'Running' && pieces.length > 0)) task.addToPool(peer);
  return peer;
}
