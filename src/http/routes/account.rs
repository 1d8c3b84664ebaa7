//! `GET /account`: the user's profile and sessions.

use crate::app::AppState;
use crate::error::AppError;
use crate::http::cookies::Browser;
use crate::http::extract::PageUser;
use crate::http::pages::account::{self, SessionRow};
use crate::http::pages::layout::Nav;
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
    Ok(super::shell_page(
        &state,
        &browser,
        &me,
        Nav::Account,
        "Account",
        account::content(&me.user, &rows),
    ))
}
