// Original file: services/proto/scheduler.proto

import type { Host as _common_v2_Host, Host__Output as _common_v2_Host__Output } from '../../common/v2/Host';
import type { Long } from '@grpc/proto-loader';

export interface AnnounceHostRequest {
  'host'?: (_common_v2_Host | null);
  'intervalMs'?: (number | string | Long);
}

export interface AnnounceHostRequest__Output {
  'host': (_common_v2_Host__Output | null);
  'intervalMs': (number);
}
