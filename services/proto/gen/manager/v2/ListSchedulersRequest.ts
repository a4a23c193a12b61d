// Original file: services/proto/manager.proto

import type { SourceType as _manager_v2_SourceType, SourceType__Output as _manager_v2_SourceType__Output } from '../../manager/v2/SourceType';
import type { Long } from '@grpc/proto-loader';

export interface ListSchedulersRequest {
  'sourceType'?: (_manager_v2_SourceType);
  'hostname'?: (string);
  'ip'?: (string);
  'idc'?: (string);
  'location'?: (string);
  'version'?: (string);
  'commit'?: (string);
  'schedulerClusterId'?: (number | string | Long);
  'seedPeerClusterId'?: (number | string | Long);
  '_idc'?: "idc";
  '_location'?: "location";
}

export interface ListSchedulersRequest__Output {
  'sourceType': (_manager_v2_SourceType__Output);
  'hostname': (string);
  'ip': (string);
  'idc'?: (string);
  'location'?: (string);
  'version': (string);
  'commit': (string);
  'schedulerClusterId': (number);
  'seedPeerClusterId': (number);
  '_idc'?: "idc";
  '_location'?: "location";
}
