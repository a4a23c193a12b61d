/**
 * Versioned schema. Each migration runs once, in order, recorded in `schema_migrations`.
 * The statements are written in the SQL subset SQLite and MySQL/MariaDB share; only the
 * auto-increment id column differs. Add new migrations at the end, never edit old ones.
 */
import type { SqlDriver } from './driver';
import { MysqlDriver } from './driver';

interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: (id: string) => string[];
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    statements: (id) => [
      `CREATE TABLE scheduler_cluster (
        id ${id}, name VARCHAR(256) NOT NULL, bio VARCHAR(1024) NOT NULL, config MEDIUMTEXT NOT NULL,
        client_config MEDIUMTEXT NOT NULL, scopes MEDIUMTEXT NOT NULL, is_default TINYINT NOT NULL,
        created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
      'CREATE UNIQUE INDEX uk_scheduler_cluster_name ON scheduler_cluster (name)',
      `CREATE TABLE seed_peer_cluster (
        id ${id}, name VARCHAR(256) NOT NULL, bio VARCHAR(1024) NOT NULL, config MEDIUMTEXT NOT NULL,
        created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
      'CREATE UNIQUE INDEX uk_seed_peer_cluster_name ON seed_peer_cluster (name)',
      `CREATE TABLE seed_peer_cluster_scheduler_cluster (
        seed_peer_cluster_id BIGINT NOT NULL, scheduler_cluster_id BIGINT NOT NULL,
        PRIMARY KEY (seed_peer_cluster_id, scheduler_cluster_id))`,
      'CREATE INDEX idx_link_scheduler_cluster ON seed_peer_cluster_scheduler_cluster (scheduler_cluster_id)',
      `CREATE TABLE scheduler (
        id ${id}, hostname VARCHAR(256) NOT NULL, ip VARCHAR(64) NOT NULL, port INT NOT NULL,
        idc VARCHAR(1024) NOT NULL, location VARCHAR(1024) NOT NULL, state VARCHAR(32) NOT NULL,
        features MEDIUMTEXT NOT NULL, config MEDIUMTEXT NOT NULL, scheduler_cluster_id BIGINT NOT NULL,
        last_keep_alive_at BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
      'CREATE UNIQUE INDEX uk_scheduler ON scheduler (hostname, ip, scheduler_cluster_id)',
      'CREATE INDEX idx_scheduler_cluster_state ON scheduler (scheduler_cluster_id, state)',
      `CREATE TABLE seed_peer (
        id ${id}, hostname VARCHAR(256) NOT NULL, type VARCHAR(32) NOT NULL, ip VARCHAR(64) NOT NULL,
        port INT NOT NULL, download_port INT NOT NULL, idc VARCHAR(1024) NOT NULL, location VARCHAR(1024) NOT NULL,
        state VARCHAR(32) NOT NULL, seed_peer_cluster_id BIGINT NOT NULL, last_keep_alive_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
      'CREATE UNIQUE INDEX uk_seed_peer ON seed_peer (hostname, ip, seed_peer_cluster_id)',
      'CREATE INDEX idx_seed_peer_cluster_state ON seed_peer (seed_peer_cluster_id, state)',
      `CREATE TABLE \`user\` (
        id ${id}, name VARCHAR(256) NOT NULL, email VARCHAR(256) NOT NULL, encrypted_password VARCHAR(512) NOT NULL,
        state VARCHAR(32) NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
      'CREATE UNIQUE INDEX uk_user_name ON `user` (name)',
      `CREATE TABLE role (id ${id}, name VARCHAR(64) NOT NULL)`,
      'CREATE UNIQUE INDEX uk_role_name ON role (name)',
      'CREATE TABLE user_role (user_id BIGINT NOT NULL, role_id BIGINT NOT NULL, PRIMARY KEY (user_id, role_id))',
      `CREATE TABLE personal_access_token (
        id ${id}, name VARCHAR(256) NOT NULL, bio VARCHAR(1024) NOT NULL, token VARCHAR(256) NOT NULL,
        scopes MEDIUMTEXT NOT NULL, state VARCHAR(32) NOT NULL, expired_at BIGINT NOT NULL, user_id BIGINT NOT NULL,
        created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
      'CREATE UNIQUE INDEX uk_personal_access_token ON personal_access_token (token)',
      `CREATE TABLE job (
        id ${id}, type VARCHAR(64) NOT NULL, state VARCHAR(32) NOT NULL, args MEDIUMTEXT NOT NULL,
        result MEDIUMTEXT NOT NULL, user_id BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
      'CREATE TABLE setting (name VARCHAR(128) NOT NULL PRIMARY KEY, value MEDIUMTEXT NOT NULL)',
    ],
  },
  {
    version: 2,
    name: 'jobs per scheduler cluster, peer inventory',
    statements: (id) => [
      "ALTER TABLE job ADD COLUMN task_id VARCHAR(64) NOT NULL DEFAULT ''",
      'ALTER TABLE job ADD COLUMN deadline_at BIGINT NOT NULL DEFAULT 0',
      'CREATE INDEX idx_job_state ON job (state)',
      `CREATE TABLE job_scheduler_cluster (
        job_id BIGINT NOT NULL, scheduler_cluster_id BIGINT NOT NULL, state VARCHAR(32) NOT NULL,
        result MEDIUMTEXT NOT NULL, error MEDIUMTEXT NOT NULL, attempts INT NOT NULL, updated_at BIGINT NOT NULL,
        PRIMARY KEY (job_id, scheduler_cluster_id))`,
      `CREATE TABLE peer (
        id ${id}, host_id VARCHAR(1024) NOT NULL, hostname VARCHAR(256) NOT NULL, type VARCHAR(32) NOT NULL,
        ip VARCHAR(64) NOT NULL, port INT NOT NULL, download_port INT NOT NULL, idc VARCHAR(1024) NOT NULL,
        location VARCHAR(1024) NOT NULL, scheduler_cluster_id BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
      'CREATE INDEX idx_peer_scheduler_cluster ON peer (scheduler_cluster_id)',
    ],
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** Applies pending migrations; returns the versions applied now. */
export async function migrate(driver: SqlDriver): Promise<number[]> {
  const work = async () => {
    await driver.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INT NOT NULL PRIMARY KEY, name VARCHAR(256) NOT NULL, applied_at BIGINT NOT NULL)');
    const done = new Set((await driver.all('SELECT version FROM schema_migrations')).map((r) => Number(r.version)));
    const applied: number[] = [];
    const id = driver.dialect === 'mysql' ? 'BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY' : 'INTEGER PRIMARY KEY AUTOINCREMENT';
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      // MySQL commits DDL implicitly, so a migration is not atomic there; each statement is
      // still idempotent to re-run only via a fresh database. SQLite gets a real transaction.
      await driver.transaction(async (tx) => {
        for (const sql of m.statements(id)) await tx.run(sql);
        await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, Date.now()]);
      });
      applied.push(m.version);
    }
    return applied;
  };
  return driver instanceof MysqlDriver ? driver.withNamedLock('dragonfly_manager_migrate', work) : work();
}
