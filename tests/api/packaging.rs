//! packaging/ and docs/configuration.md: the example config has every key
//! (with its default, and nothing the server does not know), the table of
//! settings in the docs has a row for each, and the systemd units pass
//! `systemd-analyze verify` where that tool exists.

use gatehouse::config::{FILE_KEYS, SETTINGS};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn packaging(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging")
        .join(file)
}

/// The key of a `key = value` or commented `#key = value` / `# key = value`
/// line, with the line uncommented.
fn setting_line(line: &str) -> Option<(String, String)> {
    let bare = line
        .strip_prefix("# ")
        .or_else(|| line.strip_prefix('#'))
        .unwrap_or(line);
    let (key, _) = bare.split_once(" = ")?;
    let is_key = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    is_key.then(|| (key.to_string(), bare.to_string()))
}

/// `gatehouse config explain --json ARGS…` with no GATEHOUSE_* variable
/// of the test's environment leaking in.
fn explain(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GATEHOUSE_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(["config", "explain", "--json"]).args(args);
    cmd.output().unwrap()
}

/// key -> (value, source) of `config explain --json`.
fn rows(o: &Output) -> BTreeMap<String, (String, String)> {
    let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "config explain --json printed no JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    });
    list.iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                (
                    r["value"].as_str().unwrap().to_string(),
                    r["source"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

#[test]
fn the_example_config_has_every_key_with_its_default_and_no_unknown_one() {
    let text = std::fs::read_to_string(packaging("gatehouse.example.toml")).unwrap();
    // As shipped: valid TOML that sets nothing.
    let shipped: toml::Table = toml::from_str(&text).expect("the example is valid TOML");
    assert!(
        shipped.is_empty(),
        "the example must set nothing as shipped: {shipped:?}"
    );

    // The [[access]] example closes the file: rules, not settings.
    let (settings, access) = text
        .split_once("#[[access]]")
        .expect("the example shows [[access]] rules last");
    // Then the [[oidc_client]] example.
    let (access, clients) = access
        .split_once("#[[oidc_client]]")
        .expect("the example shows an [[oidc_client]] after the rules");
    // `#key = value` lines are the example; `# text` lines explain it.
    let uncomment = |text: String| -> String {
        text.lines()
            .filter(|l| !l.starts_with("# "))
            .map(|l| l.strip_prefix('#').unwrap_or(l).to_string() + "\n")
            .collect()
    };
    let access = uncomment(format!("#[[access]]{access}"));
    let rules = gatehouse::config::parse_access(&access, std::path::Path::new("example"))
        .expect("uncommented, the example's rules are valid");
    assert_eq!(rules.0.len(), 2);
    let clients = uncomment(format!("#[[oidc_client]]{clients}"));
    let declared = gatehouse::config::parse_oidc_clients(&clients, std::path::Path::new("example"))
        .expect("uncommented, the example's app is valid");
    assert_eq!(declared.len(), 1);
    let text = settings.to_string();

    // Every key, each once, and only keys the server knows.
    let lines: Vec<(String, String)> = text.lines().filter_map(setting_line).collect();
    for key in FILE_KEYS {
        let n = lines.iter().filter(|(k, _)| k == key).count();
        assert_eq!(
            n, 1,
            "packaging/gatehouse.example.toml shows {key:?} {n} times"
        );
    }
    for (key, line) in &lines {
        assert!(
            FILE_KEYS.contains(&key.as_str()),
            "the example has {line:?}, but {key:?} is not a config key (FILE_KEYS)"
        );
    }

    // Uncommented, it is a file the real binary reads without a warning,
    // and every setting comes from it.
    let uncommented: String = text
        .lines()
        .map(|l| setting_line(l).map_or(String::new(), |(_, line)| line) + "\n")
        .collect();
    let table: toml::Table = toml::from_str(&uncommented).expect("uncommented, it is valid TOML");
    assert_eq!(table.len(), FILE_KEYS.len());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gatehouse.toml");
    std::fs::write(&file, &uncommented).unwrap();
    let o = explain(&["--config", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "config explain refused the uncommented example: {stderr}"
    );
    assert!(
        !stderr.contains("unknown key") && !stderr.contains("warning"),
        "config explain warned about the uncommented example: {stderr}"
    );
    let from_file = rows(&o);
    assert_eq!(from_file.len(), FILE_KEYS.len(), "{from_file:?}");
    for key in FILE_KEYS {
        let (_, source) = &from_file[*key];
        assert_eq!(source, "file", "{key} should come from the file");
    }

    // Each line shows the default, except where the example shows a
    // value to copy (the default is "none" or depends on the machine).
    const EXAMPLES: &[&str] = &[
        "base_url",
        "hash_workers",
        "terms_file",
        "privacy_file",
        "smtp_url",
        "mail_from",
        "smtp_ca_file",
        "database",
        "database_password_file",
        // Its default follows smtp_url (on when it is set, as above).
        "require_verification",
    ];
    let defaults = rows(&explain(&[]));
    for key in FILE_KEYS.iter().filter(|k| !EXAMPLES.contains(*k)) {
        assert_eq!(
            from_file[*key].0, defaults[*key].0,
            "the example's {key} is not the default"
        );
    }
}

/// The cells of the rows of the table under `heading` in `markdown`.
fn table_rows<'a>(markdown: &'a str, heading: &str) -> Vec<Vec<&'a str>> {
    markdown
        .lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // the head and the |---| line
        .map(|l| {
            // `\|` inside a cell (`seed\|nist`) is not a column.
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").collect();
            cells.into_iter().map(str::trim).collect()
        })
        .collect()
}

#[test]
fn the_docs_have_a_row_for_every_setting_with_its_flag_variable_and_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let text = std::fs::read_to_string(path).unwrap();
    let rows = table_rows(&text, "## `gatehouse serve` settings");
    assert!(rows.len() > 10, "no table of settings found: {rows:?}");
    for s in SETTINGS {
        let key = format!("`{}`", s.key);
        let row = rows
            .iter()
            .find(|r| r.get(2).is_some_and(|c| c.starts_with(&key)))
            .unwrap_or_else(|| {
                panic!(
                    "docs/configuration.md has no row for {} ({}, {})",
                    s.key, s.flag, s.env
                )
            });
        let flag = row[0].trim_start_matches('`');
        assert!(
            flag.strip_prefix(s.flag)
                .is_some_and(|rest| rest.starts_with([' ', '`'])),
            "the row of {} should start with {}: {row:?}",
            s.key,
            s.flag
        );
        assert_eq!(row[1], format!("`{}`", s.env), "{}", s.key);
        // The default as --help says it, then perhaps more words.
        if let Some(default) = s.default {
            let cell = row[3].replace('`', "");
            assert!(
                cell.strip_prefix(default)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', ':', ','])),
                "the docs say the default of {} is {:?}, --help says {default:?}",
                s.key,
                row[3]
            );
        }
    }
    // And no row for a setting that is gone.
    for row in &rows {
        let key = row[2].split('`').nth(1).unwrap_or("");
        assert!(
            key.is_empty() || SETTINGS.iter().any(|s| s.key == key),
            "docs/configuration.md has a row for {key:?}, which is not a setting"
        );
    }
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    match Command::new("systemd-analyze").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => {
            eprintln!(
                "note: systemd-analyze is not installed; the systemd units in packaging/ are not verified"
            );
            return;
        }
    }
    // verify checks that ExecStart's program exists: point the units at
    // the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let units = [
        "gatehouse.service",
        "gatehouse-backup.service",
        "gatehouse-backup.timer",
    ];
    let mut paths = Vec::new();
    for unit in units {
        let text = std::fs::read_to_string(packaging(unit)).unwrap();
        assert!(
            unit.ends_with(".timer") || text.contains("/usr/local/bin/gatehouse"),
            "{unit} should run /usr/local/bin/gatehouse"
        );
        let text = text.replace("/usr/local/bin/gatehouse", env!("CARGO_BIN_EXE_gatehouse"));
        let path = dir.path().join(unit);
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    let o = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&paths)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "systemd-analyze verify failed: {stderr}"
    );
    // Unknown keys and bad values are only warnings (exit code 0): any
    // line about our files fails the test.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| units.iter().any(|u| l.contains(u)))
        .collect();
    assert!(
        ours.is_empty(),
        "systemd-analyze verify warned about the units: {ours:#?}"
    );

    // The server opens its admin socket in the state directory: the
    // sandbox must allow Unix sockets, and the user must be a fixed one
    // (admins run commands as it; see packaging/gatehouse.sysusers).
    let unit = std::fs::read_to_string(packaging("gatehouse.service")).unwrap();
    let families = unit
        .lines()
        .find_map(|l| l.strip_prefix("RestrictAddressFamilies="))
        .expect("the unit restricts address families");
    assert!(
        families.split_whitespace().any(|f| f == "AF_UNIX"),
        "{families}"
    );
    assert!(unit.lines().any(|l| l == "User=gatehouse"));
    assert!(!unit.lines().any(|l| l.starts_with("DynamicUser=yes")));
    let sysusers = std::fs::read_to_string(packaging("gatehouse.sysusers")).unwrap();
    assert!(
        sysusers
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["u", "gatehouse"])),
        "{sysusers}"
    );
}

/// docs/forward-auth.md shows the configs exactly as `gatehouse proxy
/// snippet` prints them (the ones the proxy tests run).
#[test]
fn the_forward_auth_guide_shows_the_snippets_the_binary_prints() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/forward-auth.md"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for kind in ["nginx", "caddy", "traefik"] {
        let run = crate::support::cli::gatehouse(
            dir.path(),
            &[
                "proxy",
                "snippet",
                kind,
                "--host",
                "wiki.example.com",
                "--upstream",
                "http://127.0.0.1:3000",
                "--gatehouse",
                "http://127.0.0.1:9091",
            ],
            None,
        );
        let printed = run.ok().stdout();
        let body: String = printed
            .lines()
            .skip_while(|l| {
                l.starts_with("# gatehouse") || l.starts_with("#   ") || l.starts_with("# Check")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(
            doc.contains(&body),
            "docs/forward-auth.md does not show the {kind} snippet as printed:\n{body}"
        );
    }
}
