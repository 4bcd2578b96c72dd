//! The wasm32 build in a dedicated Web Worker of headless Chromium (see
//! scripts/test-wasm.sh): the OPFS VFS. The page reload is tested by
//! scripts/browser-test.mjs; here a database written through
//! `Database.openAsync("...?vfs=opfs-sahpool")` is closed, opened again by a
//! new manager, and read back from OPFS.
#![cfg(all(target_arch = "wasm32", feature = "opfs"))]

use dbmux::wasm::Database;
use js_sys::Reflect;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

fn get(o: &JsValue, key: &str) -> JsValue {
    Reflect::get(o, &key.into()).unwrap()
}

#[wasm_bindgen_test]
async fn a_database_on_opfs_is_there_after_it_is_closed_and_opened_again() {
    let url = "sqlite:///worker-test.db?vfs=opfs-sahpool";
    let db = Database::open_async(url.into()).await.unwrap();
    db.execute("DROP TABLE IF EXISTS notes", None).unwrap();
    db.execute(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
        None,
    )
    .unwrap();
    for body in ["one", "two", "three"] {
        let p = Some([JsValue::from_str(body)].iter().collect());
        db.execute("INSERT INTO notes (body) VALUES (?)", p)
            .unwrap();
    }
    let h = db.health().unwrap();
    assert_eq!(get(&h, "status").as_string().as_deref(), Some("healthy"));
    db.close();

    // a second install is a no-op; a new manager reads the file from OPFS
    let again = Database::open_async(url.into()).await.unwrap();
    let rows = again
        .query(
            "SELECT group_concat(body, ',') AS b, count(*) AS n FROM notes",
            None,
        )
        .unwrap();
    assert_eq!(get(&rows.get(0), "n").as_f64(), Some(3.0));
    assert_eq!(
        get(&rows.get(0), "b").as_string().as_deref(),
        Some("one,two,three")
    );
    // the synchronous open works too once the VFS is installed
    let sync = Database::open(url).unwrap();
    again.close();
    let n = sync.query("SELECT count(*) AS n FROM notes", None).unwrap();
    assert_eq!(get(&n.get(0), "n").as_f64(), Some(3.0));
    sync.close();
}
