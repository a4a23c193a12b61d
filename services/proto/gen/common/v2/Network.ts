// Original file: services/proto/common.proto

import type { Long } from '@grpc/proto-loader';

export interface Network {
  'idc'?: (string);
  'location'?: (string);
  'maxTxBandwidth'?: (number | string | Long);
  'txBandwidth'?: (number | string | Long);
}

export interface Network__Output {
  'idc': (string);
  'location': (string);
  'maxTxBandwidth': (number);
  'txBandwidth': (number);
}
