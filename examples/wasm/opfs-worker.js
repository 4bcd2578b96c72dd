// The worker of opfs.html: one visit more in an OPFS database.
import init, { Database } from "../../bindings/wasm/dist/dbmux.js";

try {
  await init();
  const db = await Database.openAsync("sqlite:///visits.db?vfs=opfs-sahpool");
  db.execute("CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY, at TEXT NOT NULL)");
  db.execute("INSERT INTO visits (at) VALUES (?)", [new Date().toISOString()]);
  const visits = db.query("SELECT count(*) AS n FROM visits")[0].n;
  db.close();
  postMessage({ visits });
} catch (e) {
  postMessage({ error: `${e.kind ?? e.name}: ${e.message}` });
}
