import { parseConfig } from '../../../services/common/config/load';
import * as mysql from 'mysql2/promise';
import { LATEST_SCHEMA_VERSION, openStore } from '../../../services/manager/store';
import { storeSuite } from '../../unit/manager/store-suite';
import { dropDatabase, MYSQL, uniqueName } from './db';

const dbname = uniqueName('mgr_store');
afterAll(() => dropDatabase(dbname));
const config = parseConfig('manager', { database: { type: 'mysql', mysql: { ...MYSQL, dbname } } });

storeSuite('MariaDB', () => openStore(config), () => openStore(config));

test('migrations are recorded in schema_migrations and not re-run', async () => {
  const store = await openStore(config); // third open: nothing pending
  await store.close();
  const conn = await mysql.createConnection({ ...MYSQL, database: dbname });
  try {
    const [rows] = await conn.query('SELECT version FROM schema_migrations ORDER BY version');
    expect((rows as Array<{ version: number }>).map((r) => r.version)).toEqual(Array.from({ length: LATEST_SCHEMA_VERSION }, (_, i) => i + 1));
  } finally {
    await conn.end();
  }
});
