import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Download as _common_v2_Download, Download__Output as _common_v2_Download__Output } from './common/v2/Download';
import type { Empty as _common_v2_Empty, Empty__Output as _common_v2_Empty__Output } from './common/v2/Empty';
import type { Host as _common_v2_Host, Host__Output as _common_v2_Host__Output } from './common/v2/Host';
import type { Network as _common_v2_Network, Network__Output as _common_v2_Network__Output } from './common/v2/Network';
import type { Peer as _common_v2_Peer, Peer__Output as _common_v2_Peer__Output } from './common/v2/Peer';
import type { Piece as _common_v2_Piece, Piece__Output as _common_v2_Piece__Output } from './common/v2/Piece';
import type { Range as _common_v2_Range, Range__Output as _common_v2_Range__Output } from './common/v2/Range';
import type { Task as _common_v2_Task, Task__Output as _common_v2_Task__Output } from './common/v2/Task';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  common: {
    v2: {
      Download: MessageTypeDefinition<_common_v2_Download, _common_v2_Download__Output>
      Empty: MessageTypeDefinition<_common_v2_Empty, _common_v2_Empty__Output>
      Host: MessageTypeDefinition<_common_v2_Host, _common_v2_Host__Output>
      HostType: EnumTypeDefinition
      Network: MessageTypeDefinition<_common_v2_Network, _common_v2_Network__Output>
      Peer: MessageTypeDefinition<_common_v2_Peer, _common_v2_Peer__Output>
      Piece: MessageTypeDefinition<_common_v2_Piece, _common_v2_Piece__Output>
      Priority: EnumTypeDefinition
      Range: MessageTypeDefinition<_common_v2_Range, _common_v2_Range__Output>
      SizeScope: EnumTypeDefinition
      Task: MessageTypeDefinition<_common_v2_Task, _common_v2_Task__Output>
      TaskType: EnumTypeDefinition
      TrafficType: EnumTypeDefinition
    }
  }
}

