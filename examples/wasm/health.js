// dbmux in Node through WebAssembly: open a database, write, read back,
// run a transaction that rolls back, and print the health JSON and a metric.
//
//   scripts/test-wasm.sh      (builds target/wasm-example/ and runs this)
//   node examples/wasm/health.js [path/to/wasm_node.js]
"use strict";
const path = require("path");
const pkg = process.argv[2] || path.join(__dirname, "../../target/wasm-example/wasm_node.js");
const { Database } = require(path.resolve(pkg));

const db = Database.open("sqlite:///notes.db"); // a file on sqlite-wasm-rs's memory VFS
db.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT, stars REAL, raw BLOB)", []);
db.execute("INSERT INTO notes (body, stars, raw) VALUES (?, ?, ?)", ["hello from wasm", 4.5, new Uint8Array([1, 2, 3])]);
try {
  db.transaction((tx) => {
    tx.execute("DELETE FROM notes", []);
    throw new Error("changed my mind");
  });
} catch (e) {
  console.log(`transaction rolled back: ${e.message}`);
}
for (const row of db.query("SELECT id, body, stars, raw FROM notes", [])) {
  console.log(`note ${row.id}: ${row.body} (stars: ${row.stars}, raw: ${Array.from(row.raw)})`);
}
try {
  db.query("SELEC 1", []);
} catch (e) {
  console.log(`error ${e.code} (${e.kind}): ${e.message}`);
}
console.log("health: " + JSON.stringify(db.health()));
// the Prometheus text a worker's /metrics would serve: one line of it
console.log(db.metrics().split("\n").find((l) => l.startsWith("dbmux_checkouts_total")));
db.close();
