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
    /// Of a segment: the write requests whose profiles it holds a second copy of, because
    /// the request was retried on another writer and recorded first with that writer's
    /// segment ([`crate::Metastore::add_segment`] finds them). Readers skip those profiles.
    pub duplicate_requests: Vec<String>,
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

impl DatasetMeta {
    /// What the metastore records of a dataset whose profiles span `[min_nanos, max_nanos]`:
    /// the range in ms, rounded outwards so that it covers the last profile.
    pub fn from_nanos(
        tenant: TenantId,
        service_name: String,
        min_nanos: i64,
        max_nanos: i64,
        profile_types: Vec<String>,
        offset: u64,
        length: u64,
    ) -> DatasetMeta {
        DatasetMeta {
            tenant,
            service_name,
            min_time_ms: min_nanos.div_euclid(1_000_000),
            max_time_ms: max_nanos.div_euclid(1_000_000)
                + i64::from(max_nanos.rem_euclid(1_000_000) != 0),
            profile_types,
            offset,
            length,
        }
    }
}

impl BlockMeta {
    /// A block holding `datasets`, its range theirs.
    pub fn new(
        id: Ulid,
        shard: u32,
        level: u32,
        tenant: Option<TenantId>,
        size: u64,
        datasets: Vec<DatasetMeta>,
    ) -> BlockMeta {
        BlockMeta {
            id,
            shard,
            level,
            tenant,
            min_time_ms: datasets.iter().map(|d| d.min_time_ms).min().unwrap_or(0),
            max_time_ms: datasets.iter().map(|d| d.max_time_ms).max().unwrap_or(0),
            size,
            datasets,
            duplicate_requests: Vec::new(),
        }
    }
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

/// How large one compaction job may be: it waits for `min_blocks` blocks and takes at most
/// `max_blocks` of them and at most `max_bytes` of their objects (its memory follows its
/// input; 0: no byte limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLimits {
    pub min_blocks: usize,
    pub max_blocks: usize,
    pub max_bytes: u64,
}

/// Groups live blocks of one level (oldest first; id, tenant, size) into job block lists: per
/// tenant above level 0, each closed at `max_blocks` blocks or before it would pass
/// `max_bytes`. A group is planned once it has `min_blocks` blocks, or when it is full by bytes
/// (a segment alone can be; above level 0 it takes two blocks to gain anything).
pub(crate) fn plan_groups(
    level: u32,
    blocks: Vec<(Ulid, Option<TenantId>, u64)>,
    limits: JobLimits,
) -> Vec<(Option<TenantId>, Vec<Ulid>)> {
    let max_blocks = limits.max_blocks.max(1);
    let min_blocks = limits.min_blocks.max(1);
    let limits = JobLimits {
        max_bytes: match limits.max_bytes {
            0 => u64::MAX,
            bytes => bytes,
        },
        ..limits
    };
    let mut by_tenant: std::collections::BTreeMap<Option<TenantId>, Vec<(Ulid, u64)>> =
        Default::default();
    for (id, tenant, size) in blocks {
        let key = if level == 0 { None } else { tenant };
        by_tenant.entry(key).or_default().push((id, size));
    }
    let mut out = Vec::new();
    for (tenant, blocks) in by_tenant {
        let mut group: Vec<Ulid> = Vec::new();
        let mut bytes = 0u64;
        let mut emit = |group: Vec<Ulid>, full_by_bytes: bool| {
            let enough =
                group.len() >= min_blocks || (full_by_bytes && (level == 0 || group.len() >= 2));
            if enough && !group.is_empty() {
                out.push((tenant.clone(), group));
            }
        };
        for (id, size) in blocks {
            if !group.is_empty() && bytes.saturating_add(size) > limits.max_bytes {
                emit(std::mem::take(&mut group), true);
                bytes = 0;
            }
            group.push(id);
            bytes = bytes.saturating_add(size);
            if group.len() == max_blocks || bytes >= limits.max_bytes {
                let full_by_bytes = bytes >= limits.max_bytes;
                emit(std::mem::take(&mut group), full_by_bytes);
                bytes = 0;
            }
        }
        emit(group, false);
    }
    out
}

/// The roles of a member as stored (comma-separated).
pub(crate) fn split_roles(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod plan_tests {
    use super::*;

    fn ids(n: usize) -> Vec<Ulid> {
        (0..n).map(|i| Ulid::from_parts(i as u64, 0)).collect()
    }

    fn plan(level: u32, sizes: &[u64], min: usize, max: usize, max_bytes: u64) -> Vec<usize> {
        let blocks = ids(sizes.len())
            .into_iter()
            .zip(sizes)
            .map(|(id, &size)| (id, None, size))
            .collect();
        let limits = JobLimits {
            min_blocks: min,
            max_blocks: max,
            max_bytes,
        };
        plan_groups(level, blocks, limits)
            .into_iter()
            .map(|(_, group)| group.len())
            .collect()
    }

    #[test]
    fn groups_close_at_the_block_count_or_before_the_byte_limit() {
        // By count: 10 blocks, 4 per job, 2 at least: 4, 4, 2.
        assert_eq!(plan(0, &[1; 10], 2, 4, u64::MAX), vec![4, 4, 2]);
        // Too few wait.
        assert_eq!(plan(0, &[1; 3], 4, 8, u64::MAX), Vec::<usize>::new());
        // By bytes: jobs of at most 100 bytes; full groups go even below the block minimum.
        assert_eq!(plan(0, &[40, 40, 40, 40, 40], 8, 64, 100), vec![2, 2]);
        // A segment over the limit is a job of its own at level 0 …
        assert_eq!(plan(0, &[500, 10, 10], 8, 64, 100), vec![1]);
        // … and never above it (nothing to merge it with).
        assert_eq!(plan(1, &[500, 60, 60], 8, 64, 100), Vec::<usize>::new());
        // 0: no byte limit.
        assert_eq!(plan(0, &[500; 10], 2, 4, 0), vec![4, 4, 2]);
        assert_eq!(plan(1, &[60, 60, 60, 60], 8, 64, 100), Vec::<usize>::new());
        assert_eq!(plan(1, &[30, 30, 30, 30], 2, 64, 100), vec![3]);
    }

    #[test]
    fn no_job_passes_its_limits_unless_one_block_does() {
        let mut state = 7u64;
        for round in 0..200 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = (state >> 33) as usize % 40;
            let sizes: Vec<u64> = (0..n).map(|i| (state >> (i % 32)) % 300 + 1).collect();
            let (min, max, max_bytes) =
                (1 + round % 5, 1 + round % 9, 50 + (round as u64 * 7) % 400);
            let blocks: Vec<_> = ids(n)
                .into_iter()
                .zip(&sizes)
                .map(|(id, &s)| (id, None, s))
                .collect();
            let size_of: std::collections::HashMap<Ulid, u64> =
                blocks.iter().map(|&(id, _, s)| (id, s)).collect();
            let limits = JobLimits {
                min_blocks: min,
                max_blocks: max,
                max_bytes,
            };
            let mut seen = std::collections::HashSet::new();
            let level = (round % 2) as u32;
            for (_, group) in plan_groups(level, blocks, limits) {
                let bytes: u64 = group.iter().map(|id| size_of[id]).sum();
                assert!(group.len() <= max, "{group:?}");
                assert!(
                    bytes <= max_bytes || group.len() == 1,
                    "{bytes} > {max_bytes}"
                );
                assert!(
                    group.iter().all(|id| seen.insert(*id)),
                    "a block in two jobs"
                );
            }
        }
    }
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
/// A process of the cluster, as its heartbeats record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Unique per process run (a restarted process is a new member).
    pub id: String,
    /// The roles it runs (`distributor`, `segment-writer`, …).
    pub roles: Vec<String>,
    /// Where the other members reach it (`http://host:port`).
    pub address: String,
    pub started_ms: i64,
    /// Its last heartbeat.
    pub heartbeat_ms: i64,
}

impl Member {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

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
    /// The block's duplicate requests, joined by [`REQUEST_SEPARATOR`].
    pub duplicates: String,
}

/// Joins a block's duplicate requests in one column (request ids hold no commas: the segment
/// writer takes only UUIDs).
pub(crate) const REQUEST_SEPARATOR: char = ',';

pub(crate) fn join_requests(requests: &[String]) -> String {
    requests.join(&REQUEST_SEPARATOR.to_string())
}

fn split_requests(joined: &str) -> Vec<String> {
    joined
        .split(REQUEST_SEPARATOR)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
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
                duplicate_requests: split_requests(&row.duplicates),
            }),
        }
    }
    Ok(blocks)
}

/// Distinct sorted values of a dataset-level label over rows.
pub(crate) fn label_values_of(rows: &[DatasetRow], name: &str) -> Vec<String> {
    let mut values: Vec<String> = match name {
        model::label_names::SERVICE_NAME => rows.iter().map(|r| r.service_name.clone()).collect(),
        model::label_names::PROFILE_TYPE => rows
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
