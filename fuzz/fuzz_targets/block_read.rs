//! Any bytes as a block object: opening it, selecting from every dataset it claims, and
//! building trees must never panic.
#![no_main]

use block::{BlockReader, SelectQuery};
use libfuzzer_sys::fuzz_target;
use model::{TenantId, Tree};

fuzz_target!(|data: &[u8]| {
    futures::executor::block_on(async {
        let Ok(reader) = BlockReader::from_bytes(bytes::Bytes::copy_from_slice(data)).await else {
            return;
        };
        let targets: Vec<(String, String)> = reader
            .datasets()
            .iter()
            .flat_map(|d| d.profile_types.iter().map(|t| (d.tenant.clone(), t.clone())))
            .collect();
        for (tenant, profile_type) in targets {
            let Ok(tenant) = TenantId::new(&tenant) else { continue };
            let query = SelectQuery {
                tenant,
                profile_type,
                matchers: Vec::new(),
                start_nanos: i64::MIN,
                end_nanos: i64::MAX,
                span_ids: None,
                call_site: Vec::new(),
            };
            if let Ok(selections) = reader.select(&query).await {
                let mut tree = Tree::new();
                for selection in &selections {
                    selection.add_to_tree(&mut tree);
                }
            }
        }
    });
});
