//! The shared library's soname, when `DBMUX_SONAME` asks for one:
//! scripts/install-c.sh builds with `DBMUX_SONAME=libdbmux.so.0` (the major
//! version of the C ABI, `DBMUX_VERSION_MAJOR`) and installs
//! `libdbmux.so.0.1.0` with the `libdbmux.so.0` and `libdbmux.so` links, so
//! that a program linked against it keeps working across compatible
//! releases. A plain `cargo build` leaves the library in `target/` without
//! one, so that `-Ltarget/release -ldbmux` finds what the program then
//! needs (there is no `libdbmux.so.0` beside it).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DBMUX_SONAME");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if let Ok(soname) = std::env::var("DBMUX_SONAME") {
        if !soname.is_empty() && (os == "linux" || os == "freebsd") {
            println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
        }
    }
}
