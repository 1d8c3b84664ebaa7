//! Unit tests of the settings: layering, warnings, refusals and the table.

use super::*;
use clap::Parser;

#[derive(Parser)]
struct Probe {
    #[command(flatten)]
    serve: ServeArgs,
}

#[test]
fn flags_win_over_the_file_and_the_file_over_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g.toml");
    std::fs::write(
        &file,
        "lockout_threshold = 5\nbcrypt_cost = 10\nlisten = \"0.0.0.0:9000\"\n",
    )
    .unwrap();
    let probe = Probe::try_parse_from([
        "x",
        "--config",
        file.to_str().unwrap(),
        "--bcrypt-cost",
        "11",
    ])
    .unwrap();
    let (c, _) = Config::load(None, &probe.serve).unwrap();
    assert_eq!(c.bcrypt_cost, 11);
    assert_eq!(c.lockout.threshold, 5);
    assert_eq!(c.listen.port(), 9000);
    assert_eq!(c.lockout.duration, Duration::from_secs(1200));
}

#[test]
fn unknown_file_keys_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g.toml");
    std::fs::write(&file, "lockout_treshold = 5\n").unwrap();
    let args = ServeArgs {
        config: Some(file),
        ..Default::default()
    };
    let (_, warnings) = Config::load(None, &args).unwrap();
    assert!(
        warnings.iter().any(|w| w.contains("lockout_treshold")),
        "{warnings:?}"
    );
}

#[test]
fn impossible_values_say_what_to_set() {
    let mut c = Config::defaults("d".into());
    c.bcrypt_cost = 3;
    assert!(
        c.validate()
            .unwrap_err()
            .to_string()
            .contains("--bcrypt-cost")
    );
    let mut c = Config::defaults("d".into());
    c.base_url = Some(Url::parse("ftp://x").unwrap());
    assert!(c.validate().unwrap_err().to_string().contains("--base-url"));
}

fn load(args: &[&str]) -> anyhow::Result<Config> {
    let mut argv = vec!["x"];
    argv.extend_from_slice(args);
    let probe = Probe::try_parse_from(argv)?;
    Config::load(None, &probe.serve).map(|(c, _)| c)
}

fn load_file(toml: &str, args: &[&str]) -> anyhow::Result<Config> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g.toml");
    std::fs::write(&file, toml).unwrap();
    let mut argv = vec!["--config", file.to_str().unwrap()];
    argv.extend_from_slice(args);
    load(&argv)
}

#[test]
fn bool_flags_stand_alone_or_take_a_value() {
    assert!(load(&["--secure-cookies"]).unwrap().secure_cookies);
    assert!(!load(&["--secure-cookies=false"]).unwrap().secure_cookies);
    assert!(
        load(&["--endpoint-editable", "on"])
            .unwrap()
            .endpoint_editable
    );
    // --password-reset always takes one.
    assert!(load(&["--password-reset"]).is_err());
    assert!(!load(&["--password-reset", "off"]).unwrap().password_reset);
    assert!(
        !load_file("password_reset = false\n", &[])
            .unwrap()
            .password_reset
    );
}

#[test]
fn the_minimum_length_follows_the_rule_unless_it_is_given() {
    let nist = |n| PasswordPolicy::Nist { min_len: n };
    assert_eq!(
        load(&["--password-policy", "nist"])
            .unwrap()
            .password_policy,
        nist(15)
    );
    let given = load(&["--password-policy", "nist", "--password-min-length", "20"]);
    assert_eq!(given.unwrap().password_policy, nist(20));
    let mixed = load_file(
        "password_policy = \"nist\"\n",
        &["--password-min-length", "16"],
    );
    assert_eq!(mixed.unwrap().password_policy, nist(16));
    let seed = load(&["--password-min-length", "12"]).unwrap();
    assert_eq!(seed.password_policy, PasswordPolicy::Seed { min_len: 12 });
}

#[test]
fn verification_follows_smtp_unless_it_is_given() {
    let smtp = ["--smtp-url", "smtp://u:hunter2@mail.example.com:587"];
    assert!(load(&smtp).unwrap().require_verification);
    let off = load_file("require_verification = false\n", &smtp).unwrap();
    assert!(!off.require_verification);
    // The password never shows.
    let c = load(&smtp).unwrap();
    let rows = c.describe();
    let (_, url) = rows.iter().find(|(k, _)| *k == "smtp_url").unwrap();
    assert_eq!(url, "smtp://u:****@mail.example.com:587");
    assert!(!format!("{rows:?}").contains("hunter2"));
}

#[test]
fn every_setting_has_its_flag_variable_and_default_in_the_help() {
    use clap::CommandFactory;
    let cli = crate::cli::Cli::command();
    let serve = cli.find_subcommand("serve").unwrap();
    let keys: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
    assert_eq!(keys, FILE_KEYS);
    let rows: Vec<&str> = Config::defaults("d".into())
        .describe()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(rows, FILE_KEYS);
    for s in SETTINGS {
        let arg = serve
            .get_arguments()
            .chain(cli.get_arguments())
            .find(|a| a.get_id() == s.key)
            .unwrap_or_else(|| panic!("no flag for {}", s.key));
        assert_eq!(Some(&s.flag[2..]), arg.get_long(), "{}", s.key);
        assert_eq!(
            Some(s.env),
            arg.get_env().and_then(|e| e.to_str()),
            "{}",
            s.key
        );
        assert_eq!(s.secret, arg.is_hide_env_values_set(), "{}", s.key);
        let help = arg.get_help().unwrap().to_string();
        assert!(help.starts_with(s.help), "{}: {help}", s.key);
        if let Some(default) = s.default {
            let shown = format!("[default: {default}]");
            assert!(help.ends_with(&shown), "{}: {help}", s.key);
        }
    }
    assert_eq!(SETTINGS[1].env, "GATEHOUSE_LISTEN");
    let last = SETTINGS.last().unwrap();
    assert_eq!(
        (last.flag, last.env),
        ("--request-timeout", "GATEHOUSE_REQUEST_TIMEOUT")
    );
}
