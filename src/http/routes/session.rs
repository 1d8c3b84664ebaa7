//! `GET /api/v1/session`: who is logged in. The cheapest authenticated
//! answer, for scripts and benchmarks (the session check and nothing else).

use crate::http::extract::ApiUser;
use axum::Json;
use serde::Serialize;

#[derive(Serialize)]
pub struct SessionJson {
    pub user: String,
    pub email: String,
    pub role: String,
}

pub async fn get(ApiUser(me): ApiUser) -> Json<SessionJson> {
    Json(SessionJson {
        user: me.user.username.to_string(),
        email: me.user.email.to_string(),
        role: me.user.role.to_string(),
    })
}
