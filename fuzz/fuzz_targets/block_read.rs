//! Any bytes as a block object: opening it, reading every dataset whole, every table's footer
//! and rows (profiles and rollups, every column) and building trees from them must never
//! panic.
#![no_main]

use block::{BlockReader, Columns, TableKind, TableMeta};
use libfuzzer_sys::fuzz_target;
use model::Tree;

fuzz_target!(|data: &[u8]| {
    futures::executor::block_on(async {
        let Ok(reader) = BlockReader::from_bytes(bytes::Bytes::copy_from_slice(data)).await else {
            return;
        };
        for (index, info) in reader.datasets().iter().enumerate() {
            if let Ok(contents) = reader.read_dataset(index).await {
                let samples: Vec<(u32, i64)> = contents
                    .rows()
                    .iter()
                    .flat_map(|r| r.stack_ids.iter().copied().zip(r.values.iter().copied()))
                    .collect();
                let mut tree = Tree::new();
                contents.symbols.add_to_tree(&samples, &mut tree);
                let _ = contents.symbols.stacks_under(&["a".to_owned()]);
            }
            let tables = std::iter::once(TableKind::Profiles)
                .chain(info.rollups.iter().map(|r| TableKind::Rollup(r.resolution_ms)));
            for table in tables {
                let Ok(tail) = reader.fetch_table_footer(index, table).await else {
                    continue;
                };
                let rollup = matches!(table, TableKind::Rollup(_));
                let Ok(meta) = TableMeta::decode(&tail, rollup, index) else {
                    continue;
                };
                let groups: Vec<usize> = (0..meta.row_groups().len()).collect();
                let columns = Columns {
                    stacks: true,
                    spans: true,
                    profile_ids: true,
                };
                let ranges = meta.chunk_ranges(&groups, columns);
                let Ok(chunks) = reader.fetch_chunks(index, table, &ranges).await else {
                    continue;
                };
                if let Ok(batches) = meta.decode_rows(chunks, &groups, columns, index, None) {
                    for batch in &batches {
                        for row in 0..batch.len() {
                            let _ = (batch.stacks(row), batch.values(row), batch.spans(row));
                            let _ = (batch.profile_id(row), batch.profiles(row));
                        }
                    }
                }
            }
        }
    });
});
