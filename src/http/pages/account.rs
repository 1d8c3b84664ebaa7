//! The Account page: who you are, a new password, where you are logged in
//! (with a way to end each other session), and your recent logins.

use crate::domain::LoginAttempt;
use crate::domain::oidc::OidcGrant;
use crate::domain::session::Session;
use crate::domain::{PasswordPolicy, User};
use maud::{Markup, html};

pub struct SessionRow<'a> {
    pub session: &'a Session,
    /// Hex of the session's stored key: names it in the revoke form.
    pub id: String,
    pub current: bool,
}

pub struct AccountView<'a> {
    pub user: &'a User,
    pub csrf: &'a str,
    pub sessions: &'a [SessionRow<'a>],
    pub history: &'a [LoginAttempt],
    /// The apps the user allowed (name, grant).
    pub apps: &'a [(String, OidcGrant)],
    pub policy: PasswordPolicy,
    /// A message after an action ("Your password was changed…").
    pub notice: Option<&'a str>,
    pub password_errors: &'a [String],
    pub factors: &'a crate::services::factors::FactorStatus,
    pub passkeys: &'a [crate::services::factors::PasskeyRow],
    /// WebAuthn works at this base URL (a host name, not an IP address).
    pub passkeys_available: bool,
    /// A message about the second factor forms (a wrong password…).
    pub factor_error: Option<&'a str>,
}

pub fn content(v: &AccountView<'_>) -> Markup {
    let user = v.user;
    let invalid = (!v.password_errors.is_empty()).then_some("true");
    let errors = (!v.password_errors.is_empty()).then_some("password-errors");
    html! {
        @if let Some(n) = v.notice { p.notice.info role="status" { (n) } }
        section aria-labelledby="profile-heading" {
            h2 id="profile-heading" { "Profile" }
            dl.facts {
                dt { "Email" } dd { (user.email) }
                dt { "Username" } dd { (user.username) }
                dt { "Role" } dd { (user.role) }
                dt { "Status" } dd { (user.status) }
                dt { "Groups" } dd {
                    @if user.groups.is_empty() { "none" }
                    @else { (user.groups.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(", ")) }
                }
                dt { "Member since" } dd { time datetime=(user.created_at) { (user.created_at) } }
            }
        }
        section aria-labelledby="password-heading" {
            h2 id="password-heading" { "Change password" }
            @if !v.password_errors.is_empty() {
                div.notice.error role="alert" id="password-errors" { @for e in v.password_errors { p { (e) } } }
            }
            form.stack.narrow method="post" action="/account/password" id="password-form" {
                input type="hidden" name="csrf" value=(v.csrf);
                div.field {
                    label for="current-password" { "Current password" }
                    input id="current-password" name="current" type="password" autocomplete="current-password" required
                        aria-invalid=[invalid] aria-describedby=[errors];
                }
                (super::recovery::new_password_fields("new-password", v.policy, invalid, errors))
                p.hint { "Your other sessions end when you change it." }
                button.button.primary type="submit" { "Change password" }
            }
        }
        (second_factor(v))
        (passkeys(v))
        section aria-labelledby="sessions-heading" {
            h2 id="sessions-heading" { "Where you are logged in" }
            div.table-wrap tabindex="0" role="region" aria-label="Sessions table" {
                table.data {
                    thead { tr { th scope="col" { "Browser" } th scope="col" { "Address" } th scope="col" { "Logged in" } th scope="col" { "Last seen" } th scope="col" { span.visually-hidden { "Action" } } } }
                    tbody {
                        @for row in v.sessions {
                            tr {
                                td {
                                    span title=(row.session.user_agent) { (browser_name(&row.session.user_agent)) }
                                    @if row.current { " " span.badge { "this browser" } }
                                }
                                td { (row.session.ip) }
                                td { time datetime=(row.session.created_at) { (row.session.created_at) } }
                                td { time datetime=(row.session.last_seen) { (row.session.last_seen) } }
                                td {
                                    @if !row.current {
                                        form method="post" action="/account/sessions/revoke" {
                                            input type="hidden" name="csrf" value=(v.csrf);
                                            input type="hidden" name="session" value=(row.id);
                                            button.button.small type="submit" aria-label={ "End the session from " (row.session.ip) } { "End" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.stack.narrow method="post" action="/account/sessions/end-all" {
                input type="hidden" name="csrf" value=(v.csrf);
                p.hint { "If you think someone else is logged in as you: end every session, this one too, then change your password." }
                button.button type="submit" { "Log out everywhere" }
            }
        }
        section aria-labelledby="apps-heading" {
            h2 id="apps-heading" { "Apps" }
            @if v.apps.is_empty() {
                p.muted { "No app uses your account yet. Apps that log you in through gatehouse appear here once you allow them." }
            } @else {
                div.table-wrap tabindex="0" role="region" aria-label="Apps table" {
                    table.data id="apps" {
                        thead { tr { th scope="col" { "App" } th scope="col" { "May see" } th scope="col" { "Allowed" } th scope="col" { span.visually-hidden { "Action" } } } }
                        tbody {
                            @for (name, grant) in v.apps {
                                tr {
                                    td { (name) }
                                    td { (grant.scopes.iter().filter(|s| *s != "openid").collect::<Vec<_>>().join(", ")) }
                                    td { time datetime=(grant.granted_at) { (grant.granted_at) } }
                                    td {
                                        form method="post" action="/account/apps/revoke" {
                                            input type="hidden" name="csrf" value=(v.csrf);
                                            input type="hidden" name="client" value=(grant.client);
                                            button.button.small type="submit" aria-label={ "Revoke the access of " (name) } { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="history-heading" {
            h2 id="history-heading" { "Recent logins" }
            @if v.history.is_empty() {
                p.muted { "No logins recorded yet." }
            } @else {
                div.table-wrap tabindex="0" role="region" aria-label="Login history table" {
                    table.data id="login-history" {
                        thead { tr { th scope="col" { "When" } th scope="col" { "Address" } th scope="col" { "Result" } } }
                        tbody {
                            @for a in v.history {
                                tr {
                                    td { time datetime=(a.at) { (a.at) } }
                                    td { (a.ip) }
                                    td { @if a.ok { "Logged in" } @else { strong { "Failed" } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// "Firefox on Linux" from a User-Agent string (the full string is in
/// the title); "Unknown browser" when it says nothing we know.
pub fn browser_name(ua: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    let os = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_string(),
        (None, Some(o)) => format!("A browser on {o}"),
        (None, None) => "Unknown browser".to_string(),
    }
}

fn passkeys(v: &AccountView<'_>) -> Markup {
    html! {
        section aria-labelledby="passkeys-heading" id="passkeys" {
            h2 id="passkeys-heading" { "Passkeys" }
            p { "A passkey is kept by your phone, computer or security key, unlocked by its PIN, fingerprint or face. It logs you in without a password (choose “Log in with a passkey”), or as the second step after it." }
            @if !v.passkeys.is_empty() {
                div.table-wrap tabindex="0" role="region" aria-label="Passkeys table" {
                    table.data id="passkeys-table" {
                        thead { tr { th scope="col" { "Name" } th scope="col" { "Added" } th scope="col" { "Last used" } th scope="col" { span.visually-hidden { "Actions" } } } }
                        tbody {
                            @for p in v.passkeys {
                                tr data-passkey-id=(p.id) {
                                    td {
                                        form.inline method="post" action="/account/passkeys/rename" {
                                            input type="hidden" name="csrf" value=(v.csrf);
                                            input type="hidden" name="id" value=(p.id);
                                            label.visually-hidden for={"passkey-name-" (p.id)} { "Name of the passkey" }
                                            input id={"passkey-name-" (p.id)} name="name" type="text" value=(p.name) maxlength="64" required;
                                            button.button.link type="submit" { "Rename" }
                                        }
                                    }
                                    td { time datetime=(p.added_at) { (p.added_at) } }
                                    td { @if let Some(t) = p.last_used { time datetime=(t) { (t) } } @else { "never" } }
                                    td {
                                        form.inline method="post" action="/account/passkeys/remove" {
                                            input type="hidden" name="csrf" value=(v.csrf);
                                            input type="hidden" name="id" value=(p.id);
                                            label.visually-hidden for={"passkey-password-" (p.id)} { "Password, to remove this passkey" }
                                            input id={"passkey-password-" (p.id)} name="password" type="password" autocomplete="current-password" placeholder="Password" required;
                                            button.button.danger type="submit" { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if v.passkeys_available {
                form.stack.narrow method="post" action="/account/passkeys/add" id="add-passkey-form"
                    data-passkey="register" data-start="/account/passkeys/start" {
                    input type="hidden" name="csrf" value=(v.csrf);
                    input type="hidden" name="credential" value="";
                    div.field {
                        label for="passkey-name" { "Name of the new passkey" }
                        input id="passkey-name" name="name" type="text" maxlength="64" placeholder="Such as: work laptop" aria-describedby="passkey-hint";
                        p.hint id="passkey-hint" { "Your browser asks which device keeps it." }
                    }
                    p.notice.error role="alert" data-passkey-error hidden {}
                    button.button.primary type="submit" { "Add a passkey" }
                }
            } @else {
                p.muted { "Passkeys need this server to be reached by a host name (such as login.example.com), not an IP address: ask your administrator." }
            }
        }
    }
}

fn second_factor(v: &AccountView<'_>) -> Markup {
    let f = v.factors;
    let invalid = v.factor_error.map(|_| "true");
    let described = v.factor_error.map(|_| "factor-error");
    let guarded = f.app_on.is_some() || f.passkeys > 0;
    html! {
        section aria-labelledby="factor-heading" id="second-factor" {
            h2 id="factor-heading" { "Second factor" }
            @if let Some(e) = v.factor_error {
                p.notice.error role="alert" id="factor-error" { (e) }
            }
            @if guarded {
                p { "On: each login asks for a code of your app or a passkey after the password. A recovery code works instead, once each." }
            } @else {
                p { "Off: your password alone logs you in. An authenticator app on your phone (or your password manager), or a passkey below, adds a second step to each login, so that a stolen password is not enough." }
            }
            dl.facts {
                dt { "Authenticator app" }
                dd id="app-status" {
                    @if let Some(on) = f.app_on { "on since " time datetime=(on) { (on) } } @else { "not set up" }
                }
                @if guarded {
                    dt { "Recovery codes" } dd id="recovery-status" { (f.recovery_left) " unused" }
                }
            }
            @if f.app_on.is_none() {
                form method="post" action="/account/2fa/app" id="start-app-form" {
                    input type="hidden" name="csrf" value=(v.csrf);
                    button.button.secondary type="submit" {
                        @if f.app_waiting.is_some() { "Continue setting up the app" } @else { "Set up an authenticator app" }
                    }
                }
            }
            @if guarded {
                form.stack.narrow method="post" action="/account/2fa/recovery" id="recovery-form" {
                    input type="hidden" name="csrf" value=(v.csrf);
                    div.field {
                        label for="recovery-password" { "Password" }
                        input id="recovery-password" name="password" type="password" autocomplete="current-password" required
                            aria-invalid=[invalid] aria-describedby=[described];
                    }
                    div.actions {
                        button.button.secondary type="submit" { "New recovery codes" }
                        @if f.app_on.is_some() {
                            button.button.danger type="submit" formaction="/account/2fa/remove" id="remove-app" { "Remove the app" }
                        }
                    }
                    p.hint { "New codes replace the old ones. With no app and no passkey left, the password alone logs you in again." }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::browser_name;

    #[test]
    fn user_agents_read_as_browser_and_system() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";
        assert_eq!(browser_name(chrome), "Chrome on Linux");
        assert_eq!(
            browser_name("Mozilla/5.0 (Windows NT 10.0; rv:130.0) Gecko/20100101 Firefox/130.0"),
            "Firefox on Windows"
        );
        assert_eq!(browser_name(""), "Unknown browser");
    }
}
