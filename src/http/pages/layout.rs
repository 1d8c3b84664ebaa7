//! The two page frames: `bare` (a centred card: login, errors) and `shell`
//! (after login: sidebar, top bar with the user menu, content).

use super::icons;
use crate::domain::User;
use crate::http::assets;
use maud::{DOCTYPE, Markup, html};

fn document(title: &str, html_class: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" class=[html_class] {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · gatehouse" }
                link rel="icon" type="image/svg+xml" href=(assets::url("img/logo.svg"));
                link rel="stylesheet" href=(assets::url("css/app.css"));
                script src=(assets::url("js/app.js")) defer {}
            }
            body { (body) }
        }
    }
}

/// A page without login: one centred card.
pub fn bare(title: &str, content: Markup) -> Markup {
    document(
        title,
        None,
        html! {
            main.auth-main id="main" {
                div.auth-card {
                    div.brand { (icons::logo()) span.brand-name { "gatehouse" } }
                    (content)
                }
            }
        },
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Summary,
    Account,
}

/// What the frame of a logged-in page needs.
pub struct ShellContext<'a> {
    pub user: &'a User,
    pub csrf: &'a str,
    pub collapsed: bool,
    pub active: Nav,
}

fn nav_link(href: &str, label: &str, icon: Markup, active: bool) -> Markup {
    html! {
        li {
            a.nav-link.active[active] href=(href) title=(label) aria-current=[active.then_some("page")] {
                (icon) span.label { (label) }
            }
        }
    }
}

/// A page after login.
pub fn shell(ctx: &ShellContext<'_>, title: &str, content: Markup) -> Markup {
    let user = ctx.user;
    let initial = user
        .username
        .as_str()
        .chars()
        .next()
        .unwrap_or('?')
        .to_uppercase()
        .to_string();
    let (toggle_label, expanded) = if ctx.collapsed {
        ("Expand sidebar", "false")
    } else {
        ("Collapse sidebar", "true")
    };
    document(
        title,
        ctx.collapsed.then_some("sidebar-collapsed"),
        html! {
            a.skip-link href="#main" { "Skip to content" }
            div.app {
                aside.sidebar id="sidebar" aria-label="Sidebar" {
                    div.sidebar-brand { (icons::logo()) span.label.brand-name { "gatehouse" } }
                    nav aria-label="Main" {
                        ul.nav-list {
                            (nav_link("/", "Summary", icons::summary(), ctx.active == Nav::Summary))
                            (nav_link("/account", "Account", icons::account(), ctx.active == Nav::Account))
                        }
                    }
                    button.sidebar-toggle type="button" id="sidebar-toggle" aria-controls="sidebar"
                        aria-expanded=(expanded) aria-label=(toggle_label) title={ (toggle_label) " ([)" } {
                        (icons::chevron_left())
                    }
                }
                div.main-col {
                    header.topbar {
                        button.drawer-toggle type="button" id="drawer-toggle" aria-controls="sidebar" aria-label="Open menu" {
                            (icons::menu())
                        }
                        h1.page-title { (title) }
                        details.user-menu id="user-menu" {
                            summary.avatar aria-label={ "User menu for " (user.username) } title=(user.username) {
                                span aria-hidden="true" { (initial) }
                            }
                            div.menu-panel {
                                div.menu-identity {
                                    p.menu-name { (user.username) }
                                    p.menu-email { (user.email) }
                                    p.menu-role { span.badge { (user.role) } }
                                }
                                a.menu-item href="/account" { (icons::account()) " My Account" }
                                form.menu-logout method="post" action="/logout" {
                                    input type="hidden" name="csrf" value=(ctx.csrf);
                                    button.menu-item type="submit" id="logout-button" { (icons::logout()) " Log Out" }
                                }
                            }
                        }
                    }
                    main.content id="main" tabindex="-1" { (content) }
                }
            }
        },
    )
}
