//! `push.v1.PusherService/Push` (Connect, gRPC or gRPC-Web; see [`crate::rpc`]): what Grafana
//! Alloy and the Pyroscope SDKs built on pyroscope-rs send (`api.md` §2.2). The request's
//! profiles are decompressed into a batch for the distributor.

use crate::distributor::{self, Batch, Body, Incoming};
use crate::error::ApiError;
use crate::rpc::{Call, invalid};
use api::proto::push::v1::{PushRequest, PushResponse};
use bytes::Bytes;
use formats::pprof;
use model::LabelPair;

pub async fn push(call: Call, request: PushRequest) -> Result<PushResponse, ApiError> {
    let tenant = call.tenant()?;
    if request.series.iter().all(|s| s.samples.is_empty()) {
        return Err(invalid("no profiles received"));
    }
    let limits = call.state.limits.get(&tenant);
    distributor::distribute(&call.state, &tenant, move || batch(request, &limits)).await?;
    Ok(PushResponse {})
}

/// Every profile of the request, decompressed, with its series' labels.
fn batch(request: PushRequest, limits: &crate::limits::Limits) -> Result<Batch, ApiError> {
    let body_limit = limits.body_limit_bytes();
    let size_limit = match limits.max_profile_size_bytes {
        0 => usize::MAX,
        limit => limit,
    };
    let mut total = 0usize;
    let mut profiles = Vec::new();
    for series in request.series {
        let pairs: Vec<LabelPair> = series
            .labels
            .into_iter()
            .map(|l| LabelPair::new(l.name, l.value))
            .collect();
        let labels = pprof::request_labels(&pairs).map_err(|e| invalid(e.message))?;
        for sample in series.samples {
            let raw = formats::compression::decompress(&sample.raw_profile, size_limit)
                .map_err(|e| invalid(e.to_string()))?;
            total = total.saturating_add(raw.len());
            if total > body_limit {
                return Err(invalid(
                    "uncompressed batched profile payload size exceeds limit",
                ));
            }
            let size = raw.len();
            let bytes = match raw {
                std::borrow::Cow::Owned(raw) => Bytes::from(raw),
                std::borrow::Cow::Borrowed(_) => Bytes::from(sample.raw_profile),
            };
            profiles.push(Incoming::new(
                Body::Pprof {
                    bytes,
                    labels: labels.clone(),
                },
                size,
            ));
        }
    }
    Ok(Batch {
        profiles,
        total,
        request: None,
    })
}
