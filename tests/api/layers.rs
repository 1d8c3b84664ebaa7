//! The layers hold: requests flow down http -> services -> {auth, mail,
//! domain} -> store, and no module names one it must not
//! (docs/architecture.md, "Layers"). Reads every `crate::<module>` path in
//! `src/` (imports and inline paths alike, comments skipped) and fails on
//! a forbidden edge, naming the file, the line and the rule.

use std::path::{Path, PathBuf};

/// (module, modules it must never name, why).
const RULES: &[(&str, &[&str], &str)] = &[
    (
        "store",
        &[
            "auth",
            "http",
            "mail",
            "app",
            "services",
            "cli",
            "admin_socket",
        ],
        "the store keeps records; rules live in domain/",
    ),
    (
        "domain",
        &[
            "auth",
            "http",
            "mail",
            "app",
            "services",
            "cli",
            "admin_socket",
            "store",
            "config",
            "metrics",
            "host",
            "documents",
            "telemetry",
        ],
        "domain/ stands alone: only the clock and crypto",
    ),
    (
        "services",
        &["http", "app", "cli", "admin_socket"],
        "flows know no HTTP and no wiring",
    ),
    (
        "auth",
        &["http", "app", "cli", "admin_socket", "services"],
        "mechanisms know no HTTP",
    ),
    (
        "mail",
        &["http", "app", "cli", "admin_socket", "services"],
        "mail knows no HTTP",
    ),
    ("crypto", &["*"], "a leaf"),
    ("clock", &["*"], "a leaf"),
];

/// The top-level module a source file belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every forbidden edge under `src`, as "file:line: A -> B (why)".
pub fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let from = module_of(src, &file);
        let Some((_, forbidden, why)) = RULES.iter().find(|(m, _, _)| *m == from) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for (at, _) in code.match_indices("crate::") {
                let to: String = code[at + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let bad =
                    to != from && (forbidden.contains(&"*") || forbidden.contains(&to.as_str()));
                if bad && !to.is_empty() {
                    found.push(format!(
                        "{}:{}: {from} -> {to} ({why})",
                        file.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn no_module_names_a_layer_it_must_not() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(found.is_empty(), "forbidden edges:\n{}", found.join("\n"));
}

#[test]
fn a_planted_bad_import_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(
        store.join("mod.rs"),
        "//! A store.\n// use crate::http::x; (a comment is no import)\nuse crate::domain::User;\nuse crate::http::error::AppError;\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("clock.rs"),
        "fn f() { crate::config::x(); }\n",
    )
    .unwrap();
    let found = violations(dir.path());
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].ends_with("clock.rs:1: clock -> config (a leaf)"),
        "{found:?}"
    );
    assert!(found[1].contains("mod.rs:4: store -> http"), "{found:?}");
}
