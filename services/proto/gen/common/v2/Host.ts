// Original file: services/proto/common.proto

import type { HostType as _common_v2_HostType, HostType__Output as _common_v2_HostType__Output } from '../../common/v2/HostType';
import type { Network as _common_v2_Network, Network__Output as _common_v2_Network__Output } from '../../common/v2/Network';
import type { Long } from '@grpc/proto-loader';

export interface Host {
  'id'?: (string);
  'type'?: (_common_v2_HostType);
  'hostname'?: (string);
  'ip'?: (string);
  'port'?: (number);
  'downloadPort'?: (number);
  'network'?: (_common_v2_Network | null);
  'schedulerClusterId'?: (number | string | Long);
  'disableShared'?: (boolean);
  'proxyPort'?: (number);
  'concurrentUploadLimit'?: (number);
  'concurrentUploadCount'?: (number);
  'uploadCount'?: (number | string | Long);
  'uploadFailedCount'?: (number | string | Long);
}

export interface Host__Output {
  'id': (string);
  'type': (_common_v2_HostType__Output);
  'hostname': (string);
  'ip': (string);
  'port': (number);
  'downloadPort': (number);
  'network': (_common_v2_Network__Output | null);
  'schedulerClusterId': (number);
  'disableShared': (boolean);
  'proxyPort': (number);
  'concurrentUploadLimit': (number);
  'concurrentUploadCount': (number);
  'uploadCount': (number);
  'uploadFailedCount': (number);
}
