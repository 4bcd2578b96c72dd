//! Parameter values as C fills them in: an integer tag checked in Rust.

use super::*;

/// The kind of a value: one of the `DBMUX_TYPE_*` constants. A plain
/// integer, not an enum, because C fills it in: dbmux checks it, and any
/// other number is DBMUX_INVALID_PARAMETER with a message, never undefined
/// behaviour.
#[allow(non_camel_case_types)]
pub type dbmux_value_type = i32;

/// SQL NULL.
pub const DBMUX_TYPE_NULL: dbmux_value_type = 0;
/// A 64-bit integer (`int64`).
pub const DBMUX_TYPE_INT64: dbmux_value_type = 1;
/// A double (`real`).
pub const DBMUX_TYPE_DOUBLE: dbmux_value_type = 2;
/// UTF-8 text (`ptr`, `len`; not NUL-terminated).
pub const DBMUX_TYPE_TEXT: dbmux_value_type = 3;
/// Bytes (`ptr`, `len`).
pub const DBMUX_TYPE_BLOB: dbmux_value_type = 4;

/// A parameter value. Set `type` and the matching field(s); the others are
/// ignored. Text must be valid UTF-8. The caller keeps ownership of `ptr`.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct dbmux_value {
    /// Which field holds the value: a `DBMUX_TYPE_*` constant.
    pub r#type: dbmux_value_type,
    /// The value for `DBMUX_TYPE_INT64`.
    pub int64: i64,
    /// The value for `DBMUX_TYPE_DOUBLE`.
    pub real: f64,
    /// The bytes for `DBMUX_TYPE_TEXT` and `DBMUX_TYPE_BLOB` (may be NULL when `len` is 0).
    pub ptr: *const u8,
    /// The number of bytes at `ptr`.
    pub len: usize,
}

pub(crate) unsafe fn values(
    params: *const dbmux_value,
    n: usize,
) -> Result<Vec<Value>, dbmux_status> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if params.is_null() {
        return Err(null_arg("params (with n > 0)"));
    }
    let slice = std::slice::from_raw_parts(params, n);
    let mut out = Vec::with_capacity(n);
    for (i, v) in slice.iter().enumerate() {
        let bytes = || -> Result<&[u8], dbmux_status> {
            if v.len == 0 {
                Ok(&[])
            } else if v.ptr.is_null() {
                Err(misuse(&format!(
                    "params[{i}].ptr is NULL but len is {}",
                    v.len
                )))
            } else {
                Ok(std::slice::from_raw_parts(v.ptr, v.len))
            }
        };
        out.push(match v.r#type {
            DBMUX_TYPE_NULL => Value::Null,
            DBMUX_TYPE_INT64 => Value::Integer(v.int64),
            DBMUX_TYPE_DOUBLE => Value::Real(v.real),
            DBMUX_TYPE_TEXT => match std::str::from_utf8(bytes()?) {
                Ok(s) => Value::Text(s.to_string()),
                Err(e) => {
                    set_error(format!(
                        "params[{i}] text is not valid UTF-8 (invalid byte at offset {})",
                        e.valid_up_to()
                    ));
                    return Err(dbmux_status::DBMUX_INVALID_PARAMETER);
                }
            },
            DBMUX_TYPE_BLOB => Value::Blob(bytes()?.to_vec()),
            other => {
                set_error(format!(
                    "params[{i}].type is {other}, which is no value type: use DBMUX_TYPE_NULL (0), \
                     DBMUX_TYPE_INT64 (1), DBMUX_TYPE_DOUBLE (2), DBMUX_TYPE_TEXT (3) or \
                     DBMUX_TYPE_BLOB (4)"
                ));
                return Err(dbmux_status::DBMUX_INVALID_PARAMETER);
            }
        });
    }
    Ok(out)
}
