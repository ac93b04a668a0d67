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
use super::proto::{Mapping, Sample};
use super::view::{ProfileView, SampleView};
use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use std::hash::{BuildHasher, Hash, Hasher};

/// Normalises `profile` in place.
pub fn normalize(profile: &mut ProfileView<'_>) {
    repair_locations(profile);
    merge_valid_samples(profile);
    clear_addresses(profile);
}

/// The hash of a sample's identity: its stack and its (key, value) label indices.
fn identity_hash(locations: &[u64], labels: impl Iterator<Item = (i64, i64)>) -> u64 {
    let mut hasher = FxBuildHasher.build_hasher();
    locations.hash(&mut hasher);
    for label in labels {
        label.hash(&mut hasher);
    }
    hasher.finish()
}

/// [`identity_hash`] of a view's sample.
fn view_sample_hash(profile: &ProfileView<'_>, sample: &SampleView) -> u64 {
    identity_hash(
        profile.sample_locations(sample),
        profile.sample_labels(sample).iter().map(|l| (l.key, l.str)),
    )
}

/// [`identity_hash`] of an owned sample (the Go repairs merge owned samples).
pub(crate) fn sample_hash(sample: &Sample) -> u64 {
    identity_hash(
        &sample.location_id,
        sample.label.iter().map(|l| (l.key, l.str)),
    )
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

fn same_identity(profile: &ProfileView<'_>, a: &SampleView, b: &SampleView) -> bool {
    let (x, y) = (profile.sample_labels(a), profile.sample_labels(b));
    profile.sample_locations(a) == profile.sample_locations(b)
        && x.len() == y.len()
        && x.iter()
            .zip(y)
            .all(|(x, y)| (x.key, x.str) == (y.key, y.str))
}

/// One pass over the samples: those that refer to a missing location or have the wrong number
/// of values are dropped (their references are broken), then those whose values are all zero;
/// empty labels are removed (a sample's label range shrinks), and samples with the same stack
/// and labels are summed into the first one's values (a sum that cancels to zero is dropped).
fn merge_valid_samples(profile: &mut ProfileView<'_>) {
    let locations = IdIndex::new(profile.locations.iter().map(|l| l.id));
    let types = profile.sample_type.len();
    let samples = std::mem::take(&mut profile.samples);
    let mut index: HashTable<u32> = HashTable::with_capacity(samples.len());
    let mut merged: Vec<SampleView> = Vec::with_capacity(samples.len());
    for mut sample in samples {
        let values = profile.sample_values(&sample);
        let valid = values.len() == types
            && profile
                .sample_locations(&sample)
                .iter()
                .all(|&id| locations.get(id).is_some());
        if !valid || values.iter().all(|&v| v == 0) {
            continue;
        }
        let (start, end) = (sample.labels.0 as usize, sample.labels.1 as usize);
        let labels = &mut profile.labels[start..end];
        let mut kept = 0;
        for i in 0..labels.len() {
            if labels[i].str != 0 {
                labels[kept] = labels[i];
                kept += 1;
            }
        }
        let labels = &mut labels[..kept];
        if labels.len() > 1 {
            labels.sort_by_key(|l| (l.key, l.str));
        }
        sample.labels.1 = sample.labels.0 + kept as u32;
        let hash = view_sample_hash(profile, &sample);
        match index.find(hash, |&at| {
            same_identity(profile, &merged[at as usize], &sample)
        }) {
            Some(&at) => {
                let total = merged[at as usize].values.0 as usize;
                let added = sample.values.0 as usize;
                for k in 0..types {
                    let value = profile.values[added + k];
                    let sum = &mut profile.values[total + k];
                    *sum = sum.wrapping_add(value);
                }
            }
            None => {
                index.insert_unique(hash, merged.len() as u32, |&at| {
                    view_sample_hash(profile, &merged[at as usize])
                });
                merged.push(sample);
            }
        }
    }
    // Sums may cancel to zero.
    merged.retain(|s| profile.sample_values(s).iter().any(|&v| v != 0));
    profile.samples = merged;
}

/// Gives mapping-less locations a stub mapping and drops locations that refer to a missing
/// mapping or function.
fn repair_locations(profile: &mut ProfileView<'_>) {
    let mappings = IdIndex::new(profile.mappings.iter().map(|m| m.id));
    let functions = IdIndex::new(profile.functions.iter().map(|f| f.id));
    let mut stub: Option<u64> = None;
    let mut new_mappings = Vec::new();
    let lines = &profile.lines;
    profile.locations.retain_mut(|location| {
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
        lines[location.lines.0 as usize..location.lines.1 as usize]
            .iter()
            .all(|line| functions.get(line.function_id).is_some())
    });
    profile.mappings.extend(new_mappings);
}

fn clear_addresses(profile: &mut ProfileView<'_>) {
    let mut symbolized = rustc_hash::FxHashSet::default();
    for mapping in &mut profile.mappings {
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
    for location in &mut profile.locations {
        if symbolized.contains(&location.mapping_id) {
            location.address = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::proto::{Label, Line, Location, Profile, ValueType};
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
        let p = Profile {
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
        let mut view = ProfileView::from_profile(&p);
        normalize(&mut view);
        let p = view.to_profile();
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
