// Original file: services/proto/manager.proto

import type { SourceType as _manager_v2_SourceType, SourceType__Output as _manager_v2_SourceType__Output } from '../../manager/v2/SourceType';
import type { Long } from '@grpc/proto-loader';

export interface ListSeedPeersRequest {
  'sourceType'?: (_manager_v2_SourceType);
  'hostname'?: (string);
  'ip'?: (string);
  'schedulerClusterId'?: (number | string | Long);
}

export interface ListSeedPeersRequest__Output {
  'sourceType': (_manager_v2_SourceType__Output);
  'hostname': (string);
  'ip': (string);
  'schedulerClusterId': (number);
}
