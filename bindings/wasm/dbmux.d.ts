// TypeScript declarations of the dbmux-wasm package (written by hand, kept
// in step with src/wasm/mod.rs; scripts/test-wasm-package.sh type-checks a
// program against them).

/** A value bound to a `?` parameter. */
export type SqlParam = null | undefined | boolean | number | bigint | string | Uint8Array;

/** A value read back: INTEGER beyond 2^53 is a bigint, BLOB a Uint8Array. */
export type SqlValue = null | number | bigint | string | Uint8Array;

/** A row: a plain object keyed by column name. */
export type Row = Record<string, SqlValue>;

/** What every method throws: a JavaScript `Error` with dbmux's error code. */
export interface DbmuxError extends Error {
  name: "DbmuxError";
  /** The number of the error code, as in the C API (e.g. 4 connect_failed, 15 invalid_parameter). */
  code: number;
  /** The name of the error code, e.g. `"sql"`, `"connect_failed"`, `"read_only"`. */
  kind: string;
}

/** The health report: the fields of the Rust health JSON. */
export interface Health {
  status: "healthy" | "unhealthy";
  database_type: "sqlite";
  [field: string]: unknown;
}

/** Counters and pool state: the fields of the Rust debug JSON. */
export interface DebugInfo {
  backend: "sqlite";
  url: string;
  pool_size: number;
  pool_max_overflow: number;
  pool_checked_out: number;
  pool_checked_in: number;
  checkout_timeouts: number;
  connection_failures: number;
  last_connection_error: string | null;
  [field: string]: unknown;
}

/** Options of `Database.transaction`. */
export interface TransactionOptions {
  /** A read transaction: SQLite refuses writes in it (`read_only`). */
  readonly?: boolean;
}

/** The transaction handed to the function given to `Database.transaction`. */
export class Transaction {
  private constructor();
  /** As `Database.execute`, inside the transaction. */
  execute(sql: string, params?: SqlParam[]): number;
  /** As `Database.query`, inside the transaction. */
  query(sql: string, params?: SqlParam[]): Row[];
  free(): void;
}

/** A database: one dbmux manager over SQLite (one connection on wasm32). */
export class Database {
  private constructor();
  /**
   * Opens `url` (`sqlite::memory:`, `sqlite:///app.db` in memory, or any
   * SQLite URL dbmux accepts). Does not touch the database yet. A URL with
   * `?vfs=opfs-sahpool` needs `openAsync`, which installs that VFS.
   */
  static open(url: string): Database;
  /**
   * Opens `url` and its connection. With `?vfs=opfs-sahpool` it first
   * installs the OPFS VFS: the database then survives reloads. That works in
   * a dedicated Web Worker of a secure context; elsewhere the promise rejects
   * with a `connect_failed` DbmuxError naming the VFS.
   */
  static openAsync(url: string): Promise<Database>;
  /** Runs one statement with `?` parameters; returns the rows changed. */
  execute(sql: string, params?: SqlParam[]): number;
  /** Runs a query; returns the rows as plain objects. */
  query(sql: string, params?: SqlParam[]): Row[];
  /**
   * Runs `fn(tx)` in a transaction: committed when it returns, rolled back
   * (and the error rethrown) when it throws. Returns what `fn` returned.
   */
  transaction<T>(fn: (tx: Transaction) => T, options?: TransactionOptions): T;
  /** The health report (cached for the health check interval). */
  health(): Health;
  /** Counters and pool state. */
  debugInfo(): DebugInfo;
  /** The metrics: Prometheus text, or OpenMetrics with `openmetrics` true. */
  metrics(openmetrics?: boolean): string;
  /** Closes the database; later calls throw `manager_closed`. */
  close(): void;
  free(): void;
}

/** Where the module comes from: a URL, a Response, bytes or a compiled module. */
export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

/**
 * Loads the WebAssembly module; call it once before anything else. Without
 * an argument it fetches `dbmux_bg.wasm` beside `dbmux.js`; in Node pass the
 * bytes: `await init({ module_or_path: readFileSync(wasmPath) })`.
 */
export default function init(
  options?: { module_or_path?: InitInput | Promise<InitInput> },
): Promise<unknown>;

/** As `init`, synchronously, from bytes or a compiled module. */
export function initSync(options: { module: BufferSource | WebAssembly.Module }): unknown;
