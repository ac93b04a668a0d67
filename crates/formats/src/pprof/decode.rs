//! Decoding a pprof body into the generated protobuf types.

use super::proto::Profile;
use crate::compression::{DecompressError, decompress};
use prost::Message;

/// The decompressed-size limit used where no tenant limit applies (the command line).
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 512 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PprofError {
    #[error("failed to decompress pprof: {0}")]
    Decompress(#[from] DecompressError),
    #[error("failed to parse pprof: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("failed to parse pprof: {what} at byte {offset}")]
    Wire { what: &'static str, offset: usize },
    /// Pyroscope's message for a string table entry that is not UTF-8.
    #[error("invalid utf8 string hex: {hex}")]
    InvalidUtf8 { hex: String },
}

/// Only the string table of a profile, as bytes: read when decoding fails, to tell a string
/// that is not UTF-8 from other damage.
#[derive(Clone, PartialEq, prost::Message)]
struct RawStringTable {
    #[prost(bytes = "vec", repeated, tag = "6")]
    string_table: Vec<Vec<u8>>,
}

fn invalid_utf8_string(bytes: &[u8]) -> Option<PprofError> {
    let table = RawStringTable::decode(bytes).ok()?;
    let bad = table
        .string_table
        .iter()
        .find(|s| std::str::from_utf8(s).is_err())?;
    let hex = bad.iter().map(|b| format!("{b:02x}")).collect();
    Some(PprofError::InvalidUtf8 { hex })
}

/// Decodes a raw, gzip or zstd pprof body whose decompressed size is at most `limit` bytes.
pub fn decode(body: &[u8], limit: usize) -> Result<Profile, PprofError> {
    let bytes = decompress(body, limit)?;
    Profile::decode(bytes.as_ref())
        .map_err(|error| invalid_utf8_string(bytes.as_ref()).unwrap_or(PprofError::Decode(error)))
}

/// As [`decode`], through the hand-written [`super::ProfileView`] decoder (same acceptance,
/// several times faster, vectors allocated once at their size). Ingest itself keeps the view
/// (`prepare_view`); this is for callers that want an owned profile.
/// `comment`, `drop_frames`, `keep_frames` and `doc_url` are not kept.
pub fn decode_for_ingest(body: &[u8], limit: usize) -> Result<Profile, PprofError> {
    let bytes = decompress(body, limit)?;
    Ok(super::ProfileView::decode(bytes.as_ref())?.to_profile())
}

/// Encodes a profile as gzip-compressed protobuf, the form pprof files usually take: one
/// libdeflate call at level 1. Against zlib-rs's streaming level 1 it is about 20 % faster and
/// 20 % smaller on a 100-file heap merge, and its state (about 150 KB against 300 KB, all of
/// it fresh pages in a short-lived command) costs half as long to set up.
pub fn encode_gzip(profile: &Profile) -> Vec<u8> {
    let raw = profile.encode_to_vec();
    // Neither level can fail with libdeflate's own bound as room (an allocation failure aborts
    // in `Compressor::new`); should level 1 fail all the same, the profile is stored.
    gzip(&raw, 1).or_else(|| gzip(&raw, 0)).unwrap_or_default()
}

fn gzip(raw: &[u8], level: i32) -> Option<Vec<u8>> {
    let mut compressor =
        libdeflater::Compressor::new(libdeflater::CompressionLvl::new(level).ok()?);
    let mut out = vec![0; compressor.gzip_compress_bound(raw.len())];
    let written = compressor.gzip_compress(raw, &mut out).ok()?;
    out.truncate(written);
    Some(out)
}
