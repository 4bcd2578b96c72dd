//! The TLS connector for an `sslmode`, with libpq's rules for root and
//! client certificate files.

use super::SslMode;
use crate::error::{Error, ErrorCode, Result};
use crate::url::postgres::PgSettings;

fn tls_config_error(msg: String) -> Error {
    Error::new(ErrorCode::InvalidConfig, msg)
}

/// `~/.postgresql/<name>`, libpq's default place for TLS files.
fn default_tls_file(name: &str) -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    format!("{home}/.postgresql/{name}")
}

/// Builds the native-tls connector for `s.sslmode`, following libpq's rules:
///
/// - the root certificate file is `sslrootcert`, else `~/.postgresql/root.crt`;
///   whenever that file exists, every mode that tries TLS (allow, prefer,
///   require, verify-ca, verify-full) verifies the server's chain against it;
///   when it does not, verify-ca and verify-full fail and the other modes
///   accept any certificate; `sslrootcert=system` uses the system's roots;
/// - host names are checked only by verify-full;
/// - the client certificate is `sslcert`, else `~/.postgresql/postgresql.crt`,
///   with `sslkey`, else `~/.postgresql/postgresql.key`: used when the
///   certificate file exists, and an error when its key is missing.
///
/// # Errors
/// [`ErrorCode::InvalidConfig`] naming the file: a missing root for
/// verify-ca / verify-full, an unreadable or unparsable file, a client
/// certificate without its key.
pub(super) fn tls_connector(s: &PgSettings) -> Result<native_tls::TlsConnector> {
    let mut b = native_tls::TlsConnector::builder();
    let strict = matches!(s.sslmode, SslMode::VerifyCa | SslMode::VerifyFull);
    let root = s
        .sslrootcert
        .clone()
        .unwrap_or_else(|| default_tls_file("root.crt"));
    let verify = if root == "system" {
        true
    } else if std::path::Path::new(&root).exists() {
        let pem = std::fs::read(&root).map_err(|e| {
            tls_config_error(format!(
                "could not read root certificate file \"{root}\": {e}"
            ))
        })?;
        let certs = native_tls::Certificate::stack_from_pem(&pem).map_err(|e| {
            tls_config_error(format!(
                "could not parse root certificate file \"{root}\": {e}"
            ))
        })?;
        if certs.is_empty() {
            return Err(tls_config_error(format!(
                "root certificate file \"{root}\" holds no PEM certificate"
            )));
        }
        b.disable_built_in_roots(true);
        for c in certs {
            b.add_root_certificate(c);
        }
        true
    } else if strict {
        return Err(tls_config_error(format!(
            "root certificate file \"{root}\" does not exist; either provide the file with \
             sslrootcert=<file>, use the system's trusted roots with sslrootcert=system, or \
             change sslmode to disable server certificate verification"
        )));
    } else {
        false
    };
    if verify {
        b.danger_accept_invalid_hostnames(s.sslmode != SslMode::VerifyFull);
    } else {
        b.danger_accept_invalid_certs(true);
        b.danger_accept_invalid_hostnames(true);
    }
    let cert = s
        .sslcert
        .clone()
        .unwrap_or_else(|| default_tls_file("postgresql.crt"));
    if std::path::Path::new(&cert).exists() {
        let key = s
            .sslkey
            .clone()
            .unwrap_or_else(|| default_tls_file("postgresql.key"));
        if !std::path::Path::new(&key).exists() {
            return Err(tls_config_error(format!(
                "certificate present, but not private key file \"{key}\"; give the client \
                 certificate's key with sslkey=<file>"
            )));
        }
        let read = |p: &str, what: &str| {
            std::fs::read(p)
                .map_err(|e| tls_config_error(format!("could not read {what} file \"{p}\": {e}")))
        };
        let id = native_tls::Identity::from_pkcs8(
            &read(&cert, "certificate")?,
            &read(&key, "private key")?,
        )
        .map_err(|e| {
            tls_config_error(format!(
                "could not load client certificate \"{cert}\" with key \"{key}\": {e}"
            ))
        })?;
        b.identity(id);
    }
    b.build()
        .map_err(|e| tls_config_error(format!("could not set up TLS: {e}")))
}
