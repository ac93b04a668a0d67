//! The end of every ingest path (Push, `/ingest`, OTLP): a profile's view through
//! `prepare_view` under the tenant's limits, then the request's bytes against its rate limit,
//! then the segment writer's head (`add`, after which the caller frees its buffers) and the
//! wait for the segment (`Added::durable`) — with refusals and acceptances counted for
//! `/metrics`.

use crate::AppState;
use crate::error::{ApiError, Code};
use crate::limits::Limits;
use formats::pprof::{self, Prepared, ProfileView, RewriteSlot};
use model::{Labels, TenantId};

/// Validates, repairs and splits one profile (`prepare_view`, on the flat arrays of a decoded
/// pprof or of a converter's profile); a refusal is counted by reason.
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare<'a>(
    state: &AppState,
    tenant: &TenantId,
    profile: ProfileView<'a>,
    rewrites: &'a mut RewriteSlot,
    labels: &Labels,
    limits: &Limits,
    size: usize,
    now_nanos: i64,
) -> Result<Prepared<'a>, ApiError> {
    pprof::prepare_view(
        profile,
        rewrites,
        labels,
        &limits.profile_limits(),
        &limits.label_limits(),
        size,
        now_nanos,
    )
    .map_err(|e| refused(state, tenant, e))
}

fn refused(state: &AppState, tenant: &TenantId, e: pprof::ValidationError) -> ApiError {
    state.metrics.discarded(tenant, e.reason.as_str());
    ApiError::new(Code::InvalidArgument, e.message)
}

tokio::task_local! {
    /// The request's place among the ingest requests handled at once (`admit_ingest`).
    pub(crate) static INGEST_PERMIT: std::cell::RefCell<Option<tokio::sync::OwnedSemaphorePermit>>;
}

/// Gives back the request's ingest place: its body is read and decoded.
fn release_ingest_permit() {
    let _ = INGEST_PERMIT.try_with(|permit| permit.borrow_mut().take());
}

/// The writes of one request in the segment writer's head.
pub(crate) struct Added {
    pending: Vec<(ingest::PendingWrite, usize)>,
    failed: Option<ApiError>,
}

/// Admits `total` uncompressed bytes against the tenant's ingestion rate, then adds every
/// prepared profile (profile, size) to the segment writer's head, which is where their borrowed
/// bytes (a view's strings and arrays) are last read: the caller frees its buffers, then waits
/// on [`Added::durable`] to answer. The request's memory `reservation` (its decoded profiles) is
/// given back once they are in the head, whose size limit bounds them from there; a caller that
/// still holds its body while it waits passes `None` and keeps its reservation until the
/// answer.
pub(crate) async fn add(
    state: &AppState,
    tenant: &TenantId,
    total: usize,
    prepared: Vec<(Prepared<'_>, usize)>,
    reservation: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<Added, ApiError> {
    release_ingest_permit();
    state.limits.admit(tenant, total).inspect_err(|_| {
        state.metrics.discarded(tenant, "rate_limited");
    })?;
    let mut pending = Vec::with_capacity(prepared.len());
    let mut failed = None;
    for (profile, size) in prepared {
        if profile.is_empty() {
            continue;
        }
        match state.writer.add(tenant, profile, size).await {
            Ok(write) => pending.push((write, size)),
            Err(error) => {
                failed = Some(unavailable(&error));
                break;
            }
        }
    }
    drop(reservation);
    Ok(Added { pending, failed })
}

fn unavailable(e: &ingest::IngestError) -> ApiError {
    ApiError::new(Code::Unavailable, e.to_string())
}

impl Added {
    /// Waits until every added write is durable (and counts it), even after a failure; the
    /// first failure is the answer.
    pub(crate) async fn durable(self, state: &AppState, tenant: &TenantId) -> Result<(), ApiError> {
        let mut failed = self.failed;
        for (write, size) in self.pending {
            match write.durable().await {
                Ok(()) => state.metrics.ingested(tenant, size, 1),
                Err(error) => {
                    failed.get_or_insert(unavailable(&error));
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }
}
