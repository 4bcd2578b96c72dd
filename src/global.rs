//! The process-wide manager: created from the environment on first use,
//! replaceable with `init`, disposed with `shutdown`.

use std::sync::RwLock;

use crate::config::Config;
use crate::error::{Error, ErrorCode, Result};
use crate::health::{DebugInfo, HealthReport};
use crate::manager::Manager;

static GLOBAL: RwLock<Option<Manager>> = RwLock::new(None);

/// The process-wide manager, created from the environment
/// ([`Config::from_env`]) on first use. Exactly one is created even when many
/// threads call this at once. After [`shutdown`] the next call builds a fresh
/// one: that is how to reconnect with new settings.
///
/// # Errors
/// The configuration error when the environment holds a bad setting.
pub fn global() -> Result<Manager> {
    if let Some(m) = GLOBAL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Ok(m.clone());
    }
    let mut slot = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = slot.as_ref() {
        return Ok(m.clone()); // another thread won the race
    }
    let m = Manager::from_env()?;
    *slot = Some(m.clone());
    Ok(m)
}

/// Sets the process-wide manager from `config` before anything used it.
///
/// # Errors
/// [`ErrorCode::AlreadyInitialized`] when the global manager already exists
/// (call [`shutdown`] first to replace it); the error of [`Manager::new`].
pub fn init(config: Config) -> Result<Manager> {
    let mut slot = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
    if slot.is_some() {
        return Err(Error::new(
            ErrorCode::AlreadyInitialized,
            "the global dbmux manager is already initialised; call dbmux::shutdown() before \
             dbmux::init() to replace it",
        ));
    }
    let m = Manager::new(config)?;
    *slot = Some(m.clone());
    Ok(m)
}

/// Shuts the process-wide manager down (closing its connections) and forgets
/// it; the next [`global`] creates a new one. Does nothing if none exists.
pub fn shutdown() {
    let taken = GLOBAL.write().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(m) = taken {
        m.shutdown();
    }
}

/// True when the process-wide manager exists.
pub fn is_initialized() -> bool {
    GLOBAL.read().unwrap_or_else(|e| e.into_inner()).is_some()
}

/// The global manager's health ([`Manager::health`]); an `unhealthy` report
/// when the global manager cannot even be configured.
pub fn health() -> HealthReport {
    match global() {
        Ok(m) => m.health(),
        Err(e) => HealthReport::from_config_error(&e),
    }
}

/// The global manager's debug info.
///
/// # Errors
/// The configuration error when the global manager cannot be created.
pub fn debug_info() -> Result<DebugInfo> {
    global().map(|m| m.debug_info())
}

/// The global manager's metrics in the Prometheus text format
/// ([`Manager::metrics_text`]).
///
/// # Errors
/// The configuration error when the global manager cannot be created.
pub fn metrics_text() -> Result<String> {
    global().map(|m| m.metrics_text())
}
