export * from './primitives';
export * from './manager';
export * from './scheduler';
export * from './dfdaemon';
export * from './dfinit';
export * from './load';
export * from './cluster-spec';
export * from './compat';
