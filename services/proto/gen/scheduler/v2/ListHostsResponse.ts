// Original file: services/proto/scheduler.proto

import type { Host as _common_v2_Host, Host__Output as _common_v2_Host__Output } from '../../common/v2/Host';

export interface ListHostsResponse {
  'hosts'?: (_common_v2_Host)[];
}

export interface ListHostsResponse__Output {
  'hosts': (_common_v2_Host__Output)[];
}
