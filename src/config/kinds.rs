//! The kinds of settings: for each type the table names, how it is
//! typed (clap's parser), read from the file, turned into what `Config`
//! keeps and shown by `config explain`.

use super::{PolicyName, Require2fa, SignupMode, short_duration};
use crate::domain::GroupName;
use crate::domain::PasswordPolicy;
use crate::domain::access::CookieDomain;
use crate::http::client::{TrustedProxies, parse_host_list};
use crate::mail::{Security, SmtpSettings};
use anyhow::Context;
use clap::builder::{
    BoolishValueParser, EnumValueParser, PathBufValueParser, StringValueParser, TypedValueParser,
    ValueRange,
};
use serde::{Deserialize, Deserializer};
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use url::Url;

/// A type of setting: `Self` is what the table names ("the type as the
/// user types it"), `Value` what `Config` keeps.
pub trait Kind {
    /// What a flag, a variable or a file key gives.
    type Typed: Clone + std::fmt::Debug + Send + Sync + 'static;
    type Value;
    /// A flag of this kind alone means true (`--secure-cookies`).
    const BARE: bool = false;
    /// The parser of flags and variables (also of the defaults in the table).
    fn parser() -> impl TypedValueParser<Value = Self::Typed>;
    /// Reads the value of a file key.
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Self::Typed, D::Error>;
    /// The value `Config` keeps; the error names `flag`.
    fn value(typed: Self::Typed, flag: &str) -> anyhow::Result<Self::Value>;
    /// Puts a given value in its place in `Config`.
    fn set(place: &mut Self::Value, typed: Self::Typed, flag: &str) -> anyhow::Result<()> {
        *place = Self::value(typed, flag)?;
        Ok(())
    }
    /// The value as `config explain` prints it, written as it is typed.
    fn show(value: &Self::Value) -> String;
    /// The same for a secret setting: without the secret.
    fn show_secret(_value: &Self::Value) -> String {
        "****".into()
    }
}

/// clap's `FromStr` parser, as `value_parser!` picks for such types (the
/// same error messages), but with its type known.
fn from_str<T: FromStr>() -> fn(&str) -> Result<T, T::Err> {
    T::from_str
}

/// Types kept as they are typed.
macro_rules! plain_kinds {
    ($($ty:ty => $parser:expr, $show:expr;)*) => {$(
        impl Kind for $ty {
            type Typed = $ty;
            type Value = $ty;
            fn parser() -> impl TypedValueParser<Value = $ty> {
                $parser
            }
            fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                <$ty as Deserialize>::deserialize(d)
            }
            fn value(typed: $ty, _flag: &str) -> anyhow::Result<$ty> {
                Ok(typed)
            }
            fn show(value: &$ty) -> String {
                let show: fn(&$ty) -> String = $show;
                show(value)
            }
        }
    )*};
}

plain_kinds! {
    u32 => clap::value_parser!(u32), |v| v.to_string();
    usize => from_str::<usize>(), |v| v.to_string();
    String => StringValueParser::new(), |v| v.clone();
    PathBuf => PathBufValueParser::new(), |v| v.display().to_string();
    SocketAddr => from_str::<SocketAddr>(), |v| v.to_string();
    Url => from_str::<Url>(), |v| v.to_string();
    SignupMode => EnumValueParser::<SignupMode>::new(), |v| format!("{v:?}").to_lowercase();
    Require2fa => EnumValueParser::<Require2fa>::new(), |v| format!("{v:?}").to_lowercase();
}

/// `--flag`, `--flag=false`; `true/false/yes/no/on/off/1/0`.
impl Kind for bool {
    type Typed = bool;
    type Value = bool;
    const BARE: bool = true;
    fn parser() -> impl TypedValueParser<Value = bool> {
        BoolishValueParser::new()
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Deserialize::deserialize(d)
    }
    fn value(typed: bool, _flag: &str) -> anyhow::Result<bool> {
        Ok(typed)
    }
    fn show(value: &bool) -> String {
        value.to_string()
    }
}

/// A boolean that always takes a value (`--password-reset off`) and is
/// shown as on/off; in the file a TOML boolean.
#[derive(Debug)]
pub struct OnOff;

impl Kind for OnOff {
    type Typed = bool;
    type Value = bool;
    fn parser() -> impl TypedValueParser<Value = bool> {
        BoolishValueParser::new()
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Deserialize::deserialize(d)
    }
    fn value(typed: bool, _flag: &str) -> anyhow::Result<bool> {
        Ok(typed)
    }
    fn show(value: &bool) -> String {
        if *value { "on" } else { "off" }.into()
    }
}

/// A count that cannot be zero: typed as a number, so that 0 gets our
/// message rather than clap's.
impl Kind for NonZeroU32 {
    type Typed = u32;
    type Value = NonZeroU32;
    fn parser() -> impl TypedValueParser<Value = u32> {
        clap::value_parser!(u32)
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        Deserialize::deserialize(d)
    }
    fn value(typed: u32, flag: &str) -> anyhow::Result<NonZeroU32> {
        NonZeroU32::new(typed).with_context(|| format!("{flag} must be at least 1"))
    }
    fn show(value: &NonZeroU32) -> String {
        value.to_string()
    }
}

/// `30s`, `20m`, `1h 30m`, `7d`; in the file the same, as a string.
impl Kind for Duration {
    type Typed = humantime::Duration;
    type Value = Duration;
    fn parser() -> impl TypedValueParser<Value = humantime::Duration> {
        from_str::<humantime::Duration>()
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<humantime::Duration, D::Error> {
        let text: String = Deserialize::deserialize(d)?;
        text.parse().map_err(|e| {
            serde::de::Error::custom(format!(
                "{e}: write a duration such as \"30s\", \"20m\", \"24h\" or \"7d\""
            ))
        })
    }
    fn value(typed: humantime::Duration, _flag: &str) -> anyhow::Result<Duration> {
        Ok(typed.into())
    }
    fn show(value: &Duration) -> String {
        short_duration(*value)
    }
}

/// A setting that may stay unset: `-` in `config explain`.
impl<K: Kind> Kind for Option<K> {
    type Typed = K::Typed;
    type Value = Option<K::Value>;
    fn parser() -> impl TypedValueParser<Value = K::Typed> {
        K::parser()
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<K::Typed, D::Error> {
        K::deserialize(d)
    }
    fn value(typed: K::Typed, flag: &str) -> anyhow::Result<Option<K::Value>> {
        K::value(typed, flag).map(Some)
    }
    fn show(value: &Option<K::Value>) -> String {
        value.as_ref().map_or("-".into(), K::show)
    }
    fn show_secret(value: &Option<K::Value>) -> String {
        value.as_ref().map_or("-".into(), K::show_secret)
    }
}

/// `--smtp-url`: typed as a URL with the password in it, kept parsed.
impl Kind for SmtpSettings {
    type Typed = String;
    type Value = SmtpSettings;
    fn parser() -> impl TypedValueParser<Value = String> {
        StringValueParser::new()
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Deserialize::deserialize(d)
    }
    fn value(typed: String, _flag: &str) -> anyhow::Result<SmtpSettings> {
        SmtpSettings::parse(&typed)
    }
    fn show(value: &SmtpSettings) -> String {
        Self::show_secret(value)
    }
    /// The URL with the password as `****`: host, port and user stay
    /// readable, for checking.
    fn show_secret(s: &SmtpSettings) -> String {
        let user = s
            .credentials
            .as_ref()
            .map_or(String::new(), |(u, _)| format!("{u}:****@"));
        let scheme = if s.security == Security::Tls {
            "smtps"
        } else {
            "smtp"
        };
        let plain = if s.security == Security::Plain {
            "?tls=none"
        } else {
            ""
        };
        format!("{scheme}://{user}{}:{}{plain}", s.host, s.port)
    }
}

/// `--database`: typed as a URL, kept parsed; shown without its password.
impl Kind for crate::store::postgres::Database {
    type Typed = String;
    type Value = crate::store::postgres::Database;
    fn parser() -> impl TypedValueParser<Value = String> {
        StringValueParser::new()
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Deserialize::deserialize(d)
    }
    fn value(typed: String, _flag: &str) -> anyhow::Result<Self::Value> {
        crate::store::postgres::Database::parse(&typed)
    }
    fn show(value: &Self::Value) -> String {
        value.shown().to_owned()
    }
    fn show_secret(value: &Self::Value) -> String {
        value.shown().to_owned()
    }
}

/// `--password-policy`: the rule, with the default length of that rule
/// (a `--password-min-length` later in the table replaces it).
impl Kind for PolicyName {
    type Typed = PolicyName;
    type Value = PasswordPolicy;
    fn parser() -> impl TypedValueParser<Value = PolicyName> {
        EnumValueParser::<PolicyName>::new()
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PolicyName, D::Error> {
        Deserialize::deserialize(d)
    }
    fn value(typed: PolicyName, _flag: &str) -> anyhow::Result<PasswordPolicy> {
        Ok(match typed {
            PolicyName::Seed => PasswordPolicy::Seed { min_len: 9 },
            PolicyName::Nist => PasswordPolicy::Nist { min_len: 15 },
        })
    }
    fn show(value: &PasswordPolicy) -> String {
        match value {
            PasswordPolicy::Seed { .. } => "seed",
            PasswordPolicy::Nist { .. } => "nist",
        }
        .into()
    }
}

/// `--password-min-length`: the length of the rule `--password-policy`
/// chose, so it is set into that rule rather than replacing it.
#[derive(Debug)]
pub struct MinLength;

impl Kind for MinLength {
    type Typed = usize;
    type Value = PasswordPolicy;
    fn parser() -> impl TypedValueParser<Value = usize> {
        from_str::<usize>()
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        Deserialize::deserialize(d)
    }
    /// Without a rule to go into (`set` is what the table uses): the
    /// seed's rule with that length.
    fn value(typed: usize, _flag: &str) -> anyhow::Result<PasswordPolicy> {
        Ok(PasswordPolicy::Seed { min_len: typed })
    }
    fn set(place: &mut PasswordPolicy, min_len: usize, _flag: &str) -> anyhow::Result<()> {
        *place = match *place {
            PasswordPolicy::Seed { .. } => PasswordPolicy::Seed { min_len },
            PasswordPolicy::Nist { .. } => PasswordPolicy::Nist { min_len },
        };
        Ok(())
    }
    fn show(value: &PasswordPolicy) -> String {
        value.min_len().to_string()
    }
}

/// `--trusted-proxies`: CIDRs, `loopback` or `none`.
impl Kind for TrustedProxies {
    type Typed = String;
    type Value = TrustedProxies;
    fn parser() -> impl TypedValueParser<Value = String> {
        StringValueParser::new()
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        list_or_string(d)
    }
    fn value(typed: String, flag: &str) -> anyhow::Result<TrustedProxies> {
        typed.parse().map_err(|e| anyhow::anyhow!("{flag}: {e}"))
    }
    fn show(value: &TrustedProxies) -> String {
        value.to_string()
    }
}

/// `--allowed-hosts`: host names, comma-separated.
#[derive(Debug)]
pub struct HostList;

impl Kind for HostList {
    type Typed = String;
    type Value = Vec<String>;
    fn parser() -> impl TypedValueParser<Value = String> {
        StringValueParser::new()
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        list_or_string(d)
    }
    fn value(typed: String, flag: &str) -> anyhow::Result<Vec<String>> {
        parse_host_list(&typed).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
    }
    fn show(value: &Vec<String>) -> String {
        if value.is_empty() {
            "-".into()
        } else {
            value.join(",")
        }
    }
}

/// Group names, comma-separated (`--require-2fa-groups ops,finance`); in
/// the file a list or one string.
#[derive(Debug)]
pub struct GroupList;

impl Kind for GroupList {
    type Typed = String;
    type Value = Vec<GroupName>;
    fn parser() -> impl TypedValueParser<Value = String> {
        StringValueParser::new()
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        list_or_string(d)
    }
    fn value(typed: String, flag: &str) -> anyhow::Result<Vec<GroupName>> {
        typed
            .split(',')
            .filter(|g| !g.trim().is_empty())
            .map(|g| {
                GroupName::parse(g).map_err(|e| anyhow::anyhow!("{flag}: {:?}: {e}", g.trim()))
            })
            .collect()
    }
    fn show(value: &Vec<GroupName>) -> String {
        if value.is_empty() {
            "-".into()
        } else {
            value
                .iter()
                .map(GroupName::as_str)
                .collect::<Vec<_>>()
                .join(",")
        }
    }
}

/// `--cookie-domain`: domains, comma-separated, each maybe with its
/// login URL (`example.org=https://auth.example.org/`).
#[derive(Debug)]
pub struct CookieDomains;

impl Kind for CookieDomains {
    type Typed = String;
    type Value = Vec<CookieDomain>;
    fn parser() -> impl TypedValueParser<Value = String> {
        StringValueParser::new()
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        list_or_string(d)
    }
    fn value(typed: String, flag: &str) -> anyhow::Result<Vec<CookieDomain>> {
        typed
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| CookieDomain::parse(s).map_err(|e| anyhow::anyhow!("{flag}: {e}")))
            .collect()
    }
    fn show(value: &Vec<CookieDomain>) -> String {
        if value.is_empty() {
            "-".into()
        } else {
            value
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        }
    }
}

/// `--metrics-listen`: an address, or `off`.
#[derive(Debug)]
pub struct MetricsListen;

impl Kind for MetricsListen {
    type Typed = String;
    type Value = Option<SocketAddr>;
    fn parser() -> impl TypedValueParser<Value = String> {
        StringValueParser::new()
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Deserialize::deserialize(d)
    }
    fn value(typed: String, flag: &str) -> anyhow::Result<Option<SocketAddr>> {
        let text = typed.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| {
            anyhow::anyhow!(
                "{flag}: {text:?} is not an address: write ADDR:PORT such as 127.0.0.1:9464, or off"
            )
        })
    }
    fn show(value: &Option<SocketAddr>) -> String {
        value.map_or("off".into(), |a| a.to_string())
    }
}

/// A file key that takes a list either as a TOML array or as one
/// comma-separated string.
fn list_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Either::deserialize(d)? {
        Either::One(s) => s,
        Either::Many(v) => v.join(","),
    })
}

/// One key of the file, read the way its kind says.
pub struct FileValue<K: Kind>(pub K::Typed);

impl<'de, K: Kind> Deserialize<'de> for FileValue<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        K::deserialize(d).map(FileValue)
    }
}

/// clap's `num_args`: a bare flag may stand alone.
pub fn num_args<K: Kind>() -> ValueRange {
    if K::BARE {
        ValueRange::new(0..=1)
    } else {
        ValueRange::SINGLE
    }
}

/// clap's `default_missing_value`: what a bare flag alone means.
pub fn missing_value<K: Kind>() -> Option<&'static str> {
    K::BARE.then_some("true")
}

/// A default of the table, written as a user would type it, parsed by
/// the setting's own parser: what `--help` shows is what applies.
pub fn default_of<K: Kind>(key: &str, text: &str) -> K::Value {
    let cmd = clap::Command::new("gatehouse");
    K::parser()
        .parse_ref(&cmd, None, OsStr::new(text))
        .map_err(anyhow::Error::from)
        .and_then(|typed| K::value(typed, key))
        .unwrap_or_else(|e| {
            panic!("the default {text:?} of {key} in the table does not parse: {e}")
        })
}
