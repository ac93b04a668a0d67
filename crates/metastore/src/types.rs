//! What the metastore records about blocks and datasets.

use model::TenantId;
use ulid::Ulid;

/// One object on storage: a segment (level 0, datasets of several tenants of one shard) or a
/// compacted block (level ≥ 1, one tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMeta {
    pub id: Ulid,
    pub shard: u32,
    pub level: u32,
    /// The tenant of a compacted block; `None` for a segment.
    pub tenant: Option<TenantId>,
    pub min_time_ms: i64,
    pub max_time_ms: i64,
    pub size: u64,
    pub datasets: Vec<DatasetMeta>,
}

/// The profiles of one (tenant, service_name) inside a block, and where they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetMeta {
    pub tenant: TenantId,
    pub service_name: String,
    pub min_time_ms: i64,
    pub max_time_ms: i64,
    /// Profile type ids present, sorted.
    pub profile_types: Vec<String>,
    /// Byte range of the dataset inside the block object.
    pub offset: u64,
    pub length: u64,
}

/// Which datasets a query needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockQuery {
    pub tenant: TenantId,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Only these services (empty: all).
    pub service_names: Vec<String>,
    /// Only datasets holding this profile type.
    pub profile_type: Option<String>,
}

/// A leased unit of compaction work: blocks of one level (and, above level 0, one tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionJob {
    pub id: Ulid,
    pub level: u32,
    pub tenant: Option<TenantId>,
    pub blocks: Vec<BlockMeta>,
    pub lease_owner: String,
    pub lease_expires_ms: i64,
}

/// Groups live blocks of one level (oldest first) into job block lists.
pub(crate) fn plan_groups(
    level: u32,
    blocks: Vec<(Ulid, Option<TenantId>)>,
    min_blocks: usize,
    max_blocks: usize,
) -> Vec<(Option<TenantId>, Vec<Ulid>)> {
    let max_blocks = max_blocks.max(1);
    let mut by_tenant: std::collections::BTreeMap<Option<TenantId>, Vec<Ulid>> = Default::default();
    for (id, tenant) in blocks {
        let key = if level == 0 { None } else { tenant };
        by_tenant.entry(key).or_default().push(id);
    }
    let mut out = Vec::new();
    for (tenant, ids) in by_tenant {
        for chunk in ids.chunks(max_blocks) {
            if chunk.len() >= min_blocks.max(1) {
                out.push((tenant.clone(), chunk.to_vec()));
            }
        }
    }
    out
}

pub(crate) fn join_ids(ids: &[Ulid]) -> String {
    ids.iter()
        .map(Ulid::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn split_ids(text: &str) -> Result<Vec<Ulid>, crate::MetastoreError> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(parse_ulid)
        .collect()
}

/// A replaced block whose object is still to be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub id: Ulid,
    pub shard: u32,
    pub level: u32,
    pub tenant: Option<TenantId>,
    pub deleted_at_ms: i64,
}

pub(crate) fn parse_ulid(text: &str) -> Result<Ulid, crate::MetastoreError> {
    Ulid::from_string(text)
        .map_err(|e| crate::MetastoreError::Corrupt(format!("block id {text:?}: {e}")))
}

pub(crate) fn parse_tenant(text: &str) -> Result<TenantId, crate::MetastoreError> {
    TenantId::new(text).map_err(|e| crate::MetastoreError::Corrupt(format!("tenant {text:?}: {e}")))
}

/// Profile types are stored joined by newlines (they never contain one).
pub(crate) fn join_types(types: &[String]) -> String {
    types.join("\n")
}

pub(crate) fn split_types(text: &str) -> Vec<String> {
    if text.is_empty() {
        Vec::new()
    } else {
        text.split('\n').map(str::to_owned).collect()
    }
}

/// One dataset row joined with its block, as both backends read it.
#[derive(Debug, Clone)]
pub(crate) struct DatasetRow {
    pub block_id: String,
    pub shard: i64,
    pub level: i64,
    pub block_tenant: Option<String>,
    pub block_min_time: i64,
    pub block_max_time: i64,
    pub size: i64,
    pub tenant: String,
    pub service_name: String,
    pub min_time: i64,
    pub max_time: i64,
    pub profile_types: String,
    pub offset: i64,
    pub length: i64,
}

fn unsigned(value: i64, what: &str) -> Result<u64, crate::MetastoreError> {
    u64::try_from(value)
        .map_err(|_| crate::MetastoreError::Corrupt(format!("negative {what}: {value}")))
}

fn small(value: i64, what: &str) -> Result<u32, crate::MetastoreError> {
    u32::try_from(value)
        .map_err(|_| crate::MetastoreError::Corrupt(format!("{what} out of range: {value}")))
}

/// Groups rows ordered by block id into blocks, keeping the datasets the query's filters accept.
pub(crate) fn group_rows(
    rows: Vec<DatasetRow>,
    query: &BlockQuery,
) -> Result<Vec<BlockMeta>, crate::MetastoreError> {
    let accepted = rows
        .into_iter()
        .filter(|row| {
            query.service_names.is_empty() || query.service_names.contains(&row.service_name)
        })
        .filter(|row| {
            query
                .profile_type
                .as_ref()
                .is_none_or(|wanted| split_types(&row.profile_types).contains(wanted))
        })
        .collect();
    group_all(accepted)
}

/// Groups rows ordered by block id into blocks, keeping every dataset.
pub(crate) fn group_all(rows: Vec<DatasetRow>) -> Result<Vec<BlockMeta>, crate::MetastoreError> {
    let mut blocks: Vec<BlockMeta> = Vec::new();
    for row in rows {
        let id = parse_ulid(&row.block_id)?;
        let dataset = DatasetMeta {
            tenant: parse_tenant(&row.tenant)?,
            service_name: row.service_name.clone(),
            min_time_ms: row.min_time,
            max_time_ms: row.max_time,
            profile_types: split_types(&row.profile_types),
            offset: unsigned(row.offset, "dataset offset")?,
            length: unsigned(row.length, "dataset length")?,
        };
        match blocks.last_mut() {
            Some(block) if block.id == id => block.datasets.push(dataset),
            _ => blocks.push(BlockMeta {
                id,
                shard: small(row.shard, "shard")?,
                level: small(row.level, "level")?,
                tenant: row.block_tenant.as_deref().map(parse_tenant).transpose()?,
                min_time_ms: row.block_min_time,
                max_time_ms: row.block_max_time,
                size: unsigned(row.size, "block size")?,
                datasets: vec![dataset],
            }),
        }
    }
    Ok(blocks)
}

/// Distinct sorted values of a dataset-level label over rows.
pub(crate) fn label_values_of(rows: &[DatasetRow], name: &str) -> Vec<String> {
    let mut values: Vec<String> = match name {
        crate::SERVICE_NAME => rows.iter().map(|r| r.service_name.clone()).collect(),
        crate::PROFILE_TYPE => rows
            .iter()
            .flat_map(|r| split_types(&r.profile_types))
            .collect(),
        _ => Vec::new(),
    };
    values.sort_unstable();
    values.dedup();
    values
}

pub(crate) fn signed(value: u64, what: &str) -> Result<i64, crate::MetastoreError> {
    i64::try_from(value)
        .map_err(|_| crate::MetastoreError::Corrupt(format!("{what} too large: {value}")))
}

pub(crate) fn tombstone(
    id: &str,
    shard: i64,
    level: i64,
    tenant: Option<&str>,
    deleted_at: i64,
) -> Result<Tombstone, crate::MetastoreError> {
    Ok(Tombstone {
        id: parse_ulid(id)?,
        shard: small(shard, "shard")?,
        level: small(level, "level")?,
        tenant: tenant.map(parse_tenant).transpose()?,
        deleted_at_ms: deleted_at,
    })
}
