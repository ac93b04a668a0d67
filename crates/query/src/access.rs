//! Reading blocks through the caches: open readers (footers), series indexes, symbols and the
//! tables' Parquet metadata are fetched once and kept in one cache bounded in bytes; column
//! chunks are fetched for each read. Every decode runs on a blocking thread, at most one per
//! core at a time across all queries.

use crate::cache::ByteCache;
use crate::error::QueryError;
use crate::plan::BlockRef;
use block::{BlockReader, Chunks, SeriesIndex, Symbols, TableKind, TableMeta};
use std::ops::Range;
use std::sync::Arc;
use storage::ObjectStore;
use tokio::sync::Semaphore;
use ulid::Ulid;

/// The metadata cache's size when none is configured: what suits a laptop.
pub const DEFAULT_CACHE_BYTES: usize = 128 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum MetaKey {
    Reader(Ulid),
    Series(Ulid, u32),
    Symbols(Ulid, u32),
    Table(Ulid, u32, TableKind),
}

#[derive(Debug)]
enum Meta {
    Reader(Arc<BlockReader>),
    Series(Arc<SeriesIndex>),
    Symbols(Arc<Symbols>),
    Table(Arc<TableMeta>),
}

/// Object storage as the query engine reads it.
#[derive(Debug)]
pub struct DataAccess {
    store: Arc<dyn ObjectStore>,
    meta: ByteCache<MetaKey, Meta>,
    cpu: Arc<Semaphore>,
}

impl DataAccess {
    /// Reads from `store`, caching up to `cache_bytes` of metadata.
    pub fn new(store: Arc<dyn ObjectStore>, cache_bytes: usize) -> DataAccess {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        DataAccess {
            store,
            meta: ByteCache::new(cache_bytes),
            cpu: Arc::new(Semaphore::new(cores)),
        }
    }

    /// Runs CPU work (decoding, merging) on a blocking thread, once a core is free.
    pub async fn cpu<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, QueryError> {
        let _permit = Arc::clone(&self.cpu)
            .acquire_owned()
            .await
            .map_err(|_| QueryError::Canceled)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| QueryError::Internal(format!("a query task failed: {e}")))
    }

    /// (bytes, entries, hits, misses) of the metadata cache.
    pub fn cache_usage(&self) -> (usize, usize, u64, u64) {
        self.meta.usage()
    }

    /// The open reader (footer) of a block.
    pub async fn reader(&self, block: &BlockRef) -> Result<Arc<BlockReader>, QueryError> {
        let key = MetaKey::Reader(block.id);
        if let Some(found) = self.meta.get(&key)
            && let Meta::Reader(reader) = &*found
        {
            return Ok(Arc::clone(reader));
        }
        let reader = BlockReader::open_sized(Arc::clone(&self.store), block.path(), block.size)
            .await
            .map_err(|e| QueryError::block(block.id, e))?;
        let reader = Arc::new(reader);
        let bytes = reader.memory_size();
        self.meta
            .insert(key, Arc::new(Meta::Reader(Arc::clone(&reader))), bytes);
        Ok(reader)
    }

    /// A dataset's series index.
    pub async fn series_index(
        &self,
        block: &BlockRef,
        dataset: u32,
    ) -> Result<Arc<SeriesIndex>, QueryError> {
        let key = MetaKey::Series(block.id, dataset);
        if let Some(found) = self.meta.get(&key)
            && let Meta::Series(index) = &*found
        {
            return Ok(Arc::clone(index));
        }
        let reader = self.reader(block).await?;
        let bytes = reader
            .fetch_series_index(dataset as usize)
            .await
            .map_err(|e| QueryError::block(block.id, e))?;
        let id = block.id;
        let index = self
            .cpu(move || SeriesIndex::decode_section(&bytes, dataset as usize))
            .await?
            .map_err(|e| QueryError::block(id, e))?;
        let index = Arc::new(index);
        let size = index.memory_size();
        self.meta
            .insert(key, Arc::new(Meta::Series(Arc::clone(&index))), size);
        Ok(index)
    }

    /// A dataset's symbols.
    pub async fn symbols(
        &self,
        block: &BlockRef,
        dataset: u32,
    ) -> Result<Arc<Symbols>, QueryError> {
        let key = MetaKey::Symbols(block.id, dataset);
        if let Some(found) = self.meta.get(&key)
            && let Meta::Symbols(symbols) = &*found
        {
            return Ok(Arc::clone(symbols));
        }
        let reader = self.reader(block).await?;
        let bytes = reader
            .fetch_symbols(dataset as usize)
            .await
            .map_err(|e| QueryError::block(block.id, e))?;
        let id = block.id;
        let symbols = self
            .cpu(move || Symbols::decode_section(&bytes, dataset as usize))
            .await?
            .map_err(|e| QueryError::block(id, e))?;
        let symbols = Arc::new(symbols);
        let size = symbols.memory_size();
        self.meta
            .insert(key, Arc::new(Meta::Symbols(Arc::clone(&symbols))), size);
        Ok(symbols)
    }

    /// The Parquet metadata of one of a dataset's tables.
    pub async fn table(
        &self,
        block: &BlockRef,
        dataset: u32,
        table: TableKind,
    ) -> Result<Arc<TableMeta>, QueryError> {
        let key = MetaKey::Table(block.id, dataset, table);
        if let Some(found) = self.meta.get(&key)
            && let Meta::Table(meta) = &*found
        {
            return Ok(Arc::clone(meta));
        }
        let reader = self.reader(block).await?;
        let tail = reader
            .fetch_table_footer(dataset as usize, table)
            .await
            .map_err(|e| QueryError::block(block.id, e))?;
        let id = block.id;
        let rollup = matches!(table, TableKind::Rollup(_));
        let meta = self
            .cpu(move || TableMeta::decode(&tail, rollup, dataset as usize))
            .await?
            .map_err(|e| QueryError::block(id, e))?;
        let meta = Arc::new(meta);
        let size = meta.memory_size();
        self.meta
            .insert(key, Arc::new(Meta::Table(Arc::clone(&meta))), size);
        Ok(meta)
    }

    /// The bytes of `ranges` of one of a dataset's tables.
    pub async fn chunks(
        &self,
        block: &BlockRef,
        dataset: u32,
        table: TableKind,
        ranges: &[Range<u64>],
    ) -> Result<Chunks, QueryError> {
        let reader = self.reader(block).await?;
        reader
            .fetch_chunks(dataset as usize, table, ranges)
            .await
            .map_err(|e| QueryError::block(block.id, e))
    }
}
