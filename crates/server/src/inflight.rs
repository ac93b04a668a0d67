//! A memory budget for the pushes being processed: each push reserves an estimate of what its
//! decoded profiles take before decoding, and waits while the budget is spent, so that memory
//! stays bounded however many clients push at once (they queue instead). The reservation is
//! given back once the push's series are in the segment writer's head, whose own memory its
//! size limit bounds.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What a push takes in memory per uncompressed pprof byte, from its body to its profile ready
/// for the segment writer (the request's copy of the bytes, the decoded view and what preparing
/// it adds: the duplicate-sample table, the series' sample lists): 3–9× for most real
/// profiles and 21× for a .NET one (whose many tiny locations and lines cost more than their
/// bytes), measured by `tests/decoded_size.rs`, which fails if any real profile of the test
/// data needs more than this.
pub const DECODED_PER_ENCODED_BYTE: usize = 24;

#[derive(Debug, Clone)]
pub struct InflightBudget {
    permits: Arc<Semaphore>,
    /// The whole budget, in KiB permits.
    total_kib: u32,
}

impl InflightBudget {
    /// A budget of `bytes` (at least 1 MiB).
    pub fn new(bytes: usize) -> InflightBudget {
        let total_kib = u32::try_from((bytes / 1024).max(1024)).unwrap_or(u32::MAX >> 3);
        let total_kib = total_kib.min(Semaphore::MAX_PERMITS as u32);
        InflightBudget {
            permits: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
        }
    }

    /// Reserves room for decoding `encoded` uncompressed bytes, waiting for earlier pushes to
    /// finish when the budget is spent. A push larger than the whole budget takes all of it.
    pub async fn reserve(&self, encoded: usize) -> Option<OwnedSemaphorePermit> {
        let kib = encoded.saturating_mul(DECODED_PER_ENCODED_BYTE) / 1024 + 1;
        let kib = u32::try_from(kib).unwrap_or(u32::MAX).min(self.total_kib);
        Arc::clone(&self.permits).acquire_many_owned(kib).await.ok()
    }

    /// Reserves `bytes` as they are (a distributor holding a batch it forwards, undecoded).
    pub async fn reserve_bytes(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let kib = u32::try_from(bytes / 1024 + 1)
            .unwrap_or(u32::MAX)
            .min(self.total_kib);
        Arc::clone(&self.permits).acquire_many_owned(kib).await.ok()
    }

    /// KiB not reserved right now.
    pub fn available_kib(&self) -> usize {
        self.permits.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_wait_for_the_budget() {
        let budget = InflightBudget::new(4 << 20);
        assert_eq!(budget.available_kib(), 4096);
        // Each reservation is its bytes times the decoded estimate, in KiB, plus one.
        let kib = |bytes: usize| bytes * DECODED_PER_ENCODED_BYTE / 1024 + 1;
        let first = budget.reserve(64 << 10).await.expect("fits");
        assert_eq!(budget.available_kib(), 4096 - kib(64 << 10));
        // Larger than what is left: waits until the first is released.
        let more = 4096 / DECODED_PER_ENCODED_BYTE * 1024;
        assert!(kib(more) > 4096 - kib(64 << 10) && kib(more) <= 4096);
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(more).await.map(|_| ()) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.expect("task").expect("reserved");
        // Larger than the whole budget: takes all of it, never deadlocks.
        let all = budget.reserve(1 << 30).await.expect("all");
        assert_eq!(budget.available_kib(), 0);
        drop(all);
        assert_eq!(budget.available_kib(), 4096);
    }
}
