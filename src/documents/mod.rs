//! The Terms of Service and the Privacy Policy that people accept when
//! they sign up (SPEC §2, §3). Embedded templates that say plainly they are
//! templates, unless the admin names files (`--terms-file`,
//! `--privacy-file`; Markdown, or HTML when the name ends in .html/.htm).
//! Each document's version is a hash of its text: when the admin changes
//! one, every user is asked to accept it again at the next login.

use crate::clock::Timestamp;
use crate::domain::Consent;
use anyhow::Context;
use sha2::{Digest, Sha256};
use std::path::Path;

const TERMS_TEMPLATE: &str = include_str!("terms.md");
const PRIVACY_TEMPLATE: &str = include_str!("privacy.md");

pub struct Document {
    pub title: &'static str,
    /// Rendered HTML. An admin's file is trusted as the admin's own words;
    /// the CSP still forbids any script in it.
    pub html: String,
    /// First 16 hex digits of the SHA-256 of the source text.
    pub version: String,
    pub is_template: bool,
}

pub struct Documents {
    pub terms: Document,
    pub privacy: Document,
}

impl Documents {
    pub fn load(terms: Option<&Path>, privacy: Option<&Path>) -> anyhow::Result<Self> {
        Ok(Self {
            terms: Document::load("Terms of Service", TERMS_TEMPLATE, terms, "--terms-file")?,
            privacy: Document::load(
                "Privacy Policy",
                PRIVACY_TEMPLATE,
                privacy,
                "--privacy-file",
            )?,
        })
    }

    /// The consent of someone accepting both documents now.
    pub fn consent(&self, at: Timestamp) -> Consent {
        Consent {
            terms: self.terms.version.clone(),
            privacy: self.privacy.version.clone(),
            at,
        }
    }

    /// Has this consent accepted the current version of both?
    pub fn is_current(&self, consent: Option<&Consent>) -> bool {
        consent.is_some_and(|c| c.terms == self.terms.version && c.privacy == self.privacy.version)
    }
}

impl Document {
    fn load(
        title: &'static str,
        template: &str,
        file: Option<&Path>,
        flag: &str,
    ) -> anyhow::Result<Self> {
        let (source, is_html, is_template) = match file {
            None => (template.to_string(), false, true),
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!(
                        "cannot read {flag} {}: check the path and that it is UTF-8 text",
                        path.display()
                    )
                })?;
                let is_html = path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm")
                });
                (text, is_html, false)
            }
        };
        let version = Sha256::digest(source.as_bytes())[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let html = if is_html { source } else { markdown(&source) };
        Ok(Self {
            title,
            html,
            version,
            is_template,
        })
    }
}

fn markdown(source: &str) -> String {
    let parser = pulldown_cmark::Parser::new_ext(source, pulldown_cmark::Options::ENABLE_TABLES);
    let mut html = String::with_capacity(source.len() * 2);
    pulldown_cmark::html::push_html(&mut html, parser);
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_and_say_they_are_templates() {
        let d = Documents::load(None, None).unwrap();
        assert!(d.terms.is_template && d.privacy.is_template);
        assert!(d.terms.html.contains("<h1>") && d.terms.html.to_lowercase().contains("template"));
        assert!(d.privacy.html.to_lowercase().contains("template"));
        assert_eq!(d.terms.version.len(), 16);
    }

    #[test]
    fn a_changed_document_makes_old_consent_stale() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("terms.html");
        std::fs::write(&file, "<h1>Our terms</h1>").unwrap();
        let old = Documents::load(None, None).unwrap();
        let new = Documents::load(Some(&file), None).unwrap();
        assert_eq!(new.terms.html, "<h1>Our terms</h1>");
        let consent = old.consent(Timestamp::from_millis(0));
        assert!(old.is_current(Some(&consent)));
        assert!(!new.is_current(Some(&consent)));
        assert!(!new.is_current(None));
    }

    #[test]
    fn a_missing_file_says_which_flag() {
        let err = Documents::load(Some(Path::new("/nonexistent/t.md")), None)
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("--terms-file"));
    }
}
