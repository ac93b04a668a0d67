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
    // gzip's fast path sizes its own buffer; the streaming paths grow this one.
    let mut out = match Compression::sniff(body) {
        Compression::Gzip => Vec::new(),
        _ => Vec::with_capacity(expected_size(body).min(limit)),
    };
    decompress_into(body, limit, &mut out)?;
    Ok(Cow::Owned(out))
}

/// A guess of the decompressed size of `body`, so that the output grows (and is copied) rarely:
/// gzip's trailer states the size of its last member (modulo 4 GiB); that claim is the
/// sender's, so it is trusted only up to 32 times the body. Otherwise 4 times the body.
fn expected_size(body: &[u8]) -> usize {
    let fallback = body.len().saturating_mul(4);
    if Compression::sniff(body) != Compression::Gzip || body.len() < 18 {
        return fallback;
    }
    let trailer: [u8; 4] = body[body.len() - 4..].try_into().unwrap_or_default();
    let stated = u32::from_le_bytes(trailer) as usize;
    if stated == 0 {
        return fallback;
    }
    // One byte more than the data, so that reading to the end needs no second allocation.
    stated.saturating_add(1).min(body.len().saturating_mul(32))
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
        Compression::Gzip => {
            if gunzip_whole(body, limit, out) {
                return Ok(());
            }
            out.clear();
            out.reserve(expected_size(body).min(limit));
            read_limited_into(MultiGzDecoder::new(body), "gzip", limit, out)
        }
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

/// Largest ratio of stated output to body that the fast path trusts before inflating: real
/// profiles compress 3–20 times; a body claiming more (a bomb, or a lie) takes the streaming
/// path, which grows its buffer only as data actually comes out.
const MAX_TRUSTED_RATIO: usize = 64;

thread_local! {
    /// libdeflate's decompressor (its tables, about 10 KB), one per thread.
    static GUNZIP: std::cell::RefCell<libdeflater::Decompressor> =
        std::cell::RefCell::new(libdeflater::Decompressor::new());
}

/// The fast path for what nearly every client sends, one gzip member: libdeflate decompresses
/// it in one call into a buffer of the size the trailer states (about twice as fast as a
/// streaming inflate). Returns false, leaving `out` in any state, when the body may hold more
/// than one member (another gzip magic inside it: a second member must start with one, so a
/// chance occurrence only costs the slow path), when the stated size is over `limit` or more
/// than 64 times the body, or when libdeflate refuses the data: the streaming path then
/// decides, with its own errors. (libdeflate stops after the member; bytes after it would have
/// to end in the member's own size to get here, where the streaming path would refuse them.)
fn gunzip_whole(body: &[u8], limit: usize, out: &mut Vec<u8>) -> bool {
    const MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];
    if body.len() < 18 || memchr::memmem::find(&body[10..], &MAGIC).is_some() {
        return false;
    }
    let trailer: [u8; 4] = body[body.len() - 4..].try_into().unwrap_or_default();
    let stated = u32::from_le_bytes(trailer) as usize;
    if stated > limit || stated > body.len().saturating_mul(MAX_TRUSTED_RATIO) {
        return false;
    }
    out.clear();
    if out.capacity() < stated {
        // A fresh zeroed buffer: growing the old one would copy its capacity for nothing.
        *out = vec![0; stated];
    } else {
        out.resize(stated, 0);
    }
    GUNZIP.with(|decompressor| {
        let Ok(mut decompressor) = decompressor.try_borrow_mut() else {
            return false;
        };
        // libdeflate checks the CRC and that the output has exactly the stated size.
        decompressor
            .gzip_decompress(body, out)
            .is_ok_and(|written| written == stated)
    })
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
    fn gzip_trailers_size_the_output_within_reason() {
        let data: Vec<u8> = (0..5000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let body = gzip(&data);
        assert_eq!(expected_size(&body), (data.len() + 1).min(body.len() * 32));
        // A trailer that lies (4 GiB - 1) buys no more than 32 times the body, and the data
        // still comes out whole; a trailer of 0 falls back to 4 times the body.
        let mut lying = body.clone();
        let at = lying.len() - 4;
        lying[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(expected_size(&lying), lying.len() * 32);
        lying[at..].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(expected_size(&lying), lying.len() * 4);
        assert_eq!(expected_size(b"raw bytes"), 36);
        let out = decompress(&body, 1 << 20).expect("gzip");
        assert_eq!(out.as_ref(), data.as_slice());
    }

    #[test]
    fn one_member_takes_the_fast_path_and_every_other_body_the_stream() {
        let data: Vec<u8> = (0..20_000u32)
            .flat_map(|i| (i % 1000).to_le_bytes())
            .collect();
        let one = gzip(&data);
        let mut out = Vec::new();
        assert!(gunzip_whole(&one, 1 << 20, &mut out));
        assert_eq!(out, data);
        // Two members: the second one's magic sends the body to the streaming path, which
        // reads both.
        let mut two = one.clone();
        two.extend_from_slice(&gzip(b"tail"));
        assert!(!gunzip_whole(&two, 1 << 20, &mut out));
        decompress_into(&two, 1 << 20, &mut out).expect("two members");
        assert_eq!(out.len(), data.len() + 4);
        assert!(out.ends_with(b"tail"));
        // Over the limit, or a trailer claiming more than deflate can make of the body.
        assert!(!gunzip_whole(&one, data.len() - 1, &mut out));
        let mut lying = one.clone();
        let at = lying.len() - 4;
        lying[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(!gunzip_whole(&lying, usize::MAX, &mut out));
        // Data that compresses more than 64 times is streamed, and still comes out whole.
        let zeros = gzip(&[0u8; 100_000]);
        assert!(!gunzip_whole(&zeros, 1 << 20, &mut out));
        assert_eq!(decompress(&zeros, 1 << 20).expect("zeros").len(), 100_000);
        // A wrong size or a flipped byte is refused by libdeflate and then by the stream.
        lying[at..].copy_from_slice(&(data.len() as u32 + 1).to_le_bytes());
        assert!(!gunzip_whole(&lying, 1 << 20, &mut out));
        assert!(decompress(&lying, 1 << 20).is_err());
        let mut flipped = one.clone();
        flipped[40] ^= 0xff;
        assert!(!gunzip_whole(&flipped, 1 << 20, &mut out));
        assert!(decompress(&flipped, 1 << 20).is_err());
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
