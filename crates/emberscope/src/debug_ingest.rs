//! `emberscope debug-ingest`: pushes one profile file again and again through the real write
//! path (validation, segment writer, local object storage, SQLite metastore) and prints
//! `acked <uid>` for each acknowledged write. The crash test kills it with SIGKILL and checks
//! that every acknowledged write survived, exactly once.

use anyhow::{Context, Result};
use formats::pprof::{self, LabelLimits, ProfileLimits};
use ingest::{SegmentWriter, SegmentWriterConfig};
use metastore::SqliteMetastore;
use model::label_names;
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
        let raw = formats::compression::decompress(&body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES)?;
        let raw: Arc<[u8]> = Arc::from(raw.as_ref());
        let limits = ProfileLimits {
            reject_older_than_nanos: 0,
            reject_newer_than_nanos: 0,
            ..ProfileLimits::default()
        };
        let size = body.len();
        // As the Push handler does it, each write decodes the bytes into a view and prepares
        // it on its own task; a file the path refuses is an error here, before any write.
        prepare(
            &raw,
            &mut None,
            &crash_labels(&format!("{prefix}-0")),
            &limits,
            size,
        )?;
        let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..count {
            let permit = Arc::clone(&permits).acquire_owned().await?;
            let uid = format!("{prefix}-{i}");
            let labels = crash_labels(&uid);
            let (writer, tenant, raw, limits) = (
                Arc::clone(&writer),
                tenant.clone(),
                Arc::clone(&raw),
                limits.clone(),
            );
            tasks.spawn(async move {
                let mut slot = None;
                let prepared = match prepare(&raw, &mut slot, &labels, &limits, size) {
                    Ok(prepared) => prepared,
                    Err(error) => {
                        eprintln!("write {i} refused: {error:#}");
                        return;
                    }
                };
                let added = writer.add(&tenant, prepared, size).await;
                drop(slot);
                let outcome = match added {
                    Ok(pending) => pending.durable().await,
                    Err(error) => Err(error),
                };
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

/// One write's profile, prepared as the Push handler prepares it.
fn prepare<'a>(
    raw: &'a [u8],
    slot: &'a mut pprof::RewriteSlot,
    labels: &Labels,
    limits: &ProfileLimits,
    size: usize,
) -> Result<pprof::Prepared<'a>> {
    let view = pprof::ProfileView::decode(raw)?;
    Ok(pprof::prepare_view(
        view,
        slot,
        labels,
        limits,
        &LabelLimits::default(),
        size,
        1,
    )?)
}

/// The labels of one crash-test write: its own series, named by `uid`.
fn crash_labels(uid: &str) -> Labels {
    Labels::from_pairs([
        (label_names::METRIC_NAME, "process_cpu"),
        (label_names::SERVICE_NAME, "crash"),
        ("uid", uid),
    ])
}
