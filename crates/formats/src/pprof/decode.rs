//! Decoding a pprof body into the generated protobuf types.

use super::proto::Profile;
use crate::compression::{DecompressError, decompress};
use flate2::Compression as Level;
use flate2::write::GzEncoder;
use prost::Message;
use std::io::Write;

/// The decompressed-size limit used where no tenant limit applies (the command line).
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 512 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PprofError {
    #[error("failed to decompress pprof: {0}")]
    Decompress(#[from] DecompressError),
    #[error("failed to parse pprof: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// Decodes a raw, gzip or zstd pprof body whose decompressed size is at most `limit` bytes.
pub fn decode(body: &[u8], limit: usize) -> Result<Profile, PprofError> {
    let bytes = decompress(body, limit)?;
    Ok(Profile::decode(bytes.as_ref())?)
}

/// Encodes a profile as gzip-compressed protobuf, the form pprof files usually take.
pub fn encode_gzip(profile: &Profile) -> Vec<u8> {
    let raw = profile.encode_to_vec();
    let mut encoder = GzEncoder::new(Vec::with_capacity(raw.len() / 4), Level::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(&raw);
    encoder.finish().unwrap_or_default()
}
