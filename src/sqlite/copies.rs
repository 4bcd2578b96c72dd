//! Linux: finds every SQLite library loaded in this process, and warns once
//! when dbmux's is not the only one.
//!
//! Two copies of SQLite in one process do not see each other's POSIX locks
//! (they belong to the process, so when one copy closes a descriptor on a
//! file the kernel drops the locks the other copy holds) and each keeps its
//! own view of the WAL index: one database file used through both can be
//! corrupted ("How To Corrupt An SQLite Database File", section 2.2.1).
//!
//! An object carries SQLite when it exports `sqlite3_version` (a system
//! `libsqlite3`, or a library that exports a bundled copy) or when its
//! read-only segments hold SQLite's file header text `"SQLite format 3"` (a
//! copy compiled in with hidden symbols, as dbmux's `bundled` build is). The
//! object holding dbmux's own copy is the one that holds the version string
//! dbmux's `sqlite3_libversion()` returns.
//!
//! Most of the unsafe code of the crate lives here (the rest: the `poll(2)`
//! and socket reads of `postgres/socket.rs`): the loader's object list
//! (`dl_iterate_phdr`) and `dlopen(RTLD_NOLOAD)`/`dlsym`. The segments
//! themselves are read through `/proc/self/mem` (without it, only exported
//! copies are found).
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};

/// SQLite's file header text (`"SQLite format 3\0"`), a constant in every
/// copy of the library, stored here XOR 0x5A and decoded at run time: were
/// it stored as it is, dbmux's own object would seem to carry SQLite.
const MAGIC_XOR: [u8; 16] = [
    0x09, 0x0b, 0x16, 0x33, 0x2e, 0x3f, 0x7a, 0x3c, 0x35, 0x28, 0x37, 0x3b, 0x2e, 0x7a, 0x69, 0x5a,
];

fn magic() -> [u8; 16] {
    let key = std::hint::black_box(0x5a_u8);
    MAGIC_XOR.map(|b| b ^ key)
}

/// One object the dynamic loader has mapped.
#[derive(Debug)]
struct Object {
    /// Its path; empty for the main program.
    name: String,
    /// The address ranges of its loaded segments.
    ranges: Vec<(usize, usize)>,
    /// The ranges of its read-only data (see [`Object::data_ranges`]).
    data: Vec<(usize, usize)>,
    /// The version text of the `sqlite3_version` it exports, if it does.
    exports: Option<String>,
}

impl Object {
    fn contains(&self, addr: usize) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= addr && addr < b)
    }

    fn display(&self) -> String {
        if self.name.is_empty() {
            std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "the main program".to_string())
        } else {
            self.name.clone()
        }
    }
}

unsafe extern "C" fn visit(
    info: *mut libc::dl_phdr_info,
    _size: usize,
    data: *mut c_void,
) -> c_int {
    // SAFETY: dl_iterate_phdr hands a valid info (and its program headers)
    // for the duration of the call, and `data` is the Vec passed below. Only
    // the headers are read here, never the segments themselves. Nothing
    // here can panic across the C boundary.
    let out = &mut *(data as *mut Vec<Object>);
    let info = &*info;
    let name = if info.dlpi_name.is_null() {
        String::new()
    } else {
        CStr::from_ptr(info.dlpi_name)
            .to_string_lossy()
            .into_owned()
    };
    let phdrs: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
        &[]
    } else {
        std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum))
    };
    let (mut ranges, mut read_only, mut exec) = (Vec::new(), Vec::new(), Vec::new());
    for ph in phdrs.iter().filter(|ph| ph.p_type == libc::PT_LOAD) {
        let start = (info.dlpi_addr as usize).wrapping_add(ph.p_vaddr as usize);
        ranges.push((start, start.saturating_add(ph.p_memsz as usize)));
        let file = (start, start.saturating_add(ph.p_filesz as usize));
        if ph.p_flags & libc::PF_R == 0 || ph.p_flags & libc::PF_W != 0 || ph.p_filesz == 0 {
            continue;
        }
        if ph.p_flags & libc::PF_X == 0 {
            read_only.push(file);
        } else {
            exec.push(file);
        }
    }
    // Constant strings live in .rodata: its own read-only segment when the
    // linker separates code (the default on x86-64 Linux), else inside the
    // code segment or the first (headers) segment.
    let data = if read_only.len() > 1 {
        read_only
    } else {
        read_only.into_iter().chain(exec).collect()
    };
    out.push(Object {
        name,
        ranges,
        data,
        exports: None,
    });
    0
}

/// Whether `ranges` of this process's memory hold `needle`. Read through
/// /proc/self/mem, never by dereferencing: a range unmapped in the meantime
/// reads as an error, not a crash, and sanitizers see no wild reads.
fn memory_contains(mem: &std::fs::File, ranges: &[(usize, usize)], needle: &[u8]) -> bool {
    use std::os::unix::fs::FileExt;
    const CHUNK: usize = 1 << 20;
    let mut buf = vec![0u8; CHUNK + needle.len()];
    for &(start, end) in ranges {
        let mut at = start;
        while at < end {
            let len = (end - at).min(CHUNK + needle.len());
            let Ok(n) = mem.read_at(&mut buf[..len], at as u64) else {
                break;
            };
            if n == 0 {
                break;
            }
            if memchr::memmem::find(&buf[..n], needle).is_some() {
                return true;
            }
            if n < needle.len() || at + n >= end {
                break;
            }
            // overlap the chunks so a needle across a boundary is found
            at += n + 1 - needle.len();
        }
    }
    false
}

/// Every object loaded now, with whether it exports SQLite.
fn loaded_objects() -> Vec<Object> {
    let mut objects: Vec<Object> = Vec::new();
    // SAFETY: `visit` matches the callback type and only uses `data` as the Vec.
    unsafe { libc::dl_iterate_phdr(Some(visit), &mut objects as *mut Vec<Object> as *mut c_void) };
    // Outside the loader's lock (dlopen takes it): which objects export
    // sqlite3_version. RTLD_NOLOAD never loads anything; an object unloaded
    // since the walk just answers NULL.
    let symbol = c"sqlite3_version";
    let mut found: Vec<(usize, String)> = Vec::new();
    for o in &objects {
        let path = CString::new(o.name.as_str()).unwrap_or_default();
        // SAFETY: plain libc calls with valid NUL-terminated strings; the
        // handle is closed below; the symbol, when found, is SQLite's
        // NUL-terminated `const char sqlite3_version[]`.
        unsafe {
            let handle = if o.name.is_empty() {
                libc::dlopen(std::ptr::null(), libc::RTLD_LAZY | libc::RTLD_NOLOAD)
            } else {
                libc::dlopen(path.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD)
            };
            if handle.is_null() {
                continue;
            }
            let addr = libc::dlsym(handle, symbol.as_ptr());
            if !addr.is_null() {
                let text = CStr::from_ptr(addr as *const c_char)
                    .to_string_lossy()
                    .into_owned();
                found.push((addr as usize, text));
            }
            libc::dlclose(handle);
        }
    }
    // dlsym also searches an object's dependencies: credit each symbol to the
    // object whose segments hold it.
    for (addr, text) in found {
        if let Some(o) = objects.iter_mut().find(|o| o.contains(addr)) {
            o.exports = Some(text);
        }
    }
    objects
}

/// The objects that carry SQLite, and the index of the one that holds
/// dbmux's own copy (if it could be told).
fn sqlite_objects() -> (Vec<Object>, Option<usize>) {
    // The version string of dbmux's copy lives in that copy's object.
    // SAFETY: sqlite3_libversion() takes nothing and returns a static string.
    let ours = unsafe { rusqlite::ffi::sqlite3_libversion() } as usize;
    let magic = magic();
    let mem = std::fs::File::open("/proc/self/mem").ok();
    let carriers: Vec<Object> = loaded_objects()
        .into_iter()
        .filter(|o| {
            o.exports.is_some()
                || o.contains(ours)
                || mem
                    .as_ref()
                    .is_some_and(|m| memory_contains(m, &o.data, &magic))
        })
        .collect();
    let mine = carriers.iter().position(|o| o.contains(ours));
    (carriers, mine)
}

/// The warning for a process where several SQLite libraries are loaded, or
/// `None` when dbmux's is the only one.
pub(crate) fn second_copy_warning() -> Option<String> {
    let (carriers, mine) = sqlite_objects();
    let mine = mine?;
    let others: Vec<String> = carriers
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != mine)
        .map(|(_, o)| match &o.exports {
            Some(v) => format!("{} (SQLite {v})", o.display()),
            None => format!("{} (a copy compiled in)", o.display()),
        })
        .collect();
    if others.is_empty() {
        return None;
    }
    Some(format!(
        "more than one SQLite library is loaded in this process: dbmux runs on SQLite {} in {}, \
         and another copy is in {}. Copies of SQLite do not see each other's file locks, so a \
         database file used through more than one of them can be corrupted; link a single \
         SQLite (dbmux's C library and Python package use the system libsqlite3 unless built \
         with the `bundled` feature), or never open the same file through both",
        rusqlite::version(),
        carriers[mine].display(),
        others.join(", ")
    ))
}

/// Logs [`second_copy_warning`] once, at WARN, if there is one.
pub(crate) fn warn_if_several() {
    if let Some(w) = second_copy_warning() {
        log::warn!(target: "dbmux::sqlite", "{w}");
    }
}
