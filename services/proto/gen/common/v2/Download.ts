// Original file: services/proto/common.proto

import type { Range as _common_v2_Range, Range__Output as _common_v2_Range__Output } from '../../common/v2/Range';
import type { TaskType as _common_v2_TaskType, TaskType__Output as _common_v2_TaskType__Output } from '../../common/v2/TaskType';
import type { Priority as _common_v2_Priority, Priority__Output as _common_v2_Priority__Output } from '../../common/v2/Priority';
import type { Long } from '@grpc/proto-loader';

export interface Download {
  'url'?: (string);
  'digest'?: (string);
  'range'?: (_common_v2_Range | null);
  'type'?: (_common_v2_TaskType);
  'tag'?: (string);
  'application'?: (string);
  'priority'?: (_common_v2_Priority);
  'filteredQueryParams'?: (string)[];
  'requestHeader'?: ({[key: string]: string});
  'pieceLength'?: (number | string | Long);
  'outputPath'?: (string);
  'timeoutMs'?: (number | string | Long);
  'disableBackToSource'?: (boolean);
  'needBackToSource'?: (boolean);
  'metadataOnly'?: (boolean);
  'remoteIp'?: (string);
  'overwrite'?: (boolean);
  'forceHardLink'?: (boolean);
  '_digest'?: "digest";
  '_range'?: "range";
  '_tag'?: "tag";
  '_application'?: "application";
  '_pieceLength'?: "pieceLength";
  '_outputPath'?: "outputPath";
  '_timeoutMs'?: "timeoutMs";
  '_remoteIp'?: "remoteIp";
}

export interface Download__Output {
  'url': (string);
  'digest'?: (string);
  'range'?: (_common_v2_Range__Output | null);
  'type': (_common_v2_TaskType__Output);
  'tag'?: (string);
  'application'?: (string);
  'priority': (_common_v2_Priority__Output);
  'filteredQueryParams': (string)[];
  'requestHeader': ({[key: string]: string});
  'pieceLength'?: (number);
  'outputPath'?: (string);
  'timeoutMs'?: (number);
  'disableBackToSource': (boolean);
  'needBackToSource': (boolean);
  'metadataOnly': (boolean);
  'remoteIp'?: (string);
  'overwrite': (boolean);
  'forceHardLink': (boolean);
  '_digest'?: "digest";
  '_range'?: "range";
  '_tag'?: "tag";
  '_application'?: "application";
  '_pieceLength'?: "pieceLength";
  '_outputPath'?: "outputPath";
  '_timeoutMs'?: "timeoutMs";
  '_remoteIp'?: "remoteIp";
}
