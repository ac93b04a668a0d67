//! A dataset's profiles table in Parquet: one row per profile of one series, sorted by series
//! then time; each row holds its (stack id, value, span id) lists.

use crate::BlockError;
use arrow_array::builder::{Int64Builder, ListBuilder, UInt32Builder, UInt64Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt32Type, UInt64Type};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use std::sync::Arc;

/// Rows per Parquet row group.
const ROW_GROUP_ROWS: usize = 8192;

/// One stored profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProfileRow {
    pub series_id: u32,
    pub time_nanos: i64,
    pub total: i64,
    pub stack_ids: Vec<u32>,
    pub values: Vec<i64>,
    /// Span id of each (stack, value) entry; 0 for none.
    pub span_ids: Vec<u64>,
}

fn list_field(name: &str, item: DataType) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", item, true))),
        false,
    )
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("series_id", DataType::UInt32, false),
        Field::new("time_nanos", DataType::Int64, false),
        Field::new("total", DataType::Int64, false),
        list_field("stack_ids", DataType::UInt32),
        list_field("values", DataType::Int64),
        list_field("span_ids", DataType::UInt64),
    ]))
}

/// The Parquet column of a list column's items.
fn list_item(name: &str) -> ColumnPath {
    ColumnPath::new(vec![name.to_owned(), "list".to_owned(), "item".to_owned()])
}

/// Encodes rows (already sorted by series, time) as a Parquet file.
pub(crate) fn write(rows: &[ProfileRow], zstd_level: i32) -> Result<Vec<u8>, BlockError> {
    let schema = schema();
    // zstd where the bytes are (the stack id and value lists); the per-row columns and the span
    // ids (mostly 0, dictionary-encoded to runs) are small, and every compressed column costs a
    // zstd context (compression and decompression) per row group: more than the column itself
    // costs to write when a segment holds a few profiles per dataset.
    let zstd = Compression::ZSTD(ZstdLevel::try_new(zstd_level)?);
    let properties = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_column_compression(list_item("stack_ids"), zstd)
        .set_column_compression(list_item("values"), zstd)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema.clone(), Some(properties))?;
    for chunk in rows.chunks(ROW_GROUP_ROWS) {
        let mut series = UInt32Builder::with_capacity(chunk.len());
        let mut times = Int64Builder::with_capacity(chunk.len());
        let mut totals = Int64Builder::with_capacity(chunk.len());
        let mut stacks = ListBuilder::new(UInt32Builder::new()).with_field(Field::new(
            "item",
            DataType::UInt32,
            true,
        ));
        let mut values = ListBuilder::new(Int64Builder::new()).with_field(Field::new(
            "item",
            DataType::Int64,
            true,
        ));
        let mut spans = ListBuilder::new(UInt64Builder::new()).with_field(Field::new(
            "item",
            DataType::UInt64,
            true,
        ));
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
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(series.finish()),
            Arc::new(times.finish()),
            Arc::new(totals.finish()),
            Arc::new(stacks.finish()),
            Arc::new(values.finish()),
            Arc::new(spans.finish()),
        ];
        writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
    }
    writer.close()?;
    Ok(out)
}

/// Reads the rows of the given series (ascending ids) whose time is in `[start, end]`.
pub(crate) fn read(
    bytes: Bytes,
    series: &[u32],
    start_nanos: i64,
    end_nanos: i64,
    dataset: usize,
) -> Result<Vec<ProfileRow>, BlockError> {
    let corrupt = |reason: &str| BlockError::Corrupt {
        dataset,
        section: "profiles",
        reason: reason.to_owned(),
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        if batch.num_columns() != 6 {
            return Err(corrupt("unexpected columns"));
        }
        let ids = batch
            .column(0)
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| corrupt("series_id"))?;
        let times = batch
            .column(1)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| corrupt("time_nanos"))?;
        let totals = batch
            .column(2)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| corrupt("total"))?;
        let stacks = batch
            .column(3)
            .as_list_opt::<i32>()
            .ok_or_else(|| corrupt("stack_ids"))?;
        let values = batch
            .column(4)
            .as_list_opt::<i32>()
            .ok_or_else(|| corrupt("values"))?;
        let spans = batch
            .column(5)
            .as_list_opt::<i32>()
            .ok_or_else(|| corrupt("span_ids"))?;
        for row in 0..batch.num_rows() {
            let id = ids.value(row);
            let time = times.value(row);
            if series.binary_search(&id).is_err() || time < start_nanos || time > end_nanos {
                continue;
            }
            let stack_ids: Vec<u32> = stacks
                .value(row)
                .as_primitive_opt::<UInt32Type>()
                .ok_or_else(|| corrupt("stack_ids items"))?
                .values()
                .to_vec();
            let row_values: Vec<i64> = values
                .value(row)
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| corrupt("values items"))?
                .values()
                .to_vec();
            let span_ids: Vec<u64> = spans
                .value(row)
                .as_primitive_opt::<UInt64Type>()
                .ok_or_else(|| corrupt("span_ids items"))?
                .values()
                .to_vec();
            if stack_ids.len() != row_values.len() || span_ids.len() != row_values.len() {
                return Err(corrupt("list lengths differ"));
            }
            out.push(ProfileRow {
                series_id: id,
                time_nanos: time,
                total: totals.value(row),
                stack_ids,
                values: row_values,
                span_ids,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    #[test]
    fn only_the_stack_and_value_lists_are_compressed() {
        let rows: Vec<ProfileRow> = (0..100)
            .map(|i| ProfileRow {
                series_id: i / 10,
                time_nanos: i64::from(i) * 1_000_000_000,
                total: 60,
                stack_ids: vec![1, 2, 3],
                values: vec![10, 20, 30],
                span_ids: vec![0, 0, 0],
            })
            .collect();
        let bytes = Bytes::from(write(&rows, 1).expect("written"));
        let reader = SerializedFileReader::new(bytes.clone()).expect("parquet");
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
            ]
        );
        assert_eq!(
            read(bytes, &[0, 5, 9], 0, i64::MAX, 0).expect("read").len(),
            30
        );
    }
}
