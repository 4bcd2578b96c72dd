// The browser tests of the wasm build that a page must drive: the demo page
// (examples/wasm/index.html) shows its rows and a healthy report, and the
// OPFS page (examples/wasm/opfs.html) keeps counting visits across a reload
// and a browser restart (same profile), while its main thread gets the
// clear "OPFS unavailable" error at once.
//
//   node scripts/browser-test.mjs    (after scripts/build-wasm-package.sh)
//
// Serves the repository's root on a free loopback port, starts chromedriver
// (CHROMEDRIVER, default /usr/bin/chromedriver) and headless Chromium
// (CHROMIUM, default /usr/bin/chromium) through WebDriver. No npm packages.
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CHROMEDRIVER = process.env.CHROMEDRIVER || "/usr/bin/chromedriver";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm" };

let failures = 0;
let passed = 0;
function check(ok, what, detail) {
  if (ok) {
    passed++;
    console.log(`ok - ${what}`);
  } else {
    failures++;
    console.log(`FAILED - ${what}: ${detail}`);
  }
}

// the repository's files, read-only, on 127.0.0.1 (a secure context)
const server = createServer((req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
  const file = join(ROOT, path);
  if (!file.startsWith(ROOT)) return res.writeHead(403).end();
  try {
    if (!statSync(file).isFile()) throw new Error("not a file");
    res.writeHead(200, { "content-type": TYPES[extname(file)] || "application/octet-stream" });
    res.end(readFileSync(file));
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const site = `http://127.0.0.1:${server.address().port}`;

// chromedriver on a free port
const probe = createServer();
await new Promise((ok) => probe.listen(0, "127.0.0.1", ok));
const driverPort = probe.address().port;
await new Promise((ok) => probe.close(ok));
const driver = spawn(CHROMEDRIVER, [`--port=${driverPort}`], { stdio: ["ignore", "ignore", "inherit"] });
const wd = `http://127.0.0.1:${driverPort}`;

async function call(method, path, body) {
  const r = await fetch(wd + path, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const j = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${JSON.stringify(j.value)}`);
  return j.value;
}

for (let i = 0; ; i++) {
  try {
    await call("GET", "/status");
    break;
  } catch (e) {
    if (i > 100) throw new Error(`chromedriver did not start: ${e.message}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

const profile = mkdtempSync(join(tmpdir(), "dbmux-chromium-"));
async function session() {
  const args = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", `--user-data-dir=${profile}`];
  const v = await call("POST", "/session", {
    capabilities: { alwaysMatch: { browserName: "chrome", "goog:chromeOptions": { binary: CHROMIUM, args } } },
  });
  return v.sessionId;
}
const js = (s, script) => call("POST", `/session/${s}/execute/sync`, { script, args: [] });

// waits until the page says it is done (or failed), at most 30 s
async function settled(s) {
  const t0 = Date.now();
  for (;;) {
    const state = await js(s, "return document.body && document.body.dataset.state");
    if (state === "done" || state === "error") return state;
    if (Date.now() - t0 > 30000) return `still ${state} after 30 s`;
    await new Promise((ok) => setTimeout(ok, 100));
  }
}
const text = (s, id) => js(s, `return document.getElementById(${JSON.stringify(id)}).textContent`);

try {
  let s = await session();

  // the demo page
  await call("POST", `/session/${s}/url`, { url: `${site}/examples/wasm/index.html` });
  const state = await settled(s);
  check(state === "done", "the demo page runs", `${state}: ${await text(s, "status")}`);
  const rows = await js(s, "return [...document.querySelectorAll('#notes tbody tr')].map((r) => [...r.cells].map((c) => c.textContent).join('|'))");
  check(JSON.stringify(rows) === JSON.stringify(["1|first note|4.5", "2|second note|—"]), "the demo page shows the rows it inserted", JSON.stringify(rows));
  check((await text(s, "status")) === "2 notes", "the demo page counts its rows", await text(s, "status"));
  const health = JSON.parse(await text(s, "health"));
  check(health.status === "healthy" && health.database_type === "sqlite", "the demo page shows a healthy report", JSON.stringify(health));

  // OPFS: a visit per load, across a reload and a browser restart
  const visits = [];
  const opfs = `${site}/examples/wasm/opfs.html`;
  await call("POST", `/session/${s}/url`, { url: opfs });
  for (let load = 0; load < 3; load++) {
    if (load === 1) await call("POST", `/session/${s}/refresh`, {});
    if (load === 2) {
      await call("DELETE", `/session/${s}`);
      s = await session();
      await call("POST", `/session/${s}/url`, { url: opfs });
    }
    const st = await settled(s);
    visits.push(st === "done" ? Number(await text(s, "visits")) : `${st}: ${await text(s, "visits")}`);
  }
  check(JSON.stringify(visits) === "[1,2,3]", "an OPFS database keeps its rows across a reload and a browser restart", JSON.stringify(visits));
  // a second tab while the first one's worker holds the pool: a clear error, not a hang
  const first = await call("GET", `/session/${s}/window`);
  const tab = await call("POST", `/session/${s}/window/new`, { type: "tab" });
  await call("POST", `/session/${s}/window`, { handle: tab.handle });
  await call("POST", `/session/${s}/url`, { url: opfs });
  const second = await settled(s);
  const told = await text(s, "visits");
  check(
    second === "error" && told.includes("connect_failed") && told.includes("another worker of this origin"),
    "a second tab's worker is told another tab holds the OPFS pool",
    `${second}: ${told}`,
  );
  await call("DELETE", `/session/${s}/window`);
  await call("POST", `/session/${s}/window`, { handle: first });
  const main = await text(s, "main-thread");
  const ms = Number((main.match(/after (\d+) ms/) || [])[1]);
  check(
    main.startsWith("connect_failed") && main.includes("opfs-sahpool VFS could not start") && main.includes("dedicated Web Worker") && ms < 5000,
    "on the page's thread OPFS is a connect_failed error naming the VFS, at once",
    main,
  );
  console.log(`   (the page's thread was told: ${main})`);
  await call("DELETE", `/session/${s}`);
} catch (e) {
  check(false, "the browser run", e.stack || e.message);
} finally {
  driver.kill();
  server.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(`browser: ${passed} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
