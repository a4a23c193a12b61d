// Original file: services/proto/manager.proto

import type { SourceType as _manager_v2_SourceType, SourceType__Output as _manager_v2_SourceType__Output } from '../../manager/v2/SourceType';
import type { Long } from '@grpc/proto-loader';

export interface DeleteSeedPeerRequest {
  'sourceType'?: (_manager_v2_SourceType);
  'hostname'?: (string);
  'ip'?: (string);
  'seedPeerClusterId'?: (number | string | Long);
}

export interface DeleteSeedPeerRequest__Output {
  'sourceType': (_manager_v2_SourceType__Output);
  'hostname': (string);
  'ip': (string);
  'seedPeerClusterId': (number);
}
