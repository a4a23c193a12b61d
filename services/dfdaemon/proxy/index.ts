export { startProxyServer, ProxyHandler, sliceStream, type ProxyServerOptions, type ProxyServerHandle } from './server';
export * from './routing';
export { createProxyMetrics, type ProxyMetrics } from './metrics';
export * from './policy';
