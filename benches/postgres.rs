//! `SELECT 1` from 8 threads against a real PostgreSQL server, measured in
//! the same run three ways:
//!
//! - dbmux: a pool of 8, a checkout per query (as a web handler would);
//! - r2d2_postgres with its default settings, a checkout per query;
//! - one raw `postgres::Client` per thread with a prepared statement (the limit);
//! - for reference, the wire itself: one blocking socket per thread speaking
//!   the protocol through `postgres-protocol` (the message codec under
//!   tokio-postgres), without tokio-postgres' channels or tokio's scheduler
//!   (what a statement costs on the client side with nothing in between).
//!
//! Targets: at least 2x the r2d2_postgres defaults and at least 0.95x the
//! limit. Needs `DBMUX_TEST_PG_URL`: run it as
//! `scripts/with-test-postgres.sh cargo bench --features tls --bench postgres`.
//! `DBMUX_BENCH_QUICK=1` shortens it to a smoke run.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use dbmux::{params, Config, Manager};

const THREADS: usize = 8;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Runs `work` on 8 threads for `dur`; returns queries per second.
fn run<S: Send + 'static>(
    dur: Duration,
    setup: impl Fn() -> S + Send + Sync + 'static,
    work: impl Fn(&mut S) + Send + Sync + 'static,
) -> f64 {
    let setup = Arc::new(setup);
    let work = Arc::new(work);
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(Barrier::new(THREADS + 1));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (setup, work, stop, count, ready) = (
                setup.clone(),
                work.clone(),
                stop.clone(),
                count.clone(),
                ready.clone(),
            );
            thread::spawn(move || {
                let mut state = setup();
                work(&mut state); // warm: connect, prepare
                ready.wait();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    work(&mut state);
                    n += 1;
                }
                count.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    ready.wait();
    thread::sleep(dur);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / dur.as_secs_f64()
}

/// A bare protocol session over a blocking socket (see the module docs):
/// startup, SCRAM, then Bind/Execute/Sync of one prepared `SELECT 1`.
struct Wire {
    socket: std::net::TcpStream,
    read: bytes::BytesMut,
    write: bytes::BytesMut,
}

impl Wire {
    fn connect(cfg: &postgres::Config) -> Wire {
        use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
        use postgres_protocol::message::{backend::Message, frontend};
        let port = cfg.get_ports().first().copied().unwrap_or(5432);
        let host = match cfg.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "localhost".to_string(),
        };
        let socket = std::net::TcpStream::connect((host.as_str(), port)).unwrap();
        socket.set_nodelay(true).unwrap();
        let mut w = Wire {
            socket,
            read: bytes::BytesMut::new(),
            write: bytes::BytesMut::new(),
        };
        let user = cfg.get_user().unwrap();
        let db = cfg.get_dbname().unwrap_or(user);
        frontend::startup_message([("user", user), ("database", db)], &mut w.write).unwrap();
        w.flush();
        let mut scram = None;
        loop {
            match w.message() {
                Message::AuthenticationSasl(_) => {
                    let s = ScramSha256::new(
                        cfg.get_password().unwrap(),
                        ChannelBinding::unsupported(),
                    );
                    frontend::sasl_initial_response("SCRAM-SHA-256", s.message(), &mut w.write)
                        .unwrap();
                    w.flush();
                    scram = Some(s);
                }
                Message::AuthenticationSaslContinue(b) => {
                    let s = scram.as_mut().unwrap();
                    s.update(b.data()).unwrap();
                    frontend::sasl_response(s.message(), &mut w.write).unwrap();
                    w.flush();
                }
                Message::AuthenticationSaslFinal(b) => {
                    scram.as_mut().unwrap().finish(b.data()).unwrap()
                }
                Message::ErrorResponse(_) => panic!("the server refused the bare session"),
                Message::ReadyForQuery(_) => break,
                _ => {}
            }
        }
        frontend::parse("s1", "SELECT 1", std::iter::empty(), &mut w.write).unwrap();
        frontend::sync(&mut w.write);
        w.flush();
        w.until_ready();
        w
    }

    fn message(&mut self) -> postgres_protocol::message::backend::Message {
        use std::io::Read;
        loop {
            if let Some(m) =
                postgres_protocol::message::backend::Message::parse(&mut self.read).unwrap()
            {
                return m;
            }
            let mut buf = [0u8; 8192];
            let n = self.socket.read(&mut buf).unwrap();
            assert!(n > 0, "the server closed the bare session");
            self.read.extend_from_slice(&buf[..n]);
        }
    }

    fn flush(&mut self) {
        use std::io::Write;
        self.socket.write_all(&self.write).unwrap();
        self.write.clear();
    }

    /// Reads to ReadyForQuery; the first column of the last DataRow as int4.
    fn until_ready(&mut self) -> Option<i32> {
        use postgres_protocol::message::backend::Message;
        let mut v = None;
        loop {
            match self.message() {
                Message::DataRow(r) => {
                    use fallible_iterator::FallibleIterator;
                    let range = r.ranges().next().unwrap().unwrap().unwrap();
                    v = Some(i32::from_be_bytes(r.buffer()[range].try_into().unwrap()));
                }
                Message::ErrorResponse(_) => panic!("SELECT 1 failed on the bare session"),
                Message::ReadyForQuery(_) => return v,
                _ => {}
            }
        }
    }

    fn select1(&mut self) -> i32 {
        use postgres_protocol::message::frontend;
        type Failure = Box<dyn std::error::Error + Sync + Send>;
        frontend::bind(
            "",
            "s1",
            std::iter::empty::<i16>(),
            std::iter::empty::<i32>(),
            |_, _| Ok::<_, Failure>(postgres_protocol::IsNull::No),
            Some(1),
            &mut self.write,
        )
        .map_err(|_| "bind")
        .unwrap();
        frontend::execute("", 0, &mut self.write).unwrap();
        frontend::sync(&mut self.write);
        self.flush();
        self.until_ready().unwrap()
    }
}

fn main() {
    let Ok(url) = std::env::var("DBMUX_TEST_PG_URL") else {
        let msg = "DBMUX_TEST_PG_URL is not set: run scripts/with-test-postgres.sh cargo bench --features tls --bench postgres";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    };
    let quick = std::env::var("DBMUX_BENCH_QUICK").is_ok_and(|v| v == "1");
    let (rounds, dur) = if quick {
        (1, Duration::from_millis(300))
    } else {
        (9, Duration::from_millis(1500))
    };
    let plain_url = format!("{url}?sslmode=disable");

    let mgr = Manager::new(
        Config::builder()
            .url(plain_url.clone())
            .pool_size(THREADS as u32)
            .max_overflow(0)
            .build()
            .unwrap(),
    )
    .unwrap();
    let pg_config: postgres::Config = url.parse().unwrap();
    let r2d2_pool = r2d2::Pool::new(r2d2_postgres::PostgresConnectionManager::new(
        pg_config.clone(),
        postgres::NoTls,
    ))
    .unwrap();

    let dbmux_side = {
        let m = mgr.clone();
        move || {
            run(dur, || (), {
                let m = m.clone();
                move |_| {
                    let v: i64 = m.query_scalar("SELECT 1", params![]).unwrap();
                    assert_eq!(v, 1);
                }
            })
        }
    };
    let r2d2_side = {
        let p = r2d2_pool.clone();
        move || {
            run(dur, || (), {
                let p = p.clone();
                move |_| {
                    let mut c = p.get().unwrap();
                    let v: i32 = c.query_one("SELECT 1", &[]).unwrap().get(0);
                    assert_eq!(v, 1);
                }
            })
        }
    };
    let raw_side = {
        let cfg = pg_config.clone();
        move || {
            let cfg = cfg.clone();
            run(
                dur,
                move || {
                    let mut client = cfg.connect(postgres::NoTls).unwrap();
                    let stmt = client.prepare("SELECT 1").unwrap();
                    (client, stmt)
                },
                |(client, stmt): &mut (postgres::Client, postgres::Statement)| {
                    let v: i32 = client.query_one(&*stmt, &[]).unwrap().get(0);
                    assert_eq!(v, 1);
                },
            )
        }
    };
    // For reference: the least a pool can do (a mutex around a Vec of clients
    // with their prepared statement), with a checkout per query. It shows
    // what checkout-per-query itself costs on this machine.
    let minimal_side = {
        let cfg = pg_config.clone();
        move || {
            let pool: Arc<std::sync::Mutex<Vec<(postgres::Client, postgres::Statement)>>> =
                Arc::new(std::sync::Mutex::new(
                    (0..THREADS)
                        .map(|_| {
                            let mut c = cfg.connect(postgres::NoTls).unwrap();
                            let s = c.prepare("SELECT 1").unwrap();
                            (c, s)
                        })
                        .collect(),
                ));
            run(
                dur,
                || (),
                move |_| {
                    let (mut c, s) = pool.lock().unwrap().pop().unwrap();
                    let v: i32 = c.query_one(&s, &[]).unwrap().get(0);
                    assert_eq!(v, 1);
                    pool.lock().unwrap().push((c, s));
                },
            )
        }
    };
    let wire_side = {
        let cfg = pg_config.clone();
        move || {
            let cfg = cfg.clone();
            run(
                dur,
                move || Wire::connect(&cfg),
                |w: &mut Wire| {
                    assert_eq!(w.select1(), 1);
                },
            )
        }
    };
    let (mut a, mut b, mut c, mut d, mut e, mut ra, mut rc) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        // rotate the order so that no side always runs first or last
        let mut q = [0.0f64; 5];
        for k in 0..5 {
            let side = (round + k) % 5;
            q[side] = match side {
                0 => dbmux_side(),
                1 => r2d2_side(),
                2 => raw_side(),
                3 => minimal_side(),
                _ => wire_side(),
            };
        }
        let [qa, qb, qc, qd, qe] = q;
        a.push(qa);
        b.push(qb);
        c.push(qc);
        d.push(qd);
        e.push(qe);
        ra.push(qa / qb);
        rc.push(qa / qc);
    }
    let (a, b, c, d, e) = (
        median(&mut a),
        median(&mut b),
        median(&mut c),
        median(&mut d),
        median(&mut e),
    );
    let (ra, rc) = (median(&mut ra), median(&mut rc));
    println!("SELECT 1 from {THREADS} threads (pool of {THREADS}), medians of {rounds} rounds of {dur:?}, PostgreSQL on loopback, no TLS:");
    println!("  dbmux                          {a:>9.0} queries/s");
    println!("  r2d2_postgres defaults         {b:>9.0} queries/s   dbmux/r2d2_postgres = {ra:.2}x (target >= 2x: {})", if ra >= 2.0 { "meets target" } else { "MISSES target" });
    println!("  raw postgres::Client/thread    {c:>9.0} queries/s   dbmux/limit = {rc:.2}x (target >= 0.95x: {})", if rc >= 0.95 { "meets target" } else { "MISSES target" });
    println!("  (reference) minimal mutex pool  {d:>9.0} queries/s   minimal/limit = {:.2}x: the cost of a checkout per query itself", d / c);
    println!("  (reference) the bare wire       {e:>9.0} queries/s   wire/limit = {:.2}x: what tokio-postgres and tokio cost per statement", e / c);
    mgr.shutdown();
}
