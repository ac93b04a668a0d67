//! Tenant ids.

use std::fmt;

/// A tenant id, checked against Pyroscope's rules (dskit `ValidTenantID`): at most 150
/// characters from `[a-zA-Z0-9!-_.*'()]`, and not `.` or `..`. Safe as one key segment.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TryFrom<String> for TenantId {
    type Error = TenantIdError;

    fn try_from(id: String) -> Result<TenantId, TenantIdError> {
        TenantId::new(&id)
    }
}

impl From<TenantId> for String {
    fn from(id: TenantId) -> String {
        id.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantIdError {
    #[error("tenant ID is empty")]
    Empty,
    #[error("tenant ID is too long: max 150 characters")]
    TooLong,
    #[error("tenant ID is '.' or '..'")]
    Dots,
    #[error("tenant ID '{id}' contains unsupported character '{character}'")]
    Character { id: String, character: char },
}

impl TenantId {
    pub fn new(id: &str) -> Result<TenantId, TenantIdError> {
        if id.is_empty() {
            return Err(TenantIdError::Empty);
        }
        if id.len() > 150 {
            return Err(TenantIdError::TooLong);
        }
        if id == "." || id == ".." {
            return Err(TenantIdError::Dots);
        }
        if let Some(character) = id.chars().find(|&c| {
            !(c.is_ascii_alphanumeric()
                || matches!(c, '!' | '-' | '_' | '.' | '*' | '\'' | '(' | ')'))
        }) {
            return Err(TenantIdError::Character {
                id: id.to_owned(),
                character,
            });
        }
        Ok(TenantId(id.to_owned()))
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
    fn tenant_rules() {
        for good in ["anonymous", "a|b".replace('|', "_").as_str(), "x!-_.*'()9"] {
            assert!(TenantId::new(good).is_ok(), "{good}");
        }
        assert_eq!(TenantId::new(""), Err(TenantIdError::Empty));
        assert_eq!(TenantId::new(".."), Err(TenantIdError::Dots));
        assert_eq!(TenantId::new(&"a".repeat(151)), Err(TenantIdError::TooLong));
        assert!(matches!(
            TenantId::new("a/b"),
            Err(TenantIdError::Character { character: '/', .. })
        ));
        assert!(matches!(
            TenantId::new("a|b"),
            Err(TenantIdError::Character { .. })
        ));
    }
}
