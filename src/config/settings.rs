//! How the one table of settings in `config.rs` becomes code: the
//! `settings!` macro writes the clap `ServeArgs`, the file's struct,
//! `FILE_KEYS`, `SETTINGS`, the `Config` struct, its defaults, the
//! layering and the rows of `config explain`; `kinds.rs` says what each
//! type of setting does in each of them.

/// One setting as the docs and tests see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The TOML key, `snake_case`; also the clap id.
    pub key: &'static str,
    /// `--kebab-case`.
    pub flag: &'static str,
    /// `GATEHOUSE_UPPER_SNAKE`.
    pub env: &'static str,
    /// As `--help` shows it after "default:"; `None`: unset.
    pub default: Option<&'static str>,
    pub help: &'static str,
    /// Its value is never printed (`--help` hides the variable's value).
    pub secret: bool,
}

/// `prefix` and `key`, upper-cased (`GATEHOUSE_KEY`) or with `-` for `_`
/// (`--key`). At compile time, because clap takes `&'static str`.
pub const fn name_bytes<const N: usize>(prefix: &str, key: &str, upper: bool) -> [u8; N] {
    let mut out = [0u8; N];
    let (prefix, key) = (prefix.as_bytes(), key.as_bytes());
    let mut i = 0;
    while i < prefix.len() {
        out[i] = prefix[i];
        i += 1;
    }
    let mut j = 0;
    while j < key.len() {
        out[i + j] = match (upper, key[j]) {
            (true, b) => b.to_ascii_uppercase(),
            (false, b'_') => b'-',
            (false, b) => b,
        };
        j += 1;
    }
    out
}

/// `GATEHOUSE_` and the key in capitals: the setting's variable.
macro_rules! env_name {
    ($key:ident) => {
        const {
            const BYTES: [u8; 10 + stringify!($key).len()] =
                $crate::config::settings::name_bytes("GATEHOUSE_", stringify!($key), true);
            match std::str::from_utf8(&BYTES) {
                Ok(name) => name,
                Err(_) => panic!("setting keys are ASCII"),
            }
        }
    };
}

/// `--` and the key in kebab-case: the setting's flag (what clap's `long`
/// makes of the field name).
macro_rules! flag_name {
    ($key:ident) => {
        const {
            const BYTES: [u8; 2 + stringify!($key).len()] =
                $crate::config::settings::name_bytes("--", stringify!($key), false);
            match std::str::from_utf8(&BYTES) {
                Ok(name) => name,
                Err(_) => panic!("setting keys are ASCII"),
            }
        }
    };
}

/// The forms of a default in the table: `"text"` (parsed), `(expr,
/// "text")` (computed; the text says how) and `none` (unset).
macro_rules! default_value {
    ($kind:ty, $key:ident, none) => {
        None
    };
    ($kind:ty, $key:ident, ($value:expr, $text:literal)) => {
        $value
    };
    ($kind:ty, $key:ident, $text:literal) => {
        $crate::config::kinds::default_of::<$kind>(stringify!($key), $text)
    };
}

macro_rules! default_text {
    (none) => {
        None
    };
    (($value:expr, $text:literal)) => {
        Some($text)
    };
    ($text:literal) => {
        Some($text)
    };
}

/// The help of `--help`: the table's text and its default.
macro_rules! help_text {
    ($help:literal, none) => {
        $help
    };
    ($help:literal, ($value:expr, $text:literal)) => {
        concat!($help, " [default: ", $text, "]")
    };
    ($help:literal, $text:literal) => {
        concat!($help, " [default: ", $text, "]")
    };
}

/// The optional `, secret` of an entry (a misspelling does not compile).
macro_rules! secret {
    () => {
        false
    };
    (secret) => {
        true
    };
}

/// The table (see `config.rs`). Its forms, each ending in
/// `DEFAULT, "VALUE NAME", "help" [, secret];`:
///
/// - `key: Kind = …;`: a setting with a `Config` field `key` of its own;
/// - `field: Type { sub <- key: Kind = …; … }`: settings that make up
///   the `Config` field `field` of type `Type`, each its field `sub`;
/// - `field <- key: Kind = "text", …;`: a setting that goes into a field
///   an earlier entry made (`Kind::set`); its default only described.
///
/// The entries are first gathered into one list (what every setting
/// needs) and the `Config` fields with their defaults, then `@emit`
/// writes all the code.
macro_rules! settings {
    (@gather [$($entries:tt)*] [$($fields:tt)*] [$($inits:tt)*]
        $field:ident : $group:ident {
            $($sub:ident <- $key:ident : $kind:ty = $default:tt, $value:literal, $help:literal $(, $secret:ident)?;)+
        }
        $($rest:tt)*
    ) => {
        settings! {
            @gather
            [$($entries)* $(($key, $kind, $default, $value, $help, [$($secret)?], ($field . $sub)))+]
            [$($fields)* pub $field: $group,]
            [$($inits)* $field: $group { $($sub: default_value!($kind, $key, $default),)+ },]
            $($rest)*
        }
    };
    (@gather [$($entries:tt)*] [$($fields:tt)*] [$($inits:tt)*]
        $field:ident <- $key:ident : $kind:ty = $text:literal, $value:literal, $help:literal $(, $secret:ident)?;
        $($rest:tt)*
    ) => {
        settings! {
            @gather
            [$($entries)* ($key, $kind, $text, $value, $help, [$($secret)?], ($field))]
            [$($fields)*]
            [$($inits)*]
            $($rest)*
        }
    };
    (@gather [$($entries:tt)*] [$($fields:tt)*] [$($inits:tt)*]
        $key:ident : $kind:ty = $default:tt, $value:literal, $help:literal $(, $secret:ident)?;
        $($rest:tt)*
    ) => {
        settings! {
            @gather
            [$($entries)* ($key, $kind, $default, $value, $help, [$($secret)?], ($key))]
            [$($fields)* #[doc = $help] pub $key: <$kind as Kind>::Value,]
            [$($inits)* $key: default_value!($kind, $key, $default),]
            $($rest)*
        }
    };
    (@gather $entries:tt $fields:tt $inits:tt) => {
        settings!(@emit $entries $fields $inits);
    };
    // Without this, an entry none of the forms reads would start the
    // table over and over, up to the recursion limit.
    (@gather $entries:tt $fields:tt $inits:tt $($bad:tt)+) => {
        compile_error!(concat!(
            "settings!: this entry matches none of the forms: ",
            stringify!($($bad)+)
        ));
    };
    (@emit
        [$(($key:ident, $kind:ty, $default:tt, $value:literal, $help:literal, [$($secret:ident)?], ($($place:ident).+)))*]
        [$($fields:tt)*]
        [$($inits:tt)*]
    ) => {
        /// Flags of `serve`. Every one is optional so that an unset flag
        /// can fall through to the environment, the file, then the default.
        #[derive(clap::Args, Debug, Default, Clone)]
        pub struct ServeArgs {
            /// A TOML file with any of the settings below (keys in snake_case).
            #[arg(long, env = "GATEHOUSE_CONFIG", value_name = "FILE")]
            pub config: Option<PathBuf>,
            $(
                #[arg(
                    long,
                    env = env_name!($key),
                    value_name = $value,
                    help = help_text!($help, $default),
                    value_parser = <$kind as Kind>::parser(),
                    num_args = $crate::config::kinds::num_args::<$kind>(),
                    default_missing_value = $crate::config::kinds::missing_value::<$kind>(),
                    hide_env_values = secret!($($secret)?),
                )]
                pub $key: Option<<$kind as Kind>::Typed>,
            )*
        }

        /// The TOML file: the same settings, snake_case keys. Unknown keys
        /// are warned about at start (issue 5), so a misspelt setting is
        /// noticed.
        #[derive(Deserialize, Default)]
        struct FileConfig {
            data_dir: Option<PathBuf>,
            $($key: Option<FileValue<$kind>>,)*
        }

        /// The effective settings of a server.
        #[derive(Debug, Clone)]
        pub struct Config {
            pub data_dir: PathBuf,
            /// The `[[access]]` rules of the config file, as read at
            /// start (the server's live rules: `AppState::access_rules`).
            pub access: crate::domain::access::AccessRules,
            /// The apps the config file declares (`[[oidc_client]]`), as
            /// read at start.
            pub oidc_clients: Vec<crate::domain::oidc::OidcClient>,
            /// The config file it was read from (`--config`), if any:
            /// SIGHUP reads its access rules again.
            pub file: Option<PathBuf>,
            $($fields)*
        }

        /// Every key the file may hold.
        pub const FILE_KEYS: &[&str] = &["data_dir", $(stringify!($key)),*];

        /// Every setting, for the docs and their tests. `data_dir` belongs to
        /// the `gatehouse` command itself (`--data-dir` works with every
        /// subcommand), so it is not in the table.
        pub const SETTINGS: &[Setting] = &[
            Setting {
                key: "data_dir",
                flag: "--data-dir",
                env: "GATEHOUSE_DATA_DIR",
                default: Some(DEFAULT_DATA_DIR),
                help: "Directory of the database",
                secret: false,
            },
            $(Setting {
                key: stringify!($key),
                flag: flag_name!($key),
                env: env_name!($key),
                default: default_text!($default),
                help: $help,
                secret: secret!($($secret)?),
            },)*
        ];

        impl Config {
            /// The defaults, with data in `data_dir`.
            pub fn defaults(data_dir: PathBuf) -> Self {
                Self {
                    data_dir,
                    access: Default::default(),
                    oidc_clients: Vec::new(),
                    file: None,
                    $($inits)*
                }
            }

            /// Each setting that a flag, the environment (both in `args`)
            /// or the file gives, in the order of the table.
            fn layer(&mut self, args: &ServeArgs, mut file: FileConfig) -> anyhow::Result<()> {
                $(
                    if let Some(typed) = args.$key.clone().or_else(|| file.$key.take().map(|v| v.0)) {
                        <$kind as Kind>::set(&mut self.$($place).+, typed, flag_name!($key))?;
                    }
                )*
                Ok(())
            }

            /// Every setting by its file key, as its kind shows it.
            fn rows(&self) -> Vec<(&'static str, String)> {
                vec![
                    ("data_dir", self.data_dir.display().to_string()),
                    $((
                        stringify!($key),
                        if secret!($($secret)?) {
                            <$kind as Kind>::show_secret(&self.$($place).+)
                        } else {
                            <$kind as Kind>::show(&self.$($place).+)
                        },
                    ),)*
                ]
            }
        }
    };
    ($($table:tt)*) => {
        settings!(@gather [] [] [] $($table)*);
    };
}
