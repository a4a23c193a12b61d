// Original file: services/proto/manager.proto

import type { SeedPeerCluster as _manager_v2_SeedPeerCluster, SeedPeerCluster__Output as _manager_v2_SeedPeerCluster__Output } from '../../manager/v2/SeedPeerCluster';
import type { Long } from '@grpc/proto-loader';

export interface SeedPeer {
  'id'?: (number | string | Long);
  'hostname'?: (string);
  'type'?: (string);
  'idc'?: (string);
  'location'?: (string);
  'ip'?: (string);
  'port'?: (number);
  'downloadPort'?: (number);
  'state'?: (string);
  'seedPeerClusterId'?: (number | string | Long);
  'seedPeerCluster'?: (_manager_v2_SeedPeerCluster | null);
}

export interface SeedPeer__Output {
  'id': (number);
  'hostname': (string);
  'type': (string);
  'idc': (string);
  'location': (string);
  'ip': (string);
  'port': (number);
  'downloadPort': (number);
  'state': (string);
  'seedPeerClusterId': (number);
  'seedPeerCluster': (_manager_v2_SeedPeerCluster__Output | null);
}
