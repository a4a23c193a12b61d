// Original file: services/proto/manager.proto

import type { SourceType as _manager_v2_SourceType, SourceType__Output as _manager_v2_SourceType__Output } from '../../manager/v2/SourceType';
import type { Long } from '@grpc/proto-loader';

export interface UpdateSeedPeerRequest {
  'sourceType'?: (_manager_v2_SourceType);
  'hostname'?: (string);
  'type'?: (string);
  'idc'?: (string);
  'location'?: (string);
  'ip'?: (string);
  'port'?: (number);
  'downloadPort'?: (number);
  'seedPeerClusterId'?: (number | string | Long);
}

export interface UpdateSeedPeerRequest__Output {
  'sourceType': (_manager_v2_SourceType__Output);
  'hostname': (string);
  'type': (string);
  'idc': (string);
  'location': (string);
  'ip': (string);
  'port': (number);
  'downloadPort': (number);
  'seedPeerClusterId': (number);
}
