//! `emberscope debug-ingest`: pushes one profile file again and again through the real write
//! path (validation, segment writer, local object storage, SQLite metastore) and prints
//! `acked <uid>` for each acknowledged write. The crash test kills it with SIGKILL and checks
//! that every acknowledged write survived, exactly once.

use anyhow::{Context, Result};
use formats::pprof::{self, LabelLimits, ProfileLimits};
use ingest::{SegmentWriter, SegmentWriterConfig};
use metastore::SqliteMetastore;
use model::{Labels, TenantId};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use storage::StorageConfig;

/// Opens the storage and metastore of a data folder (`objects/`, `metastore.db`).
pub fn open_data_dir(data: &Path) -> Result<(Arc<dyn storage::ObjectStore>, Arc<SqliteMetastore>)> {
    let store = StorageConfig::Filesystem {
        dir: data.join("objects"),
    }
    .open()?;
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    let metastore = SqliteMetastore::open(&data.join("metastore.db"))?;
    Ok((store, Arc::new(metastore)))
}

pub fn run(
    data: PathBuf,
    file: PathBuf,
    tenant: String,
    prefix: String,
    count: u64,
    concurrency: usize,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (store, metastore) = open_data_dir(&data)?;
        let config = SegmentWriterConfig {
            flush_interval: Duration::from_millis(20),
            ..SegmentWriterConfig::default()
        };
        let writer = Arc::new(SegmentWriter::start(config, store, metastore));
        let tenant = TenantId::new(&tenant)?;
        let body =
            std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let profile = pprof::decode(&body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES)?;
        let limits = ProfileLimits {
            reject_older_than_nanos: 0,
            reject_newer_than_nanos: 0,
            ..ProfileLimits::default()
        };
        let size = body.len();
        let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..count {
            let permit = Arc::clone(&permits).acquire_owned().await?;
            let uid = format!("{prefix}-{i}");
            let labels = Labels::from_pairs([
                ("__name__", "process_cpu"),
                ("service_name", "crash"),
                ("uid", uid.as_str()),
            ]);
            let series = pprof::prepare_push(
                profile.clone(),
                &labels,
                &limits,
                &LabelLimits::default(),
                size,
                1,
            )?;
            let (writer, tenant) = (Arc::clone(&writer), tenant.clone());
            tasks.spawn(async move {
                let outcome = writer.write(tenant, series, size).await;
                drop(permit);
                if outcome.is_ok() {
                    println!("acked {uid}");
                }
            });
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    })
}
