//! The end of every ingest path (Push, `/ingest`, OTLP): a decoded profile through
//! `prepare_push` under the tenant's limits, then the request's bytes against its rate limit,
//! then the segment writer — with refusals and acceptances counted for `/metrics`.

use crate::AppState;
use crate::error::{ApiError, Code};
use crate::limits::Limits;
use formats::pprof::{self, Profile, SeriesProfile};
use model::{Labels, TenantId};

/// Validates, repairs and splits one profile (`prepare_push`); a refusal is counted by reason.
pub(crate) fn prepare(
    state: &AppState,
    tenant: &TenantId,
    profile: Profile,
    labels: &Labels,
    limits: &Limits,
    size: usize,
    now_nanos: i64,
) -> Result<Vec<SeriesProfile>, ApiError> {
    pprof::prepare_push(
        profile,
        labels,
        &limits.profile_limits(),
        &limits.label_limits(),
        size,
        now_nanos,
    )
    .map_err(|e| {
        state.metrics.discarded(tenant, e.reason.as_str());
        ApiError::new(Code::InvalidArgument, e.message)
    })
}

tokio::task_local! {
    /// The request's place among the ingest requests handled at once (`admit_ingest`).
    pub(crate) static INGEST_PERMIT: std::cell::RefCell<Option<tokio::sync::OwnedSemaphorePermit>>;
}

/// Gives back the request's ingest place: its body is read and decoded.
fn release_ingest_permit() {
    let _ = INGEST_PERMIT.try_with(|permit| permit.borrow_mut().take());
}

/// Admits `total` uncompressed bytes against the tenant's ingestion rate, then adds every
/// prepared profile (series, size) to the segment writer's head and answers once all are
/// durable. The request's memory `reservation` (its decoded profiles) is given back as soon as
/// they are in the head, whose size limit bounds them from there: a caller that still holds
/// its body while it waits passes `None` and keeps its reservation until the answer.
pub(crate) async fn store(
    state: &AppState,
    tenant: &TenantId,
    total: usize,
    prepared: Vec<(Vec<SeriesProfile>, usize)>,
    reservation: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<(), ApiError> {
    release_ingest_permit();
    state.limits.admit(tenant, total).inspect_err(|_| {
        state.metrics.discarded(tenant, "rate_limited");
    })?;
    let unavailable = |e: ingest::IngestError| ApiError::new(Code::Unavailable, e.to_string());
    let mut pending = Vec::with_capacity(prepared.len());
    let mut failed = None;
    for (series, size) in prepared {
        if series.is_empty() {
            continue;
        }
        match state.writer.add(tenant, series, size).await {
            Ok(write) => pending.push((write, size)),
            Err(error) => {
                failed = Some(unavailable(error));
                break;
            }
        }
    }
    drop(reservation);
    // Every added write is waited for (and counted when stored), even after a failure.
    for (write, size) in pending {
        match write.durable().await {
            Ok(()) => state.metrics.ingested(tenant, size, 1),
            Err(error) => {
                failed.get_or_insert(unavailable(error));
            }
        }
    }
    failed.map_or(Ok(()), Err)
}
