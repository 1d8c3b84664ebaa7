//! `GET /account`: the user's profile and sessions.

use crate::app::AppState;
use crate::error::AppError;
use crate::http::cookies::Browser;
use crate::http::extract::PageUser;
use crate::http::pages::account::{self, SessionRow};
use crate::http::pages::layout::{self, Nav, ShellContext};
use axum::Extension;
use axum::extract::State;
use maud::Markup;

pub async fn page(
    State(state): State<AppState>,
    Extension(browser): Extension<Browser>,
    PageUser(me): PageUser,
) -> Result<Markup, AppError> {
    let mut sessions = state.store.sessions_of(me.user.id)?;
    sessions.sort_by_key(|(_, s)| std::cmp::Reverse(s.last_seen));
    let rows: Vec<_> = sessions
        .iter()
        .map(|(key, session)| SessionRow {
            session,
            current: *key == me.key,
        })
        .collect();
    let csrf = browser.csrf_token(&state);
    let ctx = ShellContext {
        user: &me.user,
        csrf: &csrf,
        collapsed: browser.sidebar_collapsed,
        active: Nav::Account,
    };
    Ok(layout::shell(
        &ctx,
        "Account",
        account::content(&me.user, &rows),
    ))
}
