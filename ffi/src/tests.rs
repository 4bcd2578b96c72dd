//! The C ABI called directly from Rust: every error path gives its status
//! and a useful message, never a crash.

use super::*;
use dbmux_status::*;
use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;
use std::sync::Mutex;

fn last() -> String {
    let p = dbmux_last_error_message();
    assert!(!p.is_null(), "an error message was expected");
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    unsafe { dbmux_string_free(p) };
    s
}

fn cs(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn open(url: &str) -> *mut dbmux_manager {
    let mut m = ptr::null_mut();
    let u = cs(url);
    assert_eq!(unsafe { dbmux_manager_open(u.as_ptr(), &mut m) }, DBMUX_OK);
    m
}

fn conn(m: *mut dbmux_manager) -> *mut dbmux_conn {
    let mut c = ptr::null_mut();
    assert_eq!(unsafe { dbmux_conn_get(m, &mut c) }, DBMUX_OK);
    c
}

fn int(v: i64) -> dbmux_value {
    dbmux_value {
        r#type: DBMUX_TYPE_INT64,
        int64: v,
        real: 0.0,
        ptr: ptr::null(),
        len: 0,
    }
}

fn text(s: &'static [u8]) -> dbmux_value {
    dbmux_value {
        r#type: DBMUX_TYPE_TEXT,
        int64: 0,
        real: 0.0,
        ptr: s.as_ptr(),
        len: s.len(),
    }
}

#[test]
fn every_error_code_has_its_c_status_and_name() {
    // ErrorCode::ALL is the one list: a code added in Rust without its C
    // status (or with another number or name) fails here.
    let header = include_str!("../../bindings/c/dbmux.h");
    for &code in ErrorCode::ALL {
        let status = status_of(code);
        assert_eq!(code.as_i32(), status as i32, "{code}");
        let line = format!(
            "DBMUX_{} = {},",
            code.name().to_ascii_uppercase(),
            code.as_i32()
        );
        assert!(header.contains(&line), "bindings/c/dbmux.h lacks {line}");
        let name = unsafe { CStr::from_ptr(dbmux_status_name(code.as_i32())) };
        assert_eq!(name.to_str().unwrap(), code.name());
    }
    assert!(header.contains("DBMUX_OK = 0,"));
    let ok = unsafe { CStr::from_ptr(dbmux_status_name(0)) };
    assert_eq!(ok.to_str().unwrap(), "ok");
    for unknown in [-1, 24, 50, 98, 100, i32::MAX] {
        assert!(dbmux_status_name(unknown).is_null(), "{unknown}");
    }
}

#[test]
fn version_macros_match_cargo_toml() {
    let v: Vec<u32> = env!("CARGO_PKG_VERSION")
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(
        v,
        [
            DBMUX_VERSION_MAJOR,
            DBMUX_VERSION_MINOR,
            DBMUX_VERSION_PATCH
        ]
    );
    assert_eq!(
        dbmux::VERSION,
        env!("CARGO_PKG_VERSION"),
        "ffi and core versions move together"
    );
    let s = unsafe { CStr::from_ptr(dbmux_version()) }.to_str().unwrap();
    assert!(
        s.starts_with(&format!("dbmux {} (", env!("CARGO_PKG_VERSION"))),
        "{s}"
    );
    assert!(s.contains("sqlite"), "{s}");
    let v = unsafe { CStr::from_ptr(dbmux_sqlite_version()) }
        .to_str()
        .unwrap();
    assert_eq!(v, dbmux::sqlite_version());
    assert_eq!(v, dbmux::sqlite::rusqlite::version());
}

#[test]
fn null_pointers_give_misuse_not_crashes() {
    unsafe {
        let mut m = ptr::null_mut();
        assert_eq!(
            dbmux_manager_open(ptr::null(), ptr::null_mut()),
            DBMUX_MISUSE
        );
        assert_eq!(last(), "out must not be NULL");
        let mgr = open(":memory:");
        assert_eq!(
            dbmux_conn_get(ptr::null(), &mut ptr::null_mut()),
            DBMUX_MISUSE
        );
        assert_eq!(last(), "mgr must not be NULL");
        assert_eq!(dbmux_conn_get(mgr, ptr::null_mut()), DBMUX_MISUSE);
        let mut s = ptr::null_mut();
        assert_eq!(dbmux_health_json(ptr::null(), &mut s), DBMUX_MISUSE);
        assert_eq!(dbmux_health_json(mgr, ptr::null_mut()), DBMUX_MISUSE);
        assert_eq!(dbmux_debug_info_json(ptr::null(), &mut s), DBMUX_MISUSE);
        assert_eq!(dbmux_debug_info_json(mgr, ptr::null_mut()), DBMUX_MISUSE);
        let c = conn(mgr);
        let sql = cs("SELECT 1");
        assert_eq!(
            dbmux_execute(
                ptr::null_mut(),
                sql.as_ptr(),
                ptr::null(),
                0,
                ptr::null_mut()
            ),
            DBMUX_MISUSE
        );
        assert_eq!(last(), "conn must not be NULL");
        assert_eq!(
            dbmux_execute(c, ptr::null(), ptr::null(), 0, ptr::null_mut()),
            DBMUX_MISUSE
        );
        assert_eq!(last(), "sql must not be NULL");
        assert_eq!(
            dbmux_execute(c, sql.as_ptr(), ptr::null(), 2, ptr::null_mut()),
            DBMUX_MISUSE
        );
        assert_eq!(last(), "params (with n > 0) must not be NULL");
        let mut r = ptr::null_mut();
        assert_eq!(
            dbmux_query(c, sql.as_ptr(), ptr::null(), 0, ptr::null_mut()),
            DBMUX_MISUSE
        );
        assert_eq!(
            dbmux_query(ptr::null_mut(), sql.as_ptr(), ptr::null(), 0, &mut r),
            DBMUX_MISUSE
        );
        assert_eq!(dbmux_last_insert_id(c, ptr::null_mut()), DBMUX_MISUSE);
        assert_eq!(dbmux_begin(ptr::null_mut()), DBMUX_MISUSE);
        assert_eq!(dbmux_commit(ptr::null_mut()), DBMUX_MISUSE);
        assert_eq!(dbmux_rollback(ptr::null_mut()), DBMUX_MISUSE);
        let mut n = 0usize;
        assert_eq!(dbmux_result_column_count(ptr::null(), &mut n), DBMUX_MISUSE);
        let mut has = false;
        assert_eq!(dbmux_result_next(ptr::null_mut(), &mut has), DBMUX_MISUSE);
        assert_eq!(
            dbmux_query(c, sql.as_ptr(), ptr::null(), 0, &mut r),
            DBMUX_OK
        );
        assert_eq!(dbmux_result_column_count(r, ptr::null_mut()), DBMUX_MISUSE);
        assert_eq!(dbmux_result_next(r, ptr::null_mut()), DBMUX_MISUSE);
        let mut p: *const u8 = ptr::null();
        assert_eq!(
            dbmux_result_text(r, 0, &mut p, ptr::null_mut()),
            DBMUX_MISUSE
        );
        assert_eq!(dbmux_global(ptr::null_mut()), DBMUX_MISUSE);
        // out-params are written only on success
        assert_eq!(m, ptr::null_mut());
        let bad = cs("mysql://x");
        assert_eq!(dbmux_manager_open(bad.as_ptr(), &mut m), DBMUX_INVALID_URL);
        assert!(m.is_null());
        // the free functions accept NULL
        dbmux_result_free(ptr::null_mut());
        dbmux_conn_release(ptr::null_mut());
        dbmux_manager_close(ptr::null_mut());
        dbmux_string_free(ptr::null_mut());
        dbmux_result_free(r);
        dbmux_conn_release(c);
        dbmux_manager_close(mgr);
    }
}

#[test]
fn invalid_utf8_and_bad_urls_are_reported() {
    unsafe {
        let mut m = ptr::null_mut();
        let bad = [b's', b'q', 0xff, b'l', 0];
        assert_eq!(
            dbmux_manager_open(bad.as_ptr().cast(), &mut m),
            DBMUX_INVALID_PARAMETER
        );
        assert_eq!(last(), "url is not valid UTF-8 (invalid byte at offset 2)");
        let url = cs("postgresql://u:Secret-99@h/db?bogus=1");
        assert_eq!(dbmux_manager_open(url.as_ptr(), &mut m), DBMUX_INVALID_URL);
        let msg = last();
        assert!(msg.contains("invalid connection option \"bogus\""), "{msg}");
        assert!(!msg.contains("Secret-99"));
        let mgr = open(":memory:");
        let c = conn(mgr);
        let bad_sql = [b'S', b'E', 0xfe, 0];
        assert_eq!(
            dbmux_execute(c, bad_sql.as_ptr().cast(), ptr::null(), 0, ptr::null_mut()),
            DBMUX_INVALID_PARAMETER
        );
        assert!(last().starts_with("sql is not valid UTF-8"));
        let sql = cs("SELECT ?");
        let bad_text = dbmux_value {
            r#type: DBMUX_TYPE_TEXT,
            int64: 0,
            real: 0.0,
            ptr: [0xc3u8, 0x28].as_ptr(),
            len: 2,
        };
        let mut r = ptr::null_mut();
        assert_eq!(
            dbmux_query(c, sql.as_ptr(), &bad_text, 1, &mut r),
            DBMUX_INVALID_PARAMETER
        );
        assert_eq!(
            last(),
            "params[0] text is not valid UTF-8 (invalid byte at offset 0)"
        );
        let dangling = dbmux_value {
            r#type: DBMUX_TYPE_BLOB,
            int64: 0,
            real: 0.0,
            ptr: ptr::null(),
            len: 3,
        };
        assert_eq!(
            dbmux_query(c, sql.as_ptr(), &dangling, 1, &mut r),
            DBMUX_MISUSE
        );
        assert_eq!(last(), "params[0].ptr is NULL but len is 3");
        for tag in [5, 42, -1, i32::MAX] {
            let unknown = dbmux_value {
                r#type: tag,
                int64: 7,
                real: 0.0,
                ptr: ptr::null(),
                len: 0,
            };
            assert_eq!(
                dbmux_query(c, sql.as_ptr(), &unknown, 1, &mut r),
                DBMUX_INVALID_PARAMETER
            );
            assert!(
                last().starts_with(&format!("params[0].type is {tag}, which is no value type")),
                "{}",
                last()
            );
        }
        assert!(r.is_null());
        dbmux_conn_release(c);
        dbmux_manager_close(mgr);
    }
}

#[test]
fn sql_errors_types_getters_and_transactions() {
    unsafe {
        let mgr = open(":memory:");
        let c = conn(mgr);
        let mut n = 0u64;
        let ddl = cs("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, score REAL)");
        assert_eq!(
            dbmux_execute(c, ddl.as_ptr(), ptr::null(), 0, &mut n),
            DBMUX_OK
        );
        let ins = cs("INSERT INTO t (name, score) VALUES (?, ?)");
        let p = [text(b"ann"), int(7)];
        assert_eq!(
            dbmux_execute(c, ins.as_ptr(), p.as_ptr(), 2, &mut n),
            DBMUX_OK
        );
        assert_eq!(n, 1);
        let mut id = 0i64;
        assert_eq!(dbmux_last_insert_id(c, &mut id), DBMUX_OK);
        assert_eq!(id, 1);
        // constraint, syntax, parameter count
        assert_eq!(
            dbmux_execute(c, ins.as_ptr(), p.as_ptr(), 2, &mut n),
            DBMUX_CONSTRAINT
        );
        assert!(last().contains("UNIQUE"));
        let bad = cs("SELEC 1");
        assert_eq!(
            dbmux_execute(c, bad.as_ptr(), ptr::null(), 0, &mut n),
            DBMUX_SQL
        );
        assert!(last().contains("syntax error"));
        assert_eq!(
            dbmux_execute(c, ins.as_ptr(), p.as_ptr(), 1, &mut n),
            DBMUX_INVALID_PARAMETER
        );
        assert_eq!(
            last(),
            "the statement takes 2 parameter(s) but 1 were given"
        );
        // results: column metadata without rows, typed getters, wrong types
        let q = cs("SELECT id, name, score FROM t WHERE id = ?");
        let mut r = ptr::null_mut();
        assert_eq!(
            dbmux_query(c, q.as_ptr(), [int(1)].as_ptr(), 1, &mut r),
            DBMUX_OK
        );
        let mut cols = 0usize;
        assert_eq!(dbmux_result_column_count(r, &mut cols), DBMUX_OK);
        assert_eq!(cols, 3);
        let mut name: *const c_char = ptr::null();
        assert_eq!(dbmux_result_column_name(r, 1, &mut name), DBMUX_OK);
        assert_eq!(CStr::from_ptr(name).to_str().unwrap(), "name");
        assert_eq!(dbmux_result_column_decltype(r, 2, &mut name), DBMUX_OK);
        assert_eq!(CStr::from_ptr(name).to_str().unwrap(), "REAL");
        assert_eq!(
            dbmux_result_column_name(r, 3, &mut name),
            DBMUX_INVALID_PARAMETER
        );
        assert_eq!(
            last(),
            "column 3 is out of range: the result has 3 column(s)"
        );
        let mut v = 0i64;
        assert_eq!(
            dbmux_result_int64(r, 0, &mut v),
            DBMUX_MISUSE,
            "before the first next"
        );
        let mut has = false;
        assert_eq!(dbmux_result_next(r, &mut has), DBMUX_OK);
        assert!(has);
        assert_eq!(dbmux_result_int64(r, 0, &mut v), DBMUX_OK);
        assert_eq!(v, 1);
        let (mut tp, mut tl): (*const u8, usize) = (ptr::null(), 0);
        assert_eq!(dbmux_result_text(r, 1, &mut tp, &mut tl), DBMUX_OK);
        assert_eq!(std::slice::from_raw_parts(tp, tl), b"ann");
        let mut d = 0f64;
        assert_eq!(dbmux_result_double(r, 2, &mut d), DBMUX_OK);
        assert_eq!(d, 7.0);
        assert_eq!(dbmux_result_int64(r, 1, &mut v), DBMUX_TYPE_MISMATCH);
        assert_eq!(last(), "the value is text, not int64");
        assert_eq!(
            dbmux_result_blob(r, 0, &mut tp, &mut tl),
            DBMUX_TYPE_MISMATCH
        );
        assert_eq!(dbmux_result_next(r, &mut has), DBMUX_OK);
        assert!(!has);
        assert_eq!(dbmux_result_next(r, &mut has), DBMUX_OK);
        assert!(!has, "stays at the end");
        dbmux_result_free(r);
        // transactions
        assert_eq!(dbmux_commit(c), DBMUX_MISUSE);
        assert!(last().contains("without an open transaction"));
        assert_eq!(dbmux_rollback(c), DBMUX_MISUSE);
        assert_eq!(dbmux_begin(c), DBMUX_OK);
        assert_eq!(dbmux_begin(c), DBMUX_MISUSE);
        let del = cs("DELETE FROM t");
        assert_eq!(
            dbmux_execute(c, del.as_ptr(), ptr::null(), 0, &mut n),
            DBMUX_OK
        );
        assert_eq!(dbmux_rollback(c), DBMUX_OK);
        let cnt = cs("SELECT count(*) FROM t");
        assert_eq!(
            dbmux_query(c, cnt.as_ptr(), ptr::null(), 0, &mut r),
            DBMUX_OK
        );
        assert_eq!(dbmux_result_next(r, &mut has), DBMUX_OK);
        assert_eq!(dbmux_result_int64(r, 0, &mut v), DBMUX_OK);
        assert_eq!(v, 1, "the rollback kept the row");
        dbmux_result_free(r);
        // a successful call clears the last error
        assert!(dbmux_last_error_message().is_null());
        dbmux_conn_release(c);
        dbmux_manager_close(mgr);
    }
}

#[test]
fn checkout_timeout_and_json() {
    unsafe {
        let url = cs(":memory:");
        std::env::set_var("DB_POOL_SIZE", "1");
        std::env::set_var("DB_MAX_OVERFLOW", "0");
        std::env::set_var("DB_POOL_TIMEOUT", "0.3");
        let mut mgr = ptr::null_mut();
        assert_eq!(dbmux_manager_open(url.as_ptr(), &mut mgr), DBMUX_OK);
        std::env::remove_var("DB_POOL_SIZE");
        std::env::remove_var("DB_MAX_OVERFLOW");
        std::env::remove_var("DB_POOL_TIMEOUT");
        let held = conn(mgr);
        let mut c = ptr::null_mut();
        assert_eq!(dbmux_conn_get(mgr, &mut c), DBMUX_POOL_TIMEOUT);
        assert!(c.is_null());
        let msg = last();
        assert!(
            msg.contains("pool_size=1") && msg.contains("in use=1"),
            "{msg}"
        );
        dbmux_conn_release(held);
        let mut s = ptr::null_mut();
        assert_eq!(dbmux_health_json(mgr, &mut s), DBMUX_OK);
        let json = CStr::from_ptr(s).to_str().unwrap().to_string();
        dbmux_string_free(s);
        assert!(json.contains("\"status\":\"healthy\""), "{json}");
        assert_eq!(dbmux_debug_info_json(mgr, &mut s), DBMUX_OK);
        let json = CStr::from_ptr(s).to_str().unwrap().to_string();
        dbmux_string_free(s);
        assert!(json.contains("\"checkout_timeouts\":1"), "{json}");
        assert_eq!(dbmux_manager_metrics(mgr, &mut s), DBMUX_OK);
        let text = CStr::from_ptr(s).to_str().unwrap().to_string();
        dbmux_string_free(s);
        assert!(
            text.contains(
                "dbmux_checkout_timeouts_total{pool=\"sqlite::memory:\",backend=\"sqlite\"} 1\n"
            ),
            "{text}"
        );
        assert_eq!(dbmux_manager_metrics_openmetrics(mgr, &mut s), DBMUX_OK);
        let text = CStr::from_ptr(s).to_str().unwrap().to_string();
        dbmux_string_free(s);
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(dbmux_manager_metrics(ptr::null(), &mut s), DBMUX_MISUSE);
        assert_eq!(dbmux_manager_metrics(mgr, ptr::null_mut()), DBMUX_MISUSE);
        dbmux_manager_close(mgr);
    }
}

#[test]
fn every_result_getter_checks_its_pointers() {
    unsafe {
        let mgr = open(":memory:");
        let c = conn(mgr);
        let sql = cs("SELECT 1, 'x', x'00', 2.5");
        let mut r = ptr::null_mut();
        assert_eq!(
            dbmux_query(c, sql.as_ptr(), ptr::null(), 0, &mut r),
            DBMUX_OK
        );
        let mut has = false;
        assert_eq!(dbmux_result_next(r, &mut has), DBMUX_OK);
        let (mut p, mut l): (*const u8, usize) = (ptr::null(), 0);
        let mut name: *const c_char = ptr::null();
        let mut ty = DBMUX_TYPE_NULL;
        let (mut i, mut d, mut n) = (0i64, 0f64, 0u64);
        let nulls: Vec<(&str, dbmux_status)> = vec![
            (
                "column_name out",
                dbmux_result_column_name(r, 0, ptr::null_mut()),
            ),
            (
                "column_name r",
                dbmux_result_column_name(ptr::null(), 0, &mut name),
            ),
            (
                "decltype out",
                dbmux_result_column_decltype(r, 0, ptr::null_mut()),
            ),
            (
                "decltype r",
                dbmux_result_column_decltype(ptr::null(), 0, &mut name),
            ),
            (
                "value_type out",
                dbmux_result_value_type(r, 0, ptr::null_mut()),
            ),
            (
                "value_type r",
                dbmux_result_value_type(ptr::null(), 0, &mut ty),
            ),
            ("int64 out", dbmux_result_int64(r, 0, ptr::null_mut())),
            ("int64 r", dbmux_result_int64(ptr::null(), 0, &mut i)),
            ("double out", dbmux_result_double(r, 3, ptr::null_mut())),
            ("double r", dbmux_result_double(ptr::null(), 3, &mut d)),
            ("text ptr", dbmux_result_text(r, 1, ptr::null_mut(), &mut l)),
            ("text r", dbmux_result_text(ptr::null(), 1, &mut p, &mut l)),
            ("blob len", dbmux_result_blob(r, 2, &mut p, ptr::null_mut())),
            ("blob r", dbmux_result_blob(ptr::null(), 2, &mut p, &mut l)),
            (
                "rows_affected out",
                dbmux_result_rows_affected(r, ptr::null_mut()),
            ),
            (
                "rows_affected r",
                dbmux_result_rows_affected(ptr::null(), &mut n),
            ),
        ];
        for (what, status) in nulls {
            assert_eq!(status, DBMUX_MISUSE, "{what}");
            assert!(last().ends_with("must not be NULL"), "{what}");
        }
        // the same getters work with real pointers
        assert_eq!(dbmux_result_value_type(r, 2, &mut ty), DBMUX_OK);
        assert_eq!(ty, DBMUX_TYPE_BLOB);
        assert_eq!(dbmux_result_blob(r, 2, &mut p, &mut l), DBMUX_OK);
        assert_eq!(std::slice::from_raw_parts(p, l), &[0u8]);
        assert_eq!(
            dbmux_result_double(r, 0, &mut d),
            DBMUX_OK,
            "an integer reads as a double"
        );
        assert_eq!(d, 1.0);
        dbmux_result_free(r);
        // a statement without columns through dbmux_query: rows affected
        let ddl = cs("CREATE TABLE t (x)");
        assert_eq!(
            dbmux_query(c, ddl.as_ptr(), ptr::null(), 0, &mut r),
            DBMUX_OK
        );
        dbmux_result_free(r);
        let ins = cs("INSERT INTO t VALUES (1), (2)");
        assert_eq!(
            dbmux_query(c, ins.as_ptr(), ptr::null(), 0, &mut r),
            DBMUX_OK
        );
        let mut cols = 9usize;
        assert_eq!(dbmux_result_column_count(r, &mut cols), DBMUX_OK);
        assert_eq!(cols, 0);
        assert_eq!(dbmux_result_rows_affected(r, &mut n), DBMUX_OK);
        assert_eq!(n, 2);
        dbmux_result_free(r);
        dbmux_conn_release(c);
        dbmux_manager_close(mgr);
    }
}

static LOGGED: Mutex<Vec<(i32, String, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn collect(
    level: i32,
    target: *const c_char,
    message: *const c_char,
    user_data: *mut c_void,
) {
    assert_eq!(user_data as usize, 0xD8);
    let t = CStr::from_ptr(target).to_string_lossy().into_owned();
    let m = CStr::from_ptr(message).to_string_lossy().into_owned();
    LOGGED.lock().unwrap().push((level, t, m));
}

#[test]
fn log_lines_reach_the_callback() {
    unsafe {
        assert_eq!(
            dbmux_set_log_callback(Some(collect), 0xD8 as *mut c_void),
            DBMUX_OK
        );
        std::env::set_var("DB_ECHO", "1");
        let mgr = open(":memory:");
        std::env::remove_var("DB_ECHO");
        let c = conn(mgr);
        let sql = cs("SELECT 42 AS answer");
        let mut n = 0u64;
        assert_eq!(
            dbmux_execute(c, sql.as_ptr(), ptr::null(), 0, &mut n),
            DBMUX_OK
        );
        dbmux_conn_release(c);
        dbmux_manager_close(mgr);
        assert_eq!(dbmux_set_log_callback(None, ptr::null_mut()), DBMUX_OK);
        let logged = LOGGED.lock().unwrap().clone();
        let line = logged
            .iter()
            .find(|(_, t, m)| t == "dbmux::sql" && m.starts_with("SELECT 42 AS answer"))
            .unwrap_or_else(|| panic!("no echo line in {logged:?}"));
        assert_eq!(line.0, 3, "INFO is level 3");
        assert!(
            logged
                .iter()
                .any(|(_, t, m)| t == "dbmux" && m.contains("shut down")),
            "{logged:?}"
        );
    }
}
