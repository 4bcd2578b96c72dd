//! The URL / config parser on arbitrary strings: never a panic, and a parsed
//! URL's Display never shows the password it was given.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let _ = dbmux::redact(s);
    if let Ok(t) = dbmux::parse_url(s) {
        let shown = format!("{t} {t:?} {}", t.describe());
        if let dbmux::Target::Postgres(p) = &t {
            let st = p.settings();
            if let Some(pw) = &st.password {
                // a password that also occurs in a field shown on purpose
                // (dbname, user, host, ...) cannot be told apart from it
                let others = format!(
                    "{:?}{}{}{:?}{:?}{:?}{:?}{:?}{:?}",
                    st.host, st.dbname, st.user, st.options, st.application_name,
                    st.sslrootcert, st.sslcert, st.sslkey, st.hostaddr
                );
                if pw.len() >= 4 && !others.contains(pw.as_str()) && !"postgresql".contains(pw.as_str()) {
                    assert!(!shown.contains(pw.as_str()), "password shown for {s:?}: {shown}");
                }
            }
        }
    }
    let _ = dbmux::parse_postgres_with_env(s, |_| None);
    let _ = dbmux::Config::builder().url(s).build();
});
