//! The write path after decoding: the segment writer, which turns acknowledged-pending writes
//! into one segment object per flush and acknowledges them only once that object is stored and
//! recorded in the metastore.
//!
//! Owns: [`SegmentWriter`] (per-shard head, flush every interval or at a size limit,
//! back-pressure when full, retries). Does not own decoding and validation (`formats`), the
//! object format (`block`), or the block index (`metastore`). Distribution across shards and
//! tenant limits arrive with the server.

mod segment_writer;

pub use segment_writer::{
    FLUSH_BUCKETS, FlushStats, IngestError, PendingWrite, SegmentWriter, SegmentWriterConfig,
    block_meta,
};
