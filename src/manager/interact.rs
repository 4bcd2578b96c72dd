//! Feature `tokio`: the async front door. A closure runs on tokio's
//! blocking pool (`spawn_blocking`) with a pooled connection, so that a
//! Tauri command or an axum handler never blocks a runtime worker on a
//! checkout or a statement.

use super::Manager;
use crate::connection::{Connection, Transaction};
use crate::error::{Error, ErrorCode, Result};

impl Manager {
    /// Runs `f` with a pooled connection on tokio's blocking pool and
    /// returns what it returns; the connection goes back to the pool when
    /// `f` ends. The checkout (up to `pool_timeout`) and every statement
    /// happen on the blocking thread: the calling task only awaits.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let db = dbmux::Manager::from_url("sqlite::memory:")?;
    /// let n: i64 = db
    ///     .interact(|c| c.query_scalar("SELECT 40 + 2", dbmux::params![]))
    ///     .await?;
    /// assert_eq!(n, 42);
    /// # Ok::<(), dbmux::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// What the checkout or `f` returned; [`ErrorCode::Cancelled`] when the
    /// runtime shut down before `f` ran. A panic in `f` is resumed in the
    /// caller.
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::task::spawn_blocking` does).
    pub async fn interact<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let mgr = self.clone();
        blocking(move || f(&mut mgr.get()?)).await
    }

    /// [`transaction`](Self::transaction) on tokio's blocking pool: `f` runs
    /// in a transaction on a pooled connection, committed when it returns
    /// `Ok`, rolled back when it returns `Err` (or panics).
    ///
    /// # Errors
    /// As [`interact`](Self::interact), and the commit's error.
    pub async fn interact_transaction<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut Transaction<'_>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let mgr = self.clone();
        blocking(move || mgr.transaction(f)).await
    }
}

/// `f` on the blocking pool; a panic is resumed here.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::new(
            ErrorCode::Cancelled,
            "the tokio runtime shut down before the database call ran; nothing was done",
        )),
    }
}
