//! Building an r2d2 pool from a [`Config`]: sizes, timeouts, lifetime, the
//! pool's worker threads and dbmux's event hooks, for any backend.

use std::sync::Arc;

use super::{r2d2, ConnError, ErrorHooks, EventHooks, Stats};
use crate::config::Config;

/// An r2d2 builder for `config`'s pool, with dbmux's hooks on `stats`.
pub(crate) fn r2d2_builder<M: r2d2::ManageConnection<Error = ConnError>>(
    config: &Config,
    stats: &Arc<Stats>,
) -> r2d2::Builder<M> {
    // Validation in Config guarantees max_size >= 1, a positive timeout and a
    // positive lifetime, so none of r2d2's assertions can fire.
    let builder = r2d2::Pool::builder();
    #[cfg(not(target_arch = "wasm32"))]
    let builder = builder.thread_pool(Arc::new(
        scheduled_thread_pool::ScheduledThreadPool::builder()
            .num_threads(2)
            .thread_name_pattern("dbmux-pool-{}")
            .build(),
    ));
    builder
        .max_size(config.pool_size() + config.max_overflow())
        .min_idle(Some(0))
        .connection_timeout(config.pool_timeout())
        .max_lifetime(config.pool_recycle())
        .idle_timeout(None)
        .test_on_check_out(true)
        .event_handler(Box::new(EventHooks(stats.clone())))
        .error_handler(Box::new(ErrorHooks(stats.clone())))
}
