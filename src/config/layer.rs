//! One layer of settings, as code, the environment or a `.env` file gives it.

use std::time::Duration;

use super::Profile;

/// One layer of settings (code, environment, `.env`): `None` = not set here.
#[derive(Debug, Clone, Default)]
pub(super) struct Layer {
    pub(super) url: Option<String>,
    pub(super) pool_size: Option<u32>,
    pub(super) read_pool_size: Option<u32>,
    pub(super) max_overflow: Option<u32>,
    pub(super) pool_timeout: Option<Duration>,
    pub(super) pool_recycle: Option<Option<Duration>>,
    pub(super) pool_pre_ping: Option<bool>,
    pub(super) pre_ping_window: Option<Duration>,
    pub(super) echo: Option<bool>,
    pub(super) statement_timeout: Option<Option<Duration>>,
    pub(super) query_timeout: Option<Option<Duration>>,
    pub(super) connect_timeout: Option<Duration>,
    pub(super) health_check_interval: Option<Duration>,
    pub(super) profile: Option<Profile>,
    pub(super) worker_id: Option<String>,
    pub(super) retry_attempts: Option<u32>,
    pub(super) retry_base_delay: Option<Duration>,
    pub(super) retry_max_delay: Option<Duration>,
    pub(super) leak_threshold: Option<Option<Duration>>,
    pub(super) host_recheck: Option<Duration>,
    pub(super) read_max_lag: Option<Option<super::ReadMaxLag>>,
    pub(super) read_after_wait: Option<Duration>,
    pub(super) sqlite_max_read_tx: Option<Option<Duration>>,
    pub(super) sqlite_wal_soft_limit: Option<u64>,
    pub(super) pool_name: Option<String>,
    pub(super) metrics_histograms: Option<bool>,
}
