/** A unique MariaDB database and Redis key prefix per test file, dropped afterwards. */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import * as mysql from 'mysql2/promise';

export const MYSQL = { host: '127.0.0.1', port: 3306, user: 'root', password: '' };
export const REDIS_ADDR = '127.0.0.1:6379';

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

export async function dropDatabase(name: string): Promise<void> {
  const conn = await mysql.createConnection(MYSQL);
  try {
    await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
  } finally {
    await conn.end();
  }
}

export async function dropRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
  try {
    await redis.connect();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}
