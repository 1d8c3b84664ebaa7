//! Records as both backends keep them: JSON, so that a field added later
//! reads back from an old record with its default.

use anyhow::Context;

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> anyhow::Result<T> {
    serde_json::from_slice(bytes)
        .with_context(|| format!("failed to decode a stored {what} record"))
}

pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise to JSON")
}

/// The same as text (a PostgreSQL `TEXT` column).
pub(crate) fn encode_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("records serialise to JSON")
}
