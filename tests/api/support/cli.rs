//! The real binary. A run keeps its command line, directory, status and
//! output, and a failed expectation prints all of them.

use std::io::Write;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// One finished run of `gatehouse`.
pub struct Run {
    pub argv: Vec<String>,
    pub dir: PathBuf,
    pub output: Output,
}

impl Deref for Run {
    type Target = Output;
    fn deref(&self) -> &Output {
        &self.output
    }
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Everything about the run, for a failure message.
    pub fn report(&self) -> String {
        format!(
            "gatehouse {}\n  in {}\n  status: {}\n  stdout:\n{}\n  stderr:\n{}",
            self.argv.join(" "),
            self.dir.display(),
            self.output.status,
            self.stdout(),
            self.stderr()
        )
    }

    /// Asserts exit code 0; returns the run.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(
            self.output.status.success(),
            "expected success:\n{}",
            self.report()
        );
        self
    }

    /// Asserts exit code `code`; returns the run.
    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(
            self.output.status.code(),
            Some(code),
            "expected exit code {code}:\n{}",
            self.report()
        );
        self
    }
}

/// Runs `gatehouse --data-dir DIR ARGS…` with `stdin` piped in, cost 4,
/// and no config file from the environment.
pub fn gatehouse(dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("GATEHOUSE_BCRYPT_COST", "4")
        .env_remove("GATEHOUSE_CONFIG")
        .envs(super::backend::database_url(dir).map(|u| ("GATEHOUSE_DATABASE", u)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    Run {
        argv: std::iter::once(format!("--data-dir {}", dir.display()))
            .chain(args.iter().map(|a| a.to_string()))
            .collect(),
        dir: dir.to_path_buf(),
        output: child.wait_with_output().unwrap(),
    }
}

/// An admin command against a running test app's data directory (through
/// its admin socket, or its database), off the async threads.
pub async fn cli(app: &super::TestApp, args: &[&str]) -> Run {
    let dir = app.dir.path().to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        gatehouse(&dir, &refs, None)
    })
    .await
    .unwrap()
}
