//! The segment writer's side of the ingest pipeline: a distributor's [`Batch`] decoded,
//! validated, repaired and split (`prepare_view` under the tenant's limits), then added to the
//! segment writer's head, all on a blocking thread ([`write`]); then the wait for the segment
//! ([`Added::durable`]). Refusals and acceptances are counted for `/metrics`.

use crate::AppState;
use crate::distributor::{Batch, Body, Incoming};
use crate::error::{ApiError, Code};
use crate::legacy_ingest;
use crate::limits::Limits;
use formats::pprof::{self, Prepared, ProfileView, RewriteSlot};
use model::{Labels, TenantId};
use std::sync::Arc;

tokio::task_local! {
    /// The request's place among the ingest requests handled at once (`admit_ingest`).
    pub(crate) static INGEST_PERMIT: std::cell::RefCell<Option<tokio::sync::OwnedSemaphorePermit>>;
}

/// Gives back the request's ingest place: its profiles are decoded and in the head.
pub(crate) fn release_ingest_permit() {
    let _ = INGEST_PERMIT.try_with(|permit| permit.borrow_mut().take());
}

/// The writes of one batch in the segment writer's head: its bytes and profiles.
pub(crate) struct Added {
    pending: Option<(ingest::PendingWrite, usize, usize)>,
    failed: Option<ApiError>,
}

/// Prepares every profile of `batch` for `tenant` and, if all of them are valid, adds them to
/// the segment writer's head; the batch's buffers are freed before this returns. CPU work runs
/// on a blocking thread (which waits there for room in the head).
pub(crate) async fn write(
    state: &Arc<AppState>,
    tenant: &TenantId,
    batch: Batch,
) -> Result<Added, ApiError> {
    let state = Arc::clone(state);
    let tenant = tenant.clone();
    let runtime = tokio::runtime::Handle::current();
    crate::distributor::off_runtime(move || {
        let Some(writer) = state.writer.as_ref() else {
            return Err(ApiError::new(
                Code::Unavailable,
                "this process does not run a segment writer",
            ));
        };
        let limits = state.limits.get(&tenant);
        let now_nanos = state.clock.now_nanos();
        let profiles = batch.profiles;
        let request = batch.request.as_deref();
        let mut slots: Vec<RewriteSlot> = profiles.iter().map(|_| None).collect();
        let mut repaired: Vec<Option<pprof::Profile>> = profiles.iter().map(|_| None).collect();
        let mut prepared = Vec::with_capacity(profiles.len());
        for ((incoming, slot), repaired) in profiles
            .iter()
            .zip(slots.iter_mut())
            .zip(repaired.iter_mut())
        {
            let (view, labels) = view(incoming, repaired)?;
            let series = prepare(
                &state,
                &tenant,
                view,
                slot,
                &labels,
                &limits,
                incoming.size,
                now_nanos,
            )?;
            prepared.push((series, incoming.size, incoming.id));
        }
        // Every profile is valid: add them all to the head at once (one request, one
        // segment), which is where their borrowed bytes are last read.
        let profiles: Vec<_> = prepared
            .into_iter()
            .filter(|(profile, _, _)| !profile.is_empty())
            .collect();
        if profiles.is_empty() {
            return Ok(Added {
                pending: None,
                failed: None,
            });
        }
        let (count, size) = (
            profiles.len(),
            profiles.iter().map(|(_, size, _)| size).sum(),
        );
        Ok(
            match runtime.block_on(writer.add_request(&tenant, profiles, request)) {
                Ok(write) => Added {
                    pending: Some((write, size, count)),
                    failed: None,
                },
                Err(error) => Added {
                    pending: None,
                    failed: Some(unavailable(&error)),
                },
            },
        )
    })
    .await
}

/// The decoded (and, for uploads, repaired) view of one incoming profile, with its labels.
fn view<'a>(
    incoming: &'a Incoming,
    repaired: &'a mut Option<pprof::Profile>,
) -> Result<(ProfileView<'a>, Labels), ApiError> {
    match &incoming.body {
        Body::Pprof { bytes, labels } => {
            let view = ProfileView::decode(bytes)
                .map_err(|e| ApiError::new(Code::InvalidArgument, e.to_string()))?;
            Ok((view, labels.clone()))
        }
        Body::Upload { bytes, upload } => legacy_ingest::repair_upload(bytes, upload, repaired),
        Body::Profile { profile, labels } => {
            Ok((ProfileView::from_profile(profile), labels.clone()))
        }
    }
}

/// Validates, repairs and splits one profile (`prepare_view`, on the flat arrays of a decoded
/// pprof or of a converter's profile); a refusal is counted by reason.
#[allow(clippy::too_many_arguments)]
fn prepare<'a>(
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
    .map_err(|e| {
        state.metrics.discarded(tenant, e.reason.as_str());
        ApiError::new(Code::InvalidArgument, e.message)
    })
}

fn unavailable(e: &ingest::IngestError) -> ApiError {
    ApiError::new(Code::Unavailable, e.to_string())
}

impl Added {
    /// Waits until the batch is durable (and counts it).
    pub(crate) async fn durable(self, state: &AppState, tenant: &TenantId) -> Result<(), ApiError> {
        if let Some(failed) = self.failed {
            return Err(failed);
        }
        if let Some((write, size, count)) = self.pending {
            write.durable().await.map_err(|e| unavailable(&e))?;
            state.metrics.ingested(tenant, size, count as u64);
        }
        Ok(())
    }
}
