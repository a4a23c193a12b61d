// Original file: services/proto/manager.proto

import type { SeedPeer as _manager_v2_SeedPeer, SeedPeer__Output as _manager_v2_SeedPeer__Output } from '../../manager/v2/SeedPeer';

export interface ListSeedPeersResponse {
  'seedPeers'?: (_manager_v2_SeedPeer)[];
}

export interface ListSeedPeersResponse__Output {
  'seedPeers': (_manager_v2_SeedPeer__Output)[];
}
