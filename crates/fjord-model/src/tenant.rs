//! Tenant IDs, validated before they touch a path or an object key.
//!
//! Rules are Loki's: at most 150 characters from `[a-zA-Z0-9]` and ``!-_.*'()``, and not `.`
//! or `..`. A valid tenant ID is therefore always safe as one path segment.

use std::fmt;

/// The tenant used for every request when authentication is off, as in Loki.
pub const DEFAULT_TENANT: &str = "fake";

/// A validated tenant ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

/// Why a tenant ID was refused; the texts are Loki's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("no org id")]
    Missing,
    #[error("tenant ID is too long: max 150 characters")]
    TooLong,
    #[error("tenant ID '{id}' contains unsupported character '{ch}'")]
    BadChar { id: String, ch: char },
    #[error("tenant ID '{0}' is not allowed")]
    Reserved(String),
    #[error("multiple org IDs present")]
    Multiple,
}

impl TenantId {
    pub fn new(id: &str) -> Result<Self, TenantError> {
        if id.is_empty() {
            return Err(TenantError::Missing);
        }
        if id.len() > 150 {
            return Err(TenantError::TooLong);
        }
        if let Some(ch) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "!-_.*'()".contains(*c)))
        {
            return Err(TenantError::BadChar {
                id: id.to_string(),
                ch,
            });
        }
        if id == "." || id == ".." {
            return Err(TenantError::Reserved(id.to_string()));
        }
        Ok(TenantId(id.to_string()))
    }

    /// Parses an `X-Scope-OrgID` header for a write: exactly one tenant.
    pub fn from_header_single(header: &str) -> Result<Self, TenantError> {
        if header.contains('|') {
            return Err(TenantError::Multiple);
        }
        TenantId::new(header.trim())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_like_loki() {
        assert!(TenantId::new("team-a_1.x").is_ok());
        assert_eq!(
            TenantId::new("a/b"),
            Err(TenantError::BadChar {
                id: "a/b".into(),
                ch: '/'
            })
        );
        assert_eq!(TenantId::new(".."), Err(TenantError::Reserved("..".into())));
        assert_eq!(TenantId::new(&"a".repeat(151)), Err(TenantError::TooLong));
        assert_eq!(TenantId::new(""), Err(TenantError::Missing));
        assert_eq!(
            TenantId::from_header_single("a|b"),
            Err(TenantError::Multiple)
        );
        assert_eq!(
            TenantError::BadChar {
                id: "a/b".into(),
                ch: '/'
            }
            .to_string(),
            "tenant ID 'a/b' contains unsupported character '/'"
        );
    }
}
