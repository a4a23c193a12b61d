/**
 * libuv's thread pool runs every file call of a daemon (open, write, fsync, rename, statfs):
 * with its default of 4 threads a few fsyncs in flight hold up the file work of every other
 * task, which made 16 small downloads at a time barely faster than one after another. Imported
 * first by the programs' entry points: the pool is sized when first used, and an explicit
 * UV_THREADPOOL_SIZE in the environment wins.
 */
export const THREAD_POOL_SIZE = 16;

process.env.UV_THREADPOOL_SIZE ??= String(THREAD_POOL_SIZE);
