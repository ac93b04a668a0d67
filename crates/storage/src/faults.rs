//! An object store wrapper that makes writes fail or hang on demand, for testing that writes
//! are retried or refused, never acknowledged and lost.

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What happens to one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The write fails at once; nothing is stored.
    Fail,
    /// The write hangs for this long, then fails; nothing is stored (a timeout, as a client
    /// with a deadline sees it).
    Hang(Duration),
    /// The write is stored, then reported as failed (the response was lost).
    StoreThenFail,
}

/// Wraps a store; writes (`put`, multipart uploads) take the next planned fault, if any.
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    plan: Mutex<VecDeque<Fault>>,
    writes: AtomicU64,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> FaultyStore {
        FaultyStore {
            inner,
            plan: Mutex::new(VecDeque::new()),
            writes: AtomicU64::new(0),
        }
    }

    /// Queues faults for the next writes, in order.
    pub fn plan(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().extend(faults);
    }

    /// Writes attempted so far, faulty or not.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Fault>> {
        // A panic while holding this lock cannot leave the queue inconsistent.
        self.plan
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn next_fault(&self) -> Option<Fault> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.lock().pop_front()
    }
}

fn injected(location: &Path) -> object_store::Error {
    object_store::Error::Generic {
        store: "faulty",
        source: format!("injected write failure for {location}").into(),
    }
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        match self.next_fault() {
            None => self.inner.put_opts(location, payload, opts).await,
            Some(Fault::Fail) => Err(injected(location)),
            Some(Fault::Hang(duration)) => {
                tokio::time::sleep(duration).await;
                Err(injected(location))
            }
            Some(Fault::StoreThenFail) => {
                self.inner.put_opts(location, payload, opts).await?;
                Err(injected(location))
            }
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        match self.next_fault() {
            None | Some(Fault::StoreThenFail) => {
                self.inner.put_multipart_opts(location, opts).await
            }
            Some(Fault::Fail) => Err(injected(location)),
            Some(Fault::Hang(duration)) => {
                tokio::time::sleep(duration).await;
                Err(injected(location))
            }
        }
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
