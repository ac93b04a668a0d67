//! Reading a block: the footer first, then only the sections, and of a table only the column
//! chunks, a reader asks for. Fetching is async (object storage); decoding is plain functions
//! (`SeriesIndex::decode_section`, `Symbols::decode_section`, `TableMeta::decode`,
//! `TableMeta::decode_rows`) so a caller can run it off the async runtime.

use crate::BlockError;
use crate::footer::{
    DatasetInfo, Footer, Section, TRAILER_LEN, TableChecksums, checksum, parse_trailer,
};
use crate::series::SeriesIndex;
use crate::symbols::Symbols;
use crate::table::{Chunks, Columns, ProfileRow, TableMeta};
use bytes::Bytes;
use prost::Message;
use std::ops::Range;
use std::sync::Arc;
use storage::object_store::ObjectStore;
use storage::{ObjectStoreExt, Path};

/// Largest decompressed protobuf section accepted (a corrupt size field is an error, not an
/// allocation).
const MAX_SECTION_BYTES: usize = 1 << 30;

pub(crate) fn decompress(
    bytes: &[u8],
    dataset: usize,
    section: &'static str,
) -> Result<Vec<u8>, BlockError> {
    let mut out = Vec::new();
    formats::compression::decompress_into(bytes, MAX_SECTION_BYTES, &mut out).map_err(|e| {
        BlockError::Corrupt {
            dataset,
            section,
            reason: e.to_string(),
        }
    })?;
    Ok(out)
}

/// How much of an object's (or a table's) tail is fetched first, hoping its footer fits in it.
const TAIL_FETCH: u64 = 64 * 1024;

#[derive(Debug, Clone)]
enum Source {
    Store(Arc<dyn ObjectStore>, Path),
    Bytes(Bytes),
}

impl Source {
    async fn range(&self, range: Range<u64>) -> Result<Bytes, BlockError> {
        match self {
            Source::Store(store, path) => Ok(store.get_range(path, range).await?),
            Source::Bytes(bytes) => slice(bytes, range),
        }
    }

    async fn ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, BlockError> {
        match self {
            Source::Store(store, path) => Ok(store.get_ranges(path, ranges).await?),
            Source::Bytes(bytes) => ranges.iter().map(|r| slice(bytes, r.clone())).collect(),
        }
    }
}

fn slice(bytes: &Bytes, range: Range<u64>) -> Result<Bytes, BlockError> {
    let (start, end) = (range.start as usize, range.end as usize);
    bytes
        .get(start..end)
        .map(|_| bytes.slice(start..end))
        .ok_or_else(|| BlockError::NotABlock(format!("range {start}..{end} past the end")))
}

/// One table of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    /// The profiles, one row each.
    Profiles,
    /// The rollup at this resolution (ms).
    Rollup(i64),
}

impl TableKind {
    fn name(self) -> &'static str {
        match self {
            TableKind::Profiles => "profiles",
            TableKind::Rollup(_) => "rollup",
        }
    }
}

/// An open block: its footer, and the means to fetch sections.
#[derive(Debug, Clone)]
pub struct BlockReader {
    source: Source,
    size: u64,
    version: u16,
    datasets: Vec<DatasetInfo>,
}

/// Everything one dataset holds, for compaction.
#[derive(Debug, Clone)]
pub struct DatasetContents {
    pub info: DatasetInfo,
    pub series: SeriesIndex,
    pub symbols: Symbols,
    pub(crate) rows: Vec<ProfileRow>,
}

impl DatasetContents {
    /// Number of profiles (rows).
    pub fn profiles(&self) -> usize {
        self.rows.len()
    }

    /// The profiles, as stored.
    pub fn rows(&self) -> &[ProfileRow] {
        &self.rows
    }

    /// Drops the profiles whose id starts with one of `prefixes` (sorted): the copies of
    /// write requests a segment holds twice (`model::write_request`).
    pub fn skip_profiles(&mut self, prefixes: &[u64]) {
        if !prefixes.is_empty() {
            self.rows.retain(|row| {
                prefixes
                    .binary_search(&model::write_request::prefix_of(&row.profile_id))
                    .is_err()
            });
        }
    }

    /// The same dataset (series and symbols) holding `rows` instead: what a data generator
    /// hands to [`crate::BlockWriter::add_dataset`] to write many variants of a few profiles
    /// through the compaction path. Rows must name this dataset's series and stacks.
    pub fn with_rows(&self, rows: Vec<ProfileRow>) -> DatasetContents {
        DatasetContents {
            info: self.info.clone(),
            series: self.series.clone(),
            symbols: self.symbols.clone(),
            rows,
        }
    }
}

impl BlockReader {
    /// Opens the block at `path`: asks its size, then one ranged read of its tail (two if the
    /// footer is large).
    pub async fn open(store: Arc<dyn ObjectStore>, path: Path) -> Result<BlockReader, BlockError> {
        let size = store.head(&path).await?.size;
        Self::open_sized(store, path, size).await
    }

    /// Opens the block at `path` whose size is known (the metastore records it): one ranged
    /// read of its tail (two if the footer is large).
    pub async fn open_sized(
        store: Arc<dyn ObjectStore>,
        path: Path,
        size: u64,
    ) -> Result<BlockReader, BlockError> {
        Self::with_source(Source::Store(store, path), size).await
    }

    /// A block held in memory (a freshly written one, or a test's).
    pub async fn from_bytes(bytes: Bytes) -> Result<BlockReader, BlockError> {
        let size = bytes.len() as u64;
        Self::with_source(Source::Bytes(bytes), size).await
    }

    async fn with_source(source: Source, size: u64) -> Result<BlockReader, BlockError> {
        if size < TRAILER_LEN as u64 {
            return Err(BlockError::NotABlock("shorter than its trailer".to_owned()));
        }
        let tail_start = size.saturating_sub(TAIL_FETCH);
        let tail = source.range(tail_start..size).await?;
        let (footer_len, footer_crc, version) = parse_trailer(&tail)?;
        let footer_start = size
            .checked_sub(TRAILER_LEN as u64 + u64::from(footer_len))
            .ok_or_else(|| BlockError::NotABlock("footer longer than the object".to_owned()))?;
        let footer_bytes = if footer_start >= tail_start {
            let from = (footer_start - tail_start) as usize;
            tail.slice(from..from + footer_len as usize)
        } else {
            source
                .range(footer_start..footer_start + u64::from(footer_len))
                .await?
        };
        if checksum(&footer_bytes) != footer_crc {
            return Err(BlockError::NotABlock("footer checksum mismatch".to_owned()));
        }
        let footer = Footer::decode(footer_bytes)?;
        let in_range = |s: &Section| {
            s.offset
                .checked_add(s.length)
                .is_some_and(|end| end <= footer_start)
        };
        for (index, dataset) in footer.datasets.iter().enumerate() {
            for (name, section) in [
                ("series", dataset.series),
                ("profiles", dataset.profiles),
                ("symbols", dataset.symbols),
            ] {
                if !section.as_ref().is_some_and(in_range) {
                    return Err(BlockError::Corrupt {
                        dataset: index,
                        section: name,
                        reason: "missing or out of the object's range".to_owned(),
                    });
                }
            }
            if !dataset
                .rollups
                .iter()
                .all(|r| r.resolution_ms > 0 && r.section.as_ref().is_some_and(in_range))
            {
                return Err(BlockError::Corrupt {
                    dataset: index,
                    section: "rollup",
                    reason: "missing, out of the object's range or of no resolution".to_owned(),
                });
            }
        }
        Ok(BlockReader {
            source,
            size,
            version,
            datasets: footer.datasets,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// About how many bytes the open reader holds in memory (its footer).
    pub fn memory_size(&self) -> usize {
        self.datasets
            .iter()
            .map(|d| {
                256 + d.tenant.len()
                    + d.service_name.len()
                    + d.profile_types.iter().map(|t| t.len() + 24).sum::<usize>()
                    + d.rollups.len() * 32
                    + [&d.profiles_checksums]
                        .into_iter()
                        .chain(d.rollups.iter().map(|r| &r.checksums))
                        .flatten()
                        .map(|c| 48 + c.chunks.len() * 24)
                        .sum::<usize>()
            })
            .sum::<usize>()
            + 128
    }

    /// The format version the block was written in.
    pub fn version(&self) -> u16 {
        self.version
    }

    pub fn datasets(&self) -> &[DatasetInfo] {
        &self.datasets
    }

    fn info(&self, dataset: usize) -> Result<&DatasetInfo, BlockError> {
        self.datasets
            .get(dataset)
            .ok_or_else(|| BlockError::NotABlock(format!("no dataset {dataset}")))
    }

    /// The section of one of `dataset`'s tables.
    pub fn table_section(&self, dataset: usize, table: TableKind) -> Result<Section, BlockError> {
        let info = self.info(dataset)?;
        let section = match table {
            TableKind::Profiles => info.profiles,
            TableKind::Rollup(resolution) => info
                .rollups
                .iter()
                .find(|r| r.resolution_ms == resolution)
                .and_then(|r| r.section),
        };
        section.ok_or_else(|| BlockError::Corrupt {
            dataset,
            section: table.name(),
            reason: "missing".to_owned(),
        })
    }

    /// A whole section, checked against its checksum.
    async fn section(
        &self,
        dataset: usize,
        name: &'static str,
        section: Option<Section>,
    ) -> Result<Bytes, BlockError> {
        let corrupt = |reason: &str| BlockError::Corrupt {
            dataset,
            section: name,
            reason: reason.to_owned(),
        };
        let section = section.ok_or_else(|| corrupt("missing"))?;
        let bytes = self
            .source
            .range(section.offset..section.offset + section.length)
            .await?;
        if checksum(&bytes) != section.crc32 {
            return Err(corrupt("checksum mismatch"));
        }
        Ok(bytes)
    }

    /// `dataset`'s series index section, to decode with [`SeriesIndex::decode_section`].
    pub async fn fetch_series_index(&self, dataset: usize) -> Result<Bytes, BlockError> {
        let section = self.info(dataset)?.series;
        self.section(dataset, "series", section).await
    }

    /// `dataset`'s symbols section, to decode with [`Symbols::decode_section`].
    pub async fn fetch_symbols(&self, dataset: usize) -> Result<Bytes, BlockError> {
        let section = self.info(dataset)?.symbols;
        self.section(dataset, "symbols", section).await
    }

    /// The checksums of the parts of one of `dataset`'s tables (`None` in blocks written
    /// before they existed).
    fn table_checksums(
        &self,
        dataset: usize,
        table: TableKind,
    ) -> Result<Option<&TableChecksums>, BlockError> {
        let info = self.info(dataset)?;
        Ok(match table {
            TableKind::Profiles => info.profiles_checksums.as_ref(),
            TableKind::Rollup(resolution) => info
                .rollups
                .iter()
                .find(|r| r.resolution_ms == resolution)
                .and_then(|r| r.checksums.as_ref()),
        })
    }

    /// The tail of one of `dataset`'s tables, holding its Parquet footer whole, to decode with
    /// [`TableMeta::decode`]. Checked against its checksum; a table without checksums (an
    /// older block) is read whole and checked against the section's.
    pub async fn fetch_table_footer(
        &self,
        dataset: usize,
        table: TableKind,
    ) -> Result<Bytes, BlockError> {
        let section = self.table_section(dataset, table)?;
        let corrupt = |reason: &str| BlockError::Corrupt {
            dataset,
            section: table.name(),
            reason: reason.to_owned(),
        };
        let Some(checksums) = self.table_checksums(dataset, table)? else {
            return self.section(dataset, table.name(), Some(section)).await;
        };
        let footer = checksums
            .footer
            .filter(|f| f.offset.checked_add(f.length) == Some(section.length))
            .ok_or_else(|| corrupt("its footer's checksum is missing or out of the table"))?;
        let start = section.offset + footer.offset;
        let tail = self.source.range(start..start + footer.length).await?;
        if checksum(&tail) != footer.crc32 {
            return Err(corrupt("footer checksum mismatch"));
        }
        Ok(tail)
    }

    /// The bytes of `ranges` (within one of `dataset`'s tables: column chunks, as
    /// [`TableMeta::chunk_ranges`] names them), for [`TableMeta::decode_rows`]. Each chunk is
    /// checked against its checksum; a table without checksums (an older block) is read whole
    /// and checked against the section's.
    pub async fn fetch_chunks(
        &self,
        dataset: usize,
        table: TableKind,
        ranges: &[Range<u64>],
    ) -> Result<Chunks, BlockError> {
        let section = self.table_section(dataset, table)?;
        let corrupt = |reason: String| BlockError::Corrupt {
            dataset,
            section: table.name(),
            reason,
        };
        if let Some(range) = ranges
            .iter()
            .find(|r| r.end > section.length || r.start > r.end)
        {
            return Err(corrupt(format!("column chunk {range:?} out of the table")));
        }
        let Some(checksums) = self.table_checksums(dataset, table)? else {
            let whole = self.section(dataset, table.name(), Some(section)).await?;
            let parts = ranges
                .iter()
                .map(|r| whole.slice(r.start as usize..r.end as usize))
                .collect();
            return Ok(Chunks::new(ranges, parts, section.length));
        };
        let mut expected = Vec::with_capacity(ranges.len());
        for range in ranges {
            let crc = checksums
                .find(range)
                .ok_or_else(|| corrupt(format!("bytes {range:?} are not a column chunk")))?;
            expected.push(crc);
        }
        let absolute: Vec<Range<u64>> = ranges
            .iter()
            .map(|r| section.offset + r.start..section.offset + r.end)
            .collect();
        let parts = self.source.ranges(&absolute).await?;
        for ((part, crc), range) in parts.iter().zip(&expected).zip(ranges) {
            if checksum(part) != *crc {
                return Err(corrupt(format!(
                    "column chunk {range:?}: checksum mismatch"
                )));
            }
        }
        Ok(Chunks::new(ranges, parts, section.length))
    }

    /// Reads dataset `index` whole (every profile with every column; not the rollups): fetches,
    /// then decodes on the calling thread. An async caller that must keep CPU work off its
    /// runtime fetches with [`BlockReader::fetch_dataset`] and decodes elsewhere.
    pub async fn read_dataset(&self, index: usize) -> Result<DatasetContents, BlockError> {
        self.fetch_dataset(index).await?.decode()
    }

    /// The sections of dataset `index` a whole read needs (series index, profiles, symbols),
    /// each checked against its checksum; [`FetchedDataset::decode`] makes them its contents.
    pub async fn fetch_dataset(&self, index: usize) -> Result<FetchedDataset, BlockError> {
        let info = self.info(index)?.clone();
        let series = self.fetch_series_index(index).await?;
        let profiles = self.section(index, "profiles", info.profiles).await?;
        let symbols = self.fetch_symbols(index).await?;
        Ok(FetchedDataset {
            index,
            info,
            series,
            profiles,
            symbols,
        })
    }
}

/// A dataset's sections as fetched, not yet decoded.
#[derive(Debug, Clone)]
pub struct FetchedDataset {
    index: usize,
    info: DatasetInfo,
    series: Bytes,
    profiles: Bytes,
    symbols: Bytes,
}

impl FetchedDataset {
    /// Decodes every profile (every column) and the dataset's series and symbols: CPU work.
    pub fn decode(self) -> Result<DatasetContents, BlockError> {
        let index = self.index;
        let series = SeriesIndex::decode_section(&self.series, index)?;
        let meta = TableMeta::decode(&self.profiles, false, index)?;
        let all_groups: Vec<usize> = (0..meta.row_groups().len()).collect();
        let columns = Columns {
            stacks: true,
            spans: true,
            profile_ids: true,
        };
        let whole = 0..self.profiles.len() as u64;
        let chunks = Chunks::new(std::slice::from_ref(&whole), vec![self.profiles], whole.end);
        let mut rows = Vec::with_capacity(self.info.profile_count as usize);
        for batch in meta.decode_rows(chunks, &all_groups, columns, index, None)? {
            for row in 0..batch.len() {
                rows.push(ProfileRow {
                    series_id: batch.series_id(row),
                    time_nanos: batch.time_nanos(row),
                    total: batch.total(row),
                    stack_ids: batch.stacks(row).to_vec(),
                    values: batch.values(row).to_vec(),
                    span_ids: batch.spans(row).to_vec(),
                    profile_id: batch.profile_id(row).unwrap_or_default(),
                });
            }
        }
        let symbols = Symbols::decode_section(&self.symbols, index)?;
        Ok(DatasetContents {
            info: self.info,
            series,
            symbols,
            rows,
        })
    }
}
