//! The shared library's soname: `libdbmux.so.0` (the major version of the
//! C ABI; see `DBMUX_VERSION_MAJOR`), so that a program linked against it
//! keeps working across compatible releases (scripts/install-c.sh installs
//! `libdbmux.so.0.1.0` with the `libdbmux.so.0` and `libdbmux.so` links).
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "freebsd" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libdbmux.so.0");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
