//! The socket under a PostgreSQL session, opened by dbmux: TCP (with
//! keepalives) or a unix socket, non-blocking, read and written by the
//! session's own loop (`client.rs`) without an async runtime: a read or
//! write that would block returns `Pending`, and the loop waits for the
//! socket with `poll(2)` until the deadline. The same socket tells a
//! checkout without a round trip whether an idle session was closed by the
//! server.

// poll(2), and reads into tokio's uninitialised buffer without zeroing it
// first (each with its SAFETY note).
#![allow(unsafe_code)]

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub(crate) use crate::pool::checks::Readiness;

/// Where one host of a connection string is reached.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// A host name or IP address, or a unix-socket directory.
    pub host: Host,
    /// `hostaddr`: the address to connect to, the host name then only
    /// names the server for TLS.
    pub hostaddr: Option<IpAddr>,
    pub port: u16,
    /// TCP keepalive idle time; `None`: keepalives off.
    pub keepalive: Option<Duration>,
}

/// A host as the connection string gives it.
#[derive(Debug, Clone)]
pub(crate) enum Host {
    Tcp(String),
    #[cfg_attr(not(unix), allow(dead_code))]
    Unix(PathBuf),
}

impl Endpoint {
    /// The endpoint of a one-host tokio-postgres config.
    pub(crate) fn of(c: &tokio_postgres::Config) -> Endpoint {
        let host = match c.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => Host::Tcp(h.clone()),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => Host::Unix(p.clone()),
            None => Host::Tcp(
                c.get_hostaddrs()
                    .first()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "localhost".into()),
            ),
        };
        Endpoint {
            host,
            hostaddr: c.get_hostaddrs().first().copied(),
            port: c.get_ports().first().copied().unwrap_or(5432),
            keepalive: c.get_keepalives().then(|| c.get_keepalives_idle()),
        }
    }

    /// The name TLS checks the certificate against (none for a socket).
    pub(crate) fn tls_name(&self) -> &str {
        match &self.host {
            Host::Tcp(h) => h,
            Host::Unix(_) => "",
        }
    }

    /// Connects the socket before `deadline`: each address of the host in
    /// turn.
    pub(crate) fn connect(&self, deadline: Instant) -> Result<Stream, SocketError> {
        let name = match &self.host {
            #[cfg(unix)]
            Host::Unix(dir) => {
                let path = dir.join(format!(".s.PGSQL.{}", self.port));
                let s = Socket::new(Domain::UNIX, Type::STREAM, None)?;
                s.connect(&SockAddr::unix(path)?)?;
                return Stream::new(s);
            }
            #[cfg(not(unix))]
            Host::Unix(_) => {
                return Err(io::Error::other("unix sockets need a unix system").into());
            }
            Host::Tcp(name) => name,
        };
        let addrs = match self.hostaddr {
            Some(ip) => vec![(ip, self.port).into()],
            None => lookup(name, self.port, deadline)?,
        };
        let mut last = None;
        for addr in addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SocketError::TimedOut);
            }
            let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            match s.connect_timeout(&addr.into(), left) {
                Ok(()) => {
                    s.set_tcp_nodelay(true)?;
                    if let Some(idle) = self.keepalive {
                        s.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(idle))?;
                    }
                    return Stream::new(s);
                }
                Err(e) => last = Some(e),
            }
        }
        match last {
            Some(e) if e.kind() == io::ErrorKind::TimedOut && Instant::now() >= deadline => {
                Err(SocketError::TimedOut)
            }
            Some(e) => Err(e.into()),
            None => {
                Err(io::Error::new(io::ErrorKind::NotFound, "the host name has no address").into())
            }
        }
    }
}

/// The addresses of `name`, looked up on a helper thread so that a resolver
/// that does not answer gives up at the connect deadline (the lookup itself
/// cannot be interrupted; its thread ends when the resolver answers).
fn lookup(name: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, SocketError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(vec![(ip, port).into()]);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let host = name.to_string();
    std::thread::Builder::new()
        .name("dbmux-lookup".into())
        .spawn(move || {
            let r = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port));
            let _ = tx.send(r.map(|a| a.collect::<Vec<_>>()));
        })?;
    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(r) => r.map_err(|e| SocketError::Lookup(name.to_string(), e)),
        Err(_) => Err(SocketError::TimedOut),
    }
}

/// Why the socket could not be connected.
#[derive(Debug)]
pub(crate) enum SocketError {
    /// The host name did not resolve: no retry fixes that.
    Lookup(String, io::Error),
    /// The connect deadline passed.
    TimedOut,
    /// Refused, unreachable, reset, ...: transient.
    Io(io::Error),
}

impl From<io::Error> for SocketError {
    fn from(e: io::Error) -> SocketError {
        SocketError::Io(e)
    }
}

/// The socket of a session and what its loop needs to know about it.
#[derive(Debug)]
pub(crate) struct Io {
    socket: Socket,
    /// Whether a read may find data. Cleared when a read would block or
    /// came back short (the kernel had no more); set again when `poll(2)`
    /// says the socket is readable. Since `poll(2)` reports data that is
    /// already there, a read saved this way is never data missed.
    readable: AtomicBool,
    /// A write would have blocked: the wait includes writability.
    write_blocked: AtomicBool,
}

impl Io {
    /// Waits until the socket is readable (or writable, when a write was
    /// blocked), closed, or `limit` passed: false when it passed.
    pub(crate) fn wait(&self, limit: Option<Duration>) -> io::Result<bool> {
        let write = self.write_blocked.swap(false, Relaxed);
        let ready = wait_socket(&self.socket, write, limit)?;
        if ready {
            self.readable.store(true, Relaxed);
        }
        Ok(ready)
    }

    /// Whether the server sent anything (or closed the connection) while
    /// the session sat idle: one non-blocking peek, no round trip.
    pub(crate) fn readiness(&self) -> Readiness {
        peek(SockRef::from(&self.socket))
    }
}

/// Waits with `poll(2)` for `socket` to become readable (and writable when
/// `write`): false when `limit` passed first.
#[cfg(unix)]
fn wait_socket(socket: &Socket, write: bool, limit: Option<Duration>) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut fd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN | if write { libc::POLLOUT } else { 0 },
        revents: 0,
    };
    let start = limit.map(|_| Instant::now());
    loop {
        let ms = match (limit, start) {
            (Some(l), Some(s)) => {
                let left = l.saturating_sub(s.elapsed());
                if left.is_zero() {
                    return Ok(false);
                }
                // rounded up: a wait of 0.3 ms is not a poll that returns at once
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
            }
            _ => -1,
        };
        // SAFETY: one valid pollfd, for the duration of the call.
        let n = unsafe { libc::poll(&mut fd, 1, ms) };
        if n > 0 {
            return Ok(true);
        }
        if n == 0 {
            // the rounded-up wait may end a little early: look again
            continue;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Without `poll(2)`: a blocking peek with a read timeout, and a short nap
/// when a write waits for room.
#[cfg(not(unix))]
fn wait_socket(socket: &Socket, write: bool, limit: Option<Duration>) -> io::Result<bool> {
    let start = Instant::now();
    if write {
        std::thread::sleep(Duration::from_millis(1));
        return Ok(limit.map_or(true, |l| start.elapsed() < l));
    }
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(limit.map(|l| l.max(Duration::from_millis(1))))?;
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    let r = socket.peek(&mut byte);
    socket.set_nonblocking(true)?;
    match r {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(limit.map_or(true, |l| start.elapsed() < l))
        }
        Err(_) => Ok(true),
    }
}

/// The connected socket, TCP or unix, as tokio-postgres reads and writes
/// it: `Pending` where a call would block (the session's loop then waits
/// for the socket), never a registration with a runtime.
#[derive(Debug)]
pub(crate) struct Stream(Arc<Io>);

/// `send(2)` flags: a peer that closed gives EPIPE, not a SIGPIPE that would
/// end a C or Python program.
#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: i32 = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: i32 = 0;

impl Stream {
    fn new(socket: Socket) -> Result<Stream, SocketError> {
        socket.set_nonblocking(true)?;
        // where MSG_NOSIGNAL does not exist (macOS), the socket option does
        #[cfg(any(target_os = "macos", target_os = "ios"))]
        socket.set_nosigpipe(true)?;
        Ok(Stream(Arc::new(Io {
            socket,
            readable: AtomicBool::new(true),
            write_blocked: AtomicBool::new(false),
        })))
    }

    /// The socket, shared with the session's loop.
    pub(crate) fn io(&self) -> Arc<Io> {
        self.0.clone()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let io = &self.0;
        if !io.readable.load(Relaxed) {
            return Poll::Pending;
        }
        // SAFETY: recv only writes initialised bytes into the buffer, and
        // ReadBuf is told exactly how many.
        let unfilled = unsafe { buf.unfilled_mut() };
        let want = unfilled.len();
        let n = loop {
            match io.socket.recv(unfilled) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    io.readable.store(false, Relaxed);
                    return Poll::Pending;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        };
        if n < want {
            io.readable.store(false, Relaxed);
        }
        // SAFETY: recv initialised these n bytes
        unsafe { buf.assume_init(n) };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            match self.0.socket.send_with_flags(b, SEND_FLAGS) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.0.write_blocked.store(true, Relaxed);
                    return Poll::Pending;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(match self.0.socket.shutdown(std::net::Shutdown::Write) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
            _ => Ok(()),
        })
    }
}

/// Peeks one byte without blocking (the socket is non-blocking, shared with
/// the session) and without consuming it.
#[inline]
pub(crate) fn peek(s: SockRef<'_>) -> Readiness {
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    match s.peek(&mut byte) {
        Ok(0) => Readiness::Closed,
        Ok(_) => Readiness::Readable,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Readiness::Quiet,
        Err(_) => Readiness::Closed,
    }
}
