//! Feature `tokio`: `Manager::interact` runs on tokio's blocking pool, so a
//! current-thread runtime keeps serving its other tasks while 100
//! interactions wait for connections and run statements.
//! (`cargo test --features tokio --test tokio_interact`)

#![cfg(feature = "tokio")]

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbmux::{params, Config, ErrorCode, Manager};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

#[test]
fn a_hundred_interactions_never_block_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let db = Manager::new(
        Config::builder()
            .url(format!("sqlite:///{}/t.db", dir.path().display()))
            .pool_size(4)
            .max_overflow(4)
            .build()
            .unwrap(),
    )
    .unwrap();
    db.execute("CREATE TABLE t (i INTEGER)", params![]).unwrap();
    let rt = runtime();
    let late_max_us = Arc::new(AtomicU64::new(0));
    let ticks = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    rt.block_on(async {
        // a timer task that notes how late each 5 ms tick fires
        let (late, n) = (late_max_us.clone(), ticks.clone());
        let timer = tokio::spawn(async move {
            let period = Duration::from_millis(5);
            let mut next = tokio::time::Instant::now() + period;
            loop {
                tokio::time::sleep_until(next).await;
                let us = tokio::time::Instant::now().duration_since(next).as_micros() as u64;
                late.fetch_max(us, Relaxed);
                n.fetch_add(1, Relaxed);
                next += period;
            }
        });
        let tasks: Vec<_> = (0..100i64)
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move {
                    db.interact(move |c| {
                        // 20 ms of work that blocks its thread
                        std::thread::sleep(Duration::from_millis(20));
                        c.execute("INSERT INTO t VALUES (?)", params![i])?;
                        c.query_scalar::<i64>("SELECT ? * 2", params![i])
                    })
                    .await
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap().unwrap(), i as i64 * 2);
        }
        timer.abort();
    });
    let took = started.elapsed();
    let n: i64 = db
        .query_scalar("SELECT count(*) FROM t", params![])
        .unwrap();
    assert_eq!(n, 100, "every interaction's row is there");
    // 100 x 20 ms on the runtime's thread would take 2 s and stop the timer;
    // with 8 connections it takes about 250 ms
    let late = Duration::from_micros(late_max_us.load(Relaxed));
    assert!(
        late < Duration::from_millis(50),
        "a timer tick fired {late:?} late: the runtime's thread was blocked"
    );
    assert!(
        ticks.load(Relaxed) >= (took.as_millis() as u64 / 5) / 2,
        "{} ticks in {took:?}",
        ticks.load(Relaxed)
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn interact_transaction_commits_on_ok_and_rolls_back_on_err() {
    let db = Manager::from_url("sqlite::memory:").unwrap();
    db.execute("CREATE TABLE t (i INTEGER)", params![]).unwrap();
    runtime().block_on(async {
        db.interact_transaction(|tx| tx.execute("INSERT INTO t VALUES (1)", params![]))
            .await
            .unwrap();
        let err = db
            .interact_transaction(|tx| {
                tx.execute("INSERT INTO t VALUES (2)", params![])?;
                tx.execute("INSERT INTO nowhere VALUES (3)", params![])
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Sql);
        assert!(err.to_string().contains("nowhere"), "{err}");
        let rows: Vec<i64> = db
            .interact(|c| {
                c.query("SELECT i FROM t", params![])?
                    .iter()
                    .map(|r| r.get(0))
                    .collect()
            })
            .await
            .unwrap();
        assert_eq!(rows, [1], "the first committed, the second rolled back");
        // a checkout error comes back as it is
        db.shutdown();
        let closed = db.interact(|c| c.execute("SELECT 1", params![])).await;
        assert_eq!(closed.unwrap_err().code(), ErrorCode::ManagerClosed);
    });
}

#[test]
fn a_panic_in_the_closure_reaches_the_caller() {
    let db = Manager::from_url("sqlite::memory:").unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime().block_on(db.interact(|_| -> dbmux::Result<()> { panic!("boom in interact") }))
    }));
    let msg = r.unwrap_err();
    assert_eq!(msg.downcast_ref::<&str>(), Some(&"boom in interact"));
    // the pool still serves
    let v: i64 = runtime()
        .block_on(db.interact(|c| c.query_scalar("SELECT 7", params![])))
        .unwrap();
    assert_eq!(v, 7);
}
