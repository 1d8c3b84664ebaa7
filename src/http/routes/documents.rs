//! `GET /terms`, `GET /privacy`: the documents, readable by anyone.

use crate::app::AppState;
use crate::http::pages::documents;
use axum::extract::State;
use maud::Markup;

pub async fn terms(State(state): State<AppState>) -> Markup {
    documents::page(&state.documents.terms)
}

pub async fn privacy(State(state): State<AppState>) -> Markup {
    documents::page(&state.documents.privacy)
}
