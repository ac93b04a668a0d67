//! Lookup of pprof entities (functions, locations, mappings) by their `id` field.

use rustc_hash::FxHashMap;

/// Maps pprof ids to positions in their table. Dense ids (the usual 1..=n) use a vector; sparse
/// ids fall back to a hash map. The first entry wins for a repeated id.
#[derive(Debug, Clone)]
pub enum IdIndex {
    Dense(Vec<u32>),
    Sparse(FxHashMap<u64, u32>),
}

const MISSING: u32 = u32::MAX;

impl IdIndex {
    pub fn new(ids: impl ExactSizeIterator<Item = u64> + Clone) -> IdIndex {
        let len = ids.len();
        let max = ids.clone().max().unwrap_or(0);
        if max <= (len as u64).saturating_mul(2).saturating_add(16) {
            let mut dense = vec![MISSING; max as usize + 1];
            for (position, id) in ids.enumerate() {
                let slot = &mut dense[id as usize];
                if *slot == MISSING {
                    *slot = position as u32;
                }
            }
            IdIndex::Dense(dense)
        } else {
            let mut sparse = FxHashMap::default();
            for (position, id) in ids.enumerate() {
                sparse.entry(id).or_insert(position as u32);
            }
            IdIndex::Sparse(sparse)
        }
    }

    #[inline]
    pub fn get(&self, id: u64) -> Option<usize> {
        match self {
            IdIndex::Dense(dense) => match dense.get(usize::try_from(id).ok()?) {
                Some(&position) if position != MISSING => Some(position as usize),
                _ => None,
            },
            IdIndex::Sparse(sparse) => sparse.get(&id).map(|&p| p as usize),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_sparse() {
        let dense = IdIndex::new([1u64, 2, 3].into_iter());
        assert!(matches!(dense, IdIndex::Dense(_)));
        assert_eq!(dense.get(2), Some(1));
        assert_eq!(dense.get(0), None);
        assert_eq!(dense.get(99), None);
        let sparse = IdIndex::new([5u64, 1 << 40].into_iter());
        assert!(matches!(sparse, IdIndex::Sparse(_)));
        assert_eq!(sparse.get(1 << 40), Some(1));
        assert_eq!(sparse.get(7), None);
    }
}
