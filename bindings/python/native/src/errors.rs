//! dbmux errors as the package's PEP 249 exceptions, chosen by the stable
//! code in `dbmux._errors.from_status` (the one table on the Python side).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

static FROM_STATUS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The exception for `code` and `message`.
pub(crate) fn status_error(py: Python<'_>, code: i32, message: &str) -> PyErr {
    let f = match FROM_STATUS.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py.import("dbmux._errors")?.getattr("from_status")?.unbind())
    }) {
        Ok(f) => f,
        Err(e) => return e,
    };
    match f.bind(py).call1((code, message)) {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// `dbmux.ProgrammingError(message, code)`: the caller's misuse of a
/// cursor (PEP 249 names the class; the code stays the dbmux one).
pub(crate) fn programming_error(py: Python<'_>, code: i32, message: &str) -> PyErr {
    class_error(py, "ProgrammingError", code, message)
}

/// `dbmux.NotSupportedError(message, invalid_parameter)`: something the
/// database cannot do (PEP 249's class for it).
pub(crate) fn not_supported(py: Python<'_>, message: &str) -> PyErr {
    class_error(py, "NotSupportedError", INVALID_PARAMETER, message)
}

fn class_error(py: Python<'_>, class: &str, code: i32, message: &str) -> PyErr {
    let class = match py.import("dbmux._errors").and_then(|m| m.getattr(class)) {
        Ok(c) => c,
        Err(e) => return e,
    };
    match class.call1((message, code)) {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// A dbmux error as its exception.
pub(crate) fn to_py(py: Python<'_>, e: dbmux::Error) -> PyErr {
    status_error(py, e.code().as_i32(), e.message())
}

/// Codes the Python layer raises itself.
pub(crate) const INVALID_PARAMETER: i32 = dbmux::ErrorCode::InvalidParameter.as_i32();
pub(crate) const TYPE_MISMATCH: i32 = dbmux::ErrorCode::TypeMismatch.as_i32();
pub(crate) const MANAGER_CLOSED: i32 = dbmux::ErrorCode::ManagerClosed.as_i32();
pub(crate) const MISUSE: i32 = dbmux::ErrorCode::Misuse.as_i32();
pub(crate) const INVALID_CONFIG: i32 = dbmux::ErrorCode::InvalidConfig.as_i32();

/// `Result<T, dbmux::Error>` into a Python result.
pub(crate) trait OrRaise<T> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> OrRaise<T> for dbmux::Result<T> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}
