//! `GET /pyroscope/render`: the flame graph of a selection as flamebearer JSON (`api.md` §4.1).

use crate::AppState;
use crate::attime;
use crate::error::{ApiError, Code};
use crate::tenant::tenant;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use formats::flamebearer::{FlamebearerProfile, Timeline};
use model::{FlameGraph, ProfileType, parse_selector};
use query::ProfileQuery;
use serde::Deserialize;
use std::sync::Arc;

/// `querier.max-flamegraph-nodes-default` and `-max`.
const MAX_NODES_DEFAULT: i64 = 8192;
const MAX_NODES_MAX: i64 = 1_048_576;

#[derive(Debug, Default, Deserialize)]
pub struct RenderParams {
    query: Option<String>,
    from: Option<String>,
    until: Option<String>,
    #[serde(rename = "max-nodes")]
    max_nodes_dash: Option<String>,
    #[serde(rename = "maxNodes")]
    max_nodes: Option<String>,
    format: Option<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::InvalidArgument, message)
}

/// Pyroscope's `ValidateMaxNodes`.
pub(crate) fn max_nodes(value: Option<&str>) -> Result<usize, ApiError> {
    let requested = match value {
        None | Some("") => 0,
        Some(text) => text.parse::<i64>().unwrap_or(0),
    };
    if requested > MAX_NODES_MAX {
        return Err(invalid(format!(
            "max flamegraph nodes limit {requested} is greater than allowed {MAX_NODES_MAX}"
        )));
    }
    if requested < 0 {
        return Err(invalid(format!(
            "max flamegraph nodes limit must be set (max allowed {MAX_NODES_MAX})"
        )));
    }
    Ok(if requested == 0 {
        MAX_NODES_DEFAULT
    } else {
        requested
    } as usize)
}

pub async fn render(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(params): Query<RenderParams>,
) -> Result<Response, ApiError> {
    let tenant = tenant(&headers, state.multitenancy)?;
    let query = params.query.as_deref().unwrap_or("");
    if query.trim().is_empty() {
        return Err(invalid("query is required"));
    }
    let selector = parse_selector(query).map_err(|e| invalid(e.to_string()))?;
    let Some(name) = selector.name else {
        return Err(invalid("the query has no profile type"));
    };
    let profile_type: ProfileType = name
        .parse()
        .map_err(|e: model::ProfileTypeError| invalid(e.to_string()))?;
    let now = compactor::now_ms();
    let from = params
        .from
        .as_deref()
        .map_or(now, |f| attime::parse_ms(f, now));
    let until = params
        .until
        .as_deref()
        .map_or(now, |u| attime::parse_ms(u, now));
    if from <= 0 || until <= 0 || from > until {
        return Err(invalid("invalid time range"));
    }
    if let Some(format) = params.format.as_deref()
        && format != "json"
    {
        return Err(invalid(format!(
            "format {format} is not supported by this server yet"
        )));
    }
    let max_nodes = max_nodes(
        params
            .max_nodes_dash
            .as_deref()
            .or(params.max_nodes.as_deref()),
    )?;
    let request = ProfileQuery {
        tenant,
        profile_type: profile_type.to_string(),
        matchers: selector.matchers,
        start_ms: from,
        end_ms: until,
    };
    let (tree, _) = state
        .querier
        .select_tree(&request)
        .await
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    let graph = FlameGraph::from_tree(&tree, max_nodes);
    let timeline = Timeline {
        start_time: from / 1000,
        samples: Vec::new(),
        duration_delta: 10,
        watermarks: None,
    };
    let json = FlamebearerProfile::single(graph, &profile_type, Some(timeline)).to_json();
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json,
    )
        .into_response())
}
