// Original file: services/proto/common.proto

import type { TrafficType as _common_v2_TrafficType, TrafficType__Output as _common_v2_TrafficType__Output } from '../../common/v2/TrafficType';
import type { Long } from '@grpc/proto-loader';

export interface Piece {
  'number'?: (number);
  'parentId'?: (string);
  'offset'?: (number | string | Long);
  'length'?: (number | string | Long);
  'digest'?: (string);
  'trafficType'?: (_common_v2_TrafficType);
  'costNs'?: (number | string | Long);
  'createdAtMs'?: (number | string | Long);
  '_parentId'?: "parentId";
}

export interface Piece__Output {
  'number': (number);
  'parentId'?: (string);
  'offset': (number);
  'length': (number);
  'digest': (string);
  'trafficType': (_common_v2_TrafficType__Output);
  'costNs': (number);
  'createdAtMs': (number);
  '_parentId'?: "parentId";
}
