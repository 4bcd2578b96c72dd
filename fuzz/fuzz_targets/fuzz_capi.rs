//! The C ABI query path fed arbitrary bytes as SQL and parameters (against
//! an in-memory SQLite database): every call returns a status, never a crash.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

#[allow(dead_code, unused_imports, clippy::all)]
#[path = "../../ffi/src/lib.rs"]
mod capi;

use capi::*;

struct Handles(*mut dbmux_manager, *mut dbmux_conn);
unsafe impl Send for Handles {}
unsafe impl Sync for Handles {}

fn handles() -> &'static Handles {
    static H: OnceLock<Handles> = OnceLock::new();
    H.get_or_init(|| unsafe {
        let mut m = std::ptr::null_mut();
        let url = b"sqlite::memory:\0";
        assert_eq!(dbmux_manager_open(url.as_ptr().cast(), &mut m), dbmux_status::DBMUX_OK);
        let mut c = std::ptr::null_mut();
        assert_eq!(dbmux_conn_get(m, &mut c), dbmux_status::DBMUX_OK);
        let mut n = 0u64;
        let ddl = b"CREATE TABLE t (a, b, c)\0";
        dbmux_execute(c, ddl.as_ptr().cast(), std::ptr::null(), 0, &mut n);
        Handles(m, c)
    })
}

fuzz_target!(|data: &[u8]| {
    let h = handles();
    let (nparams, rest) = match data.split_first() {
        Some((n, rest)) => ((*n % 5) as usize, rest),
        None => return,
    };
    // parameters: [type][len][bytes...] each, then the SQL text
    let mut params = Vec::new();
    let mut bufs: Vec<Vec<u8>> = Vec::new();
    let mut i = 0;
    for _ in 0..nparams {
        if i + 2 > rest.len() {
            break;
        }
        let (ty, len) = (rest[i] % 6, rest[i + 1] as usize);
        i += 2;
        let end = (i + len).min(rest.len());
        bufs.push(rest[i..end].to_vec());
        i = end;
        let b = bufs.last().unwrap();
        let mut v = dbmux_value {
            r#type: DBMUX_TYPE_NULL,
            int64: 0,
            real: 0.0,
            ptr: b.as_ptr(),
            len: b.len(),
        };
        let mut word = [0u8; 8];
        word[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
        v.r#type = match ty {
            0 => DBMUX_TYPE_NULL,
            1 => {
                v.int64 = i64::from_le_bytes(word);
                DBMUX_TYPE_INT64
            }
            2 => {
                v.real = f64::from_le_bytes(word);
                DBMUX_TYPE_DOUBLE
            }
            3 => DBMUX_TYPE_TEXT,
            4 => DBMUX_TYPE_BLOB,
            // a tag C could write by mistake: any 32-bit number
            _ => i32::from_le_bytes([word[0], word[1], word[2], word[3]]),
        };
        params.push(v);
    }
    let mut sql: Vec<u8> = rest[i.min(rest.len())..].iter().copied().take_while(|b| *b != 0).collect();
    sql.push(0);
    unsafe {
        let mut r = std::ptr::null_mut();
        let st = dbmux_query(h.1, sql.as_ptr().cast(), params.as_ptr(), params.len(), &mut r);
        // a tag outside DBMUX_TYPE_* is refused before anything runs
        if params.iter().any(|p| !(DBMUX_TYPE_NULL..=DBMUX_TYPE_BLOB).contains(&p.r#type)) {
            assert_eq!(st, dbmux_status::DBMUX_INVALID_PARAMETER);
        }
        if st == dbmux_status::DBMUX_OK {
            let mut cols = 0usize;
            dbmux_result_column_count(r, &mut cols);
            let mut has = false;
            let mut rows = 0;
            while dbmux_result_next(r, &mut has) == dbmux_status::DBMUX_OK && has && rows < 100 {
                rows += 1;
                for c in 0..cols + 1 {
                    let mut ty = DBMUX_TYPE_NULL;
                    dbmux_result_value_type(r, c, &mut ty);
                    let (mut p, mut l) = (std::ptr::null(), 0usize);
                    dbmux_result_text(r, c, &mut p, &mut l);
                    dbmux_result_blob(r, c, &mut p, &mut l);
                    let mut x = 0i64;
                    dbmux_result_int64(r, c, &mut x);
                }
            }
            dbmux_result_free(r);
        } else {
            let m = dbmux_last_error_message();
            dbmux_string_free(m);
        }
        // keep the connection usable for the next input
        if dbmux_rollback(h.1) != dbmux_status::DBMUX_OK {
            let m = dbmux_last_error_message();
            dbmux_string_free(m);
        }
    }
});
