//! The footer, the trailer, and section checksums.

use crate::BlockError;

/// The newest format version this build writes and reads. Version 2 added pre-aggregated
/// rollups and a profile id column to the profiles table; version 1 blocks stay readable.
pub const FORMAT_VERSION: u16 = 2;
pub(crate) const MAGIC: &[u8; 6] = b"EMBSCP";
pub(crate) const TRAILER_LEN: usize = 16;

/// Byte range of one section inside the object, with its CRC32.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Section {
    #[prost(uint64, tag = "1")]
    pub offset: u64,
    #[prost(uint64, tag = "2")]
    pub length: u64,
    #[prost(uint32, tag = "3")]
    pub crc32: u32,
}

/// What the footer says of one dataset.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DatasetInfo {
    #[prost(string, tag = "1")]
    pub tenant: String,
    #[prost(string, tag = "2")]
    pub service_name: String,
    #[prost(int64, tag = "3")]
    pub min_time_nanos: i64,
    #[prost(int64, tag = "4")]
    pub max_time_nanos: i64,
    /// Profile type ids present, sorted.
    #[prost(string, repeated, tag = "5")]
    pub profile_types: Vec<String>,
    #[prost(message, optional, tag = "6")]
    pub series: Option<Section>,
    #[prost(message, optional, tag = "7")]
    pub profiles: Option<Section>,
    #[prost(message, optional, tag = "8")]
    pub symbols: Option<Section>,
    /// Number of profiles (rows) in the dataset.
    #[prost(uint64, tag = "9")]
    pub profile_count: u64,
    /// Pre-aggregated tables, finest resolution first (version 2; none in segments).
    #[prost(message, repeated, tag = "10")]
    pub rollups: Vec<RollupSection>,
    /// Checksums of the profiles table's parts (absent in blocks written before them).
    #[prost(message, optional, tag = "11")]
    pub profiles_checksums: Option<TableChecksums>,
}

/// A dataset's rollup table at one resolution: per (series, time bucket) the summed value of
/// every stack, the number of profiles and their total.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RollupSection {
    /// Bucket width; buckets are aligned to multiples of it since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub resolution_ms: i64,
    #[prost(message, optional, tag = "2")]
    pub section: Option<Section>,
    /// Checksums of the table's parts (absent in blocks written before them).
    #[prost(message, optional, tag = "3")]
    pub checksums: Option<TableChecksums>,
}

/// Checksums of a Parquet table's parts, so that a read of its footer alone or of a few of its
/// column chunks is checked as a whole section's read is: Parquet's own page checksums are
/// not written by the `parquet` crate, and its decoders panic on some corrupt pages. Blocks
/// written before these existed have none; their tables are then read whole and checked
/// against the section's checksum.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct TableChecksums {
    /// The Parquet footer (metadata, its length and magic): the table's last bytes.
    #[prost(message, optional, tag = "1")]
    pub footer: Option<Section>,
    /// Every column chunk, sorted by offset; offsets are within the table.
    #[prost(message, repeated, tag = "2")]
    pub chunks: Vec<Section>,
}

impl TableChecksums {
    /// The checksum recorded for exactly `range` (within the table), if any.
    pub(crate) fn find(&self, range: &std::ops::Range<u64>) -> Option<u32> {
        let at = self.chunks.partition_point(|c| c.offset < range.start);
        self.chunks
            .get(at)
            .filter(|c| {
                c.offset == range.start && Some(c.length) == range.end.checked_sub(range.start)
            })
            .map(|c| c.crc32)
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Footer {
    #[prost(message, repeated, tag = "1")]
    pub datasets: Vec<DatasetInfo>,
}

pub(crate) fn trailer(footer_len: u32, footer_crc: u32) -> [u8; TRAILER_LEN] {
    let mut out = [0u8; TRAILER_LEN];
    out[0..4].copy_from_slice(&footer_len.to_le_bytes());
    out[4..8].copy_from_slice(&footer_crc.to_le_bytes());
    out[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[10..16].copy_from_slice(MAGIC);
    out
}

/// (footer length, footer CRC32, format version) from the last 16 bytes of an object.
pub(crate) fn parse_trailer(bytes: &[u8]) -> Result<(u32, u32, u16), BlockError> {
    let Some(start) = bytes.len().checked_sub(TRAILER_LEN) else {
        return Err(BlockError::NotABlock("shorter than its trailer".to_owned()));
    };
    let t = &bytes[start..];
    if &t[10..16] != MAGIC {
        return Err(BlockError::NotABlock(
            "no magic bytes at the end".to_owned(),
        ));
    }
    let version = u16::from_le_bytes([t[8], t[9]]);
    if version == 0 || version > FORMAT_VERSION {
        return Err(BlockError::UnsupportedVersion(version));
    }
    let length = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
    let crc = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
    Ok((length, crc, version))
}

pub(crate) fn checksum(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}
