//! The cluster backend: an existing PostgreSQL database (replicated by its operators; we write
//! no consensus of our own). Every call is one transaction.

use crate::types::split_roles;
use crate::types::{
    DatasetRow, group_all, group_rows, join_requests, join_types, label_values_of, signed,
    tombstone,
};
use crate::types::{JobLimits, join_ids, parse_tenant, parse_ulid, plan_groups, split_ids};
use crate::{
    BlockMeta, BlockQuery, CompactionJob, FORGET_MEMBERS_AFTER_MS, FORGET_REQUESTS_AFTER_MS,
    Member, Metastore, MetastoreError, Tombstone,
};
use async_trait::async_trait;
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use model::TenantId;
use std::time::Duration;
use tokio_postgres::{Client, NoTls, Transaction};
use ulid::Ulid;

/// The advisory lock key under which the schema is created ("emberscp" in ASCII).
const SCHEMA_LOCK: i64 = 0x656d_6265_7273_6370;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS blocks (
    id TEXT PRIMARY KEY,
    shard BIGINT NOT NULL,
    level BIGINT NOT NULL,
    tenant TEXT,
    min_time BIGINT NOT NULL,
    max_time BIGINT NOT NULL,
    size BIGINT NOT NULL,
    deleted_at BIGINT
);
ALTER TABLE blocks ADD COLUMN IF NOT EXISTS duplicate_requests TEXT NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS datasets (
    block_id TEXT NOT NULL REFERENCES blocks (id),
    tenant TEXT NOT NULL,
    service_name TEXT NOT NULL,
    min_time BIGINT NOT NULL,
    max_time BIGINT NOT NULL,
    profile_types TEXT NOT NULL,
    byte_offset BIGINT NOT NULL,
    byte_length BIGINT NOT NULL,
    PRIMARY KEY (block_id, tenant, service_name)
);
CREATE INDEX IF NOT EXISTS datasets_by_tenant_time ON datasets (tenant, max_time, min_time);
CREATE INDEX IF NOT EXISTS blocks_deleted ON blocks (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS compaction_jobs (
    id TEXT PRIMARY KEY,
    level BIGINT NOT NULL,
    tenant TEXT,
    blocks TEXT NOT NULL,
    lease_owner TEXT NOT NULL DEFAULT '',
    lease_expires BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS compaction_job_blocks (
    block_id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    id TEXT PRIMARY KEY,
    roles TEXT NOT NULL,
    address TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS write_requests (
    id TEXT PRIMARY KEY,
    block_id TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS write_requests_recorded_at ON write_requests (recorded_at);
";

/// The PostgreSQL metastore: a pool of connections, so that calls run side by side and a
/// connection broken by a database restart is replaced on the next call.
pub struct PostgresMetastore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresMetastore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresMetastore")
            .field("connections", &status.size)
            .field("max_connections", &status.max_size)
            .finish()
    }
}

/// Connections a metastore opens at most, unless told otherwise.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// How long a call waits for a connection (opening one included) before it fails.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

impl PostgresMetastore {
    /// Connects with a libpq-style connection string (`host=… user=… dbname=…` or a URL) and
    /// creates the schema if needed; at most [`DEFAULT_POOL_SIZE`] connections.
    pub async fn connect(config: &str) -> Result<PostgresMetastore, MetastoreError> {
        PostgresMetastore::connect_with(config, DEFAULT_POOL_SIZE).await
    }

    /// As [`PostgresMetastore::connect`], with at most `pool_size` connections.
    pub async fn connect_with(
        config: &str,
        pool_size: usize,
    ) -> Result<PostgresMetastore, MetastoreError> {
        let mut pg: tokio_postgres::Config = config.parse()?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(CONNECTION_TIMEOUT);
        }
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECTION_TIMEOUT))
            .create_timeout(Some(CONNECTION_TIMEOUT))
            .recycle_timeout(Some(CONNECTION_TIMEOUT))
            .build()
            .map_err(|e| MetastoreError::Pool(e.to_string()))?;
        let metastore = PostgresMetastore { pool };
        // Processes of a cluster start together: `CREATE TABLE IF NOT EXISTS` is not safe
        // against a concurrent create, so the schema is made under an advisory lock (one
        // process at a time; the others then find it made). Each statement commits on its own:
        // in one transaction, the index statements' table locks, held to its end, deadlocked
        // with the running members' writes when a process restarted under load.
        let client = metastore.client().await?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&SCHEMA_LOCK])
            .await?;
        let mut created = Ok(());
        for statement in SCHEMA.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            if let Err(error) = client.batch_execute(statement).await {
                created = Err(error);
                break;
            }
        }
        let unlocked = client
            .execute("SELECT pg_advisory_unlock($1)", &[&SCHEMA_LOCK])
            .await;
        created?;
        unlocked?;
        Ok(metastore)
    }

    /// A connection of the pool.
    async fn client(&self) -> Result<Object, MetastoreError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => MetastoreError::Postgres(e),
            other => MetastoreError::Pool(other.to_string()),
        })
    }
}

async fn insert_block(tx: &Transaction<'_>, block: &BlockMeta) -> Result<(), MetastoreError> {
    let id = block.id.to_string();
    let inserted = tx
        .execute(
            "INSERT INTO blocks (id, shard, level, tenant, min_time, max_time, size, duplicate_requests)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
            &[
                &id,
                &i64::from(block.shard),
                &i64::from(block.level),
                &block.tenant.as_ref().map(TenantId::as_str),
                &block.min_time_ms,
                &block.max_time_ms,
                &signed(block.size, "block size")?,
                &join_requests(&block.duplicate_requests),
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(MetastoreError::AlreadyExists(block.id));
    }
    for d in &block.datasets {
        tx.execute(
            "INSERT INTO datasets (block_id, tenant, service_name, min_time, max_time, profile_types, byte_offset, byte_length)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &id,
                &d.tenant.as_str(),
                &d.service_name,
                &d.min_time_ms,
                &d.max_time_ms,
                &join_types(&d.profile_types),
                &signed(d.offset, "dataset offset")?,
                &signed(d.length, "dataset length")?,
            ],
        )
        .await?;
    }
    Ok(())
}

async fn dataset_rows(
    client: &Client,
    tenant: &str,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<DatasetRow>, MetastoreError> {
    let rows = client
        .query(
            "SELECT d.block_id, b.shard, b.level, b.tenant, b.min_time, b.max_time, b.size,
                    d.tenant, d.service_name, d.min_time, d.max_time, d.profile_types, d.byte_offset, d.byte_length,
                b.duplicate_requests
             FROM datasets d JOIN blocks b ON b.id = d.block_id
             WHERE d.tenant = $1 AND d.min_time <= $2 AND d.max_time >= $3 AND b.deleted_at IS NULL
             ORDER BY d.block_id COLLATE \"C\", d.service_name COLLATE \"C\"",
            &[&tenant, &end_ms, &start_ms],
        )
        .await?;
    rows.iter().map(row_of).collect()
}

/// Blocks (with every dataset) by id.
async fn blocks_by_ids(
    client: &impl tokio_postgres::GenericClient,
    ids: &[String],
) -> Result<Vec<BlockMeta>, MetastoreError> {
    let rows = client
        .query(
            "SELECT d.block_id, b.shard, b.level, b.tenant, b.min_time, b.max_time, b.size,
                    d.tenant, d.service_name, d.min_time, d.max_time, d.profile_types, d.byte_offset, d.byte_length,
                b.duplicate_requests
             FROM datasets d JOIN blocks b ON b.id = d.block_id
             WHERE b.id = ANY($1)
             ORDER BY d.block_id COLLATE \"C\", d.tenant COLLATE \"C\", d.service_name COLLATE \"C\"",
            &[&ids],
        )
        .await?;
    let rows: Result<Vec<DatasetRow>, MetastoreError> = rows.iter().map(row_of).collect();
    group_all(rows?)
}

/// Marks `old` deleted (all must be live) and inserts `new`, inside `tx`.
async fn swap_blocks(
    tx: &Transaction<'_>,
    old: &[Ulid],
    new: &[BlockMeta],
    now_ms: i64,
) -> Result<(), MetastoreError> {
    for id in old {
        let changed = tx
            .execute(
                "UPDATE blocks SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL",
                &[&now_ms, &id.to_string()],
            )
            .await?;
        if changed == 0 {
            return Err(MetastoreError::NotFound(*id));
        }
    }
    for block in new {
        insert_block(tx, block).await?;
    }
    Ok(())
}

fn row_of(r: &tokio_postgres::Row) -> Result<DatasetRow, MetastoreError> {
    Ok(DatasetRow {
        block_id: r.try_get(0)?,
        shard: r.try_get(1)?,
        level: r.try_get(2)?,
        block_tenant: r.try_get(3)?,
        block_min_time: r.try_get(4)?,
        block_max_time: r.try_get(5)?,
        size: r.try_get(6)?,
        tenant: r.try_get(7)?,
        service_name: r.try_get(8)?,
        min_time: r.try_get(9)?,
        max_time: r.try_get(10)?,
        profile_types: r.try_get(11)?,
        offset: r.try_get(12)?,
        length: r.try_get(13)?,
        duplicates: r.try_get(14)?,
    })
}

#[async_trait]
impl Metastore for PostgresMetastore {
    async fn add_block(&self, block: &BlockMeta) -> Result<(), MetastoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        insert_block(&tx, block).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_segment(
        &self,
        block: &BlockMeta,
        requests: &[String],
        now_ms: i64,
    ) -> Result<(), MetastoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut block = block.clone();
        if !requests.is_empty() {
            // A request already recorded, with another segment, makes this one's copy a
            // duplicate. (A concurrent insert of the same id waits for the other transaction,
            // then conflicts: exactly one segment records each request.)
            let id = block.id.to_string();
            let inserted = tx
                .query(
                    "INSERT INTO write_requests (id, block_id, recorded_at)
                     SELECT unnest($1::text[]), $2, $3 ON CONFLICT (id) DO NOTHING RETURNING id",
                    &[&requests, &id, &now_ms],
                )
                .await?;
            let inserted: std::collections::HashSet<String> = inserted
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            let others = tx
                .query(
                    "SELECT id FROM write_requests WHERE id = ANY($1::text[]) AND block_id <> $2",
                    &[&requests, &id],
                )
                .await?;
            for row in others {
                let request: String = row.try_get(0)?;
                if !inserted.contains(&request) {
                    block.duplicate_requests.push(request);
                }
            }
            tx.execute(
                "DELETE FROM write_requests WHERE recorded_at < $1",
                &[&now_ms.saturating_sub(FORGET_REQUESTS_AFTER_MS)],
            )
            .await?;
        }
        block.duplicate_requests.sort();
        insert_block(&tx, &block).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn recorded_requests(&self, requests: &[String]) -> Result<Vec<String>, MetastoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id FROM write_requests WHERE id = ANY($1::text[]) ORDER BY id",
                &[&requests],
            )
            .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(MetastoreError::from))
            .collect()
    }

    async fn query_blocks(&self, query: &BlockQuery) -> Result<Vec<BlockMeta>, MetastoreError> {
        let client = self.client().await?;
        let rows =
            dataset_rows(&client, query.tenant.as_str(), query.start_ms, query.end_ms).await?;
        group_rows(rows, query)
    }

    async fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, MetastoreError> {
        let client = self.client().await?;
        let rows = dataset_rows(&client, tenant.as_str(), start_ms, end_ms).await?;
        Ok(label_values_of(&rows, name))
    }

    async fn replace_blocks(
        &self,
        old: &[Ulid],
        new: &[BlockMeta],
        now_ms: i64,
    ) -> Result<(), MetastoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        swap_blocks(&tx, old, new, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn live_blocks(
        &self,
        level: u32,
        limit: usize,
    ) -> Result<Vec<BlockMeta>, MetastoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT d.block_id, b.shard, b.level, b.tenant, b.min_time, b.max_time, b.size,
                        d.tenant, d.service_name, d.min_time, d.max_time, d.profile_types, d.byte_offset, d.byte_length,
                b.duplicate_requests
                 FROM datasets d JOIN blocks b ON b.id = d.block_id
                 WHERE b.id IN (SELECT id FROM blocks WHERE level = $1 AND deleted_at IS NULL
                                ORDER BY id COLLATE \"C\" LIMIT $2)
                 ORDER BY d.block_id COLLATE \"C\", d.tenant COLLATE \"C\", d.service_name COLLATE \"C\"",
                &[&i64::from(level), &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .await?;
        let rows: Result<Vec<DatasetRow>, MetastoreError> = rows.iter().map(row_of).collect();
        group_all(rows?)
    }

    async fn plan_compaction(
        &self,
        level: u32,
        limits: JobLimits,
        _now_ms: i64,
    ) -> Result<usize, MetastoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // One planner at a time: the lock is released at commit.
        tx.execute("LOCK TABLE compaction_job_blocks IN EXCLUSIVE MODE", &[])
            .await?;
        let rows = tx
            .query(
                "SELECT id, tenant, size FROM blocks
                 WHERE level = $1 AND deleted_at IS NULL
                   AND id NOT IN (SELECT block_id FROM compaction_job_blocks)
                 ORDER BY id COLLATE \"C\"",
                &[&i64::from(level)],
            )
            .await?;
        let mut blocks = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get(0)?;
            let tenant: Option<String> = row.try_get(1)?;
            let size: i64 = row.try_get(2)?;
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
                "INSERT INTO compaction_jobs (id, level, tenant, blocks) VALUES ($1, $2, $3, $4)",
                &[
                    &job,
                    &i64::from(level),
                    &tenant.as_ref().map(TenantId::as_str),
                    &join_ids(ids),
                ],
            )
            .await?;
            for id in ids {
                tx.execute(
                    "INSERT INTO compaction_job_blocks (block_id, job_id) VALUES ($1, $2)",
                    &[&id.to_string(), &job],
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(groups.len())
    }

    async fn lease_compaction_job(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<CompactionJob>, MetastoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let expires = now_ms.saturating_add(lease_ms);
        // Workers on other connections skip the rows this one holds.
        let row = tx
            .query_opt(
                "UPDATE compaction_jobs SET lease_owner = $1, lease_expires = $2
                 WHERE id = (SELECT id FROM compaction_jobs WHERE lease_expires <= $3
                             ORDER BY id COLLATE \"C\" LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING id, level, tenant, blocks",
                &[&owner, &expires, &now_ms],
            )
            .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        let id: String = row.try_get(0)?;
        let level: i64 = row.try_get(1)?;
        let tenant: Option<String> = row.try_get(2)?;
        let blocks: String = row.try_get(3)?;
        let ids: Vec<String> = split_ids(&blocks)?.iter().map(Ulid::to_string).collect();
        let metas = blocks_by_ids(&*tx, &ids).await?;
        tx.commit().await?;
        Ok(Some(CompactionJob {
            id: parse_ulid(&id)?,
            level: u32::try_from(level)
                .map_err(|_| MetastoreError::Corrupt(format!("job level {level}")))?,
            tenant: tenant.as_deref().map(parse_tenant).transpose()?,
            blocks: metas,
            lease_owner: owner.to_owned(),
            lease_expires_ms: expires,
        }))
    }

    async fn complete_compaction_job(
        &self,
        job: Ulid,
        owner: &str,
        new: &[BlockMeta],
        now_ms: i64,
    ) -> Result<(), MetastoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "SELECT lease_owner, lease_expires, blocks FROM compaction_jobs WHERE id = $1 FOR UPDATE",
                &[&job.to_string()],
            )
            .await?;
        let Some(row) = row else {
            return Err(MetastoreError::LeaseLost(job));
        };
        let holder: String = row.try_get(0)?;
        let expires: i64 = row.try_get(1)?;
        let blocks: String = row.try_get(2)?;
        if holder != owner || expires < now_ms {
            return Err(MetastoreError::LeaseLost(job));
        }
        swap_blocks(&tx, &split_ids(&blocks)?, new, now_ms).await?;
        tx.execute(
            "DELETE FROM compaction_job_blocks WHERE job_id = $1",
            &[&job.to_string()],
        )
        .await?;
        tx.execute(
            "DELETE FROM compaction_jobs WHERE id = $1",
            &[&job.to_string()],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn drop_compaction_job(&self, job: Ulid) -> Result<(), MetastoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "DELETE FROM compaction_job_blocks WHERE job_id = $1",
            &[&job.to_string()],
        )
        .await?;
        tx.execute(
            "DELETE FROM compaction_jobs WHERE id = $1",
            &[&job.to_string()],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn tombstones(&self, before_ms: i64) -> Result<Vec<Tombstone>, MetastoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, shard, level, tenant, deleted_at FROM blocks
                 WHERE deleted_at IS NOT NULL AND deleted_at < $1 ORDER BY id COLLATE \"C\"",
                &[&before_ms],
            )
            .await?;
        rows.iter()
            .map(|r| {
                tombstone(
                    &r.try_get::<_, String>(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                )
            })
            .collect()
    }

    async fn remove_tombstones(&self, ids: &[Ulid]) -> Result<(), MetastoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        for id in ids {
            let id = id.to_string();
            tx.execute(
                "DELETE FROM datasets WHERE block_id = $1
                 AND EXISTS (SELECT 1 FROM blocks WHERE id = $1 AND deleted_at IS NOT NULL)",
                &[&id],
            )
            .await?;
            tx.execute(
                "DELETE FROM blocks WHERE id = $1 AND deleted_at IS NOT NULL",
                &[&id],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn heartbeat(&self, member: &Member, now_ms: i64) -> Result<(), MetastoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO members (id, roles, address, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET roles = $2, address = $3, heartbeat_at = $5
             WHERE members.heartbeat_at >= 0",
            &[
                &member.id,
                &member.roles.join(","),
                &member.address,
                &member.started_ms,
                &now_ms,
            ],
        )
        .await?;
        tx.execute(
            "DELETE FROM members WHERE abs(heartbeat_at) < $1",
            &[&now_ms.saturating_sub(FORGET_MEMBERS_AFTER_MS)],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn members(&self, since_ms: i64) -> Result<Vec<Member>, MetastoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, roles, address, started_at, heartbeat_at FROM members
                 WHERE heartbeat_at >= $1 ORDER BY id COLLATE \"C\"",
                &[&since_ms],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Member {
                    id: r.try_get(0)?,
                    roles: split_roles(&r.try_get::<_, String>(1)?),
                    address: r.try_get(2)?,
                    started_ms: r.try_get(3)?,
                    heartbeat_ms: r.try_get(4)?,
                })
            })
            .collect()
    }

    async fn leave(&self, id: &str, now_ms: i64) -> Result<(), MetastoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE members SET heartbeat_at = $2 WHERE id = $1",
                &[&id, &-now_ms.max(1)],
            )
            .await?;
        Ok(())
    }
}
