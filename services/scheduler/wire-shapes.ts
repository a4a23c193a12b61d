/**
 * The resource model in the shapes of the wire (common.v2 Host / Peer / Task). Host shapes
 * are cached per host until its announce changes them: a parent's host goes out in every
 * answer that names it.
 */
import type { Host as HostProto, Peer as PeerProto, Task as TaskProto } from '../proto';
import type { Host, HostInfo, Peer, Task } from './resource/model';

export class WireShapes {
  private readonly hosts = new WeakMap<Host, { info: HostInfo; proto: HostProto }>();
  private readonly candidateHosts = new WeakMap<Host, { info: HostInfo; proto: HostProto }>();

  host(host: Host): HostProto {
    const cached = this.hosts.get(host);
    if (cached && cached.info === host.info) return cached.proto;
    const i = host.info;
    const proto: HostProto = {
      id: i.id,
      type: i.type,
      hostname: i.hostname,
      ip: i.ip,
      port: i.port,
      downloadPort: i.downloadPort,
      network: { idc: i.idc, location: i.location, maxTxBandwidth: i.maxTxBandwidth, txBandwidth: i.txBandwidth },
      schedulerClusterId: i.schedulerClusterId,
      disableShared: i.disableShared,
      concurrentUploadLimit: i.concurrentUploadLimit,
      concurrentUploadCount: i.concurrentUploadCount,
      uploadCount: i.uploadCount,
      uploadFailedCount: i.uploadFailedCount,
    };
    this.hosts.set(host, { info: i, proto });
    return proto;
  }

  /** What a child needs of a parent's host: where to sync pieces and fetch bytes, and its kind. */
  candidateHost(host: Host): HostProto {
    const cached = this.candidateHosts.get(host);
    if (cached && cached.info === host.info) return cached.proto;
    const i = host.info;
    const proto: HostProto = { id: i.id, type: i.type, hostname: i.hostname, ip: i.ip, port: i.port, downloadPort: i.downloadPort, network: { idc: i.idc, location: i.location } };
    this.candidateHosts.set(host, { info: i, proto });
    return proto;
  }

  /** A peer; `full` false gives the candidate-parent form (its host trimmed, see candidateHost). */
  peer(peer: Peer, full = true): PeerProto {
    return {
      id: peer.id,
      priority: peer.priority as PeerProto['priority'],
      state: peer.state,
      host: full ? this.host(peer.host) : this.candidateHost(peer.host),
      needBackToSource: peer.needBackToSource,
      finishedPieceCount: peer.finishedPieceCount(),
    };
  }

  /** A task; with `forHost`, has_available_peer counts only peers on other hosts. */
  task(task: Task, forHost?: Host): TaskProto {
    return {
      id: task.id,
      type: 'STANDARD',
      url: task.info.url,
      digest: task.info.digest,
      tag: task.info.tag,
      application: task.info.application,
      contentLength: task.contentLength ?? 0,
      pieceCount: task.pieceCount,
      pieceLength: task.pieceLength,
      sizeScope: task.sizeScope,
      state: task.state,
      peerCount: task.peers.size,
      hasAvailablePeer: task.hasAvailablePeer(forHost),
      responseHeader: task.responseHeader,
    };
  }
}
