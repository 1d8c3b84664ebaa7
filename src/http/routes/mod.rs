//! Route handlers, one file per page or API.

pub mod account;
pub mod authz;
pub mod consent;
pub mod documents;
pub mod factors;
pub mod health;
pub mod login;
pub mod logout;
pub mod oidc;
pub mod passkeys;
pub mod recovery;
pub mod second_factor;
pub mod session;
pub mod signup;
pub mod summary;
pub mod verify;

use crate::app::AppState;
use crate::http::cookies::Browser;
use crate::http::extract::Authenticated;
use crate::http::pages::layout::{self, Nav, ShellContext};
use maud::Markup;

/// A logged-in page: `content` inside the sidebar-and-top-bar frame.
pub fn shell_page(
    state: &AppState,
    browser: &Browser,
    me: &Authenticated,
    active: Nav,
    title: &str,
    content: Markup,
) -> Markup {
    let csrf = browser.csrf_token(state);
    let ctx = ShellContext {
        user: &me.user,
        csrf: &csrf,
        collapsed: browser.sidebar_collapsed,
        active,
    };
    layout::shell(&ctx, title, content)
}
