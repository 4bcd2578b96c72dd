// A program against the package as a user imports it: type-checked with
// tsc --strict against dbmux.d.ts (scripts/test-wasm-package.sh writes
// its tsconfig), then run
// in Node from the installed tarball.
import init, { Database, type DbmuxError, type Row } from "dbmux-wasm";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
await init({ module_or_path: readFileSync(require.resolve("dbmux-wasm/dbmux_bg.wasm")) });

const db: Database = Database.open("sqlite::memory:");
db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, big INTEGER, raw BLOB)");
const changed: number = db.execute("INSERT INTO t (name, big, raw) VALUES (?, ?, ?)", [
  "ada",
  2n ** 60n,
  new Uint8Array([1, 2]),
]);
const total: number = db.transaction((tx) => {
  tx.execute("INSERT INTO t (name) VALUES (?)", ["grace"]);
  return tx.query("SELECT count(*) AS n FROM t")[0].n as number;
});
const rows: Row[] = db.query("SELECT name, big FROM t ORDER BY id");
let code = 0;
try {
  db.query("SELEC 1");
} catch (e) {
  code = (e as DbmuxError).code;
}
const health = db.health();
console.log(
  JSON.stringify({
    changed,
    total,
    names: rows.map((r) => r.name),
    big: String(rows[0].big),
    code,
    status: health.status,
    pool_size: db.debugInfo().pool_size,
    metrics: db.metrics().includes("dbmux_checkouts_total"),
  }),
);
db.close();
