//! The on-storage format of emberscope: one object per segment or compacted block.
//!
//! ```text
//! [dataset 0: series index | profiles (Parquet) | symbols] [dataset 1 …] … [footer] [trailer]
//! trailer (16 bytes): footer length u32 LE, footer CRC32 u32 LE, format version u16 LE, b"EMBSCP"
//! ```
//! A dataset holds the profiles of one (tenant, `service_name`): its **series index** (label
//! sets, with postings per label pair), its **profiles table** in Parquet (series id, time,
//! total, the (stack id, value, span id) lists and the id of each profile; sorted by hour,
//! series and time, in row groups whose statistics let readers skip them), its **rollups**
//! (compacted blocks: the same stack values summed per series and hour, and per series and
//! day, in Parquet) and its **symbols** (strings, mappings, functions, locations, and stacks as
//! a trie where a stack id is its leaf node). The footer lists the datasets with the byte range
//! and CRC32 of each section, and of each table the CRC32 of its Parquet footer and of every
//! column chunk (written since version 2; tables without them are read whole). Readers fetch
//! the trailer and footer, then only the sections, and of a table only the column chunks, they
//! need, and check each part they fetch before decoding it. Version 1 blocks (no rollups, no profile ids,
//! rows sorted by series then time) stay readable.
//!
//! Owns: [`BlockWriter`], [`BlockReader`], the format and its version. Does not own where
//! objects live (`storage`), which exist (`metastore`), or what a query does with what it
//! reads (`query`).

mod footer;
mod reader;
mod series;
mod symbols;
mod table;
mod writer;

pub use footer::{DatasetInfo, FORMAT_VERSION, RollupSection, Section, TableChecksums};
pub use reader::{BlockReader, DatasetContents, FetchedDataset, TableKind};
pub use series::SeriesIndex;
pub use symbols::Symbols;
pub use table::{
    Chunks, Columns, ProfileId, ProfileRow, ROW_GROUP_ROWS, RowBatch, RowFilterSpec, RowGroupInfo,
    TableMeta,
};
pub use writer::{
    BlockWriter, DatasetSummary, EncodedBlock, ROLLUP_RESOLUTIONS_MS, span_id, span_id_string,
};

/// Why a block could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("object storage: {0}")]
    Storage(#[from] storage::object_store::Error),
    #[error("not an emberscope block: {0}")]
    NotABlock(String),
    #[error("block format version {0} is not supported (this build reads up to {FORMAT_VERSION})")]
    UnsupportedVersion(u16),
    #[error("block section {section} of dataset {dataset} is corrupt: {reason}")]
    Corrupt {
        dataset: usize,
        section: &'static str,
        reason: String,
    },
    #[error("protobuf: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}
