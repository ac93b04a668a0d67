//! `POST /push.v1.PusherService/Push` over Connect unary (`application/proto` or
//! `application/json`, optionally gzip): what Grafana Alloy and the Pyroscope SDKs built on
//! pyroscope-rs send (`api.md` §2.2).

use crate::AppState;
use crate::connect::{self, BODY_LIMIT, Codec, invalid};
use crate::error::{ApiError, Code};
use crate::proto::push::v1::{PushRequest, PushResponse};
use crate::proto::types::v1::LabelPair as WireLabel;
use crate::tenant::tenant;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use formats::pprof;
use model::LabelPair;
use prost::Message;
use serde::Deserialize;
use std::sync::Arc;

/// The JSON form of a push (protojson: lowerCamelCase, bytes as base64, `ID` kept).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonPush {
    #[serde(default)]
    series: Vec<JsonSeries>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonSeries {
    #[serde(default)]
    labels: Vec<JsonLabel>,
    #[serde(default)]
    samples: Vec<JsonSample>,
    #[serde(default)]
    annotations: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLabel {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonSample {
    #[serde(default, rename = "rawProfile", alias = "raw_profile")]
    raw_profile: String,
    #[serde(default, rename = "ID")]
    _id: String,
}

fn decode_request(headers: &HeaderMap, body: Bytes) -> Result<(PushRequest, Codec), ApiError> {
    let (codec, body) = connect::read(headers, body)?;
    let request = match codec {
        Codec::Proto => {
            PushRequest::decode(body).map_err(|e| invalid(format!("unmarshal message: {e}")))?
        }
        Codec::Json => {
            let json: JsonPush = serde_json::from_slice(&body)
                .map_err(|e| invalid(format!("unmarshal message: {e}")))?;
            let mut series = Vec::with_capacity(json.series.len());
            for s in json.series {
                let mut samples = Vec::with_capacity(s.samples.len());
                for sample in s.samples {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(sample.raw_profile.as_bytes())
                        .map_err(|e| invalid(format!("unmarshal message: rawProfile: {e}")))?;
                    samples.push(crate::proto::push::v1::RawSample {
                        raw_profile: raw,
                        id: String::new(),
                    });
                }
                let _ = s.annotations;
                series.push(crate::proto::push::v1::RawProfileSeries {
                    labels: s
                        .labels
                        .into_iter()
                        .map(|l| WireLabel {
                            name: l.name,
                            value: l.value,
                        })
                        .collect(),
                    samples,
                    annotations: Vec::new(),
                });
            }
            PushRequest { series }
        }
    };
    Ok((request, codec))
}

pub async fn push(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = tenant(&headers, state.multitenancy)?;
    let (request, codec) = decode_request(&headers, body)?;
    if request.series.iter().all(|s| s.samples.is_empty()) {
        return Err(invalid("no profiles received"));
    }
    let limits = &state.profile_limits;
    let now_nanos = compactor::now_ms().saturating_mul(1_000_000);
    let mut total_size = 0usize;
    let mut prepared = Vec::new();
    for series in &request.series {
        let pairs: Vec<LabelPair> = series
            .labels
            .iter()
            .map(|l| LabelPair::new(l.name.clone(), l.value.clone()))
            .collect();
        let labels = pprof::request_labels(&pairs).map_err(|e| invalid(e.message))?;
        for sample in &series.samples {
            let raw = formats::compression::decompress(
                &sample.raw_profile,
                limits.max_profile_size_bytes,
            )
            .map_err(|e| invalid(e.to_string()))?;
            total_size = total_size.saturating_add(raw.len());
            if total_size > BODY_LIMIT {
                return Err(invalid(
                    "uncompressed batched profile payload size exceeds limit",
                ));
            }
            let profile = pprof::decode(&raw, usize::MAX).map_err(|e| invalid(e.to_string()))?;
            let series = pprof::prepare_push(
                profile,
                &labels,
                limits,
                &state.label_limits,
                raw.len(),
                now_nanos,
            )
            .map_err(|e| invalid(e.message))?;
            prepared.push((series, raw.len()));
        }
    }
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
    }
    Ok(connect::respond(
        codec,
        &PushResponse {},
        &serde_json::json!({}),
    ))
}
