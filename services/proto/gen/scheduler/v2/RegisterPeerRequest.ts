// Original file: services/proto/scheduler.proto

import type { Download as _common_v2_Download, Download__Output as _common_v2_Download__Output } from '../../common/v2/Download';

export interface RegisterPeerRequest {
  'download'?: (_common_v2_Download | null);
}

export interface RegisterPeerRequest__Output {
  'download': (_common_v2_Download__Output | null);
}
