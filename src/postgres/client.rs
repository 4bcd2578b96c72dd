//! A blocking PostgreSQL client over tokio-postgres with deadlines.
//!
//! The sync `postgres` crate blocks inside its own runtime and cannot be
//! interrupted, so a frozen server (a `SIGSTOP`ped backend, a hung
//! postmaster) would hang the caller forever. This client does what the sync
//! crate does -- one current-thread runtime per connection, polled only while
//! a call is waiting, with the connection driven inside the same `block_on`
//! -- and wraps each wait in a deadline when one is configured
//! (`DB_QUERY_TIMEOUT`, `DB_CONNECT_TIMEOUT`). A connection whose deadline
//! passed is marked dead and is never used again.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::AsyncMessage;

use super::socket::{Endpoint, Readiness, SocketError, Stream};

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
    /// Sends this session's cancel request (a connection of its own to the
    /// same server, with the same TLS settings).
    cancel: std::sync::Arc<dyn Fn() + Send + Sync>,
    /// A cancel was asked for (see `NativeConn::take_interrupted`).
    interrupted: std::sync::Arc<AtomicBool>,
    driver: Mutex<Driver>,
    runtime: tokio::runtime::Runtime,
    /// How long one call may wait for the server (`DB_QUERY_TIMEOUT`).
    timeout: Option<Duration>,
    /// Set when a deadline passed (the session state is unknown) or the
    /// connection failed or ended.
    dead: AtomicBool,
    /// A duplicate of the socket's descriptor, to see without a round trip
    /// whether the server sent something (or closed) while it sat idle.
    #[cfg(unix)]
    socket: std::os::fd::OwnedFd,
}

/// Why a wait ended without the server's answer.
pub(crate) enum Waited {
    /// The server answered with an error, or the connection failed.
    Failed(tokio_postgres::Error),
    /// The deadline passed first.
    TimedOut(Duration),
    /// The runtime could not be created (out of threads or file handles).
    Runtime(std::io::Error),
    /// The socket could not be connected (refused, unreachable, ...).
    Socket(SocketError),
    /// The TLS connector could not be made for the host.
    TlsSetup(Box<dyn std::error::Error + Send + Sync>),
    /// The connection failed or a deadline passed earlier: it is not used again.
    Dead,
}

/// Runs `f` where blocking is allowed: on this thread normally, on a helper
/// thread when called from inside a tokio runtime (where `block_on` would
/// panic with "Cannot start a runtime from within a runtime"), as in a Tauri
/// app.
pub(crate) fn outside_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if !inside_runtime() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Whether this thread runs inside a tokio runtime, where blocking on
/// another runtime would panic.
pub(crate) fn inside_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

/// Note: `tokio::time::timeout` must be created inside `block_on`, where
/// the runtime's timer is in context.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
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

/// The waker a call's future and the connection are polled with. The
/// call wakes the connection as it queues its request (both are polled in
/// one `block_on`); that wake, reaching tokio, would make it look for I/O
/// once more without waiting (an `epoll_wait` per statement) before
/// polling again. A wake from inside the poll is kept here instead, and
/// the poll simply runs again; wakes from outside (the socket became
/// readable, a timer) go to tokio's waker as they come.
struct Relay {
    /// tokio's waker of the `block_on`.
    outer: Mutex<Option<std::task::Waker>>,
    /// Set while the future is being polled.
    polling: AtomicBool,
    /// A wake came while polling.
    woke: AtomicBool,
}

impl Relay {
    /// At most this many polls in a row for wakes from inside; then the
    /// wake goes to tokio (the timer gets its turn).
    const ROUNDS: usize = 16;

    fn new() -> std::sync::Arc<Relay> {
        std::sync::Arc::new(Relay {
            outer: Mutex::new(None),
            polling: AtomicBool::new(false),
            woke: AtomicBool::new(false),
        })
    }

    /// Polls `f` with this relay's waker until it is ready or it did not
    /// wake itself.
    fn poll<T>(
        self: &std::sync::Arc<Self>,
        cx: &mut Context<'_>,
        mut f: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        {
            let mut outer = self.outer.lock().unwrap_or_else(|p| p.into_inner());
            if !outer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *outer = Some(cx.waker().clone());
            }
        }
        let waker = std::task::Waker::from(self.clone());
        let mut inner = Context::from_waker(&waker);
        for _ in 0..Self::ROUNDS {
            self.polling.store(true, SeqCst);
            let r = f(&mut inner);
            self.polling.store(false, SeqCst);
            if r.is_ready() {
                return r;
            }
            if !self.woke.swap(false, SeqCst) {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl std::task::Wake for Relay {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        if self.polling.load(SeqCst) {
            self.woke.store(true, SeqCst);
            // polled again at once, unless it stopped just now: then the
            // wake must reach tokio too
            if self.polling.load(SeqCst) {
                return;
            }
        }
        if let Some(w) = self
            .outer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            w.wake_by_ref();
        }
    }
}

impl PgClient {
    /// Connects to `endpoint` with `config` (user, database, password,
    /// options) and `tls`; the whole startup (TCP, TLS negotiation,
    /// authentication) must finish within `deadline`.
    pub(crate) fn connect<T>(
        endpoint: &Endpoint,
        config: &tokio_postgres::Config,
        mut tls: T,
        deadline: Duration,
        timeout: Option<Duration>,
    ) -> Result<PgClient, Waited>
    where
        T: MakeTlsConnect<Stream> + Send + 'static,
        T::Stream: Send + 'static,
        T::TlsConnect: Send,
        <T::TlsConnect as TlsConnect<Stream>>::Future: Send,
    {
        let runtime = runtime().map_err(Waited::Runtime)?;
        let session_tls = tls
            .make_tls_connect(endpoint.tls_name())
            .map_err(|e| Waited::TlsSetup(e.into()))?;
        let tls_for_cancel = Mutex::new(tls);
        let (client, connection, socket) = outside_runtime(|| {
            runtime.block_on(async {
                tokio::time::timeout(deadline, async {
                    let stream = endpoint.connect().await.map_err(Waited::Socket)?;
                    let socket = stream
                        .duplicate_fd()
                        .map_err(|e| Waited::Socket(SocketError::Io(e)))?;
                    let (client, connection) = config
                        .connect_raw(stream, session_tls)
                        .await
                        .map_err(Waited::Failed)?;
                    Ok::<_, Waited>((client, connection, socket))
                })
                .await
            })
        })
        .map_err(|_| Waited::TimedOut(deadline))??;
        #[cfg(not(unix))]
        let _ = socket;
        let token = client.cancel_token();
        let target = endpoint.clone();
        let cancel = std::sync::Arc::new(move || {
            let tls = tls_for_cancel
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .make_tls_connect(target.tls_name());
            let (Ok(tls), Ok(rt)) = (tls, self::runtime()) else {
                return;
            };
            let sent = outside_runtime(|| {
                rt.block_on(async {
                    tokio::time::timeout(CANCEL_WITHIN, async {
                        let stream = target.connect().await.ok()?;
                        token.cancel_query_raw(stream, tls).await.ok()
                    })
                    .await
                })
            });
            if !matches!(sent, Ok(Some(()))) {
                log::warn!(
                    target: "dbmux::postgres",
                    "could not send a cancel request within {} s; the statement runs on",
                    CANCEL_WITHIN.as_secs()
                );
            }
        });
        Ok(PgClient {
            client: Some(client),
            cancel,
            interrupted: Default::default(),
            driver: Mutex::new(Box::new(connection)),
            runtime,
            timeout,
            dead: AtomicBool::new(false),
            #[cfg(unix)]
            socket,
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
        #[cfg(unix)]
        return super::socket::peek(&self.socket);
        #[cfg(not(unix))]
        Readiness::Quiet
    }

    /// Sends this session's cancel request: what interrupts its running
    /// statement from another thread.
    pub(crate) fn canceller(&self) -> std::sync::Arc<dyn Fn() + Send + Sync> {
        self.cancel.clone()
    }

    /// Set when an interrupt was asked for.
    pub(crate) fn interrupted(&self) -> &std::sync::Arc<AtomicBool> {
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
    pub(crate) fn call<T: Send>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, tokio_postgres::Error>> + Send,
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
    /// connection meanwhile, for at most `DB_QUERY_TIMEOUT`. Safe to call
    /// from inside a tokio runtime (it then blocks a helper thread).
    ///
    /// # Errors
    /// The server's error, classified as dbmux classifies its own
    /// ([`crate::Error::code`]); [`ErrorCode::StatementTimeout`] when the
    /// deadline passed; after that, or after a connection-class failure, the
    /// connection is discarded.
    pub fn block_on<T: Send>(
        &self,
        f: impl Future<Output = Result<T, tokio_postgres::Error>> + Send,
    ) -> crate::Result<T> {
        self.call("waiting for the server", f)
    }

    /// Waits for `f` (a call on [`PgClient::client`]), driving the
    /// connection meanwhile, for at most `limit` (`None`: no limit).
    pub(crate) fn wait_for<T: Send>(
        &self,
        limit: Option<Duration>,
        f: impl Future<Output = Result<T, tokio_postgres::Error>> + Send,
    ) -> Result<T, Waited> {
        outside_runtime(|| self.wait_here(limit, f))
    }

    /// [`PgClient::call`] for a future that may not leave this thread (it
    /// feeds a caller's [`crate::RowSink`] as rows arrive): `None` when
    /// this thread runs inside a tokio runtime, where the wait must move
    /// to a helper thread, and the caller takes its `Send` way instead.
    pub(crate) fn call_here<T>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Option<crate::Result<T>> {
        if inside_runtime() {
            return None;
        }
        Some(
            self.wait_here(self.timeout, f)
                .map_err(|w| self.failed(w, what)),
        )
    }

    /// The wait itself, on this thread (outside any tokio runtime).
    fn wait_here<T>(
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
        let relay = Relay::new();
        let both = poll_fn(|cx| {
            relay.poll(cx, |cx| {
                let failed = drive(&mut driver, cx, &mut done);
                if done {
                    // the connection failed or ended: never use it again
                    self.dead.store(true, Relaxed);
                }
                if let Poll::Ready(e) = failed {
                    return Poll::Ready(Err(e));
                }
                f.as_mut().poll(cx)
            })
        });
        match limit {
            None => self.runtime.block_on(both).map_err(Waited::Failed),
            Some(d) => match self
                .runtime
                .block_on(async { tokio::time::timeout(d, both).await })
            {
                Ok(r) => r.map_err(Waited::Failed),
                Err(_) => {
                    self.dead.store(true, Relaxed);
                    Err(Waited::TimedOut(d))
                }
            },
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
            Waited::Runtime(e) => Error::new(
                ErrorCode::ConnectFailed,
                format!("could not start the I/O runtime for a connection: {e}"),
            )
            .with_source(e),
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
        let _ = self
            .runtime
            .block_on(async { tokio::time::timeout(Duration::from_millis(500), closing).await });
    }
}
