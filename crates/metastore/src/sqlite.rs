//! The embedded backend: one SQLite file (WAL, `synchronous=FULL`, so that a returned call
//! survives a crash), used from a blocking thread.

use crate::types::split_roles;
use crate::types::{
    DatasetRow, group_all, group_rows, join_ids, join_requests, join_types, label_values_of,
    parse_tenant, parse_ulid, plan_groups, signed, split_ids, tombstone,
};
use crate::{
    BlockMeta, BlockQuery, CompactionJob, FORGET_MEMBERS_AFTER_MS, FORGET_REQUESTS_AFTER_MS,
    JobLimits, Member, Metastore, MetastoreError, Tombstone,
};
use async_trait::async_trait;
use model::TenantId;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::Mutex;
use ulid::Ulid;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS blocks (
    id TEXT PRIMARY KEY,
    shard INTEGER NOT NULL,
    level INTEGER NOT NULL,
    tenant TEXT,
    min_time INTEGER NOT NULL,
    max_time INTEGER NOT NULL,
    size INTEGER NOT NULL,
    deleted_at INTEGER,
    duplicate_requests TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS datasets (
    block_id TEXT NOT NULL REFERENCES blocks (id),
    tenant TEXT NOT NULL,
    service_name TEXT NOT NULL,
    min_time INTEGER NOT NULL,
    max_time INTEGER NOT NULL,
    profile_types TEXT NOT NULL,
    byte_offset INTEGER NOT NULL,
    byte_length INTEGER NOT NULL,
    PRIMARY KEY (block_id, tenant, service_name)
);
CREATE INDEX IF NOT EXISTS datasets_by_tenant_time ON datasets (tenant, max_time, min_time);
CREATE INDEX IF NOT EXISTS blocks_deleted ON blocks (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS compaction_jobs (
    id TEXT PRIMARY KEY,
    level INTEGER NOT NULL,
    tenant TEXT,
    blocks TEXT NOT NULL,
    lease_owner TEXT NOT NULL DEFAULT '',
    lease_expires INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS compaction_job_blocks (
    block_id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    id TEXT PRIMARY KEY,
    roles TEXT NOT NULL,
    address TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS write_requests (
    id TEXT PRIMARY KEY,
    block_id TEXT NOT NULL,
    recorded_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS write_requests_recorded_at ON write_requests (recorded_at);
";

/// The SQLite metastore.
#[derive(Debug, Clone)]
pub struct SqliteMetastore {
    connection: Arc<Mutex<Connection>>,
}

impl SqliteMetastore {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &Path) -> Result<SqliteMetastore, MetastoreError> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(10))?;
        connection.execute_batch(SCHEMA)?;
        // Databases made before duplicate requests were recorded.
        let has_duplicates: i64 = connection.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('blocks') WHERE name = 'duplicate_requests'",
            [],
            |r| r.get(0),
        )?;
        if has_duplicates == 0 {
            connection.execute_batch(
                "ALTER TABLE blocks ADD COLUMN duplicate_requests TEXT NOT NULL DEFAULT ''",
            )?;
        }
        Ok(SqliteMetastore {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `work` on a blocking thread with the connection. The connection is taken before
    /// the thread is: calls wait their turn as tasks, in order, so that many concurrent queries
    /// hold one blocking thread, not one each parked on a lock (tokio allows 512, shared with
    /// the rest of the server: segment and compaction encoding). A panic in `work` comes back
    /// as `MetastoreError::Task`; an open `Transaction` rolls back as it is dropped, so later
    /// calls go on normally.
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, MetastoreError> + Send + 'static,
    ) -> Result<T, MetastoreError> {
        let mut connection = self.connection.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || work(&mut connection))
            .await
            .map_err(|e| MetastoreError::Task(e.to_string()))?
    }
}

fn insert_block(tx: &rusqlite::Transaction<'_>, block: &BlockMeta) -> Result<(), MetastoreError> {
    let exists: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM blocks WHERE id = ?1",
            [block.id.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_some() {
        return Err(MetastoreError::AlreadyExists(block.id));
    }
    tx.execute(
        "INSERT INTO blocks (id, shard, level, tenant, min_time, max_time, size, duplicate_requests)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            block.id.to_string(),
            block.shard,
            block.level,
            block.tenant.as_ref().map(TenantId::as_str),
            block.min_time_ms,
            block.max_time_ms,
            signed(block.size, "block size")?,
            join_requests(&block.duplicate_requests),
        ],
    )?;
    for d in &block.datasets {
        tx.execute(
            "INSERT INTO datasets (block_id, tenant, service_name, min_time, max_time, profile_types, byte_offset, byte_length)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                block.id.to_string(),
                d.tenant.as_str(),
                d.service_name,
                d.min_time_ms,
                d.max_time_ms,
                join_types(&d.profile_types),
                signed(d.offset, "dataset offset")?,
                signed(d.length, "dataset length")?,
            ],
        )?;
    }
    Ok(())
}

fn dataset_rows(
    connection: &Connection,
    tenant: &str,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<DatasetRow>, MetastoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT d.block_id, b.shard, b.level, b.tenant, b.min_time, b.max_time, b.size,
                d.tenant, d.service_name, d.min_time, d.max_time, d.profile_types, d.byte_offset, d.byte_length,
                b.duplicate_requests
         FROM datasets d JOIN blocks b ON b.id = d.block_id
         WHERE d.tenant = ?1 AND d.min_time <= ?2 AND d.max_time >= ?3 AND b.deleted_at IS NULL
         ORDER BY d.block_id, d.service_name",
    )?;
    let rows = statement.query_map(params![tenant, end_ms, start_ms], row_of)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Blocks (with every dataset) by id, in the order given.
fn blocks_by_ids(
    connection: &Connection,
    ids: &[String],
) -> Result<Vec<BlockMeta>, MetastoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT d.block_id, b.shard, b.level, b.tenant, b.min_time, b.max_time, b.size,
                d.tenant, d.service_name, d.min_time, d.max_time, d.profile_types, d.byte_offset, d.byte_length,
                b.duplicate_requests
         FROM datasets d JOIN blocks b ON b.id = d.block_id
         WHERE d.block_id = ?1 ORDER BY d.tenant, d.service_name",
    )?;
    let mut rows = Vec::new();
    for id in ids {
        let found = statement.query_map([id], row_of)?;
        for row in found {
            rows.push(row?);
        }
    }
    group_all(rows)
}

/// Marks `old` deleted (all must be live) and inserts `new`, inside `tx`.
fn swap_blocks(
    tx: &rusqlite::Transaction<'_>,
    old: &[Ulid],
    new: &[BlockMeta],
    now_ms: i64,
) -> Result<(), MetastoreError> {
    for id in old {
        let changed = tx.execute(
            "UPDATE blocks SET deleted_at = ?1 WHERE id = ?2 AND deleted_at IS NULL",
            params![now_ms, id.to_string()],
        )?;
        if changed == 0 {
            return Err(MetastoreError::NotFound(*id));
        }
    }
    for block in new {
        insert_block(tx, block)?;
    }
    Ok(())
}

fn row_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<DatasetRow> {
    Ok(DatasetRow {
        block_id: r.get(0)?,
        shard: r.get(1)?,
        level: r.get(2)?,
        block_tenant: r.get(3)?,
        block_min_time: r.get(4)?,
        block_max_time: r.get(5)?,
        size: r.get(6)?,
        tenant: r.get(7)?,
        service_name: r.get(8)?,
        min_time: r.get(9)?,
        max_time: r.get(10)?,
        profile_types: r.get(11)?,
        offset: r.get(12)?,
        length: r.get(13)?,
        duplicates: r.get(14)?,
    })
}

#[async_trait]
impl Metastore for SqliteMetastore {
    async fn add_block(&self, block: &BlockMeta) -> Result<(), MetastoreError> {
        let block = block.clone();
        self.with(move |connection| {
            let tx = connection.transaction()?;
            insert_block(&tx, &block)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn add_segment(
        &self,
        block: &BlockMeta,
        requests: &[String],
        now_ms: i64,
    ) -> Result<(), MetastoreError> {
        let mut block = block.clone();
        let requests = requests.to_vec();
        self.with(move |connection| {
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if !requests.is_empty() {
                let id = block.id.to_string();
                {
                    let mut insert = tx.prepare_cached(
                        "INSERT OR IGNORE INTO write_requests (id, block_id, recorded_at)
                         VALUES (?1, ?2, ?3)",
                    )?;
                    let mut owner =
                        tx.prepare_cached("SELECT block_id FROM write_requests WHERE id = ?1")?;
                    for request in &requests {
                        if insert.execute(params![request, id, now_ms])? == 0 {
                            let recorded_with: String = owner.query_row([request], |r| r.get(0))?;
                            if recorded_with != id {
                                block.duplicate_requests.push(request.clone());
                            }
                        }
                    }
                }
                tx.execute(
                    "DELETE FROM write_requests WHERE recorded_at < ?1",
                    [now_ms.saturating_sub(FORGET_REQUESTS_AFTER_MS)],
                )?;
            }
            insert_block(&tx, &block)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn recorded_requests(&self, requests: &[String]) -> Result<Vec<String>, MetastoreError> {
        let requests = requests.to_vec();
        self.with(move |connection| {
            let mut found = Vec::new();
            let mut statement =
                connection.prepare_cached("SELECT 1 FROM write_requests WHERE id = ?1")?;
            for request in requests {
                if statement.exists([&request])? {
                    found.push(request);
                }
            }
            found.sort();
            Ok(found)
        })
        .await
    }

    async fn query_blocks(&self, query: &BlockQuery) -> Result<Vec<BlockMeta>, MetastoreError> {
        let query = query.clone();
        self.with(move |connection| {
            let rows = dataset_rows(
                connection,
                query.tenant.as_str(),
                query.start_ms,
                query.end_ms,
            )?;
            group_rows(rows, &query)
        })
        .await
    }

    async fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, MetastoreError> {
        let (tenant, name) = (tenant.clone(), name.to_owned());
        self.with(move |connection| {
            let rows = dataset_rows(connection, tenant.as_str(), start_ms, end_ms)?;
            Ok(label_values_of(&rows, &name))
        })
        .await
    }

    async fn replace_blocks(
        &self,
        old: &[Ulid],
        new: &[BlockMeta],
        now_ms: i64,
    ) -> Result<(), MetastoreError> {
        let (old, new) = (old.to_vec(), new.to_vec());
        self.with(move |connection| {
            let tx = connection.transaction()?;
            swap_blocks(&tx, &old, &new, now_ms)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn live_blocks(
        &self,
        level: u32,
        limit: usize,
    ) -> Result<Vec<BlockMeta>, MetastoreError> {
        self.with(move |connection| {
            let ids: Vec<String> = {
                let mut statement = connection.prepare_cached(
                    "SELECT id FROM blocks WHERE level = ?1 AND deleted_at IS NULL ORDER BY id LIMIT ?2",
                )?;
                let rows = statement.query_map(params![level, i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get(0))?;
                rows.collect::<Result<Vec<String>, _>>()?
            };
            blocks_by_ids(connection, &ids)
        })
        .await
    }

    async fn plan_compaction(
        &self,
        level: u32,
        limits: JobLimits,
        _now_ms: i64,
    ) -> Result<usize, MetastoreError> {
        self.with(move |connection| {
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let free: Vec<(String, Option<String>, i64)> = {
                let mut statement = tx.prepare_cached(
                    "SELECT id, tenant, size FROM blocks
                     WHERE level = ?1 AND deleted_at IS NULL
                       AND id NOT IN (SELECT block_id FROM compaction_job_blocks)
                     ORDER BY id",
                )?;
                let rows =
                    statement.query_map([level], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            let mut blocks = Vec::with_capacity(free.len());
            for (id, tenant, size) in free {
                blocks.push((
                    parse_ulid(&id)?,
                    tenant.as_deref().map(parse_tenant).transpose()?,
                    u64::try_from(size).unwrap_or(0),
                ));
            }
            let groups = plan_groups(level, blocks, limits);
            for (tenant, ids) in &groups {
                let job = Ulid::new().to_string();
                tx.execute(
                    "INSERT INTO compaction_jobs (id, level, tenant, blocks) VALUES (?1, ?2, ?3, ?4)",
                    params![job, level, tenant.as_ref().map(TenantId::as_str), join_ids(ids)],
                )?;
                for id in ids {
                    tx.execute(
                        "INSERT INTO compaction_job_blocks (block_id, job_id) VALUES (?1, ?2)",
                        params![id.to_string(), job],
                    )?;
                }
            }
            tx.commit()?;
            Ok(groups.len())
        })
        .await
    }

    async fn lease_compaction_job(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<CompactionJob>, MetastoreError> {
        let owner = owner.to_owned();
        self.with(move |connection| {
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let found: Option<(String, i64, Option<String>, String)> = tx
                .query_row(
                    "SELECT id, level, tenant, blocks FROM compaction_jobs WHERE lease_expires <= ?1 ORDER BY id LIMIT 1",
                    [now_ms],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let Some((id, level, tenant, blocks)) = found else {
                return Ok(None);
            };
            let expires = now_ms.saturating_add(lease_ms);
            tx.execute(
                "UPDATE compaction_jobs SET lease_owner = ?1, lease_expires = ?2 WHERE id = ?3",
                params![owner, expires, id],
            )?;
            let ids: Vec<String> = split_ids(&blocks)?.iter().map(Ulid::to_string).collect();
            let metas = blocks_by_ids(&tx, &ids)?;
            tx.commit()?;
            Ok(Some(CompactionJob {
                id: parse_ulid(&id)?,
                level: u32::try_from(level).map_err(|_| MetastoreError::Corrupt(format!("job level {level}")))?,
                tenant: tenant.as_deref().map(parse_tenant).transpose()?,
                blocks: metas,
                lease_owner: owner,
                lease_expires_ms: expires,
            }))
        })
        .await
    }

    async fn complete_compaction_job(
        &self,
        job: Ulid,
        owner: &str,
        new: &[BlockMeta],
        now_ms: i64,
    ) -> Result<(), MetastoreError> {
        let (owner, new) = (owner.to_owned(), new.to_vec());
        self.with(move |connection| {
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let found: Option<(String, i64, String)> = tx
                .query_row(
                    "SELECT lease_owner, lease_expires, blocks FROM compaction_jobs WHERE id = ?1",
                    [job.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((holder, expires, blocks)) = found else {
                return Err(MetastoreError::LeaseLost(job));
            };
            if holder != owner || expires < now_ms {
                return Err(MetastoreError::LeaseLost(job));
            }
            swap_blocks(&tx, &split_ids(&blocks)?, &new, now_ms)?;
            tx.execute(
                "DELETE FROM compaction_job_blocks WHERE job_id = ?1",
                [job.to_string()],
            )?;
            tx.execute(
                "DELETE FROM compaction_jobs WHERE id = ?1",
                [job.to_string()],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn drop_compaction_job(&self, job: Ulid) -> Result<(), MetastoreError> {
        self.with(move |connection| {
            let tx = connection.transaction()?;
            tx.execute(
                "DELETE FROM compaction_job_blocks WHERE job_id = ?1",
                [job.to_string()],
            )?;
            tx.execute(
                "DELETE FROM compaction_jobs WHERE id = ?1",
                [job.to_string()],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn tombstones(&self, before_ms: i64) -> Result<Vec<Tombstone>, MetastoreError> {
        self.with(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT id, shard, level, tenant, deleted_at FROM blocks
                 WHERE deleted_at IS NOT NULL AND deleted_at < ?1 ORDER BY id",
            )?;
            let rows = statement.query_map([before_ms], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get(4)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, shard, level, tenant, deleted_at) = row?;
                out.push(tombstone(&id, shard, level, tenant.as_deref(), deleted_at)?);
            }
            Ok(out)
        })
        .await
    }

    async fn remove_tombstones(&self, ids: &[Ulid]) -> Result<(), MetastoreError> {
        let ids = ids.to_vec();
        self.with(move |connection| {
            let tx = connection.transaction()?;
            for id in &ids {
                let live: Option<i64> = tx
                    .query_row(
                        "SELECT 1 FROM blocks WHERE id = ?1 AND deleted_at IS NULL",
                        [id.to_string()],
                        |r| r.get(0),
                    )
                    .optional()?;
                if live.is_some() {
                    continue; // never forget a live block
                }
                tx.execute("DELETE FROM datasets WHERE block_id = ?1", [id.to_string()])?;
                tx.execute("DELETE FROM blocks WHERE id = ?1", [id.to_string()])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn heartbeat(&self, member: &Member, now_ms: i64) -> Result<(), MetastoreError> {
        let member = member.clone();
        self.with(move |connection| {
            let tx = connection.transaction()?;
            tx.execute(
                "INSERT INTO members (id, roles, address, started_at, heartbeat_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET roles = ?2, address = ?3, heartbeat_at = ?5
             WHERE members.heartbeat_at >= 0",
                params![
                    member.id,
                    member.roles.join(","),
                    member.address,
                    member.started_ms,
                    now_ms
                ],
            )?;
            tx.execute(
                "DELETE FROM members WHERE abs(heartbeat_at) < ?1",
                [now_ms.saturating_sub(FORGET_MEMBERS_AFTER_MS)],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn members(&self, since_ms: i64) -> Result<Vec<Member>, MetastoreError> {
        self.with(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT id, roles, address, started_at, heartbeat_at FROM members
                 WHERE heartbeat_at >= ?1 ORDER BY id",
            )?;
            let rows = statement.query_map([since_ms], |r| {
                Ok(Member {
                    id: r.get(0)?,
                    roles: split_roles(&r.get::<_, String>(1)?),
                    address: r.get(2)?,
                    started_ms: r.get(3)?,
                    heartbeat_ms: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn leave(&self, id: &str, now_ms: i64) -> Result<(), MetastoreError> {
        let id = id.to_owned();
        self.with(move |connection| {
            connection.execute(
                "UPDATE members SET heartbeat_at = ?2 WHERE id = ?1",
                params![id, -now_ms.max(1)],
            )?;
            Ok(())
        })
        .await
    }
}
