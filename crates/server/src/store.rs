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

/// Gives back the request's ingest place: its body is read and decoded, and what is left to do
/// (waiting for the segment writer) holds only the decoded series, which the writer bounds.
fn release_ingest_permit() {
    let _ = INGEST_PERMIT.try_with(|permit| permit.borrow_mut().take());
}

/// Admits `total` uncompressed bytes against the tenant's ingestion rate, then stores every
/// prepared profile (series, size) and answers once all are durable.
pub(crate) async fn store(
    state: &AppState,
    tenant: &TenantId,
    total: usize,
    prepared: Vec<(Vec<SeriesProfile>, usize)>,
) -> Result<(), ApiError> {
    release_ingest_permit();
    state.limits.admit(tenant, total).inspect_err(|_| {
        state.metrics.discarded(tenant, "rate_limited");
    })?;
    for (series, size) in prepared {
        if series.is_empty() {
            continue;
        }
        state
            .writer
            .write(tenant.clone(), series, size)
            .await
            .map_err(|e| ApiError::new(Code::Unavailable, e.to_string()))?;
        state.metrics.ingested(tenant, size, 1);
    }
    Ok(())
}
