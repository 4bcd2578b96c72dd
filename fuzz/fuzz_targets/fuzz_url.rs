//! The URL / config parser on arbitrary strings: never a panic, and a parsed
//! URL's Display never shows the password it was given.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let _ = dbmux::url::redact(s);
    if let Ok(t) = dbmux::url::parse_url(s) {
        let shown = format!("{t} {t:?} {}", t.describe());
        if let dbmux::url::Target::Postgres(p) = &t {
            // what is shown must not depend on the password's value
            let st = p.settings();
            if st.password.is_some() {
                let mut other = st.clone();
                other.password = Some("a-different-password".into());
                let render = |x: &dbmux::url::postgres::PgSettings| format!("{x} {x:?} {}", x.describe());
                assert_eq!(render(st), render(&other), "the password shows in {s:?}");
            }
        }
        let _ = shown;
    }
    let _ = dbmux::url::postgres::parse_postgres_with_env(s, |_| None);
    let _ = dbmux::Config::builder().url(s).build();
});
