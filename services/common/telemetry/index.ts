export * from './tracing';
export * from './propagation';
export * from './spans';
