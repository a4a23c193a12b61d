// Original file: services/proto/manager.proto

import type { SourceType as _manager_v2_SourceType, SourceType__Output as _manager_v2_SourceType__Output } from '../../manager/v2/SourceType';
import type { Long } from '@grpc/proto-loader';

export interface UpdateSchedulerRequest {
  'sourceType'?: (_manager_v2_SourceType);
  'hostname'?: (string);
  'schedulerClusterId'?: (number | string | Long);
  'idc'?: (string);
  'location'?: (string);
  'ip'?: (string);
  'port'?: (number);
  'features'?: (string)[];
  'config'?: (Buffer | Uint8Array | string);
}

export interface UpdateSchedulerRequest__Output {
  'sourceType': (_manager_v2_SourceType__Output);
  'hostname': (string);
  'schedulerClusterId': (number);
  'idc': (string);
  'location': (string);
  'ip': (string);
  'port': (number);
  'features': (string)[];
  'config': (Buffer);
}
