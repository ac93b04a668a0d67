//! Decompression of request bodies, chosen by magic bytes (never by headers), with a limit on
//! the decompressed size so that a compression bomb is an error rather than an allocation.

use flate2::read::MultiGzDecoder;
use std::borrow::Cow;
use std::io::Read;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// How a body is compressed, as told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn sniff(bytes: &[u8]) -> Compression {
        if bytes.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if bytes.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    #[error("decompressed size exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("invalid {format} data: {source}")]
    Corrupt {
        format: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// The decompressed bytes of `body` (borrowed when it is not compressed). Uncompressed input
/// larger than `limit` is refused as well, so the limit bounds what callers decode.
pub fn decompress(body: &[u8], limit: usize) -> Result<Cow<'_, [u8]>, DecompressError> {
    if Compression::sniff(body) == Compression::None {
        if body.len() > limit {
            return Err(DecompressError::TooLarge { limit });
        }
        return Ok(Cow::Borrowed(body));
    }
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    decompress_into(body, limit, &mut out)?;
    Ok(Cow::Owned(out))
}

/// As [`decompress`], into a caller's buffer (cleared first) so that a loop over many bodies
/// reuses one allocation.
pub fn decompress_into(
    body: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecompressError> {
    out.clear();
    match Compression::sniff(body) {
        Compression::None => {
            if body.len() > limit {
                return Err(DecompressError::TooLarge { limit });
            }
            out.extend_from_slice(body);
            Ok(())
        }
        Compression::Gzip => read_limited_into(MultiGzDecoder::new(body), "gzip", limit, out),
        Compression::Zstd => {
            let corrupt = |source| DecompressError::Corrupt {
                format: "zstd",
                source,
            };
            let mut decoder = zstd::stream::read::Decoder::with_buffer(body).map_err(corrupt)?;
            // A frame may ask for a window of up to 128 MiB before producing a byte: allow no
            // more than the output limit needs, but at least the 8 MiB that common encoder
            // settings use.
            let window_log = (usize::BITS - limit.leading_zeros()).clamp(23, 27);
            decoder.window_log_max(window_log).map_err(corrupt)?;
            read_limited_into(decoder, "zstd", limit, out)
        }
    }
}

fn read_limited_into(
    reader: impl Read,
    format: &'static str,
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecompressError> {
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(out)
        .map_err(|source| DecompressError::Corrupt { format, source })?;
    if out.len() > limit {
        return Err(DecompressError::TooLarge { limit });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression as Level;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Level::default());
        encoder.write_all(data).expect("in-memory write");
        encoder.finish().expect("in-memory write")
    }

    #[test]
    fn sniffs_by_magic_bytes() {
        let data = b"hello profile".to_vec();
        assert_eq!(decompress(&data, 100).expect("raw").as_ref(), &data[..]);
        assert_eq!(
            decompress(&gzip(&data), 100).expect("gzip").as_ref(),
            &data[..]
        );
        let zstd = zstd::encode_all(&data[..], 3).expect("in-memory encode");
        assert_eq!(decompress(&zstd, 100).expect("zstd").as_ref(), &data[..]);
    }

    #[test]
    fn into_a_reused_buffer() {
        let mut buffer = b"old contents".to_vec();
        decompress_into(&gzip(b"new"), 100, &mut buffer).expect("gzip");
        assert_eq!(buffer, b"new");
        assert!(decompress_into(&gzip(&[0u8; 1000]), 100, &mut buffer).is_err());
    }

    #[test]
    fn bombs_are_refused() {
        let bomb = gzip(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 20_000);
        assert!(matches!(
            decompress(&bomb, 1 << 20),
            Err(DecompressError::TooLarge { limit }) if limit == 1 << 20
        ));
        let zbomb = zstd::encode_all(&vec![0u8; 10 << 20][..], 3).expect("in-memory encode");
        // A frame that asks for a 128 MiB window is refused before anything is allocated.
        let mut huge_window = zstd::stream::Encoder::new(Vec::new(), 1).expect("encoder");
        huge_window.window_log(27).expect("window log");
        huge_window.long_distance_matching(true).expect("ldm");
        huge_window
            .write_all(&vec![1u8; 1 << 20])
            .expect("in-memory write");
        let huge_window = huge_window.finish().expect("in-memory encode");
        assert!(matches!(
            decompress(&huge_window, 4 << 20),
            Err(DecompressError::Corrupt { format: "zstd", .. })
        ));
        assert!(matches!(
            decompress(&zbomb, 1 << 20),
            Err(DecompressError::TooLarge { .. })
        ));
        assert!(matches!(
            decompress(&[7u8; 11], 10),
            Err(DecompressError::TooLarge { .. })
        ));
    }

    #[test]
    fn corrupt_streams_are_errors() {
        let mut broken = gzip(b"some bytes that compress");
        broken.truncate(broken.len() - 6);
        assert!(matches!(
            decompress(&broken, 100),
            Err(DecompressError::Corrupt { format: "gzip", .. })
        ));
        assert!(decompress(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0], 100).is_err());
    }
}
