//! The query frontend's queue: read tasks wait per tenant for one of a fixed number of slots,
//! and a freed slot goes to the tenants in turn (round robin over the tenants with waiting
//! tasks), so one tenant's thirty-day queries cannot starve another's dashboards — the job of
//! Pyroscope's query scheduler, in process. Within a tenant, tasks are served in arrival order.

use model::TenantId;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Read tasks running at once when none is configured, per process: enough to keep the
/// machine's cores and a few object store round trips busy.
pub const DEFAULT_TASK_SLOTS: usize = 32;

/// Slots shared fairly between tenants.
#[derive(Debug, Clone)]
pub struct FairQueue {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    free: usize,
    /// Waiting tasks per tenant, oldest first.
    waiting: HashMap<TenantId, VecDeque<oneshot::Sender<Slot>>>,
    /// Tenants with waiting tasks, in the order they are served next.
    turn: VecDeque<TenantId>,
}

/// A task's place; freeing it (drop) hands the place to the next tenant in turn.
#[derive(Debug)]
pub struct Slot {
    queue: Option<Arc<Mutex<Inner>>>,
}

impl FairQueue {
    pub fn new(slots: usize) -> FairQueue {
        FairQueue {
            inner: Arc::new(Mutex::new(Inner {
                free: slots.max(1),
                waiting: HashMap::new(),
                turn: VecDeque::new(),
            })),
        }
    }

    /// Waits for a slot for one task of `tenant`.
    pub async fn acquire(&self, tenant: &TenantId) -> Slot {
        let receiver = {
            let Ok(mut inner) = self.inner.lock() else {
                // A panic while holding the lock: run without queueing rather than stop.
                return Slot { queue: None };
            };
            if inner.free > 0 && inner.turn.is_empty() {
                inner.free -= 1;
                return Slot {
                    queue: Some(Arc::clone(&self.inner)),
                };
            }
            let (sender, receiver) = oneshot::channel();
            let queue = inner.waiting.entry(tenant.clone()).or_default();
            if queue.is_empty() {
                inner.turn.push_back(tenant.clone());
            }
            if let Some(queue) = inner.waiting.get_mut(tenant) {
                queue.push_back(sender);
            }
            receiver
        };
        match receiver.await {
            Ok(slot) => slot,
            // The queue is gone (it never drops a waiter while it lives).
            Err(_) => Slot { queue: None },
        }
    }

    /// Tasks waiting for a slot, for `/metrics`.
    pub fn waiting(&self) -> usize {
        self.inner
            .lock()
            .map(|inner| inner.waiting.values().map(VecDeque::len).sum())
            .unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(queue) = self.queue.take() else {
            return;
        };
        let Ok(mut inner) = queue.lock() else {
            return;
        };
        // The place goes to the next tenant in turn whose waiter is still there (a cancelled
        // query's waiters are skipped); that tenant goes to the back of the turn if it has more.
        while let Some(tenant) = inner.turn.pop_front() {
            let Some(waiters) = inner.waiting.get_mut(&tenant) else {
                continue;
            };
            let mut handed = false;
            while let Some(waiter) = waiters.pop_front() {
                let slot = Slot {
                    queue: Some(Arc::clone(&queue)),
                };
                match waiter.send(slot) {
                    Ok(()) => {
                        handed = true;
                        break;
                    }
                    // The waiter went away: `send` gave the slot back, and dropping it must not
                    // re-enter this lock.
                    Err(mut unsent) => unsent.queue = None,
                }
            }
            if waiters.is_empty() {
                inner.waiting.remove(&tenant);
            } else {
                inner.turn.push_back(tenant);
            }
            if handed {
                return;
            }
        }
        inner.free += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tenant(name: &str) -> TenantId {
        TenantId::new(name).expect("tenant")
    }

    /// With one slot, a tenant that queued 50 tasks first and a tenant that queued 2 later are
    /// served in turn: the second tenant's tasks run second and fourth, not 51st and 52nd.
    #[tokio::test]
    async fn tenants_take_turns() {
        let queue = FairQueue::new(1);
        let first = queue.acquire(&tenant("busy")).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, count) in [("busy", 50), ("dashboard", 2)] {
            for i in 0..count {
                let (shared, order, t) = (queue.clone(), Arc::clone(&order), tenant(name));
                tasks.push(tokio::spawn(async move {
                    let _slot = shared.acquire(&t).await;
                    order.lock().expect("order").push(format!("{name}{i}"));
                    tokio::task::yield_now().await;
                }));
                // Arrival order is the spawn order.
                while queue.waiting() < tasks.len() {
                    tokio::task::yield_now().await;
                }
            }
        }
        assert_eq!(queue.waiting(), 52);
        drop(first);
        for task in tasks {
            task.await.expect("task");
        }
        let order = order.lock().expect("order").clone();
        assert_eq!(order.len(), 52);
        assert_eq!(&order[..4], ["busy0", "dashboard0", "busy1", "dashboard1"]);
        assert_eq!(queue.waiting(), 0);
    }

    /// A waiter that gives up does not take a slot with it, and slots are all given back.
    #[tokio::test]
    async fn cancelled_waiters_are_skipped() {
        let queue = FairQueue::new(2);
        let a = queue.acquire(&tenant("a")).await;
        let b = queue.acquire(&tenant("a")).await;
        let b_tenant = tenant("b");
        let gave_up = tokio::time::timeout(Duration::from_millis(10), queue.acquire(&b_tenant));
        assert!(gave_up.await.is_err());
        drop(a);
        drop(b);
        let c = queue.acquire(&tenant("c")).await;
        let d = queue.acquire(&tenant("d")).await;
        let e_tenant = tenant("e");
        assert!(
            tokio::time::timeout(Duration::from_millis(10), queue.acquire(&e_tenant))
                .await
                .is_err()
        );
        drop((c, d));
        assert_eq!(queue.inner.lock().expect("lock").free, 2);
    }
}
