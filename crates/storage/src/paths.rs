//! Every object key emberscope writes, built here and nowhere else.
//!
//! ```text
//! segments/<shard, 4 digits>/<segment ulid>.seg     one flushed segment of a segment writer
//! blocks/<tenant>/<block ulid>.blk                  one compacted block of a tenant
//! ```
//! ULIDs sort by creation time, so listing a prefix lists objects oldest first.

use object_store::path::Path;
use std::fmt;
use ulid::Ulid;

/// A tenant id, checked against Pyroscope's rules (dskit `ValidTenantID`): at most 150
/// characters from `[a-zA-Z0-9!-_.*'()]`, and not `.` or `..`. Safe as one key segment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(String);

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

const SEGMENTS: &str = "segments";
const BLOCKS: &str = "blocks";

/// The key of a segment written by the segment writer of `shard`.
pub fn segment(shard: u32, id: Ulid) -> Path {
    Path::from_iter([
        SEGMENTS.to_owned(),
        format!("{shard:04}"),
        format!("{id}.seg"),
    ])
}

/// The prefix under which all segments live.
pub fn segments_prefix() -> Path {
    Path::from(SEGMENTS)
}

/// The key of a compacted block of `tenant`.
pub fn block(tenant: &TenantId, id: Ulid) -> Path {
    Path::from_iter([BLOCKS.to_owned(), tenant.0.clone(), format!("{id}.blk")])
}

/// The prefix under which the blocks of `tenant` live.
pub fn tenant_blocks_prefix(tenant: &TenantId) -> Path {
    Path::from_iter([BLOCKS, tenant.as_str()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let id = Ulid::from_parts(1_700_000_000_000, 7);
        assert_eq!(segment(3, id).as_ref(), format!("segments/0003/{id}.seg"));
        let tenant = TenantId::new("tenant-a").expect("valid");
        assert_eq!(
            block(&tenant, id).as_ref(),
            format!("blocks/tenant-a/{id}.blk")
        );
        assert!(block(&tenant, id).prefix_matches(&tenant_blocks_prefix(&tenant)));
        assert!(!block(&tenant, id).prefix_matches(&tenant_blocks_prefix(
            &TenantId::new("tenant").expect("valid")
        )));
    }

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
