//! A memory budget for the pushes being processed: each push reserves an estimate of what its
//! decoded profiles take before decoding, and waits while the budget is spent, so that memory
//! stays bounded however many clients push at once (they queue instead).

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Decoded profiles take several times their encoded bytes (owned vectors and strings).
const DECODED_PER_ENCODED_BYTE: usize = 4;

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
        let first = budget.reserve(512 << 10).await.expect("fits");
        assert_eq!(budget.available_kib(), 4096 - 2049);
        // Larger than what is left: waits until the first is released.
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(600 << 10).await.map(|_| ()) }
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
