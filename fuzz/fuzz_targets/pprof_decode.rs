//! Any bytes through the pprof path: decompress, decode, name frames, build trees, merge, and
//! render; and through the push path as the server runs it (a view prepared under the default
//! and under tight limits, added to a segment that is then encoded). Nothing may panic; errors
//! are values.
#![no_main]

use formats::pprof::{self, MergeOptions, ProfileMerger};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The hand-written decoder of the read path must accept exactly what prost accepts, and
    // see the same stacks.
    if let Ok(raw) = formats::compression::decompress(data, 16 << 20) {
        let by_view = pprof::ProfileView::decode(&raw).is_ok();
        let by_prost = pprof::decode(&raw, 16 << 20).is_ok();
        assert_eq!(by_view, by_prost, "the decoders disagree on acceptance");
    }
    let view_tree = formats::compression::decompress(data, 16 << 20)
        .ok()
        .and_then(|raw| {
            let view = pprof::ProfileView::decode(&raw).ok()?;
            let mut tree = model::Tree::new();
            pprof::add_to_tree(&view, 0, &mut tree);
            let mut merger = ProfileMerger::new(MergeOptions::default());
            let _ = merger.merge_view(&view);
            Some(model::write_collapsed(&tree))
        });
    let Ok(profile) = pprof::decode(data, 16 << 20) else {
        return;
    };
    if let Some(view_tree) = view_tree {
        assert_eq!(
            view_tree,
            model::write_collapsed(&pprof::to_tree(&profile, 0))
        );
    }
    let labels = model::Labels::from_pairs([("__name__", "fuzz"), ("service_name", "fuzz")]);
    let _ = pprof::prepare_push(
        profile.clone(),
        &labels,
        &pprof::ProfileLimits::default(),
        &pprof::LabelLimits::default(),
        data.len(),
        1,
    );
    let tight = pprof::ProfileLimits {
        max_stack_depth: 3,
        max_symbol_length: 5,
        ..pprof::ProfileLimits::default()
    };
    if let Ok(raw) = formats::compression::decompress(data, 16 << 20) {
        let tenant = model::TenantId::new("fuzz").expect("valid tenant");
        let mut writer = block::BlockWriter::new();
        for limits in [pprof::ProfileLimits::default(), tight] {
            let Ok(view) = pprof::ProfileView::decode(&raw) else {
                break;
            };
            let label_limits = pprof::LabelLimits::default();
            let mut rewrites = None;
            let prepared = pprof::prepare_view(
                view,
                &mut rewrites,
                &labels,
                &limits,
                &label_limits,
                data.len(),
                1,
            );
            if let Ok(prepared) = prepared {
                writer.add_profile(&tenant, &prepared, [7; 16]);
            }
        }
        let _ = writer.finish();
    }
    for tree in pprof::to_trees(&profile) {
        let graph = model::FlameGraph::from_tree(&tree, 64);
        assert_eq!(graph.total, tree.total());
        let bytes = tree.to_bytes(64);
        let back = model::tree_from_bytes(&bytes).expect("our own tree bytes read back");
        assert_eq!(
            model::write_collapsed(&back),
            model::write_collapsed(&tree.truncated(64))
        );
    }
    let mut merger = ProfileMerger::new(MergeOptions::default());
    if merger.merge(&profile).is_ok() {
        let _ = merger.merge(&profile);
        let _ = merger.finish();
    }
});
