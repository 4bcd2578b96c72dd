//! The socket under a PostgreSQL session, opened by dbmux: TCP (with
//! keepalives) or a unix socket, and a duplicate of its descriptor, so that
//! a checkout can see without a round trip whether an idle session was
//! closed by the server.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub(crate) use crate::pool::checks::Readiness;
use tokio::net::TcpStream;
#[cfg(unix)]
use tokio::net::UnixStream;

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

    /// Connects the socket: each address of the host in turn.
    pub(crate) async fn connect(&self) -> Result<Stream, SocketError> {
        let name = match &self.host {
            #[cfg(unix)]
            Host::Unix(dir) => {
                let path = dir.join(format!(".s.PGSQL.{}", self.port));
                return Ok(UnixStream::connect(path).await.map(Stream::Unix)?);
            }
            #[cfg(not(unix))]
            Host::Unix(_) => {
                return Err(io::Error::other("unix sockets need a unix system").into());
            }
            Host::Tcp(name) => name,
        };
        let addrs: Vec<std::net::SocketAddr> = match self.hostaddr {
            Some(ip) => vec![(ip, self.port).into()],
            None => tokio::net::lookup_host((name.as_str(), self.port))
                .await
                .map_err(|e| SocketError::Lookup(name.clone(), e))?
                .collect(),
        };
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    if let Some(idle) = self.keepalive {
                        socket2::SockRef::from(&s)
                            .set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(idle))?;
                    }
                    return Ok(Stream::Tcp(s));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "the host name has no address")
            })
            .into())
    }
}

/// Why the socket could not be connected.
#[derive(Debug)]
pub(crate) enum SocketError {
    /// The host name did not resolve: no retry fixes that.
    Lookup(String, io::Error),
    /// Refused, unreachable, reset, ...: transient.
    Io(io::Error),
}

impl From<io::Error> for SocketError {
    fn from(e: io::Error) -> SocketError {
        SocketError::Io(e)
    }
}

/// The connected socket, TCP or unix.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Stream {
    /// A second descriptor of the same socket, for [`peek`].
    #[cfg(unix)]
    pub(crate) fn duplicate_fd(&self) -> io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::AsFd;
        match self {
            Stream::Tcp(s) => s.as_fd().try_clone_to_owned(),
            Stream::Unix(s) => s.as_fd().try_clone_to_owned(),
        }
    }

    #[cfg(not(unix))]
    pub(crate) fn duplicate_fd(&self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, b),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_write(cx, b),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Peeks one byte without blocking (the socket is non-blocking, shared with
/// the session) and without consuming it.
#[cfg(unix)]
#[inline]
pub(crate) fn peek(fd: &std::os::fd::OwnedFd) -> Readiness {
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    match socket2::SockRef::from(fd).peek(&mut byte) {
        Ok(0) => Readiness::Closed,
        Ok(_) => Readiness::Readable,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Readiness::Quiet,
        Err(_) => Readiness::Closed,
    }
}
