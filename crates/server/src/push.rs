//! `push.v1.PusherService/Push` (Connect, gRPC or gRPC-Web; see [`crate::rpc`]): what Grafana
//! Alloy and the Pyroscope SDKs built on pyroscope-rs send (`api.md` §2.2).

use crate::error::ApiError;
use crate::rpc::{Call, invalid};
use crate::store;
use api::proto::push::v1::{PushRequest, PushResponse};
use formats::pprof;
use model::LabelPair;

pub async fn push(call: Call, request: PushRequest) -> Result<PushResponse, ApiError> {
    let tenant = call.tenant()?;
    let state = &call.state;
    if request.series.iter().all(|s| s.samples.is_empty()) {
        return Err(invalid("no profiles received"));
    }
    let limits = state.limits.get(&tenant);
    let body_limit = limits.body_limit_bytes();
    let now_nanos = state.clock.now_nanos();
    let size_limit = match limits.max_profile_size_bytes {
        0 => usize::MAX,
        limit => limit,
    };
    // Decompress everything first: the memory reservation covers the whole request.
    let mut total_size = 0usize;
    let mut raws = Vec::new();
    for series in &request.series {
        let pairs: Vec<LabelPair> = series
            .labels
            .iter()
            .map(|l| LabelPair::new(l.name.clone(), l.value.clone()))
            .collect();
        let labels = pprof::request_labels(&pairs).map_err(|e| invalid(e.message))?;
        for sample in &series.samples {
            let raw = formats::compression::decompress(&sample.raw_profile, size_limit)
                .map_err(|e| invalid(e.to_string()))?;
            total_size = total_size.saturating_add(raw.len());
            if total_size > body_limit {
                return Err(invalid(
                    "uncompressed batched profile payload size exceeds limit",
                ));
            }
            raws.push((labels.clone(), raw));
        }
    }
    let reservation = state.inflight.reserve(total_size).await;
    let mut slots: Vec<pprof::RewriteSlot> = raws.iter().map(|_| None).collect();
    let mut prepared = Vec::with_capacity(raws.len());
    for ((labels, raw), slot) in raws.iter().zip(slots.iter_mut()) {
        // The view borrows its strings from `raw` until the segment writer has interned them.
        let profile = pprof::ProfileView::decode(raw).map_err(|e| invalid(e.to_string()))?;
        let series = store::prepare(
            state,
            &tenant,
            profile,
            slot,
            labels,
            &limits,
            raw.len(),
            now_nanos,
        )?;
        prepared.push((series, raw.len()));
    }
    // Every profile of the request is valid: add them all to the head, then answer once they
    // are durable. The request's bytes are not kept while its writes wait for their segment.
    let added = store::add(state, &tenant, total_size, prepared, reservation).await;
    drop(slots);
    drop(raws);
    drop(request);
    added?.durable(state, &tenant).await?;
    Ok(PushResponse {})
}
