//! The Account page: who you are and where you are logged in.

use crate::auth::session::Session;
use crate::domain::User;
use maud::{Markup, html};

pub struct SessionRow<'a> {
    pub session: &'a Session,
    pub current: bool,
}

pub fn content(user: &User, sessions: &[SessionRow<'_>]) -> Markup {
    html! {
        section aria-labelledby="profile-heading" {
            h2 id="profile-heading" { "Profile" }
            dl.facts {
                dt { "Email" } dd { (user.email) }
                dt { "Username" } dd { (user.username) }
                dt { "Role" } dd { (user.role) }
                dt { "Status" } dd { (user.status) }
                dt { "Member since" } dd { time datetime=(user.created_at) { (user.created_at) } }
            }
        }
        section aria-labelledby="sessions-heading" {
            h2 id="sessions-heading" { "Where you are logged in" }
            div.table-wrap {
                table.data {
                    thead { tr { th scope="col" { "Browser" } th scope="col" { "Address" } th scope="col" { "Logged in" } th scope="col" { "Last seen" } } }
                    tbody {
                        @for row in sessions {
                            tr {
                                td {
                                    (if row.session.user_agent.is_empty() { "Unknown browser" } else { row.session.user_agent.as_str() })
                                    @if row.current { " " span.badge { "this browser" } }
                                }
                                td { (row.session.ip) }
                                td { time datetime=(row.session.created_at) { (row.session.created_at) } }
                                td { time datetime=(row.session.last_seen) { (row.session.last_seen) } }
                            }
                        }
                    }
                }
            }
        }
    }
}
