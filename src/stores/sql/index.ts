export { createTableStatements, schemaSql } from './ddl.ts';
export type {
  KyselyLike,
  MysqlPoolLike,
  PgPoolLike,
  SqlColumns,
  SqlDatabase,
  SqlDialect,
  SqliteDatabaseLike,
  SqlStoreOptions,
} from './options.ts';
export { SqlStore, sqlStore } from './store.ts';
