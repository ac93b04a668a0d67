//! Pyroscope's normalisation of a validated pprof (`Profile.Normalize`): empty labels dropped,
//! samples whose values are all zero dropped, samples with the same stack and labels summed,
//! references repaired (a location without a mapping gets a stub mapping; locations and samples
//! that point at nothing are dropped), and addresses cleared in symbolised mappings.
//!
//! Samples keep the order of their first occurrence (Pyroscope orders them by a hash; the order
//! carries no meaning). A sample is dropped only when all its values are zero: negative values
//! are kept, since delta profiles have them. (Pyroscope's versions disagree here: v1.18 keeps a
//! sample with any positive value, later ones drop any sample with a negative value; keeping
//! every non-zero sample loses nothing a client sent.)

use super::id_index::IdIndex;
use super::proto::{Mapping, Profile, Sample};
use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use std::hash::{BuildHasher, Hash, Hasher};

/// Normalises `profile` in place.
pub fn normalize(profile: &mut Profile) {
    repair_locations(profile);
    merge_valid_samples(profile);
    clear_addresses(profile);
}

/// The hash of a sample's identity: its stack and its (key, value) label indices.
pub(crate) fn sample_hash(sample: &Sample) -> u64 {
    let mut hasher = FxBuildHasher.build_hasher();
    sample.location_id.hash(&mut hasher);
    for label in &sample.label {
        (label.key, label.str).hash(&mut hasher);
    }
    hasher.finish()
}

/// Same stack and same (key, value) labels; labels are sorted before this is asked.
pub(crate) fn same_sample(a: &Sample, b: &Sample) -> bool {
    a.location_id == b.location_id
        && a.label.len() == b.label.len()
        && a.label
            .iter()
            .zip(&b.label)
            .all(|(x, y)| (x.key, x.str) == (y.key, y.str))
}

/// One pass over the samples: those that refer to a missing location or have the wrong number
/// of values are dropped (their references are broken), then those whose values are all zero;
/// empty labels are removed, and samples with the same stack and labels are summed (a sum that
/// cancels to zero is dropped too).
fn merge_valid_samples(profile: &mut Profile) {
    let locations = IdIndex::new(profile.location.iter().map(|l| l.id));
    let types = profile.sample_type.len();
    let samples = std::mem::take(&mut profile.sample);
    let mut index: HashTable<u32> = HashTable::with_capacity(samples.len());
    let mut merged: Vec<Sample> = Vec::with_capacity(samples.len());
    for mut sample in samples {
        let valid = sample.value.len() == types
            && sample
                .location_id
                .iter()
                .all(|&id| locations.get(id).is_some());
        if !valid || sample.value.iter().all(|&v| v == 0) {
            continue;
        }
        sample.label.retain(|l| l.str != 0);
        if sample.label.len() > 1 {
            sample.label.sort_by_key(|l| (l.key, l.str));
        }
        let hash = sample_hash(&sample);
        match index.find(hash, |&at| same_sample(&merged[at as usize], &sample)) {
            Some(&at) => {
                for (total, value) in merged[at as usize].value.iter_mut().zip(&sample.value) {
                    *total = total.wrapping_add(*value);
                }
            }
            None => {
                index.insert_unique(hash, merged.len() as u32, |&at| {
                    sample_hash(&merged[at as usize])
                });
                merged.push(sample);
            }
        }
    }
    // Sums may cancel to zero.
    merged.retain(|s| s.value.iter().any(|&v| v != 0));
    profile.sample = merged;
}

/// Gives mapping-less locations a stub mapping and drops locations that refer to a missing
/// mapping or function.
fn repair_locations(profile: &mut Profile) {
    let mappings = IdIndex::new(profile.mapping.iter().map(|m| m.id));
    let functions = IdIndex::new(profile.function.iter().map(|f| f.id));
    let mut stub: Option<u64> = None;
    let mut new_mappings = Vec::new();
    profile.location.retain_mut(|location| {
        if location.mapping_id == 0 {
            let id = *stub.get_or_insert_with(|| {
                // The smallest id no mapping uses (ids may be anything up to u64::MAX).
                let id = (1..u64::MAX)
                    .find(|&id| mappings.get(id).is_none())
                    .unwrap_or(u64::MAX);
                new_mappings.push(Mapping {
                    id,
                    ..Default::default()
                });
                id
            });
            location.mapping_id = id;
        } else if mappings.get(location.mapping_id).is_none() {
            return false;
        }
        location
            .line
            .iter()
            .all(|line| functions.get(line.function_id).is_some())
    });
    profile.mapping.extend(new_mappings);
}

fn clear_addresses(profile: &mut Profile) {
    let mut symbolized = rustc_hash::FxHashSet::default();
    for mapping in &mut profile.mapping {
        if mapping.has_functions {
            mapping.memory_start = 0;
            mapping.memory_limit = 0;
            mapping.file_offset = 0;
            symbolized.insert(mapping.id);
        }
    }
    if symbolized.is_empty() {
        return;
    }
    for location in &mut profile.location {
        if symbolized.contains(&location.mapping_id) {
            location.address = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::proto::{Label, Line, Location, ValueType};
    use crate::pprof::to_tree;

    fn sample(locations: &[u64], value: i64, labels: &[(i64, i64)]) -> Sample {
        Sample {
            location_id: locations.to_vec(),
            value: vec![value],
            label: labels
                .iter()
                .map(|&(key, str)| Label {
                    key,
                    str,
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn zeros_dropped_duplicates_summed() {
        let mut p = Profile {
            sample_type: vec![ValueType { r#type: 1, unit: 1 }],
            string_table: vec![
                "".into(),
                "x".into(),
                "a".into(),
                "b".into(),
                "k".into(),
                "v".into(),
            ],
            function: vec![
                crate::pprof::proto::Function {
                    id: 1,
                    name: 2,
                    ..Default::default()
                },
                crate::pprof::proto::Function {
                    id: 2,
                    name: 3,
                    ..Default::default()
                },
            ],
            location: vec![
                Location {
                    id: 1,
                    line: vec![Line {
                        function_id: 1,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                Location {
                    id: 2,
                    line: vec![Line {
                        function_id: 2,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                Location {
                    id: 3,
                    line: vec![Line {
                        function_id: 9,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
            sample: vec![
                sample(&[1, 2], 1, &[(4, 5)]),
                sample(&[1, 2], 0, &[]),
                sample(&[1, 2], 2, &[(4, 5), (4, 0)]),
                sample(&[2], 3, &[]),
                sample(&[3], 7, &[]),
            ],
            ..Default::default()
        };
        let before = to_tree(&p, 0);
        normalize(&mut p);
        assert_eq!(p.sample.len(), 2, "{:?}", p.sample);
        assert_eq!(p.sample[0].value, vec![3]);
        assert_eq!(p.sample[0].label.len(), 1);
        // Location 3 points at a missing function: it and its sample are gone.
        assert_eq!(p.location.len(), 2);
        assert_eq!(before.total() - 7, to_tree(&p, 0).total());
        // Locations without a mapping share one stub mapping.
        assert_eq!(p.mapping.len(), 1);
        assert!(p.location.iter().all(|l| l.mapping_id == p.mapping[0].id));
    }
}
