//! A blocking PostgreSQL client over tokio-postgres with deadlines.
//!
//! The sync `postgres` crate blocks inside its own runtime and cannot be
//! interrupted, so a frozen server (a `SIGSTOP`ped backend, a hung
//! postmaster) would hang the caller forever. This client polls
//! tokio-postgres itself, on the calling thread, with no async runtime: the
//! call's future and the connection are polled together, and when neither
//! can go on, the thread waits for the socket with `poll(2)` (see
//! `socket.rs`) until the deadline when one is configured
//! (`DB_QUERY_TIMEOUT`, `DB_CONNECT_TIMEOUT`). A connection whose deadline
//! passed is marked dead and is never used again. With no runtime there is
//! none to nest: the client works the same from inside a tokio runtime (a
//! Tauri command), where it blocks that thread as any blocking call does.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use tokio_postgres::tls::TlsConnect;
use tokio_postgres::AsyncMessage;

use super::socket::{Endpoint, Io, Readiness, SocketError, Stream};

use crate::error::{Error, ErrorCode};

type Message = Option<Result<AsyncMessage, tokio_postgres::Error>>;

/// How long a cancel request may take to reach the server.
const CANCEL_WITHIN: Duration = Duration::from_secs(5);

/// The connection half of tokio-postgres, with its stream types erased.
trait Drive: Send {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Message>;
    /// A run-time parameter the server reported (ParameterStatus).
    fn parameter(&self, name: &str) -> Option<String>;
}

impl<S, T> Drive for tokio_postgres::Connection<S, T>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Message> {
        self.poll_message(cx)
    }

    fn parameter(&self, name: &str) -> Option<String> {
        tokio_postgres::Connection::parameter(self, name).map(str::to_string)
    }
}

type Driver = Box<dyn Drive>;

/// A PostgreSQL session that blocks the calling thread, as `postgres::Client`
/// does, but gives up after a deadline.
pub struct PgClient {
    /// `None` only while being dropped (the client goes first, so that the
    /// connection sends Terminate).
    client: Option<tokio_postgres::Client>,
    /// Marks the interrupt as asked for and sends this session's cancel
    /// request (a connection of its own to the same server, with the same
    /// TLS settings); made once, cloned per checkout.
    interrupter: crate::native::Interrupter,
    /// A cancel was asked for (see `NativeConn::take_interrupted`).
    interrupted: Arc<AtomicBool>,
    driver: Mutex<Driver>,
    /// The session's socket: what its loop waits for, and what a checkout
    /// peeks at.
    io: Arc<Io>,
    /// The loop's waker (made once, not per call).
    woken: Arc<Woken>,
    waker: Waker,
    /// How long one call may wait for the server (`DB_QUERY_TIMEOUT`).
    timeout: Option<Duration>,
    /// Set when a deadline passed (the session state is unknown) or the
    /// connection failed or ended.
    dead: AtomicBool,
}

/// Why a wait ended without the server's answer.
pub(crate) enum Waited {
    /// The server answered with an error, or the connection failed.
    Failed(tokio_postgres::Error),
    /// The deadline passed first.
    TimedOut(Duration),
    /// Waiting for the socket failed (`poll(2)` itself).
    Wait(std::io::Error),
    /// The socket could not be connected (refused, unreachable, ...).
    Socket(SocketError),
    /// The TLS connector could not be made for the host.
    TlsSetup(Box<dyn std::error::Error + Send + Sync>),
    /// The connection failed or a deadline passed earlier: it is not used again.
    Dead,
}

/// The waker of a session's loop. Every wake comes from inside its poll
/// (the call queues its request and wakes the connection; the connection
/// hands over a response and wakes the call): the loop then polls again at
/// once instead of waiting for the socket.
#[derive(Default)]
struct Woken(AtomicBool);

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Relaxed);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Relaxed);
    }
}

fn waker() -> (Arc<Woken>, Waker) {
    let woken = Arc::new(Woken::default());
    (woken.clone(), Waker::from(woken))
}

/// Polls `f` on this thread until it is ready, waiting for the socket of
/// `io` whenever it cannot go on, for at most `limit` (`None`: no limit).
fn run<F: Future>(
    io: &Io,
    (woken, waker): (&Woken, &Waker),
    limit: Option<Duration>,
    f: F,
) -> Result<F::Output, Waited> {
    /// Polls in a row that woke themselves before the deadline is looked at.
    const SPINS: u32 = 64;
    let mut f = pin!(f);
    let mut cx = Context::from_waker(waker);
    let start = limit.map(|_| Instant::now());
    let left = || match (limit, start) {
        (Some(l), Some(s)) => match l.saturating_sub(s.elapsed()) {
            d if d.is_zero() => Err(Waited::TimedOut(l)),
            d => Ok(Some(d)),
        },
        _ => Ok(None),
    };
    let mut spins = 0;
    loop {
        woken.0.store(false, Relaxed);
        if let Poll::Ready(r) = f.as_mut().poll(&mut cx) {
            return Ok(r);
        }
        if woken.0.load(Relaxed) {
            spins += 1;
            if spins % SPINS == 0 {
                left()?;
            }
            continue;
        }
        let left = left()?;
        match io.wait(left) {
            Ok(true) => {}
            Ok(false) => return Err(Waited::TimedOut(limit.unwrap_or_default())),
            Err(e) => return Err(Waited::Wait(e)),
        }
    }
}

/// Polls the connection until it has nothing more to do. Returns
/// `Ready(Err)` when it failed; notices are logged.
fn drive(
    driver: &mut Driver,
    cx: &mut Context<'_>,
    done: &mut bool,
) -> Poll<tokio_postgres::Error> {
    while !*done {
        match driver.poll(cx) {
            Poll::Ready(Some(Ok(AsyncMessage::Notice(n)))) => {
                log::info!(target: "dbmux", "server notice: {}: {}", n.severity(), n.message());
            }
            Poll::Ready(Some(Ok(_))) => {}
            Poll::Ready(Some(Err(e))) => {
                *done = true;
                return Poll::Ready(e);
            }
            Poll::Ready(None) => *done = true,
            Poll::Pending => break,
        }
    }
    Poll::Pending
}

/// Makes the TLS side of one connection to a host: what tokio-postgres'
/// `MakeTlsConnect` does, which only exists with its runtime.
pub(crate) trait MakeTls: Send + Sync + 'static {
    /// The TLS side of one connection.
    type Connect: TlsConnect<Stream, Stream: Send + 'static, Future: Send> + Send;
    /// The TLS side of a connection to `domain` (the name the server's
    /// certificate is checked against).
    fn make(&self, domain: &str)
        -> Result<Self::Connect, Box<dyn std::error::Error + Send + Sync>>;
}

impl MakeTls for tokio_postgres::NoTls {
    type Connect = tokio_postgres::NoTls;

    fn make(&self, _: &str) -> Result<Self::Connect, Box<dyn std::error::Error + Send + Sync>> {
        Ok(tokio_postgres::NoTls)
    }
}

/// Sends the cancel request of `token` to `target` within [`CANCEL_WITHIN`].
fn send_cancel<T: MakeTls>(
    target: &Endpoint,
    tls: &T,
    token: &tokio_postgres::CancelToken,
) -> bool {
    let start = Instant::now();
    let Ok(tls) = tls.make(target.tls_name()) else {
        return false;
    };
    let Ok(stream) = target.connect(start + CANCEL_WITHIN) else {
        return false;
    };
    let io = stream.io();
    let (woken, waker) = waker();
    let left = CANCEL_WITHIN.saturating_sub(start.elapsed());
    let sent = run(
        &io,
        (&woken, &waker),
        Some(left),
        token.cancel_query_raw(stream, tls),
    );
    matches!(sent, Ok(Ok(())))
}

impl PgClient {
    /// Connects to `endpoint` with `config` (user, database, password,
    /// options) and `tls`; the whole startup (TCP, TLS negotiation,
    /// authentication) must finish within `deadline`.
    pub(crate) fn connect<T: MakeTls>(
        endpoint: &Endpoint,
        config: &tokio_postgres::Config,
        tls: T,
        deadline: Duration,
        timeout: Option<Duration>,
    ) -> Result<PgClient, Waited> {
        let start = Instant::now();
        let session_tls = tls.make(endpoint.tls_name()).map_err(Waited::TlsSetup)?;
        let stream = endpoint.connect(start + deadline).map_err(|e| match e {
            SocketError::TimedOut => Waited::TimedOut(deadline),
            e => Waited::Socket(e),
        })?;
        let io = stream.io();
        let (woken, waker) = waker();
        let left = deadline.saturating_sub(start.elapsed());
        let (client, connection) = run(
            &io,
            (&woken, &waker),
            Some(left),
            config.connect_raw(stream, session_tls),
        )
        .map_err(|w| match w {
            Waited::TimedOut(_) => Waited::TimedOut(deadline),
            w => w,
        })?
        .map_err(Waited::Failed)?;
        let token = client.cancel_token();
        let target = endpoint.clone();
        let interrupted = Arc::new(AtomicBool::new(false));
        let interrupter = crate::native::asked(&interrupted, move || {
            if !send_cancel(&target, &tls, &token) {
                log::warn!(
                    target: "dbmux::postgres",
                    "could not send a cancel request within {} s; the statement runs on",
                    CANCEL_WITHIN.as_secs()
                );
            }
        });
        Ok(PgClient {
            client: Some(client),
            interrupter,
            interrupted,
            driver: Mutex::new(Box::new(connection)),
            io,
            woken,
            waker,
            timeout,
            dead: AtomicBool::new(false),
        })
    }

    /// A run-time parameter as the server last reported it (ParameterStatus:
    /// `in_hot_standby`, `default_transaction_read_only`, `server_version`,
    /// ...), as of the last call that read from the server.
    pub(crate) fn parameter(&self, name: &str) -> Option<String> {
        self.driver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .parameter(name)
    }

    /// Whether the server sent anything (or closed the connection) while the
    /// connection sat idle: one non-blocking peek at the socket, no round
    /// trip. An idle session gets nothing unasked but a FATAL before the
    /// server closes it (a restart, `pg_terminate_backend`), a notice or a
    /// notification.
    pub(crate) fn readiness(&self) -> Readiness {
        if self.is_dead() {
            return Readiness::Closed;
        }
        self.io.readiness()
    }

    /// What interrupts this session's running statement from another
    /// thread (it sends the cancel request).
    pub(crate) fn interrupter(&self) -> crate::native::Interrupter {
        self.interrupter.clone()
    }

    /// Set when an interrupt was asked for.
    pub(crate) fn interrupted(&self) -> &Arc<AtomicBool> {
        &self.interrupted
    }

    /// The tokio-postgres client, to build futures for [`PgClient::block_on`].
    pub fn client(&self) -> &tokio_postgres::Client {
        self.client.as_ref().expect("client present until drop")
    }

    /// Whether the connection can no longer be used: the server closed it,
    /// or a deadline passed while waiting for it.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Relaxed) || self.client().is_closed()
    }

    /// Marks the connection unusable (after a connection-class failure).
    pub(crate) fn mark_dead(&self) {
        self.dead.store(true, Relaxed);
    }

    /// Waits for `f` within the query timeout and classifies a failure
    /// (`what` names the call in a timeout message). After a
    /// connection-class failure the connection is not used again.
    pub(crate) fn call<T>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> crate::Result<T> {
        self.wait_for(self.timeout, f)
            .map_err(|w| self.failed(w, what))
    }

    /// The error of a call that failed; after a connection-class failure
    /// the connection is not used again.
    fn failed(&self, w: Waited, what: &str) -> Error {
        let e = w.into_error(what);
        if e.code() == ErrorCode::ConnectFailed {
            self.mark_dead();
        }
        e
    }

    /// Waits for `f`, a call built on [`PgClient::client`], driving the
    /// connection meanwhile, for at most `DB_QUERY_TIMEOUT`. It runs on
    /// this thread with no async runtime, so it may be called from inside
    /// one too (it then blocks that thread, as a blocking call does); `f`
    /// must not need tokio's timer or reactor, and is woken only by the
    /// session itself (as every future of the client is).
    ///
    /// # Errors
    /// The server's error, classified as dbmux classifies its own
    /// ([`crate::Error::code`]); [`ErrorCode::StatementTimeout`] when the
    /// deadline passed; after that, or after a connection-class failure, the
    /// connection is discarded.
    pub fn block_on<T>(
        &self,
        f: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> crate::Result<T> {
        self.call("waiting for the server", f)
    }

    /// Waits for `f` (a call on [`PgClient::client`]), driving the
    /// connection meanwhile, for at most `limit` (`None`: no limit).
    pub(crate) fn wait_for<T>(
        &self,
        limit: Option<Duration>,
        f: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, Waited> {
        if self.dead.load(Relaxed) {
            return Err(Waited::Dead);
        }
        let mut driver = self.driver.lock().unwrap_or_else(|p| p.into_inner());
        let mut f = pin!(f);
        let mut done = false;
        let both = poll_fn(|cx| {
            let failed = drive(&mut driver, cx, &mut done);
            if done {
                // the connection failed or ended: never use it again
                self.dead.store(true, Relaxed);
            }
            if let Poll::Ready(e) = failed {
                return Poll::Ready(Err(e));
            }
            f.as_mut().poll(cx)
        });
        match run(&self.io, (&self.woken, &self.waker), limit, both) {
            Ok(r) => r.map_err(Waited::Failed),
            Err(w) => {
                // the session's state is unknown: never use it again
                self.dead.store(true, Relaxed);
                Err(w)
            }
        }
    }
}

impl Waited {
    /// The dbmux error for a failed call; `what` names the call for the
    /// timeout message.
    pub(crate) fn into_error(self, what: &str) -> Error {
        match self {
            Waited::Failed(e) => crate::postgres::errors::classify(e),
            Waited::TimedOut(d) => Error::new(
                ErrorCode::StatementTimeout,
                format!(
                    "no answer from the server within {} while {what} (DB_QUERY_TIMEOUT); the \
                     server may be hung or unreachable, and the connection was discarded",
                    humantime::format_duration(d)
                ),
            ),
            Waited::Socket(SocketError::Lookup(name, e)) => Error::new(
                ErrorCode::ConnectFailed,
                format!(
                    "could not translate host name \"{name}\" to an address: {e}; check the host \
                     in the URL (or PGHOST)"
                ),
            )
            .with_source(e)
            .permanent(),
            Waited::Socket(SocketError::Io(e)) => Error::new(
                ErrorCode::ConnectFailed,
                format!("could not connect to the server: {e}"),
            )
            .with_source(e),
            Waited::TlsSetup(e) => Error::new(
                ErrorCode::TlsFailed,
                format!("could not set up TLS for the connection: {e}"),
            ),
            Waited::Wait(e) => Error::new(
                ErrorCode::ConnectFailed,
                format!("could not wait for the server's socket while {what}: {e}"),
            )
            .with_source(e),
            Waited::Socket(SocketError::TimedOut) => Error::new(
                ErrorCode::ConnectFailed,
                format!("could not connect to the server in time while {what}"),
            ),
            Waited::Dead => Error::new(
                ErrorCode::ConnectFailed,
                format!(
                    "not {what}: this connection failed or stopped answering earlier and is \
                     discarded; check out another"
                ),
            ),
        }
    }
}

impl Drop for PgClient {
    fn drop(&mut self) {
        // Dropping the client makes the connection send Terminate and close;
        // give that a moment unless the connection already failed or hung.
        drop(self.client.take());
        if self.dead.load(Relaxed) {
            return;
        }
        let driver = self.driver.get_mut().unwrap_or_else(|p| p.into_inner());
        let mut done = false;
        let closing = poll_fn(|cx| {
            let _ = drive(driver, cx, &mut done);
            if done {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        let limit = Some(Duration::from_millis(500));
        let _ = run(&self.io, (&self.woken, &self.waker), limit, closing);
    }
}
