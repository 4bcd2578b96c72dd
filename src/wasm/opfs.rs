//! The `opfs-sahpool` VFS (sqlite-wasm-vfs): SQLite files in the origin's
//! private file system, through a pool of sync access handles. Installed by
//! `Database.openAsync` when the URL names it.

use sqlite_wasm_rs::utils::registered_vfs;
use sqlite_wasm_vfs::sahpool::{install as install_pool, OpfsSAHError, OpfsSAHPoolCfg};

use crate::url::{parse_url, Target};
use crate::{Error, ErrorCode};

/// The VFS's name in URLs (`?vfs=opfs-sahpool`), as in SQLite's own wasm build.
pub const NAME: &str = "opfs-sahpool";

const NEEDS: &str = "it needs the Origin Private File System with sync access handles, which \
                     only a dedicated Web Worker of a secure context (https:// or localhost) has: \
                     open the database in such a worker; on the page's main thread or in Node \
                     use a memory URL (sqlite:///app.db) instead";

const TAKEN: &str = "another worker of this origin (another tab of the app) holds the pool's \
                     files, and one worker at a time can: close the other tab, or let one tab's \
                     worker own the database and send it the other tabs' queries \
                     (BroadcastChannel)";

/// Whether `url` is a SQLite URL that names the VFS.
pub fn named_in(url: &str) -> bool {
    matches!(parse_url(url), Ok(Target::Sqlite(t)) if t.options.vfs.as_deref() == Some(NAME))
}

fn registered() -> bool {
    matches!(registered_vfs(NAME), Ok(Some(_)))
}

/// `Database.open` (synchronous) cannot install the VFS: a URL that names
/// it before it is installed gets this error instead of SQLite's bare "no
/// such vfs" at the first statement.
pub fn check_installed(url: &str) -> Result<(), Error> {
    if named_in(url) && !registered() {
        return Err(Error::new(
            ErrorCode::ConnectFailed,
            format!(
                "the {NAME} VFS is not installed yet: open the database with `await \
                 Database.openAsync(url)`, which installs it ({NEEDS})"
            ),
        ));
    }
    Ok(())
}

/// Installs the VFS (once per worker; later calls find it registered).
pub async fn install() -> Result<(), Error> {
    if registered() {
        return Ok(());
    }
    install_pool::<sqlite_wasm_rs::WasmOsCallback>(&OpfsSAHPoolCfg::default(), false)
        .await
        .map(|_| ())
        .map_err(|e| {
            // the browser's own error (a JsValue) is in the Debug form only
            let (why, hint) = match &e {
                OpfsSAHError::NotSupported => (e.to_string(), NEEDS),
                OpfsSAHError::CreateSyncAccessHandle(_) => (format!("{e}: {e:?}"), TAKEN),
                _ => (format!("{e}: {e:?}"), NEEDS),
            };
            Error::new(
                ErrorCode::ConnectFailed,
                format!("the {NAME} VFS could not start ({why}): {hint}"),
            )
        })
}
