/**
 * A minimal SQL driver both stores share: `?` placeholders, rows as plain objects, and
 * transactions. SQLite (better-sqlite3, synchronous) serializes access with a mutex so an
 * async transaction never interleaves with other statements; MySQL uses a pool and one
 * connection per transaction. Unique-key violations come back as ConflictError.
 */
import Database from 'better-sqlite3';
import * as mysql from 'mysql2/promise';
import { ConflictError, UnavailableError } from '../../common/errors';

export type SqlValue = string | number | null;
export type Row = Record<string, unknown>;

export interface SqlExecutor {
  all(sql: string, params?: readonly SqlValue[]): Promise<Row[]>;
  run(sql: string, params?: readonly SqlValue[]): Promise<{ insertId: number; affectedRows: number }>;
}

export interface SqlDriver extends SqlExecutor {
  readonly dialect: 'sqlite' | 'mysql';
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

function translateError(err: unknown): unknown {
  const e = err as { code?: string; message?: string };
  if (e.code === 'ER_DUP_ENTRY' || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return new ConflictError(`already exists: ${e.message ?? 'duplicate key'}`);
  }
  if (e.code === 'ECONNREFUSED' || e.code === 'PROTOCOL_CONNECTION_LOST' || e.code === 'ETIMEDOUT') {
    return new UnavailableError(`database unavailable: ${e.code}`);
  }
  return err;
}

/** A FIFO async mutex. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const previous = this.tail;
    this.tail = previous.then(() => next);
    await previous;
    return release;
  }
}

export class SqliteDriver implements SqlDriver {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly mutex = new Mutex();

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
  }

  private allSync(sql: string, params: readonly SqlValue[]): Row[] {
    const stmt = this.db.prepare(sql);
    return stmt.reader ? (stmt.all(...params) as Row[]) : (stmt.run(...params), []);
  }

  private runSync(sql: string, params: readonly SqlValue[]): { insertId: number; affectedRows: number } {
    const r = this.db.prepare(sql).run(...params);
    return { insertId: Number(r.lastInsertRowid), affectedRows: r.changes };
  }

  private readonly direct: SqlExecutor = {
    all: async (sql, params = []) => {
      try {
        return this.allSync(sql, params);
      } catch (err) {
        throw translateError(err);
      }
    },
    run: async (sql, params = []) => {
      try {
        return this.runSync(sql, params);
      } catch (err) {
        throw translateError(err);
      }
    },
  };

  async all(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    const release = await this.mutex.lock();
    try {
      return await this.direct.all(sql, params);
    } finally {
      release();
    }
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<{ insertId: number; affectedRows: number }> {
    const release = await this.mutex.lock();
    try {
      return await this.direct.run(sql, params);
    } finally {
      release();
    }
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const release = await this.mutex.lock();
    try {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(this.direct);
        this.db.exec('COMMIT');
        return result;
      } catch (err) {
        this.db.exec('ROLLBACK');
        throw err;
      }
    } finally {
      release();
    }
  }

  async close(): Promise<void> {
    const release = await this.mutex.lock();
    try {
      this.db.close();
    } finally {
      release();
    }
  }
}

export interface MysqlOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  connectionLimit?: number;
}

export class MysqlDriver implements SqlDriver {
  readonly dialect = 'mysql' as const;
  private readonly direct: SqlExecutor;
  constructor(private readonly pool: mysql.Pool) {
    this.direct = MysqlDriver.executor(pool);
  }

  /** Creates the database when missing, then a pool on it. */
  static async connect(options: MysqlOptions): Promise<MysqlDriver> {
    const bootstrap = await mysql.createConnection({ host: options.host, port: options.port, user: options.user, password: options.password, connectTimeout: 10_000 });
    try {
      await bootstrap.query(`CREATE DATABASE IF NOT EXISTS \`${options.database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    } finally {
      await bootstrap.end();
    }
    const pool = mysql.createPool({
      host: options.host,
      port: options.port,
      user: options.user,
      password: options.password,
      database: options.database,
      connectionLimit: options.connectionLimit ?? 10,
      // BIGINT ids and timestamps come back as JS numbers (ids and epoch ms fit in 2^53).
      supportBigNumbers: true,
      bigNumberStrings: false,
      connectTimeout: 10_000,
    });
    return new MysqlDriver(pool);
  }

  private static executor(conn: mysql.Pool | mysql.PoolConnection): SqlExecutor {
    return {
      all: async (sql, params = []) => {
        try {
          const [rows] = await conn.query(sql, [...params]);
          return rows as Row[];
        } catch (err) {
          throw translateError(err);
        }
      },
      run: async (sql, params = []) => {
        try {
          const [result] = await conn.query<mysql.ResultSetHeader>(sql, [...params]);
          return { insertId: Number(result.insertId), affectedRows: result.affectedRows };
        } catch (err) {
          throw translateError(err);
        }
      },
    };
  }

  all(sql: string, params?: readonly SqlValue[]): Promise<Row[]> {
    return this.direct.all(sql, params);
  }
  run(sql: string, params?: readonly SqlValue[]): Promise<{ insertId: number; affectedRows: number }> {
    return this.direct.run(sql, params);
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    let conn: mysql.PoolConnection;
    try {
      conn = await this.pool.getConnection();
    } catch (err) {
      throw translateError(err);
    }
    try {
      await conn.beginTransaction();
      try {
        const result = await fn(MysqlDriver.executor(conn));
        await conn.commit();
        return result;
      } catch (err) {
        await conn.rollback().catch(() => undefined);
        throw err;
      }
    } finally {
      conn.release();
    }
  }

  /** Runs `fn` holding a MySQL named lock, so concurrent managers migrate one at a time. */
  async withNamedLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const conn = await this.pool.getConnection();
    try {
      await conn.query('SELECT GET_LOCK(?, 60)', [name]);
      try {
        return await fn();
      } finally {
        await conn.query('SELECT RELEASE_LOCK(?)', [name]);
      }
    } finally {
      conn.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
