//! Chunks: the self-contained units a recording is a sequence of. Each starts with a 68-byte
//! big-endian header (magic `FLR\0`, version, size, offsets of its last constant pool and of its
//! metadata, start time and tick rate, feature bits; we read the version, size, metadata offset
//! and the compressed-integers bit) and holds its own metadata and constant
//! pools, so chunks are read one at a time and memory follows the largest chunk, not the file.

use super::error::JfrError;
use std::io::Read;

pub(crate) const HEADER_LEN: usize = 68;
const MAGIC: &[u8; 4] = b"FLR\0";
const COMPRESSED_INTEGERS: i32 = 1;

/// The fields of a chunk header that reading needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkHeader {
    pub size: usize,
    pub metadata_offset: usize,
    pub compressed_integers: bool,
}

impl ChunkHeader {
    pub(crate) fn parse(bytes: &[u8]) -> Result<ChunkHeader, JfrError> {
        if bytes.len() < HEADER_LEN {
            if bytes.len() >= 4 && &bytes[..4] != MAGIC {
                return Err(JfrError::NotJfr);
            }
            return Err(JfrError::truncated(0, HEADER_LEN));
        }
        if &bytes[..4] != MAGIC {
            return Err(JfrError::NotJfr);
        }
        let u16_at = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        let i64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            i64::from_be_bytes(b)
        };
        let (major, minor) = (u16_at(4), u16_at(6));
        if !(1..=2).contains(&major) {
            return Err(JfrError::UnsupportedVersion { major, minor });
        }
        let size = i64_at(8);
        let metadata_offset = i64_at(24);
        let features = i32::from_be_bytes([bytes[64], bytes[65], bytes[66], bytes[67]]);
        let size = usize::try_from(size)
            .ok()
            .filter(|&s| s >= HEADER_LEN)
            .ok_or_else(|| JfrError::corrupt(format!("chunk size {size} is invalid")))?;
        let metadata_offset = usize::try_from(metadata_offset)
            .ok()
            .filter(|&m| (HEADER_LEN..size).contains(&m))
            .ok_or_else(|| {
                JfrError::corrupt(format!(
                    "metadata offset {metadata_offset} is outside the chunk of {size} bytes"
                ))
            })?;
        Ok(ChunkHeader {
            size,
            metadata_offset,
            // Version 1 recordings always compress integers.
            compressed_integers: major == 1 || features & COMPRESSED_INTEGERS != 0,
        })
    }
}

/// Reads a recording chunk by chunk from a byte stream into one reused buffer.
pub(crate) struct ChunkStream<R> {
    input: R,
    buf: Vec<u8>,
    max_chunk_bytes: usize,
    max_total_bytes: usize,
    total: usize,
    done: bool,
}

impl<R: Read> ChunkStream<R> {
    pub(crate) fn new(input: R, max_chunk_bytes: usize, max_total_bytes: usize) -> Self {
        ChunkStream {
            input,
            buf: Vec::new(),
            max_chunk_bytes,
            max_total_bytes,
            total: 0,
            done: false,
        }
    }

    /// The next chunk (header included, since offsets count from its start), or `None` at the
    /// end of the input.
    pub(crate) fn next_chunk(&mut self) -> Result<Option<(ChunkHeader, &[u8])>, JfrError> {
        if self.done {
            return Ok(None);
        }
        self.buf.clear();
        self.buf.resize(HEADER_LEN, 0);
        let got = read_full(&mut self.input, &mut self.buf)?;
        if got == 0 {
            self.done = true;
            return Ok(None);
        }
        self.buf.truncate(got);
        let header = ChunkHeader::parse(&self.buf)?;
        if header.size > self.max_chunk_bytes {
            return Err(JfrError::TooLarge(format!(
                "a chunk of {} bytes exceeds the limit of {} bytes",
                header.size, self.max_chunk_bytes
            )));
        }
        self.total = self.total.saturating_add(header.size);
        if self.total > self.max_total_bytes {
            return Err(JfrError::TooLarge(format!(
                "the recording exceeds the limit of {} bytes",
                self.max_total_bytes
            )));
        }
        self.buf.resize(header.size, 0);
        let got = read_full(&mut self.input, &mut self.buf[HEADER_LEN..])?;
        if got < header.size - HEADER_LEN {
            return Err(JfrError::truncated(
                HEADER_LEN + got,
                header.size - HEADER_LEN - got,
            ));
        }
        Ok(Some((header, &self.buf)))
    }
}

/// Fills `buf` as far as the input goes; the count read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> Result<usize, JfrError> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(JfrError::corrupt(format!("reading the recording: {e}"))),
        }
    }
    Ok(filled)
}
