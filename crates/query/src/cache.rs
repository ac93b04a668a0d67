//! A cache bounded in bytes, evicting the least recently used entries. Blocks never change, so
//! what is cached under a block's id never goes stale; it only leaves when room is needed.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Values cached with their size.
#[derive(Debug)]
pub(crate) struct ByteCache<K, V> {
    inner: Mutex<Inner<K, V>>,
    capacity: usize,
}

#[derive(Debug)]
struct Inner<K, V> {
    entries: HashMap<K, Entry<V>>,
    /// Use order: tick → key; the smallest tick was used longest ago.
    order: BTreeMap<u64, K>,
    tick: u64,
    bytes: usize,
    hits: u64,
    misses: u64,
}

#[derive(Debug)]
struct Entry<V> {
    value: Arc<V>,
    bytes: usize,
    tick: u64,
}

impl<K: Eq + Hash + Clone, V> ByteCache<K, V> {
    /// A cache holding at most `capacity` bytes (0: caches nothing).
    pub fn new(capacity: usize) -> Self {
        ByteCache {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: BTreeMap::new(),
                tick: 0,
                bytes: 0,
                hits: 0,
                misses: 0,
            }),
            capacity,
        }
    }

    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.tick += 1;
        let tick = inner.tick;
        let Some(entry) = inner.entries.get_mut(key) else {
            inner.misses += 1;
            return None;
        };
        let old = std::mem::replace(&mut entry.tick, tick);
        let value = Arc::clone(&entry.value);
        inner.order.remove(&old);
        inner.order.insert(tick, key.clone());
        inner.hits += 1;
        Some(value)
    }

    /// Caches `value` of about `bytes` bytes, evicting older entries to make room; a value
    /// larger than the whole cache is not kept.
    pub fn insert(&self, key: K, value: Arc<V>, bytes: usize) {
        if bytes > self.capacity {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.tick += 1;
        let tick = inner.tick;
        if let Some(old) = inner.entries.remove(&key) {
            inner.order.remove(&old.tick);
            inner.bytes -= old.bytes;
        }
        while inner.bytes + bytes > self.capacity {
            let Some((_, oldest)) = inner.order.pop_first() else {
                break;
            };
            if let Some(evicted) = inner.entries.remove(&oldest) {
                inner.bytes -= evicted.bytes;
            }
        }
        inner.order.insert(tick, key.clone());
        inner.entries.insert(key, Entry { value, bytes, tick });
        inner.bytes += bytes;
    }

    /// (bytes held, entries, hits, misses).
    pub fn usage(&self) -> (usize, usize, u64, u64) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (inner.bytes, inner.entries.len(), inner.hits, inner.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_entries_leave_first() {
        let cache: ByteCache<u32, &str> = ByteCache::new(10);
        cache.insert(1, Arc::new("a"), 4);
        cache.insert(2, Arc::new("b"), 4);
        assert_eq!(cache.get(&1).as_deref(), Some(&"a"));
        // 2 was used longest ago: it makes room for 3.
        cache.insert(3, Arc::new("c"), 4);
        assert!(cache.get(&2).is_none());
        assert_eq!(cache.get(&1).as_deref(), Some(&"a"));
        assert_eq!(cache.get(&3).as_deref(), Some(&"c"));
        // Too large for the cache: not kept, nothing evicted.
        cache.insert(4, Arc::new("d"), 11);
        assert!(cache.get(&4).is_none());
        assert_eq!(cache.usage().0, 8);
        // Replacing an entry frees its old size.
        cache.insert(1, Arc::new("A"), 2);
        assert_eq!(cache.usage(), (6, 2, 3, 2));
        let nothing: ByteCache<u32, u32> = ByteCache::new(0);
        nothing.insert(1, Arc::new(1), 1);
        assert!(nothing.get(&1).is_none());
    }
}
