//! The JavaScript module of dbmux's wasm build: a `cdylib` that carries the
//! `Database` class of `dbmux::wasm`. Build and run it in Node with
//! `scripts/test-wasm.sh` (or see src/wasm/README.md); the JavaScript side
//! is `examples/wasm/health.js`.
#![cfg_attr(not(target_arch = "wasm32"), allow(unused_imports))]

#[cfg(target_arch = "wasm32")]
pub use dbmux::wasm::{Database, Transaction};

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("this example is built for wasm32-unknown-unknown: see scripts/test-wasm.sh");
}
