// Original file: services/proto/manager.proto

import type { SchedulerCluster as _manager_v2_SchedulerCluster, SchedulerCluster__Output as _manager_v2_SchedulerCluster__Output } from '../../manager/v2/SchedulerCluster';
import type { SeedPeer as _manager_v2_SeedPeer, SeedPeer__Output as _manager_v2_SeedPeer__Output } from '../../manager/v2/SeedPeer';
import type { Long } from '@grpc/proto-loader';

export interface Scheduler {
  'id'?: (number | string | Long);
  'hostname'?: (string);
  'idc'?: (string);
  'location'?: (string);
  'ip'?: (string);
  'port'?: (number);
  'state'?: (string);
  'schedulerClusterId'?: (number | string | Long);
  'schedulerCluster'?: (_manager_v2_SchedulerCluster | null);
  'seedPeers'?: (_manager_v2_SeedPeer)[];
  'features'?: (string)[];
}

export interface Scheduler__Output {
  'id': (number);
  'hostname': (string);
  'idc': (string);
  'location': (string);
  'ip': (string);
  'port': (number);
  'state': (string);
  'schedulerClusterId': (number);
  'schedulerCluster': (_manager_v2_SchedulerCluster__Output | null);
  'seedPeers': (_manager_v2_SeedPeer__Output)[];
  'features': (string)[];
}
