/** Opens the configured store (SQLite file or MySQL/MariaDB) and brings its schema up to date. */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import type { ManagerConfig } from '../../common/config/manager';
import { MysqlDriver, SqliteDriver, type SqlDriver } from './driver';
import { migrate } from './migrations';
import { SqlManagerStore } from './sql-store';
import type { ManagerStore } from './types';

export * from './types';
export { SqlManagerStore } from './sql-store';
export { MysqlDriver, SqliteDriver } from './driver';
export { migrate, LATEST_SCHEMA_VERSION } from './migrations';

/** `database.sqlite.file`, or `<server.workHome>/manager.db`. */
export function sqliteFileOf(config: ManagerConfig): string {
  return config.database.sqlite.file || path.join(config.server.workHome, 'manager.db');
}

export async function openStore(config: ManagerConfig): Promise<ManagerStore> {
  let driver: SqlDriver;
  if (config.database.type === 'sqlite') {
    const file = sqliteFileOf(config);
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    driver = new SqliteDriver(file);
  } else {
    const m = config.database.mysql;
    driver = await MysqlDriver.connect({ host: m.host, port: m.port, user: m.user, password: m.password, database: m.dbname });
  }
  try {
    if (driver.dialect === 'sqlite' || config.database.mysql.migrate) await migrate(driver);
  } catch (err) {
    await driver.close().catch(() => undefined);
    throw err;
  }
  return new SqlManagerStore(driver);
}
