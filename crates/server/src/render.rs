//! The legacy HTTP query API (`api.md` §4): `GET /pyroscope/render` (flamebearer JSON with its
//! timeline and groups, or Graphviz DOT), `GET /pyroscope/render-diff` and
//! `GET /pyroscope/label-values`.

use crate::AppState;
use crate::attime;
use crate::error::{ApiError, Code};
use crate::limits::Limits;
use crate::querier::{ALL_TIME, cpu, selection};
use crate::tenant::tenant;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use formats::flamebearer::{FlamebearerProfile, Timeline};
use model::label_names;
use model::{FlameGraph, FlameGraphDiff, ProfileType, parse_selector};
use query::{Aggregation, ExemplarKind, Selection, SeriesParams, TimeSeries};
use std::collections::BTreeMap;
use std::sync::Arc;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::InvalidArgument, message)
}

/// The query string's parameters; repeated ones (`groupBy`) keep every value.
#[derive(Debug, Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<&str>) -> Params {
        Params(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// `maxNodes` wins over `max-nodes`; unparsable or zero means the tenant's default.
    fn max_nodes(&self, limits: &Limits) -> Result<usize, ApiError> {
        let value = self
            .get("maxNodes")
            .filter(|v| !v.is_empty())
            .or_else(|| self.get("max-nodes"));
        limits.max_nodes(value.map(|v| v.trim().parse::<i64>().unwrap_or(0)))
    }
}

/// A `/render` query: `<profile type>{matchers}` plus a range (defaults: now).
fn parse_query(
    limits: &Limits,
    tenant: model::TenantId,
    query: Option<&str>,
    from: Option<&str>,
    until: Option<&str>,
    now: i64,
) -> Result<(Selection, ProfileType), ApiError> {
    let query = query.unwrap_or("");
    if query.trim().is_empty() {
        return Err(invalid("\"query\" is required"));
    }
    let selector =
        parse_selector(query).map_err(|e| invalid(format!("failed to parse \"query\": {e}")))?;
    let Some(name) = selector.name else {
        return Err(invalid("\"query\" must contain a profile-type selection"));
    };
    let profile_type: ProfileType = name
        .parse()
        .map_err(|e: model::ProfileTypeError| invalid(format!("failed to parse \"query\": {e}")))?;
    let from = from.map_or(now, |f| attime::parse_ms(f, now));
    let until = until.map_or(now, |u| attime::parse_ms(u, now));
    let mut request = selection(
        limits,
        tenant,
        &profile_type.to_string(),
        "{}",
        from,
        until,
        now,
    )?;
    request.matchers = selector.matchers;
    Ok((request, profile_type))
}

/// Grafana's interval rounding (`CalcPointInterval`): `(until - from) / 1500` rounded to the
/// nearest "nice" step, at least 15 s. In seconds.
pub(crate) fn point_interval_seconds(from_ms: i64, until_ms: i64) -> i64 {
    let interval = (until_ms.saturating_sub(from_ms) / 1500).max(0);
    const LADDER: &[(i64, i64)] = &[
        (15, 10),
        (35, 20),
        (75, 50),
        (150, 100),
        (350, 200),
        (750, 500),
        (1_500, 1_000),
        (3_500, 2_000),
        (7_500, 5_000),
        (12_500, 10_000),
        (17_500, 15_000),
        (25_000, 20_000),
        (45_000, 30_000),
        (90_000, 60_000),
        (210_000, 120_000),
        (450_000, 300_000),
        (750_000, 600_000),
        (1_050_000, 900_000),
        (1_500_000, 1_200_000),
        (2_700_000, 1_800_000),
        (5_400_000, 3_600_000),
        (9_000_000, 7_200_000),
        (16_200_000, 10_800_000),
        (32_400_000, 21_600_000),
        (86_400_000, 43_200_000),
        (604_800_000, 86_400_000),
        (1_814_400_000, 604_800_000),
        (3_628_800_000, 2_592_000_000),
    ];
    let rounded = LADDER
        .iter()
        .find(|&&(limit, _)| interval <= limit)
        .map_or(31_536_000_000, |&(_, step)| step);
    (rounded / 1000).max(15)
}

/// The flamebearer timeline of a series: one sample per step from the range's start to its
/// end (both snapped down to the step), zeros where there is no point.
pub(crate) fn timeline(
    series: Option<&TimeSeries>,
    from_ms: i64,
    until_ms: i64,
    step_s: i64,
) -> Timeline {
    let step = step_s.max(1);
    let start = from_ms.div_euclid(1000);
    let start = start - start.rem_euclid(step);
    let end = until_ms.div_euclid(1000);
    let end = end - end.rem_euclid(step);
    let buckets = usize::try_from((end - start) / step).unwrap_or(0);
    let mut samples = vec![0u64; buckets];
    for point in series.map_or(&[][..], |s| &s.points) {
        let (t, value) = (point.timestamp, point.value);
        let offset = t.div_euclid(1000) - start;
        if offset < 0 {
            continue;
        }
        if let Some(slot) = usize::try_from(offset / step)
            .ok()
            .and_then(|i| samples.get_mut(i))
        {
            *slot = slot.saturating_add(value.max(0.0) as u64);
        }
    }
    Timeline {
        start_time: start,
        samples,
        duration_delta: step,
        watermarks: None,
    }
}

pub async fn render(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let tenant = tenant(&headers, state.multitenancy)?;
    let limits = state.limits.get(&tenant);
    let params = Params::parse(raw.as_deref());
    let (request, profile_type) = parse_query(
        &limits,
        tenant,
        params.get("query"),
        params.get("from"),
        params.get("until"),
        state.clock.now_ms(),
    )?;
    let max_nodes = params.max_nodes(&limits)?;
    if params.get("format") == Some("dot") {
        let node_count = if params.get("maxNodes").or(params.get("max-nodes")).is_some() {
            max_nodes
        } else {
            100
        };
        return render_dot(&state, &request, &limits, node_count).await;
    }
    let group_by = params.all("groupBy");
    let (start_ms, end_ms) = (request.range.start_ms, request.range.end_ms);
    let step = point_interval_seconds(start_ms, end_ms);
    let series_params = SeriesParams {
        group_by: group_by.clone(),
        step_ms: step * 1000,
        aggregation: match params.get("aggregation") {
            Some("avg") => Aggregation::Average,
            _ => Aggregation::Sum,
        },
        limit: None,
        exemplars: ExemplarKind::None,
    };
    let query_limits = limits.query_limits();
    let querier = state.querier()?;
    let ((tree, _), (series, _)) = futures::try_join!(
        querier.select_tree(&request, &query_limits),
        querier.select_series(&request, &series_params, &query_limits)
    )?;
    let graph = cpu(&state, move || FlameGraph::from_tree(&tree, max_nodes)).await?;
    let single = (series.len() == 1).then(|| &series[0]);
    let main = timeline(single, start_ms, end_ms, step);
    let mut profile = FlamebearerProfile::single(graph, &profile_type, Some(main));
    if let Some(first) = group_by.first() {
        let mut groups = BTreeMap::new();
        for s in &series {
            let key = s
                .labels
                .iter()
                .find(|(name, _)| name == first)
                .map_or_else(|| "*".to_owned(), |(_, value)| value.clone());
            groups.insert(key, timeline(Some(s), start_ms, end_ms, step));
        }
        profile.groups = Some(groups);
    }
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        profile.to_json(),
    )
        .into_response())
}

/// `format=dot`: the merged pprof as a Graphviz graph (pprof's `-dot` report).
async fn render_dot(
    state: &AppState,
    request: &Selection,
    limits: &Limits,
    node_count: usize,
) -> Result<Response, ApiError> {
    let (profile, _) = state
        .querier()?
        .select_profile(request, &limits.query_limits())
        .await?;
    if profile.sample.is_empty() {
        return Ok(([(header::CONTENT_TYPE, "text/plain")], String::new()).into_response());
    }
    let dot = cpu(state, move || formats::dot::render(&profile, node_count)).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain")], dot).into_response())
}

pub async fn render_diff(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let tenant = tenant(&headers, state.multitenancy)?;
    let limits = state.limits.get(&tenant);
    let params = Params::parse(raw.as_deref());
    let (left, left_type) = parse_query(
        &limits,
        tenant.clone(),
        params.get("leftQuery"),
        params.get("leftFrom"),
        params.get("leftUntil"),
        state.clock.now_ms(),
    )?;
    let (right, right_type) = parse_query(
        &limits,
        tenant,
        params.get("rightQuery"),
        params.get("rightFrom"),
        params.get("rightUntil"),
        state.clock.now_ms(),
    )?;
    if left_type != right_type {
        return Err(invalid("profile types must match"));
    }
    let max_nodes = params.max_nodes(&limits)?;
    let querier = state.querier()?;
    let query_limits = limits.query_limits();
    let ((left_tree, _), (right_tree, _)) = futures::try_join!(
        querier.select_tree(&left, &query_limits),
        querier.select_tree(&right, &query_limits)
    )?;
    let diff = cpu(&state, move || {
        FlameGraphDiff::from_trees(&left_tree, &right_tree, max_nodes)
    })
    .await?
    .map_err(|e| invalid(e.to_string()))?;
    let json = FlamebearerProfile::double(diff, &left_type).to_json();
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

/// `GET /pyroscope/label-values?label=NAME`: `__name__` lists the profile type ids; any other
/// label lists that label's values (Pyroscope forgets to pass the name on; we do not).
pub async fn label_values(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let tenant = tenant(&headers, state.multitenancy)?;
    let params = Params::parse(raw.as_deref());
    let label = params
        .get("label")
        .filter(|l| !l.is_empty())
        .ok_or_else(|| invalid("label parameter is required"))?;
    let values: Vec<String> = if label == label_names::METRIC_NAME {
        state
            .querier()?
            .profile_types(&tenant, ALL_TIME.0, ALL_TIME.1)
            .await?
    } else {
        let series = state
            .querier()?
            .series(&tenant, &[], ALL_TIME.0, ALL_TIME.1)
            .await?;
        let values: std::collections::BTreeSet<String> = series
            .iter()
            .filter_map(|l| l.get(label).map(str::to_owned))
            .collect();
        values.into_iter().collect()
    };
    let mut body =
        serde_json::to_string(&values).map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    body.push('\n');
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_interval_follows_grafanas_ladder_with_a_15s_floor() {
        let hour = 3_600_000;
        assert_eq!(point_interval_seconds(0, hour), 15);
        assert_eq!(point_interval_seconds(0, 24 * hour), 60);
        assert_eq!(point_interval_seconds(0, 7 * 24 * hour), 300);
        assert_eq!(point_interval_seconds(0, 30 * 24 * hour), 1800);
    }

    #[test]
    fn timeline_backfills_zeros_and_snaps_to_the_step() {
        let series = TimeSeries {
            labels: Vec::new(),
            points: [(1_000_020_000, 5.0), (1_000_050_000, 7.0)]
                .map(|(timestamp, value)| query::SeriesPoint {
                    timestamp,
                    value,
                    exemplars: Vec::new(),
                })
                .to_vec(),
        };
        // 1_000_007 s snaps down to 1_000_005 s; 1_000_067 s to 1_000_065 s.
        let t = timeline(Some(&series), 1_000_007_000, 1_000_067_000, 15);
        assert_eq!(t.start_time, 1_000_005);
        assert_eq!(t.duration_delta, 15);
        assert_eq!(t.samples, vec![0, 5, 0, 7]);
        let empty = timeline(None, 1_000_007_000, 1_000_067_000, 15);
        assert_eq!(empty.samples, vec![0, 0, 0, 0]);
    }

    #[test]
    fn max_nodes_prefers_the_camel_case_parameter() {
        let limits = Limits::default();
        let params = Params::parse(Some("max-nodes=7&maxNodes=9&groupBy=a&groupBy=b"));
        assert_eq!(params.max_nodes(&limits), Ok(9));
        assert_eq!(params.all("groupBy"), vec!["a", "b"]);
        assert_eq!(
            Params::parse(Some("maxNodes=x")).max_nodes(&limits),
            Ok(8192)
        );
    }
}
