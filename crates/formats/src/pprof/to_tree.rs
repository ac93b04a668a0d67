//! pprof → stack trees, one per sample type, with frames named as pprof names them.

use super::frames::{FrameNames, string_at};
use super::proto::Profile;
use model::Tree;

/// Index of the sample type called `name` (its type string), if any.
pub fn sample_type_index(profile: &Profile, name: &str) -> Option<usize> {
    profile
        .sample_type
        .iter()
        .position(|st| string_at(profile, st.r#type) == name)
}

/// The tree of sample type `value_index`. Samples without locations, and samples whose
/// locations are unknown, are skipped; zero values add nothing.
pub fn to_tree(profile: &Profile, value_index: usize) -> Tree {
    let mut trees = vec![Tree::new()];
    fill_trees(profile, &[value_index], &mut trees);
    trees.pop().unwrap_or_default()
}

/// One tree per sample type, in sample-type order.
pub fn to_trees(profile: &Profile) -> Vec<Tree> {
    let indices: Vec<usize> = (0..profile.sample_type.len()).collect();
    let mut trees: Vec<Tree> = indices.iter().map(|_| Tree::new()).collect();
    fill_trees(profile, &indices, &mut trees);
    trees
}

/// Adds the samples of `profile` into `trees[i]` for value index `indices[i]`.
pub(crate) fn fill_trees(profile: &Profile, indices: &[usize], trees: &mut [Tree]) {
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
        let mut stack: Vec<u32> = Vec::with_capacity(64);
        'samples: for sample in &profile.sample {
            let Some(&value) = sample.value.get(value_index) else {
                continue;
            };
            if value == 0 {
                continue;
            }
            stack.clear();
            for &location_id in sample.location_id.iter().rev() {
                let Some(position) = frames.location_position(location_id) else {
                    continue 'samples;
                };
                stack.extend_from_slice(
                    &ids[offsets[position] as usize..offsets[position + 1] as usize],
                );
            }
            tree_slot.insert_ids(&stack, value);
        }
    }
}
