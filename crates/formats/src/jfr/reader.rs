//! One chunk, read: its metadata, its constant pools, then its events in file order, each
//! decoded only when the caller wants its type (the rest are skipped by their size prefix).

use super::chunk::{ChunkHeader, HEADER_LEN};
use super::cursor::Cursor;
use super::error::JfrError;
use super::metadata::{ClassDef, Metadata};
use super::pools::{PoolKinds, Pools};
use super::value::{Decoder, Value};

const METADATA_TYPE: i64 = 0;
const CHECKPOINT_TYPE: i64 = 1;

/// A chunk with its metadata and constant pools read.
pub(crate) struct Chunk<'a> {
    pub header: ChunkHeader,
    bytes: &'a [u8],
    pub metadata: Metadata,
    pub pools: Pools,
}

impl<'a> Chunk<'a> {
    pub(crate) fn read(header: ChunkHeader, bytes: &'a [u8]) -> Result<Chunk<'a>, JfrError> {
        let compressed = header.compressed_integers;
        let metadata = Metadata::read(&mut Cursor::at(bytes, header.metadata_offset, compressed)?)?;
        let mut chunk = Chunk {
            header,
            bytes,
            metadata,
            pools: Pools::default(),
        };
        let kinds = PoolKinds::new(&chunk.metadata);
        let decoder = Decoder {
            metadata: &chunk.metadata,
        };
        let mut pools = Pools::default();
        chunk.each_event(|kind, event| {
            if kind == CHECKPOINT_TYPE {
                pools.read_checkpoint(event, &decoder, &kinds)?;
            }
            Ok(())
        })?;
        chunk.pools = pools;
        Ok(chunk)
    }

    /// Calls `f` with each event's type id and a cursor over its payload (after the type id).
    fn each_event(
        &self,
        mut f: impl FnMut(i64, &mut Cursor<'a>) -> Result<(), JfrError>,
    ) -> Result<(), JfrError> {
        let compressed = self.header.compressed_integers;
        let mut cursor = Cursor::at(&self.bytes[..self.header.size], HEADER_LEN, compressed)?;
        while !cursor.is_empty() {
            let start = cursor.pos();
            let size = cursor.int()?;
            let header_len = cursor.pos() - start;
            let payload = usize::try_from(size)
                .ok()
                .and_then(|s| s.checked_sub(header_len))
                .filter(|&p| p > 0)
                .ok_or_else(|| {
                    JfrError::corrupt(format!("event size {size} at offset {start} is invalid"))
                })?;
            let mut event = cursor.split(payload)?;
            let kind = event.long()?;
            f(kind, &mut event)?;
        }
        Ok(())
    }

    /// Calls `f` with the class and decoded fields of every event whose type `wanted` accepts.
    pub(crate) fn events(
        &self,
        wanted: impl Fn(u64) -> bool,
        mut f: impl FnMut(u64, &ClassDef, &[Value]) -> Result<(), JfrError>,
    ) -> Result<(), JfrError> {
        let decoder = Decoder {
            metadata: &self.metadata,
        };
        let mut fields = Vec::new();
        self.each_event(|kind, event| {
            if kind == METADATA_TYPE || kind == CHECKPOINT_TYPE || !wanted(kind as u64) {
                return Ok(());
            }
            let class = decoder.class(kind as u64)?;
            decoder.object_into(event, class, &mut fields)?;
            f(kind as u64, class, &fields)
        })
    }
}
