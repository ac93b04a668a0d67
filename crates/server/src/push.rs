//! `push.v1.PusherService/Push` (Connect, gRPC or gRPC-Web; see [`crate::rpc`]): what Grafana
//! Alloy and the Pyroscope SDKs built on pyroscope-rs send (`api.md` §2.2).

use crate::error::{ApiError, Code};
use crate::proto::push::v1::{PushRequest, PushResponse};
use crate::rpc::{Call, invalid};
use formats::pprof;
use model::LabelPair;

pub async fn push(call: Call, request: PushRequest) -> Result<PushResponse, ApiError> {
    let tenant = call.tenant()?;
    let state = &call.state;
    if request.series.iter().all(|s| s.samples.is_empty()) {
        return Err(invalid("no profiles received"));
    }
    let tenant_limits = state.limits.get(&tenant);
    let limits = &tenant_limits.profile_limits();
    let label_limits = tenant_limits.label_limits();
    let body_limit = tenant_limits.body_limit_bytes();
    let now_nanos = compactor::now_ms().saturating_mul(1_000_000);
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
    let _reservation = state.inflight.reserve(total_size).await;
    let mut prepared = Vec::with_capacity(raws.len());
    for (labels, raw) in raws {
        let profile =
            pprof::decode_for_ingest(&raw, usize::MAX).map_err(|e| invalid(e.to_string()))?;
        let series = pprof::prepare_push(
            profile,
            &labels,
            limits,
            &label_limits,
            raw.len(),
            now_nanos,
        )
        .map_err(|e| {
            state.metrics.discarded(&tenant, e.reason.as_str());
            invalid(e.message)
        })?;
        prepared.push((series, raw.len()));
    }
    // The tenant's ingestion rate, in uncompressed bytes.
    state.limits.admit(&tenant, total_size).inspect_err(|_| {
        state.metrics.discarded(&tenant, "rate_limited");
    })?;
    // Every profile of the request is valid: store them all, then answer.
    for (series, size) in prepared {
        if series.is_empty() {
            continue;
        }
        state
            .writer
            .write(tenant.clone(), series, size)
            .await
            .map_err(|e| ApiError::new(Code::Unavailable, e.to_string()))?;
        state.metrics.ingested(&tenant, size, 1);
    }
    Ok(PushResponse {})
}
