//! Every object key emberscope writes, built here and nowhere else.
//!
//! ```text
//! segments/<shard, 4 digits>/<segment ulid>.seg     one flushed segment of a segment writer
//! blocks/<tenant>/<block ulid>.blk                  one compacted block of a tenant
//! tenants/<tenant>/settings.json                    the tenant's settings (settings.v1)
//! ```
//! ULIDs sort by creation time, so listing a prefix lists objects oldest first.

use model::TenantId;
use object_store::path::Path;
use ulid::Ulid;

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
    Path::from_iter([
        BLOCKS.to_owned(),
        tenant.as_str().to_owned(),
        format!("{id}.blk"),
    ])
}

/// The key of a recorded object: a compacted block (level ≥ 1, one tenant) or a segment.
pub fn object(level: u32, shard: u32, tenant: Option<&TenantId>, id: Ulid) -> Path {
    match (level, tenant) {
        (1.., Some(tenant)) => block(tenant, id),
        _ => segment(shard, id),
    }
}

/// The key of `tenant`'s settings document.
pub fn settings(tenant: &TenantId) -> Path {
    Path::from_iter(["tenants", tenant.as_str(), "settings.json"])
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
}
