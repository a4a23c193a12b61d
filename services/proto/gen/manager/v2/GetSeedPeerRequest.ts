// Original file: services/proto/manager.proto

import type { SourceType as _manager_v2_SourceType, SourceType__Output as _manager_v2_SourceType__Output } from '../../manager/v2/SourceType';
import type { Long } from '@grpc/proto-loader';

export interface GetSeedPeerRequest {
  'sourceType'?: (_manager_v2_SourceType);
  'hostname'?: (string);
  'seedPeerClusterId'?: (number | string | Long);
  'ip'?: (string);
}

export interface GetSeedPeerRequest__Output {
  'sourceType': (_manager_v2_SourceType__Output);
  'hostname': (string);
  'seedPeerClusterId': (number);
  'ip': (string);
}
