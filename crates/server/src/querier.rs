//! The Connect `querier.v1.QuerierService` methods served so far: `ProfileTypes` and
//! `SelectMergeStacktraces` (flame graph or tree bytes), with Pyroscope's validation.

use crate::AppState;
use crate::connect::{self, Codec, invalid, json_i64, json_object, json_string};
use crate::error::{ApiError, Code};
use crate::proto::querier::v1::{
    FlameGraph as WireFlameGraph, Level, ProfileFormat, ProfileTypesRequest, ProfileTypesResponse,
    SelectMergeStacktracesRequest, SelectMergeStacktracesResponse,
};
use crate::proto::types::v1::ProfileType as WireProfileType;
use crate::render::max_nodes;
use crate::tenant::tenant;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use model::{FlameGraph, ProfileType, parse_selector};
use prost::Message;
use query::ProfileQuery;
use std::sync::Arc;

/// The whole time axis, for requests without a range.
const ALL_TIME: (i64, i64) = (i64::MIN / 4, i64::MAX / 4);

pub async fn profile_types(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = tenant(&headers, state.multitenancy)?;
    let (codec, body) = connect::read(&headers, body)?;
    let request = match codec {
        Codec::Proto => ProfileTypesRequest::decode(body)
            .map_err(|e| invalid(format!("unmarshal message: {e}")))?,
        Codec::Json => {
            let json = json_object(&body)?;
            ProfileTypesRequest {
                start: json_i64(&json, "start")?,
                end: json_i64(&json, "end")?,
            }
        }
    };
    let (start, end) = if request.start <= 0 && request.end <= 0 {
        ALL_TIME
    } else {
        (
            request.start,
            if request.end <= 0 {
                ALL_TIME.1
            } else {
                request.end
            },
        )
    };
    let ids = state
        .querier
        .profile_types(&tenant, start, end)
        .await
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    let mut types = Vec::new();
    for id in ids {
        let Ok(parsed) = id.parse::<ProfileType>() else {
            continue;
        };
        types.push(WireProfileType {
            id: parsed.to_string(),
            name: parsed.name,
            sample_type: parsed.sample_type,
            sample_unit: parsed.sample_unit,
            period_type: parsed.period_type,
            period_unit: parsed.period_unit,
        });
    }
    let json = serde_json::json!({
        "profileTypes": types.iter().map(|t| serde_json::json!({
            "ID": t.id, "name": t.name, "sampleType": t.sample_type, "sampleUnit": t.sample_unit,
            "periodType": t.period_type, "periodUnit": t.period_unit,
        })).collect::<Vec<_>>()
    });
    Ok(connect::respond(
        codec,
        &ProfileTypesResponse {
            profile_types: types,
        },
        &json,
    ))
}

/// The query of a Select* request, checked as Pyroscope checks it: a valid profile type id, a
/// non-empty parsable label selector, and a range with `start <= end`.
fn profile_query(
    tenant: model::TenantId,
    profile_type_id: &str,
    label_selector: &str,
    start: i64,
    end: i64,
) -> Result<ProfileQuery, ApiError> {
    let profile_type: ProfileType = profile_type_id
        .parse()
        .map_err(|e: model::ProfileTypeError| invalid(e.to_string()))?;
    if label_selector.is_empty() {
        return Err(invalid("label selector is required"));
    }
    let selector = parse_selector(label_selector).map_err(|e| invalid(e.to_string()))?;
    if start == 0 || end == 0 {
        return Err(invalid("missing time range in the query"));
    }
    if start > end {
        return Err(invalid("invalid time range: start is after end"));
    }
    Ok(ProfileQuery {
        tenant,
        profile_type: profile_type.to_string(),
        matchers: selector.matchers,
        start_ms: start,
        end_ms: end,
    })
}

fn decode_select(codec: Codec, body: Bytes) -> Result<SelectMergeStacktracesRequest, ApiError> {
    Ok(match codec {
        Codec::Proto => SelectMergeStacktracesRequest::decode(body)
            .map_err(|e| invalid(format!("unmarshal message: {e}")))?,
        Codec::Json => {
            let json = json_object(&body)?;
            let format = match json.get("format") {
                None | Some(serde_json::Value::Null) => 0,
                Some(serde_json::Value::String(s)) => ProfileFormat::from_str_name(s)
                    .map(|f| f as i32)
                    .ok_or_else(|| {
                        invalid(format!("unmarshal message: format: invalid value {s:?}"))
                    })?,
                Some(_) => i32::try_from(json_i64(&json, "format")?)
                    .map_err(|_| invalid("unmarshal message: format"))?,
            };
            SelectMergeStacktracesRequest {
                profile_type_id: json_string(&json, "profileTypeID")?,
                label_selector: json_string(&json, "labelSelector")?,
                start: json_i64(&json, "start")?,
                end: json_i64(&json, "end")?,
                max_nodes: json
                    .get("maxNodes")
                    .map(|_| json_i64(&json, "maxNodes"))
                    .transpose()?,
                format,
            }
        }
    })
}

pub async fn select_merge_stacktraces(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = tenant(&headers, state.multitenancy)?;
    let (codec, body) = connect::read(&headers, body)?;
    let request = decode_select(codec, body)?;
    let query = profile_query(
        tenant,
        &request.profile_type_id,
        &request.label_selector,
        request.start,
        request.end,
    )?;
    let max_nodes = max_nodes(request.max_nodes.map(|n| n.to_string()).as_deref())?;
    let (tree, _) = state
        .querier
        .select_tree(&query)
        .await
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    if request.format == ProfileFormat::Tree as i32 {
        let bytes = tree.to_bytes(max_nodes);
        let json =
            serde_json::json!({ "tree": base64::engine::general_purpose::STANDARD.encode(&bytes) });
        let response = SelectMergeStacktracesResponse {
            flamegraph: None,
            tree: bytes,
        };
        return Ok(connect::respond(codec, &response, &json));
    }
    let graph = FlameGraph::from_tree(&tree, max_nodes);
    let mut flamegraph = serde_json::json!({
        "names": graph.names,
        "levels": graph.levels.iter().map(|l| serde_json::json!({
            "values": l.iter().map(i64::to_string).collect::<Vec<_>>()
        })).collect::<Vec<_>>(),
    });
    // protojson leaves out fields at their default.
    if graph.total != 0 {
        flamegraph["total"] = serde_json::json!(graph.total.to_string());
    }
    if graph.max_self != 0 {
        flamegraph["maxSelf"] = serde_json::json!(graph.max_self.to_string());
    }
    let response = SelectMergeStacktracesResponse {
        flamegraph: Some(WireFlameGraph {
            names: graph.names,
            levels: graph
                .levels
                .into_iter()
                .map(|values| Level { values })
                .collect(),
            total: graph.total,
            max_self: graph.max_self,
        }),
        tree: Vec::new(),
    };
    Ok(connect::respond(
        codec,
        &response,
        &serde_json::json!({ "flamegraph": flamegraph }),
    ))
}

/// Parses the `matchers` of a label request; Pyroscope v1 answers an unparsable one with an
/// empty result (200), which `None` stands for here.
fn selectors(matchers: &[String]) -> Option<Vec<Vec<model::Matcher>>> {
    matchers
        .iter()
        .map(|m| parse_selector(m).ok().map(|s| s.matchers))
        .collect()
}

/// A request's range in milliseconds; no range means all time (Pyroscope v1).
fn range(start: i64, end: i64) -> (i64, i64) {
    (
        if start <= 0 { ALL_TIME.0 } else { start },
        if end <= 0 { ALL_TIME.1 } else { end },
    )
}

fn json_strings(json: &serde_json::Value, field: &str) -> Result<Vec<String>, ApiError> {
    match json.get(field) {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(format!("unmarshal message: {field}")))
            })
            .collect(),
        Some(_) => Err(invalid(format!("unmarshal message: {field}"))),
    }
}

async fn matching_series(
    state: &AppState,
    tenant: &model::TenantId,
    matchers: &[String],
    start: i64,
    end: i64,
) -> Result<Vec<model::Labels>, ApiError> {
    let Some(selectors) = selectors(matchers) else {
        return Ok(Vec::new());
    };
    let (start, end) = range(start, end);
    state
        .querier
        .series(tenant, &selectors, start, end)
        .await
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))
}

pub async fn label_names(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    use crate::proto::types::v1::{LabelNamesRequest, LabelNamesResponse};
    let tenant = tenant(&headers, state.multitenancy)?;
    let (codec, body) = connect::read(&headers, body)?;
    let request = match codec {
        Codec::Proto => LabelNamesRequest::decode(body)
            .map_err(|e| invalid(format!("unmarshal message: {e}")))?,
        Codec::Json => {
            let json = json_object(&body)?;
            LabelNamesRequest {
                matchers: json_strings(&json, "matchers")?,
                start: json_i64(&json, "start")?,
                end: json_i64(&json, "end")?,
            }
        }
    };
    let series = matching_series(
        &state,
        &tenant,
        &request.matchers,
        request.start,
        request.end,
    )
    .await?;
    let names: std::collections::BTreeSet<String> = series
        .iter()
        .flat_map(|l| l.iter().map(|p| p.name.clone()))
        .collect();
    let names: Vec<String> = names.into_iter().collect();
    let json = serde_json::json!({ "names": names });
    Ok(connect::respond(
        codec,
        &LabelNamesResponse { names },
        &json,
    ))
}

pub async fn label_values(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    use crate::proto::types::v1::{LabelValuesRequest, LabelValuesResponse};
    let tenant = tenant(&headers, state.multitenancy)?;
    let (codec, body) = connect::read(&headers, body)?;
    let request = match codec {
        Codec::Proto => LabelValuesRequest::decode(body)
            .map_err(|e| invalid(format!("unmarshal message: {e}")))?,
        Codec::Json => {
            let json = json_object(&body)?;
            LabelValuesRequest {
                name: json_string(&json, "name")?,
                matchers: json_strings(&json, "matchers")?,
                start: json_i64(&json, "start")?,
                end: json_i64(&json, "end")?,
            }
        }
    };
    let series = matching_series(
        &state,
        &tenant,
        &request.matchers,
        request.start,
        request.end,
    )
    .await?;
    let values: std::collections::BTreeSet<String> = series
        .iter()
        .filter_map(|l| l.get(&request.name).map(str::to_owned))
        .collect();
    let names: Vec<String> = values.into_iter().collect();
    let json = serde_json::json!({ "names": names });
    Ok(connect::respond(
        codec,
        &LabelValuesResponse { names },
        &json,
    ))
}

pub async fn series(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    use crate::proto::querier::v1::{SeriesRequest, SeriesResponse};
    use crate::proto::types::v1::{LabelPair, Labels};
    let tenant = tenant(&headers, state.multitenancy)?;
    let (codec, body) = connect::read(&headers, body)?;
    let request = match codec {
        Codec::Proto => {
            SeriesRequest::decode(body).map_err(|e| invalid(format!("unmarshal message: {e}")))?
        }
        Codec::Json => {
            let json = json_object(&body)?;
            SeriesRequest {
                matchers: json_strings(&json, "matchers")?,
                label_names: json_strings(&json, "labelNames")?,
                start: json_i64(&json, "start")?,
                end: json_i64(&json, "end")?,
            }
        }
    };
    let series = matching_series(
        &state,
        &tenant,
        &request.matchers,
        request.start,
        request.end,
    )
    .await?;
    // With label names, each set is cut down to them (in the order asked) and repeats removed.
    let mut seen = std::collections::BTreeSet::new();
    let mut sets = Vec::new();
    for labels in &series {
        let pairs: Vec<LabelPair> = if request.label_names.is_empty() {
            labels
                .iter()
                .map(|p| LabelPair {
                    name: p.name.clone(),
                    value: p.value.clone(),
                })
                .collect()
        } else {
            request
                .label_names
                .iter()
                .filter_map(|name| {
                    labels.get(name).map(|value| LabelPair {
                        name: name.clone(),
                        value: value.to_owned(),
                    })
                })
                .collect()
        };
        let key: Vec<(String, String)> = pairs
            .iter()
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect();
        if seen.insert(key) {
            sets.push(Labels { labels: pairs });
        }
    }
    let json = serde_json::json!({
        "labelsSet": sets.iter().map(|s| serde_json::json!({
            "labels": s.labels.iter().map(|p| serde_json::json!({"name": p.name, "value": p.value})).collect::<Vec<_>>()
        })).collect::<Vec<_>>()
    });
    Ok(connect::respond(
        codec,
        &SeriesResponse { labels_set: sets },
        &json,
    ))
}

/// `SelectMergeProfile`: the selection as one pprof (`google.v1.Profile`, the pprof wire
/// format). Answered in `application/proto`; its protojson form is not served yet.
pub async fn select_merge_profile(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    use crate::proto::querier::v1::SelectMergeProfileRequest;
    let tenant = tenant(&headers, state.multitenancy)?;
    let (codec, body) = connect::read(&headers, body)?;
    if codec == Codec::Json {
        return Err(ApiError::new(
            Code::Unimplemented,
            "SelectMergeProfile answers application/proto only for now",
        ));
    }
    let request = SelectMergeProfileRequest::decode(body)
        .map_err(|e| invalid(format!("unmarshal message: {e}")))?;
    let query = profile_query(
        tenant,
        &request.profile_type_id,
        &request.label_selector,
        request.start,
        request.end,
    )?;
    let profile = state
        .querier
        .select_profile(&query)
        .await
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    Ok(connect::respond(codec, &profile, &serde_json::Value::Null))
}
