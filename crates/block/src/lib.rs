//! The on-storage format of emberscope: one object per segment or compacted block.
//!
//! ```text
//! [dataset 0: series index | profiles (Parquet) | symbols] [dataset 1 …] … [footer] [trailer]
//! trailer (16 bytes): footer length u32 LE, footer CRC32 u32 LE, format version u16 LE, b"EMBSCP"
//! ```
//! A dataset holds the profiles of one (tenant, `service_name`): its **series index** (label
//! sets, with postings per label pair), its **profiles table** in Parquet (series id, time,
//! total, and the (stack id, value, span id) lists of each profile; sorted by series then
//! time), and its **symbols** (strings, mappings, functions, locations, and stacks as a trie
//! where a stack id is its leaf node). The footer lists the datasets with the byte range and
//! CRC32 of each section. Readers fetch the trailer and footer, then only the sections of the
//! datasets a query can match.
//!
//! Owns: [`BlockWriter`], [`BlockReader`], the format version. Does not own where objects live
//! (`storage`) or which exist (`metastore`).

mod footer;
mod profiles;
mod reader;
mod series;
mod symbols;
mod writer;

pub use footer::{DatasetInfo, FORMAT_VERSION, Section};
pub use reader::{BlockReader, DatasetContents, ProfilePoint, SelectQuery, Selection};
pub use series::SeriesIndex;
pub use symbols::Symbols;
pub use writer::{BlockWriter, DatasetSummary, EncodedBlock, span_id};

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
