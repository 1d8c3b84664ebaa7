//! A real SMTP server in the test process (mailin-embedded on port 0),
//! optionally with STARTTLS (a throw-away certificate) and a password; it
//! keeps what it receives and lets a test wait for it.

use mailin_embedded::response::{self, Response};
use mailin_embedded::{AuthMechanism, Handler, Server, SslConfig};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::Duration;

/// One received mail, parsed.
#[derive(Clone, Debug)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Received {
    /// The first link in the text part that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> String {
        let start = self
            .text
            .find(prefix)
            .unwrap_or_else(|| panic!("no {prefix} link in: {}", self.text));
        let rest = &self.text[start..];
        rest[..rest.find(char::is_whitespace).unwrap_or(rest.len())].to_string()
    }
}

#[derive(Default)]
struct Inbox {
    mails: Mutex<Vec<Received>>,
    arrived: Condvar,
}

#[derive(Clone)]
struct Sink {
    inbox: Arc<Inbox>,
    login: Option<(String, String)>,
    refuse_sender: bool,
    current: Option<(String, Vec<String>, Vec<u8>)>,
}

impl Handler for Sink {
    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, _from: &str) -> Response {
        if self.refuse_sender {
            response::BAD_MAILBOX
        } else {
            response::OK
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Some((from.to_string(), to.to_vec(), Vec::new()));
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some((_, _, data)) = &mut self.current {
            data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let Some((from, to, data)) = self.current.take() else {
            return response::OK;
        };
        let parsed = mail_parser::MessageParser::default()
            .parse(&data)
            .expect("a parsable mail");
        assert_eq!(parsed.text_body_count(), 1, "one text part");
        assert_eq!(parsed.html_body_count(), 1, "one HTML part");
        let received = Received {
            from,
            to,
            subject: parsed.subject().unwrap_or_default().to_string(),
            text: parsed.body_text(0).unwrap_or_default().into_owned(),
            html: parsed.body_html(0).unwrap_or_default().into_owned(),
        };
        self.inbox.mails.lock().unwrap().push(received);
        self.inbox.arrived.notify_all();
        response::OK
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        match &self.login {
            Some((u, p)) if u == user && p == password => response::AUTH_OK,
            _ => response::INVALID_CREDENTIALS,
        }
    }
}

#[derive(Default, Clone)]
pub struct Options {
    pub starttls: bool,
    pub login: Option<(String, String)>,
    pub refuse_sender: bool,
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    login: Option<(String, String)>,
    inbox: Arc<Inbox>,
    /// PEM of the server's certificate (with `starttls`).
    pub ca_file: Option<std::path::PathBuf>,
    _dir: tempfile::TempDir,
}

/// rustls needs one process-wide crypto provider for the server side.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl SmtpServer {
    pub fn start(options: Options) -> Self {
        Self::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), options)
    }

    /// Starts on a given listener (to bring a "down" server up on its port).
    pub fn start_on(listener: TcpListener, options: Options) -> Self {
        install_crypto_provider();
        let addr = listener.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let inbox = Arc::new(Inbox::default());
        let sink = Sink {
            inbox: inbox.clone(),
            login: options.login.clone(),
            refuse_sender: options.refuse_sender,
            current: None,
        };
        let mut server = Server::new(sink);
        server
            .with_name("localhost")
            .with_tcp_listener(listener)
            .with_num_threads(2);
        let mut ca_file = None;
        if options.starttls {
            let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
            let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert_path, cert.cert.pem()).unwrap();
            std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
            server
                .with_ssl(SslConfig::SelfSigned {
                    cert_path: cert_path.to_string_lossy().into_owned(),
                    key_path: key_path.to_string_lossy().into_owned(),
                })
                .unwrap();
            ca_file = Some(cert_path);
        }
        if options.login.is_some() {
            server.with_auth(AuthMechanism::Plain);
        }
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        Self {
            addr,
            login: options.login,
            inbox,
            ca_file,
            _dir: dir,
        }
    }

    /// `smtp://127.0.0.1:PORT?tls=none`, or with STARTTLS on `localhost`.
    pub fn url(&self) -> String {
        match (&self.ca_file, self.login.clone()) {
            (Some(_), Some((u, p))) => format!("smtp://{u}:{p}@localhost:{}", self.addr.port()),
            (Some(_), None) => format!("smtp://localhost:{}", self.addr.port()),
            (None, _) => format!("smtp://127.0.0.1:{}?tls=none", self.addr.port()),
        }
    }

    /// Waits (at most 10 s, off the async threads so that the app keeps
    /// running) until `n` mails have arrived; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let inbox = self.inbox.clone();
        tokio::task::spawn_blocking(move || {
            let mails = inbox.mails.lock().unwrap();
            let (mails, timeout) = inbox
                .arrived
                .wait_timeout_while(mails, Duration::from_secs(10), |m| m.len() < n)
                .unwrap();
            assert!(
                !timeout.timed_out(),
                "expected {n} mails, got {}: {:?}",
                mails.len(),
                mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
            );
            mails.clone()
        })
        .await
        .unwrap()
    }

    pub fn count(&self) -> usize {
        self.inbox.mails.lock().unwrap().len()
    }
}
