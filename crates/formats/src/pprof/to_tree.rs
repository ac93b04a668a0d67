//! pprof → stack trees, one per sample type, with frames named as pprof names them.

use super::frames::FrameNames;
use super::proto::Profile;
use super::view::ProfileView;
use model::Tree;

/// The tree of sample type `value_index`. Samples without locations, and samples whose
/// locations are unknown, are skipped; zero values add nothing.
pub fn to_tree(profile: &Profile, value_index: usize) -> Tree {
    let mut tree = Tree::new();
    add_to_tree(&ProfileView::from_profile(profile), value_index, &mut tree);
    tree
}

/// One tree per sample type, in sample-type order.
pub fn to_trees(profile: &Profile) -> Vec<Tree> {
    let view = ProfileView::from_profile(profile);
    let indices: Vec<usize> = (0..view.sample_type.len()).collect();
    let mut trees: Vec<Tree> = indices.iter().map(|_| Tree::new()).collect();
    fill_trees(&view, &indices, &mut trees);
    trees
}

/// Adds the samples of `profile`'s value column `value_index` into `tree`.
pub fn add_to_tree(profile: &ProfileView<'_>, value_index: usize, tree: &mut Tree) {
    fill_trees(profile, &[value_index], std::slice::from_mut(tree));
}

/// Adds the samples of `profile` into `trees[i]` for value index `indices[i]`.
pub(crate) fn fill_trees(profile: &ProfileView<'_>, indices: &[usize], trees: &mut [Tree]) {
    let frames = FrameNames::new(profile);
    for (tree_slot, &value_index) in trees.iter_mut().zip(indices) {
        // Intern each location's frames once per tree.
        let mut offsets = Vec::with_capacity(frames.len() + 1);
        let mut ids: Vec<u32> = Vec::new();
        offsets.push(0u32);
        for position in 0..frames.len() {
            for name in frames.frames(position) {
                ids.push(tree_slot.intern(name));
            }
            offsets.push(ids.len() as u32);
        }
        // Consecutive samples often share their root side: walk down only from where this
        // stack leaves the previous one.
        let mut stack: Vec<u32> = Vec::with_capacity(64);
        let mut previous: Vec<u32> = Vec::with_capacity(64);
        let mut path: Vec<model::NodeId> = Vec::with_capacity(64);
        let mut leaves: Vec<(model::NodeId, i64)> = Vec::with_capacity(profile.samples.len());
        'samples: for sample in &profile.samples {
            let Some(&value) = profile.sample_values(sample).get(value_index) else {
                continue;
            };
            if value == 0 {
                continue;
            }
            stack.clear();
            for &location_id in profile.sample_locations(sample).iter().rev() {
                let Some(position) = frames.location_position(location_id) else {
                    continue 'samples;
                };
                stack.extend_from_slice(
                    &ids[offsets[position] as usize..offsets[position + 1] as usize],
                );
            }
            if stack.is_empty() {
                continue;
            }
            let common = previous
                .iter()
                .zip(&stack)
                .take_while(|(a, b)| a == b)
                .count();
            path.truncate(common);
            let mut node = path.last().copied().unwrap_or(Tree::ROOT);
            for &name in &stack[common..] {
                node = tree_slot.child(node, name);
                path.push(node);
            }
            leaves.push((node, value));
            std::mem::swap(&mut previous, &mut stack);
        }
        tree_slot.add_self_values(&leaves);
    }
}
