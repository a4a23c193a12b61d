// Original file: services/proto/manager.proto

import type { Long } from '@grpc/proto-loader';

export interface SchedulerCluster {
  'id'?: (number | string | Long);
  'name'?: (string);
  'bio'?: (string);
  'config'?: (Buffer | Uint8Array | string);
  'clientConfig'?: (Buffer | Uint8Array | string);
  'scopes'?: (Buffer | Uint8Array | string);
  'isDefault'?: (boolean);
}

export interface SchedulerCluster__Output {
  'id': (number);
  'name': (string);
  'bio': (string);
  'config': (Buffer);
  'clientConfig': (Buffer);
  'scopes': (Buffer);
  'isDefault': (boolean);
}
