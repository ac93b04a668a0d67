//! A dataset's tables, in Parquet: the **profiles** table (one row per profile of one series:
//! series id, time, total, the (stack id, value, span id) lists and, from format version 2, the
//! profile's id) and its **rollups** (one row per (series, time bucket): the summed value of
//! every stack, the number of profiles and their total).
//!
//! Profiles are sorted by (hour, series, time) and cut into row groups of [`ROW_GROUP_ROWS`],
//! so a query of a short range reads the row groups of its hours, and every row group's
//! statistics (series id and time minimum and maximum) let a reader skip the rest. Readers
//! fetch only the column chunks they decode: a time series never reads the stack lists.

use crate::BlockError;
use crate::footer::{Section, TableChecksums, checksum};
use arrow_array::builder::{Int64Builder, ListBuilder, UInt32Builder, UInt64Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, Int64Array, ListArray, RecordBatch, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowPredicateFn, ArrowReaderMetadata, ParquetRecordBatchReaderBuilder, RowFilter,
};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnPath;
use std::ops::Range;
use std::sync::Arc;

/// Rows per Parquet row group: small enough that an hour of a service's pods is a few row
/// groups, large enough that a day's table has few of them.
pub const ROW_GROUP_ROWS: usize = 4096;

/// Width of the time slices the profiles table is sorted by first (one hour).
pub const SORT_SLICE_NANOS: i64 = 3_600_000_000_000;

/// A profile's id: a UUID's 16 bytes (all zero when it has none, as in version 1 blocks).
pub type ProfileId = [u8; 16];

/// One stored profile: the values of one series and profile type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRow {
    pub series_id: u32,
    pub time_nanos: i64,
    pub total: i64,
    pub stack_ids: Vec<u32>,
    pub values: Vec<i64>,
    /// Span id of each (stack, value) entry; 0 for none.
    pub span_ids: Vec<u64>,
    pub profile_id: ProfileId,
}

impl ProfileRow {
    /// The sort key of the profiles table.
    pub fn sort_key(&self) -> (i64, u32, i64) {
        (
            self.time_nanos.div_euclid(SORT_SLICE_NANOS),
            self.series_id,
            self.time_nanos,
        )
    }
}

/// One (series, bucket) of a rollup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RollupRow {
    pub series_id: u32,
    /// Start of the bucket (a multiple of the resolution since the epoch).
    pub bucket_nanos: i64,
    /// Profiles summed into it.
    pub profiles: u64,
    pub total: i64,
    /// Distinct stacks, ascending, with their summed values.
    pub stack_ids: Vec<u32>,
    pub values: Vec<i64>,
}

/// The columns of a table, in order. The first three are in both kinds of table.
const SERIES: &str = "series_id";
const TIME: &str = "time_nanos";
const TOTAL: &str = "total";
const STACKS: &str = "stack_ids";
const VALUES: &str = "values";
const SPANS: &str = "span_ids";
/// A profile id's first and last 8 bytes (big-endian), as two integer columns: random bytes gain
/// nothing from a dictionary or a binary column, and integers decode on Parquet's plainest path.
const PROFILE_ID_HIGH: &str = "profile_id_high";
const PROFILE_ID_LOW: &str = "profile_id_low";
const PROFILES: &str = "profiles";

fn list_field(name: &str, item: DataType) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", item, true))),
        false,
    )
}

fn profiles_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new(SERIES, DataType::UInt32, false),
        Field::new(TIME, DataType::Int64, false),
        Field::new(TOTAL, DataType::Int64, false),
        list_field(STACKS, DataType::UInt32),
        list_field(VALUES, DataType::Int64),
        list_field(SPANS, DataType::UInt64),
        Field::new(PROFILE_ID_HIGH, DataType::UInt64, false),
        Field::new(PROFILE_ID_LOW, DataType::UInt64, false),
    ]))
}

fn rollup_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new(SERIES, DataType::UInt32, false),
        Field::new(TIME, DataType::Int64, false),
        Field::new(TOTAL, DataType::Int64, false),
        list_field(STACKS, DataType::UInt32),
        list_field(VALUES, DataType::Int64),
        Field::new(PROFILES, DataType::UInt64, false),
    ]))
}

/// The Parquet column of a list column's items.
fn list_item(name: &str) -> ColumnPath {
    ColumnPath::new(vec![name.to_owned(), "list".to_owned(), "item".to_owned()])
}

/// zstd where the bytes are (the stack id and value lists); the per-row columns and the span
/// ids (mostly 0, dictionary-encoded to runs) are small, and every compressed column costs a
/// zstd context per row group: more than the column itself costs when a segment holds a few
/// profiles per dataset.
fn properties(zstd_level: i32) -> Result<WriterProperties, BlockError> {
    let zstd = Compression::ZSTD(ZstdLevel::try_new(zstd_level)?);
    Ok(WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_column_compression(list_item(STACKS), zstd)
        .set_column_compression(list_item(VALUES), zstd)
        .set_column_dictionary_enabled(ColumnPath::from(PROFILE_ID_HIGH), false)
        .set_column_dictionary_enabled(ColumnPath::from(PROFILE_ID_LOW), false)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build())
}

fn u32_list() -> ListBuilder<UInt32Builder> {
    ListBuilder::new(UInt32Builder::new()).with_field(Field::new("item", DataType::UInt32, true))
}

fn i64_list() -> ListBuilder<Int64Builder> {
    ListBuilder::new(Int64Builder::new()).with_field(Field::new("item", DataType::Int64, true))
}

/// Encodes profile rows (already in [`ProfileRow::sort_key`] order) as a Parquet file.
pub(crate) fn write_profiles(rows: &[ProfileRow], zstd_level: i32) -> Result<Vec<u8>, BlockError> {
    let schema = profiles_schema();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema.clone(), Some(properties(zstd_level)?))?;
    for chunk in rows.chunks(ROW_GROUP_ROWS) {
        let mut series = UInt32Builder::with_capacity(chunk.len());
        let mut times = Int64Builder::with_capacity(chunk.len());
        let mut totals = Int64Builder::with_capacity(chunk.len());
        let mut stacks = u32_list();
        let mut values = i64_list();
        let mut spans = ListBuilder::new(UInt64Builder::new()).with_field(Field::new(
            "item",
            DataType::UInt64,
            true,
        ));
        let mut ids_high = UInt64Builder::with_capacity(chunk.len());
        let mut ids_low = UInt64Builder::with_capacity(chunk.len());
        for row in chunk {
            series.append_value(row.series_id);
            times.append_value(row.time_nanos);
            totals.append_value(row.total);
            stacks.values().append_slice(&row.stack_ids);
            stacks.append(true);
            values.values().append_slice(&row.values);
            values.append(true);
            spans.values().append_slice(&row.span_ids);
            spans.append(true);
            let (high, low) = row.profile_id.split_at(8);
            ids_high.append_value(u64::from_be_bytes(high.try_into().unwrap_or_default()));
            ids_low.append_value(u64::from_be_bytes(low.try_into().unwrap_or_default()));
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(series.finish()),
            Arc::new(times.finish()),
            Arc::new(totals.finish()),
            Arc::new(stacks.finish()),
            Arc::new(values.finish()),
            Arc::new(spans.finish()),
            Arc::new(ids_high.finish()),
            Arc::new(ids_low.finish()),
        ];
        writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
    }
    writer.close()?;
    Ok(out)
}

/// Encodes rollup rows (sorted by series, bucket) as a Parquet file.
pub(crate) fn write_rollup(rows: &[RollupRow], zstd_level: i32) -> Result<Vec<u8>, BlockError> {
    let schema = rollup_schema();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema.clone(), Some(properties(zstd_level)?))?;
    for chunk in rows.chunks(ROW_GROUP_ROWS) {
        let mut series = UInt32Builder::with_capacity(chunk.len());
        let mut times = Int64Builder::with_capacity(chunk.len());
        let mut totals = Int64Builder::with_capacity(chunk.len());
        let mut stacks = u32_list();
        let mut values = i64_list();
        let mut profiles = UInt64Builder::with_capacity(chunk.len());
        for row in chunk {
            series.append_value(row.series_id);
            times.append_value(row.bucket_nanos);
            totals.append_value(row.total);
            stacks.values().append_slice(&row.stack_ids);
            stacks.append(true);
            values.values().append_slice(&row.values);
            values.append(true);
            profiles.append_value(row.profiles);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(series.finish()),
            Arc::new(times.finish()),
            Arc::new(totals.finish()),
            Arc::new(stacks.finish()),
            Arc::new(values.finish()),
            Arc::new(profiles.finish()),
        ];
        writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
    }
    writer.close()?;
    Ok(out)
}

/// The checksums of a Parquet table just written by [`write_profiles`] or [`write_rollup`]: of
/// its footer and of each of its column chunks.
pub(crate) fn checksums(table: &[u8]) -> Result<TableChecksums, BlockError> {
    let unwritable = |what: &str| {
        BlockError::Parquet(parquet::errors::ParquetError::General(format!(
            "the table just written has {what}"
        )))
    };
    let footer_len = TableMeta::footer_len(table).ok_or_else(|| unwritable("no footer"))? + 8;
    let footer_start = table
        .len()
        .checked_sub(footer_len)
        .ok_or_else(|| unwritable("a footer longer than itself"))?;
    let metadata = ParquetMetaDataReader::decode_metadata(&table[footer_start..table.len() - 8])?;
    let mut chunks = Vec::new();
    for group in metadata.row_groups() {
        for column in group.columns() {
            let (offset, length) = column.byte_range();
            let bytes = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(offset.saturating_add(length)).ok())
                .and_then(|(from, to)| table.get(from..to))
                .ok_or_else(|| unwritable("a column chunk out of its range"))?;
            chunks.push(Section {
                offset,
                length,
                crc32: checksum(bytes),
            });
        }
    }
    chunks.sort_by_key(|c| c.offset);
    Ok(TableChecksums {
        footer: Some(Section {
            offset: footer_start as u64,
            length: footer_len as u64,
            crc32: checksum(&table[footer_start..]),
        }),
        chunks,
    })
}

/// Which columns a read decodes beyond the series id, time and total, which every read does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Columns {
    /// The stack id and value lists (flame graphs, pprof, a call-site filter).
    pub stacks: bool,
    /// The span id list (a span selector).
    pub spans: bool,
    /// The profile id (exemplars, a profile id selector).
    pub profile_ids: bool,
}

/// Which rows a read keeps: those of the wanted series (by id) in a time range (ns, both
/// ends included; a rollup's time is its bucket's start).
#[derive(Debug, Clone)]
pub struct RowFilterSpec {
    /// `series[id]`: whether series `id` is wanted.
    pub series: Arc<Vec<bool>>,
    pub time_nanos: (i64, i64),
    /// Profiles skipped by the first 8 bytes of their id (sorted): the copies of write
    /// requests a segment holds twice (`model::write_request`). Tables without profile ids
    /// (rollups, version 1) have none to skip.
    pub skip_profiles: Arc<Vec<u64>>,
}

/// What a row group's statistics say, for pruning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowGroupInfo {
    pub rows: u64,
    pub min_series: u32,
    pub max_series: u32,
    pub min_time_nanos: i64,
    pub max_time_nanos: i64,
}

/// The metadata of one table: its Parquet footer, read once and kept (tables never change).
#[derive(Debug, Clone)]
pub struct TableMeta {
    metadata: Arc<ParquetMetaData>,
    arrow: ArrowReaderMetadata,
    /// Whether it is a rollup (rows are buckets with a profile count).
    rollup: bool,
    row_groups: Vec<RowGroupInfo>,
    /// Positions of the named columns among the Parquet leaves, where present.
    leaves: Leaves,
}

#[derive(Debug, Clone, Copy, Default)]
struct Leaves {
    stacks: Option<usize>,
    values: Option<usize>,
    spans: Option<usize>,
    profile_id: Option<(usize, usize)>,
    profiles: Option<usize>,
}

fn i32_range(stats: Option<&Statistics>) -> Option<(u32, u32)> {
    match stats? {
        Statistics::Int32(s) => Some((*s.min_opt()? as u32, *s.max_opt()? as u32)),
        _ => None,
    }
}

fn i64_range(stats: Option<&Statistics>) -> Option<(i64, i64)> {
    match stats? {
        Statistics::Int64(s) => Some((*s.min_opt()?, *s.max_opt()?)),
        _ => None,
    }
}

impl TableMeta {
    /// Reads a table's footer from the last bytes of its section (`tail`, which must hold the
    /// whole footer, as `BlockReader::fetch_table_footer` fetches it).
    pub fn decode(tail: &[u8], rollup: bool, dataset: usize) -> Result<TableMeta, BlockError> {
        let corrupt = |reason: String| BlockError::Corrupt {
            dataset,
            section: if rollup { "rollup" } else { "profiles" },
            reason,
        };
        let footer_len =
            Self::footer_len(tail).ok_or_else(|| corrupt("no Parquet footer".into()))?;
        let start = tail
            .len()
            .checked_sub(footer_len + 8)
            .ok_or_else(|| corrupt("Parquet footer past the section".into()))?;
        let metadata = ParquetMetaDataReader::decode_metadata(&tail[start..tail.len() - 8])?;
        // parquet's readers panic on a column chunk with a negative offset or size (they
        // assert it), which a corrupt footer can hold: refuse such a footer here.
        for group in metadata.row_groups() {
            for column in group.columns() {
                let start = column
                    .dictionary_page_offset()
                    .unwrap_or_else(|| column.data_page_offset());
                if start < 0 || column.compressed_size() < 0 {
                    return Err(corrupt(
                        "a column chunk with a negative offset or size".into(),
                    ));
                }
            }
        }
        let metadata = Arc::new(metadata);
        let arrow = ArrowReaderMetadata::try_new(Arc::clone(&metadata), Default::default())?;
        let schema = metadata.file_metadata().schema_descr();
        let leaf = |name: &str| {
            (0..schema.num_columns()).find(|&i| schema.column(i).path().parts()[0] == name)
        };
        let leaves = Leaves {
            stacks: leaf(STACKS),
            values: leaf(VALUES),
            spans: leaf(SPANS),
            profile_id: leaf(PROFILE_ID_HIGH).zip(leaf(PROFILE_ID_LOW)),
            profiles: leaf(PROFILES),
        };
        let (series_leaf, time_leaf, total_leaf) = (leaf(SERIES), leaf(TIME), leaf(TOTAL));
        if [
            series_leaf,
            time_leaf,
            total_leaf,
            leaves.stacks,
            leaves.values,
        ]
        .iter()
        .any(Option::is_none)
            || (rollup && leaves.profiles.is_none())
            || (!rollup && leaves.spans.is_none())
        {
            return Err(corrupt("missing columns".into()));
        }
        let (series_leaf, time_leaf) = (series_leaf.unwrap_or(0), time_leaf.unwrap_or(1));
        let mut row_groups = Vec::with_capacity(metadata.num_row_groups());
        for group in metadata.row_groups() {
            let series = i32_range(group.column(series_leaf).statistics());
            let time = i64_range(group.column(time_leaf).statistics());
            // A row group without statistics cannot be pruned: it covers everything.
            let (min_series, max_series) = series.unwrap_or((0, u32::MAX));
            let (min_time_nanos, max_time_nanos) = time.unwrap_or((i64::MIN, i64::MAX));
            row_groups.push(RowGroupInfo {
                rows: u64::try_from(group.num_rows()).unwrap_or(0),
                min_series,
                max_series,
                min_time_nanos,
                max_time_nanos,
            });
        }
        Ok(TableMeta {
            metadata,
            arrow,
            rollup,
            row_groups,
            leaves,
        })
    }

    /// The Parquet footer's length, from a section's last 8 bytes.
    pub(crate) fn footer_len(tail: &[u8]) -> Option<usize> {
        let end = tail.len().checked_sub(8)?;
        if &tail[end + 4..] != b"PAR1" {
            return None;
        }
        let len = u32::from_le_bytes(tail[end..end + 4].try_into().ok()?);
        Some(len as usize)
    }

    /// About how many bytes it holds in memory (for caches bounded in bytes).
    pub fn memory_size(&self) -> usize {
        // The Arrow reader metadata shares the Parquet metadata; the schema is small.
        self.metadata.memory_size() + self.row_groups.len() * size_of::<RowGroupInfo>() + 1024
    }

    pub fn is_rollup(&self) -> bool {
        self.rollup
    }

    /// Whether the profiles carry ids (format version 2).
    pub fn has_profile_ids(&self) -> bool {
        self.leaves.profile_id.is_some()
    }

    pub fn row_groups(&self) -> &[RowGroupInfo] {
        &self.row_groups
    }

    /// The Parquet leaf columns a read of `columns` decodes.
    fn leaf_columns(&self, columns: Columns) -> Vec<usize> {
        let mut out = vec![0, 1, 2];
        if columns.stacks {
            out.extend(self.leaves.stacks);
            out.extend(self.leaves.values);
        }
        if columns.spans && !self.rollup {
            out.extend(self.leaves.spans);
        }
        if columns.profile_ids
            && let Some((high, low)) = self.leaves.profile_id
        {
            out.extend([high, low]);
        }
        out.extend(self.leaves.profiles);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Byte ranges (within the table's section) of the column chunks a read of `row_groups`
    /// and `columns` needs.
    pub fn chunk_ranges(&self, row_groups: &[usize], columns: Columns) -> Vec<Range<u64>> {
        let leaves = self.leaf_columns(columns);
        let mut out = Vec::with_capacity(row_groups.len() * leaves.len());
        for &group in row_groups {
            let Some(meta) = self.metadata.row_groups().get(group) else {
                continue;
            };
            for &leaf in &leaves {
                // Offsets and sizes are checked non-negative when the footer is read.
                let (start, length) = meta.column(leaf).byte_range();
                out.push(start..start.saturating_add(length));
            }
        }
        out
    }

    /// Decodes `row_groups` (whose column chunks `chunks` holds) into batches of rows; with a
    /// `filter`, only the rows it keeps (their series and time decoded first, the other
    /// columns then only where a row is kept).
    pub fn decode_rows(
        &self,
        chunks: Chunks,
        row_groups: &[usize],
        columns: Columns,
        dataset: usize,
        filter: Option<&RowFilterSpec>,
    ) -> Result<Vec<RowBatch>, BlockError> {
        if row_groups.is_empty() {
            return Ok(Vec::new());
        }
        let schema = self.metadata.file_metadata().schema_descr();
        let mask = ProjectionMask::leaves(schema, self.leaf_columns(columns));
        let mut builder =
            ParquetRecordBatchReaderBuilder::new_with_metadata(chunks, self.arrow.clone())
                .with_row_groups(row_groups.to_vec())
                .with_projection(mask)
                .with_batch_size(ROW_GROUP_ROWS);
        if let Some(filter) = filter {
            let skip_leaf = self
                .leaves
                .profile_id
                .filter(|_| !filter.skip_profiles.is_empty())
                .map(|(high, _)| high);
            let keys = ProjectionMask::leaves(schema, [0, 1].into_iter().chain(skip_leaf));
            let (series, (lo, hi)) = (Arc::clone(&filter.series), filter.time_nanos);
            let skip = Arc::clone(&filter.skip_profiles);
            let predicate = ArrowPredicateFn::new(keys, move |batch: RecordBatch| {
                let ids = batch.column(0).as_primitive::<UInt32Type>();
                let times = batch.column(1).as_primitive::<Int64Type>();
                let prefixes = skip_leaf
                    .and(batch.columns().get(2))
                    .and_then(|c| c.as_primitive_opt::<UInt64Type>());
                let skipped = |row: usize| {
                    prefixes.is_some_and(|p| skip.binary_search(&p.value(row)).is_ok())
                };
                Ok(ids
                    .values()
                    .iter()
                    .zip(times.values())
                    .enumerate()
                    .map(|(row, (&id, &t))| {
                        Some(
                            t >= lo
                                && t <= hi
                                && series.get(id as usize).copied().unwrap_or(false)
                                && !skipped(row),
                        )
                    })
                    .collect::<arrow_array::BooleanArray>())
            });
            builder = builder.with_row_filter(RowFilter::new(vec![Box::new(predicate)]));
        }
        let reader = builder.build()?;
        let mut out = Vec::new();
        for batch in reader {
            out.push(RowBatch::new(&batch?, self.rollup, dataset)?);
        }
        Ok(out)
    }
}

/// The fetched column chunks of a table, by their offset in its section: what the Parquet
/// decoder reads from.
#[derive(Debug, Clone, Default)]
pub struct Chunks {
    /// (start, bytes), sorted by start.
    parts: Vec<(u64, Bytes)>,
    len: u64,
}

impl Chunks {
    /// Chunks fetched at `ranges` (same order as `parts`) of a section of `len` bytes.
    pub fn new(ranges: &[Range<u64>], parts: Vec<Bytes>, len: u64) -> Chunks {
        let mut parts: Vec<(u64, Bytes)> = ranges.iter().map(|r| r.start).zip(parts).collect();
        parts.sort_by_key(|(start, _)| *start);
        Chunks { parts, len }
    }

    fn find(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let at = self.parts.partition_point(|(s, _)| *s <= start);
        let found = at
            .checked_sub(1)
            .and_then(|i| self.parts.get(i))
            .and_then(|(s, bytes)| {
                let from = usize::try_from(start - s).ok()?;
                let to = from.checked_add(length)?;
                (to <= bytes.len()).then(|| bytes.slice(from..to))
            });
        found.ok_or_else(|| {
            parquet::errors::ParquetError::General(format!(
                "bytes {start}..+{length} of the table were not fetched"
            ))
        })
    }
}

impl Length for Chunks {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for Chunks {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use bytes::Buf;
        let at = self.parts.partition_point(|(s, _)| *s <= start);
        let (s, bytes) = at
            .checked_sub(1)
            .and_then(|i| self.parts.get(i))
            .ok_or_else(|| {
                parquet::errors::ParquetError::General(format!("offset {start} was not fetched"))
            })?;
        let from = usize::try_from(start - s)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        Ok(bytes.slice(from..).reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.find(start, length)
    }
}

/// Decoded rows of one table: typed views of the columns read.
#[derive(Debug, Clone)]
pub struct RowBatch {
    series: UInt32Array,
    times: Int64Array,
    totals: Int64Array,
    stacks: Option<ListArray>,
    values: Option<ListArray>,
    spans: Option<ListArray>,
    profile_ids: Option<(UInt64Array, UInt64Array)>,
    profiles: Option<UInt64Array>,
}

impl RowBatch {
    fn new(batch: &RecordBatch, rollup: bool, dataset: usize) -> Result<RowBatch, BlockError> {
        let corrupt = |reason: &str| BlockError::Corrupt {
            dataset,
            section: if rollup { "rollup" } else { "profiles" },
            reason: reason.to_owned(),
        };
        let column = |name: &str| batch.column_by_name(name);
        let series = column(SERIES)
            .and_then(|c| c.as_primitive_opt::<UInt32Type>())
            .ok_or_else(|| corrupt(SERIES))?
            .clone();
        let times = column(TIME)
            .and_then(|c| c.as_primitive_opt::<Int64Type>())
            .ok_or_else(|| corrupt(TIME))?
            .clone();
        let totals = column(TOTAL)
            .and_then(|c| c.as_primitive_opt::<Int64Type>())
            .ok_or_else(|| corrupt(TOTAL))?
            .clone();
        let list = |name: &str| column(name).and_then(|c| c.as_list_opt::<i32>()).cloned();
        let stacks = list(STACKS);
        let values = list(VALUES);
        let spans = list(SPANS);
        if let (Some(stacks), Some(values)) = (&stacks, &values)
            && (stacks.value_offsets() != values.value_offsets()
                || stacks.values().as_primitive_opt::<UInt32Type>().is_none()
                || values.values().as_primitive_opt::<Int64Type>().is_none())
        {
            return Err(corrupt("stack and value lists differ"));
        }
        if let (Some(spans), Some(values)) = (&spans, &values)
            && (spans.value_offsets() != values.value_offsets()
                || spans.values().as_primitive_opt::<UInt64Type>().is_none())
        {
            return Err(corrupt("span and value lists differ"));
        }
        let id_part = |name: &str| {
            column(name)
                .and_then(|c| c.as_primitive_opt::<UInt64Type>())
                .cloned()
        };
        let profile_ids = id_part(PROFILE_ID_HIGH).zip(id_part(PROFILE_ID_LOW));
        let profiles = column(PROFILES)
            .and_then(|c| c.as_primitive_opt::<UInt64Type>())
            .cloned();
        if series.null_count() + times.null_count() + totals.null_count() > 0 {
            return Err(corrupt("null values"));
        }
        Ok(RowBatch {
            series,
            times,
            totals,
            stacks,
            values,
            spans,
            profile_ids,
            profiles,
        })
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    pub fn series_id(&self, row: usize) -> u32 {
        self.series.value(row)
    }

    /// The profile's time, or a rollup bucket's start.
    pub fn time_nanos(&self, row: usize) -> i64 {
        self.times.value(row)
    }

    /// The sum of the row's values.
    pub fn total(&self, row: usize) -> i64 {
        self.totals.value(row)
    }

    /// Profiles in the row: 1 for a profile, the bucket's count for a rollup.
    pub fn profiles(&self, row: usize) -> u64 {
        self.profiles.as_ref().map_or(1, |p| p.value(row))
    }

    fn range(list: &ListArray, row: usize) -> Range<usize> {
        let offsets = list.value_offsets();
        let start = usize::try_from(offsets[row]).unwrap_or(0);
        let end = usize::try_from(offsets[row + 1]).unwrap_or(start);
        start..end
    }

    /// The row's stack ids (empty when the stack columns were not read).
    pub fn stacks(&self, row: usize) -> &[u32] {
        self.stacks.as_ref().map_or(&[], |list| {
            let items = list.values().as_primitive::<UInt32Type>().values();
            items.get(Self::range(list, row)).unwrap_or(&[])
        })
    }

    /// The row's values, one per stack (empty when the stack columns were not read).
    pub fn values(&self, row: usize) -> &[i64] {
        self.values.as_ref().map_or(&[], |list| {
            let items = list.values().as_primitive::<Int64Type>().values();
            items.get(Self::range(list, row)).unwrap_or(&[])
        })
    }

    /// The row's span ids, one per stack (empty when not read, and in rollups).
    pub fn spans(&self, row: usize) -> &[u64] {
        self.spans.as_ref().map_or(&[], |list| {
            let items = list.values().as_primitive::<UInt64Type>().values();
            items.get(Self::range(list, row)).unwrap_or(&[])
        })
    }

    /// The profile's id, when the table has ids and they were read.
    pub fn profile_id(&self, row: usize) -> Option<ProfileId> {
        let (high, low) = self.profile_ids.as_ref()?;
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&high.value(row).to_be_bytes());
        id[8..].copy_from_slice(&low.value(row).to_be_bytes());
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    fn rows(n: u32) -> Vec<ProfileRow> {
        (0..n)
            .map(|i| ProfileRow {
                series_id: i % 10,
                time_nanos: i64::from(i) * 1_000_000_000,
                total: 60,
                stack_ids: vec![1, 2, 3],
                values: vec![10, 20, 30],
                span_ids: vec![0, 0, i.into()],
                profile_id: [i as u8; 16],
            })
            .collect()
    }

    fn meta_of(bytes: &[u8]) -> TableMeta {
        TableMeta::decode(bytes, false, 0).expect("footer")
    }

    #[test]
    fn only_the_stack_and_value_lists_are_compressed() {
        let bytes = Bytes::from(write_profiles(&rows(100), 1).expect("written"));
        let reader = SerializedFileReader::new(bytes).expect("parquet");
        let group = reader.metadata().row_group(0);
        let compression: Vec<(String, Compression)> = group
            .columns()
            .iter()
            .map(|c| (c.column_path().string(), c.compression()))
            .collect();
        let zstd = Compression::ZSTD(ZstdLevel::try_new(1).expect("level"));
        assert_eq!(
            compression,
            vec![
                ("series_id".to_owned(), Compression::UNCOMPRESSED),
                ("time_nanos".to_owned(), Compression::UNCOMPRESSED),
                ("total".to_owned(), Compression::UNCOMPRESSED),
                ("stack_ids.list.item".to_owned(), zstd),
                ("values.list.item".to_owned(), zstd),
                ("span_ids.list.item".to_owned(), Compression::UNCOMPRESSED),
                ("profile_id_high".to_owned(), Compression::UNCOMPRESSED),
                ("profile_id_low".to_owned(), Compression::UNCOMPRESSED),
            ]
        );
    }

    #[test]
    fn reads_fetch_only_the_chunks_of_their_row_groups_and_columns() {
        let all = rows(3 * ROW_GROUP_ROWS as u32);
        let bytes = Bytes::from(write_profiles(&all, 1).expect("written"));
        let meta = meta_of(&bytes);
        assert_eq!(meta.row_groups().len(), 3);
        let second = meta.row_groups()[1];
        assert_eq!(second.rows, ROW_GROUP_ROWS as u64);
        assert_eq!(second.min_time_nanos, ROW_GROUP_ROWS as i64 * 1_000_000_000);
        assert_eq!((second.min_series, second.max_series), (0, 9));
        // Totals only: three columns of one row group, nothing else fetched.
        let columns = Columns::default();
        let ranges = meta.chunk_ranges(&[1], columns);
        assert_eq!(ranges.len(), 3);
        let parts = ranges
            .iter()
            .map(|r| bytes.slice(r.start as usize..r.end as usize))
            .collect();
        let chunks = Chunks::new(&ranges, parts, bytes.len() as u64);
        let batches = meta
            .decode_rows(chunks, &[1], columns, 0, None)
            .expect("decoded");
        let read: usize = batches.iter().map(RowBatch::len).sum();
        assert_eq!(read, ROW_GROUP_ROWS);
        assert_eq!(batches[0].time_nanos(0), second.min_time_nanos);
        assert!(batches[0].stacks(0).is_empty());
        // Asking for columns that were not fetched is an error, not a panic.
        let chunks = Chunks::new(&ranges, ranges.iter().map(|_| Bytes::new()).collect(), 0);
        assert!(
            meta.decode_rows(
                chunks,
                &[1],
                Columns {
                    stacks: true,
                    ..columns
                },
                0,
                None,
            )
            .is_err()
        );
        // Everything of the last row group.
        let columns = Columns {
            stacks: true,
            spans: true,
            profile_ids: true,
        };
        let ranges = meta.chunk_ranges(&[2], columns);
        let parts = ranges
            .iter()
            .map(|r| bytes.slice(r.start as usize..r.end as usize))
            .collect();
        let batches = meta
            .decode_rows(
                Chunks::new(&ranges, parts, bytes.len() as u64),
                &[2],
                columns,
                0,
                None,
            )
            .expect("decoded");
        let last = &all[2 * ROW_GROUP_ROWS];
        assert_eq!(batches[0].stacks(0), &last.stack_ids[..]);
        assert_eq!(batches[0].values(0), &last.values[..]);
        assert_eq!(batches[0].spans(0), &last.span_ids[..]);
        assert_eq!(batches[0].profile_id(0), Some(last.profile_id));
        assert_eq!(batches[0].profiles(0), 1);
    }

    #[test]
    fn rollups_keep_their_counts() {
        let rows = vec![RollupRow {
            series_id: 3,
            bucket_nanos: 3_600_000_000_000,
            profiles: 360,
            total: 42,
            stack_ids: vec![1, 5],
            values: vec![40, 2],
        }];
        let bytes = Bytes::from(write_rollup(&rows, 3).expect("written"));
        let meta = TableMeta::decode(&bytes, true, 0).expect("footer");
        assert!(meta.is_rollup() && !meta.has_profile_ids());
        let columns = Columns {
            stacks: true,
            ..Columns::default()
        };
        let ranges = meta.chunk_ranges(&[0], columns);
        let parts = ranges
            .iter()
            .map(|r| bytes.slice(r.start as usize..r.end as usize))
            .collect();
        let batch = &meta
            .decode_rows(
                Chunks::new(&ranges, parts, bytes.len() as u64),
                &[0],
                columns,
                0,
                None,
            )
            .expect("decoded")[0];
        assert_eq!(
            (
                batch.series_id(0),
                batch.time_nanos(0),
                batch.profiles(0),
                batch.total(0)
            ),
            (3, 3_600_000_000_000, 360, 42)
        );
        assert_eq!(
            (batch.stacks(0), batch.values(0)),
            (&[1, 5][..], &[40, 2][..])
        );
    }
}
