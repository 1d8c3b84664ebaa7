//! A real app configured from docs/oidc.md logs in (issue 14, "Done
//! when"): Apache httpd with mod_auth_openidc (Debian's package, one of
//! the most deployed OpenID Connect relying parties) guards a page. The
//! browser (a cookie-keeping client that follows redirects) opens it, is
//! sent to gatehouse, logs in, allows the app, and gets the page with the
//! user and groups mod_auth_openidc took from the verified ID token and
//! userinfo; then mod_auth_openidc's logout ends the gatehouse session
//! through RP-initiated logout. `make test` installs Apache and the
//! module; the test starts its own on a free port in a temp dir.

use crate::oidc::{hidden_fields, oidc_app};
use crate::proxies::{free_port, running_as_root, until_listening};
use crate::support::{PASSWORD, csrf_from};
use gatehouse::domain::GroupName;
use reqwest::StatusCode;
use std::path::Path;
use std::process::Stdio;
use tokio::process::Command;

const APACHE: &str = "/usr/sbin/apache2";
const MODULES: &str = "/usr/lib/apache2/modules";

fn world_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = if path.is_dir() { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test]
async fn apache_mod_auth_openidc_configured_from_the_guide_logs_a_user_in_and_out() {
    for path in [APACHE, &format!("{MODULES}/mod_auth_openidc.so")] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: run `make test` (it installs it) or `apt-get install -y apache2-bin libapache2-mod-auth-openidc`"
        );
    }
    let gate = oidc_app().await;
    let user = gate.add_user("pia@example.com", "pia", PASSWORD).await;
    let admin = gate.state.admin("test".into());
    let staff = GroupName::parse("staff").unwrap();
    admin.add_group(staff.clone()).await.unwrap();
    admin.add_member(&staff, &user).await.unwrap();

    let port = free_port();
    let site = format!("http://127.0.0.1:{port}");
    // As docs/oidc.md says: the redirect URI is mod_auth_openidc's
    // OIDCRedirectURI, the page after logout is registered too.
    let r = admin
        .add_client(gatehouse::services::oidc_admin::NewClient {
            name: "Intranet".into(),
            redirect_uris: vec![format!("{site}/protected/redirect_uri")],
            post_logout_redirect_uris: vec![format!("{site}/bye.html")],
            public: false,
            groups: vec![staff],
            trusted: false,
        })
        .await
        .unwrap();
    let (id, secret) = (r.client.id, r.secret.unwrap());

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    std::fs::create_dir_all(dir.path().join("www/protected")).unwrap();
    std::fs::write(
        dir.path().join("www/protected/index.shtml"),
        "<p id=\"user\"><!--#echo var=\"REMOTE_USER\" --></p>\n\
         <p id=\"groups\"><!--#echo var=\"OIDC_CLAIM_groups\" --></p>\n\
         <p id=\"email\"><!--#echo var=\"OIDC_CLAIM_email\" --></p>\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("www/bye.html"),
        "<p id=\"bye\">logged out</p>\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("mime.types"), "").unwrap();
    // As root, Apache's children run as nobody (it will not serve as
    // root): they must read the pages.
    let user_line = if running_as_root() {
        for p in [
            dir.path().to_path_buf(),
            dir.path().join("www"),
            dir.path().join("www/protected"),
            dir.path().join("www/protected/index.shtml"),
            dir.path().join("www/bye.html"),
            dir.path().join("mime.types"),
        ] {
            world_readable(&p);
        }
        "User nobody\nGroup nogroup\n"
    } else {
        ""
    };
    let passphrase = gatehouse::crypto::random_token::<32>();
    let conf = format!(
        "ServerRoot \"{d}\"\nServerName 127.0.0.1\nListen 127.0.0.1:{port}\nPidFile {d}/httpd.pid\n\
         ErrorLog {d}/error.log\nLogLevel warn auth_openidc:info\n{user_line}\
         LoadModule mpm_event_module {MODULES}/mod_mpm_event.so\n\
         LoadModule authn_core_module {MODULES}/mod_authn_core.so\n\
         LoadModule authz_core_module {MODULES}/mod_authz_core.so\n\
         LoadModule authz_user_module {MODULES}/mod_authz_user.so\n\
         LoadModule mime_module {MODULES}/mod_mime.so\n\
         LoadModule include_module {MODULES}/mod_include.so\n\
         LoadModule dir_module {MODULES}/mod_dir.so\n\
         LoadModule auth_openidc_module {MODULES}/mod_auth_openidc.so\n\
         DocumentRoot \"{d}/www\"\nDirectoryIndex index.shtml\n\
         TypesConfig {d}/mime.types\nAddType text/html .shtml .html\nAddOutputFilter INCLUDES .shtml\n\
         <Directory \"{d}/www\">\n  Options +Includes\n  Require all granted\n</Directory>\n\
         OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration\n\
         OIDCClientID {id}\nOIDCClientSecret {secret}\n\
         OIDCRedirectURI {site}/protected/redirect_uri\n\
         OIDCCryptoPassphrase {passphrase}\n\
         OIDCScope \"openid profile email groups\"\nOIDCPKCEMethod S256\n\
         OIDCRemoteUserClaim preferred_username\n\
         <Location /protected>\n  AuthType openid-connect\n  Require valid-user\n</Location>\n",
        issuer = gate.address,
    );
    let conf_path = dir.path().join("httpd.conf");
    std::fs::write(&conf_path, conf).unwrap();
    if running_as_root() {
        world_readable(&conf_path);
    }
    let log = dir.path().join("error.log");
    let mut child = Command::new(APACHE)
        .arg("-f")
        .arg(&conf_path)
        .arg("-DFOREGROUND")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("apache starts");
    // Configuration mistakes go to stderr, the rest to the error log.
    until_listening(port, &mut child, &dir.path().join("stderr.log")).await;
    let apache_log = || {
        format!(
            "{}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default()
        )
    };

    // The browser opens the page and lands on gatehouse's login page.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let r = browser
        .get(format!("{site}/protected/"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", apache_log()));
    assert_eq!(r.url().path(), "/login", "{}\n{}", r.url(), apache_log());
    let rd = r
        .url()
        .query_pairs()
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned())
        .expect("the login page carries the request");
    let csrf = csrf_from(&r.text().await.unwrap());
    let consent = browser
        .post(gate.url("/login"))
        .form(&[
            ("id", "pia"),
            ("password", PASSWORD),
            ("csrf", &csrf),
            ("rd", &rd),
        ])
        .send()
        .await
        .unwrap();
    let html = consent.text().await.unwrap();
    assert!(
        html.contains("Allow Intranet to use your account?"),
        "{html}"
    );
    let mut fields = hidden_fields(&html);
    fields.push(("answer".into(), "allow".into()));
    let page = browser
        .post(gate.url("/oidc/consent"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK, "{}", apache_log());
    assert_eq!(page.url().as_str(), format!("{site}/protected/"));
    let body = page.text().await.unwrap();
    assert!(
        body.contains("<p id=\"user\">pia</p>"),
        "{body}\n{}",
        apache_log()
    );
    assert!(body.contains("<p id=\"groups\">staff</p>"), "{body}");
    assert!(body.contains("pia@example.com"), "{body}");

    // mod_auth_openidc's logout: RP-initiated logout at gatehouse with
    // its ID token as hint, then back to the registered page.
    let bye = browser
        .get(format!(
            "{site}/protected/redirect_uri?logout={}",
            url::form_urlencoded::byte_serialize(format!("{site}/bye.html").as_bytes())
                .collect::<String>()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        bye.url().as_str(),
        format!("{site}/bye.html"),
        "{}",
        apache_log()
    );
    let account = browser.get(gate.url("/account")).send().await.unwrap();
    assert_eq!(
        account.url().path(),
        "/login",
        "the gatehouse session ended too"
    );
}
