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
fn the_quotas_that_were_in_app_rs_keep_their_values_by_default() {
    let c = Config::defaults("d".into());
    assert_eq!(c.mail_rate_per_minute.get(), 10);
    assert_eq!(c.mail_per_address.get(), 3);
    assert_eq!(c.mail_per_address_window, Duration::from_secs(15 * 60));
    assert_eq!(c.password_change_attempts.get(), 5);
    assert_eq!(c.password_change_window, Duration::from_secs(15 * 60));
    // And the settings that were there already.
    assert_eq!(c.login_rate_per_minute.get(), 60);
    assert_eq!(c.signup_rate_per_minute.get(), 10);
    assert_eq!(c.lockout.threshold, 10);
    assert_eq!(c.session.lifetime, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(c.password_policy, PasswordPolicy::Seed { min_len: 9 });
    assert!(c.password_reset && !c.require_verification);
    assert_eq!(c.mail.timeout, Duration::from_secs(15));
}

#[test]
fn the_new_quotas_are_settings_like_the_others() {
    let c = load_file(
        "mail_per_address = 4\nmail_per_address_window = \"1h\"\npassword_change_window = \"30m\"\n",
        &["--mail-rate-per-minute", "20", "--password-change-attempts", "7"],
    )
    .unwrap();
    assert_eq!(c.mail_rate_per_minute.get(), 20);
    assert_eq!(c.mail_per_address.get(), 4);
    assert_eq!(c.mail_per_address_window, Duration::from_secs(3600));
    assert_eq!(c.password_change_attempts.get(), 7);
    assert_eq!(c.password_change_window, Duration::from_secs(1800));

    for (args, message) in [
        (
            &["--mail-rate-per-minute", "0"][..],
            "--mail-rate-per-minute must be at least 1",
        ),
        (
            &["--mail-per-address", "0"],
            "--mail-per-address must be at least 1",
        ),
        (
            &["--password-change-attempts", "0"],
            "--password-change-attempts must be at least 1",
        ),
        (
            &["--mail-per-address-window", "0s"],
            "--mail-per-address-window must be longer than zero",
        ),
        (
            &["--password-change-window", "0s"],
            "--password-change-window must be longer than zero",
        ),
    ] {
        let e = load(args).unwrap_err().to_string();
        assert!(e.contains(message), "{args:?}: {e}");
    }
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
        (
            "--database-password-file",
            "GATEHOUSE_DATABASE_PASSWORD_FILE"
        )
    );
}
