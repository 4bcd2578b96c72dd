//! The procedural macro behind `dbmux::embed_migrations!`: use it through
//! dbmux, which turns the files into `dbmux::migrate::Migrations`.

use proc_macro::{Literal, TokenStream, TokenTree};

/// `__embed_dir!("migrations")`: a `&[(&str, &str)]` of the `.sql` files
/// in that directory (relative to the calling crate's `Cargo.toml`), each
/// as (file name, contents), the contents through `include_str!` so that
/// Cargo rebuilds when a file changes. A missing directory is a compile
/// error naming the path.
#[proc_macro]
#[doc(hidden)]
pub fn __embed_dir(input: TokenStream) -> TokenStream {
    match embed(input) {
        Ok(t) => t,
        Err(msg) => format!("compile_error!({})", Literal::string(&msg))
            .parse()
            .unwrap_or_default(),
    }
}

fn embed(input: TokenStream) -> Result<TokenStream, String> {
    let tokens: Vec<TokenTree> = input.into_iter().collect();
    let lit = match tokens.as_slice() {
        [TokenTree::Literal(l)] => l.to_string(),
        // a literal passed on by a macro_rules! macro arrives in a group
        [TokenTree::Group(g)] => g.stream().to_string(),
        _ => return Err("embed_migrations! takes one string literal: the directory".into()),
    };
    let rel = lit
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or("embed_migrations! takes one string literal: the directory")?;
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let dir = std::path::Path::new(&root).join(rel);
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        format!(
            "embed_migrations!: cannot read the directory {} ({e}); the path is relative to \
             the crate's Cargo.toml",
            dir.display()
        )
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("embed_migrations!: {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".sql") && entry.path().is_file() {
            let path = entry.path().to_string_lossy().into_owned();
            files.push((name, path));
        }
    }
    files.sort();
    let items: Vec<String> = files
        .iter()
        .map(|(name, path)| {
            format!(
                "({}, include_str!({}))",
                Literal::string(name),
                Literal::string(path)
            )
        })
        .collect();
    format!(
        "{{ let files: &[(&str, &str)] = &[{}]; files }}",
        items.join(", ")
    )
    .parse()
    .map_err(|e| format!("embed_migrations!: {e:?}"))
}
