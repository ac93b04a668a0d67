//! `querier.v1.QuerierService`, every method of Pyroscope v1.18 (`api.md` §3), with its
//! validation and messages. Each is one `async fn(Call, Request)`; [`crate::rpc`] carries it
//! over Connect, gRPC and gRPC-Web.

use crate::error::{ApiError, Code};
use crate::limits::Limits;
use crate::proto::querier::v1::{
    AnalyzeQueryRequest, AnalyzeQueryResponse, DiffRequest, DiffResponse,
    FlameGraph as WireFlameGraph, FlameGraphDiff as WireFlameGraphDiff, Level, ProfileFormat,
    ProfileTypesRequest, ProfileTypesResponse, QueryImpact, QueryScope, SelectMergeProfileRequest,
    SelectMergeSpanProfileRequest, SelectMergeSpanProfileResponse, SelectMergeStacktracesRequest,
    SelectMergeStacktracesResponse, SelectSeriesRequest, SelectSeriesResponse, SeriesRequest,
    SeriesResponse,
};
use crate::proto::types::v1::{
    ExemplarType, GetProfileStatsRequest, GetProfileStatsResponse, LabelNamesRequest,
    LabelNamesResponse, LabelPair, LabelValuesRequest, LabelValuesResponse, Labels, Point,
    ProfileType as WireProfileType, Series, StackTraceSelector, TimeSeriesAggregationType,
};
use crate::rpc::{Call, invalid};
use model::label_names;
use model::{FlameGraph, FlameGraphDiff, ProfileType, Tree, parse_selector};
use query::{Aggregation, ProfileQuery, SeriesQuery};
use std::collections::BTreeSet;

/// The whole time axis, for requests without a range.
pub(crate) const ALL_TIME: (i64, i64) = (i64::MIN / 4, i64::MAX / 4);

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::new(Code::Internal, error.to_string())
}

/// A request's range in milliseconds; no range (zero or negative) means all time, as
/// Pyroscope v1 answers label and profile-type requests.
fn range(start: i64, end: i64) -> (i64, i64) {
    (
        if start <= 0 { ALL_TIME.0 } else { start },
        if end <= 0 { ALL_TIME.1 } else { end },
    )
}

pub async fn profile_types(
    call: Call,
    request: ProfileTypesRequest,
) -> Result<ProfileTypesResponse, ApiError> {
    let tenant = call.tenant()?;
    let (start, end) = range(request.start, request.end);
    let ids = call
        .state
        .querier
        .profile_types(&tenant, start, end)
        .await
        .map_err(internal)?;
    let mut profile_types: Vec<WireProfileType> = ids
        .iter()
        .filter_map(|id| id.parse::<ProfileType>().ok())
        .map(|parsed| WireProfileType {
            id: parsed.to_string(),
            name: parsed.name,
            sample_type: parsed.sample_type,
            sample_unit: parsed.sample_unit,
            period_type: parsed.period_type,
            period_unit: parsed.period_unit,
        })
        .collect();
    profile_types.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(ProfileTypesResponse { profile_types })
}

/// The query of a Select* request, checked as Pyroscope checks it: a valid profile type id, a
/// non-empty parsable label selector, and a range with `0 < start <= end`.
pub(crate) fn profile_query(
    limits: &Limits,
    tenant: model::TenantId,
    profile_type_id: &str,
    label_selector: &str,
    start: i64,
    end: i64,
    now_ms: i64,
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
        return Err(invalid("query start time is after end time"));
    }
    // Past the tenant's lookback there is nothing to read: a range before any data.
    let (start, end) = limits
        .query_range(start, end, now_ms)?
        .unwrap_or((NOTHING, NOTHING));
    Ok(ProfileQuery::new(
        tenant,
        profile_type.to_string(),
        selector.matchers,
        start,
        end,
    ))
}

/// A time (ms) before any profile: a query range of [NOTHING, NOTHING] reads nothing.
const NOTHING: i64 = i64::MIN / 8;

/// Applies a `StackTraceSelector`'s call site (Go PGO options are not supported).
fn with_call_site(mut query: ProfileQuery, selector: Option<&StackTraceSelector>) -> ProfileQuery {
    if let Some(selector) = selector {
        query.call_site = selector.call_site.iter().map(|l| l.name.clone()).collect();
    }
    query
}

fn wire_flame_graph(graph: FlameGraph) -> WireFlameGraph {
    WireFlameGraph {
        names: graph.names,
        levels: graph
            .levels
            .into_iter()
            .map(|values| Level { values })
            .collect(),
        total: graph.total,
        max_self: graph.max_self,
    }
}

/// A tree in the requested format: flame graph (default) or tree bytes.
fn tree_answer(tree: &Tree, format: i32, max_nodes: usize) -> (Option<WireFlameGraph>, Vec<u8>) {
    if format == ProfileFormat::Tree as i32 {
        (None, tree.to_bytes(max_nodes))
    } else {
        (
            Some(wire_flame_graph(FlameGraph::from_tree(tree, max_nodes))),
            Vec::new(),
        )
    }
}

pub async fn select_merge_stacktraces(
    call: Call,
    request: SelectMergeStacktracesRequest,
) -> Result<SelectMergeStacktracesResponse, ApiError> {
    let tenant = call.tenant()?;
    let query = profile_query(
        &call.state.limits.get(&tenant),
        tenant,
        &request.profile_type_id,
        &request.label_selector,
        request.start,
        request.end,
        call.state.clock.now_ms(),
    )?;
    // A call site keeps the stacks that pass through it (the UI re-queries a focused,
    // truncated subtree this way).
    let query = with_call_site(query, request.stack_trace_selector.as_ref());
    let max_nodes = call
        .state
        .limits
        .get(&query.tenant)
        .max_nodes(request.max_nodes)?;
    let (tree, _) = call
        .state
        .querier
        .select_tree(&query)
        .await
        .map_err(internal)?;
    let (flamegraph, tree) = tree_answer(&tree, request.format, max_nodes);
    Ok(SelectMergeStacktracesResponse { flamegraph, tree })
}

/// Span ids as `SelectMergeSpanProfile` takes them: 16 hex digits each, read as the block
/// stores them. Others match nothing.
fn span_ids(selector: &[String]) -> Vec<u64> {
    selector
        .iter()
        .map(|s| block::span_id(s))
        .filter(|&id| id != 0)
        .collect()
}

pub async fn select_merge_span_profile(
    call: Call,
    request: SelectMergeSpanProfileRequest,
) -> Result<SelectMergeSpanProfileResponse, ApiError> {
    let tenant = call.tenant()?;
    let mut query = profile_query(
        &call.state.limits.get(&tenant),
        tenant,
        &request.profile_type_id,
        &request.label_selector,
        request.start,
        request.end,
        call.state.clock.now_ms(),
    )?;
    let max_nodes = call
        .state
        .limits
        .get(&query.tenant)
        .max_nodes(request.max_nodes)?;
    query.span_ids = Some(span_ids(&request.span_selector));
    let (tree, _) = call
        .state
        .querier
        .select_tree(&query)
        .await
        .map_err(internal)?;
    let (flamegraph, tree) = tree_answer(&tree, request.format, max_nodes);
    Ok(SelectMergeSpanProfileResponse { flamegraph, tree })
}

/// `SelectMergeProfile`: the selection as one pprof (`google.v1.Profile`, the pprof wire
/// format; its protojson form for JSON callers).
pub async fn select_merge_profile(
    call: Call,
    request: SelectMergeProfileRequest,
) -> Result<formats::pprof::Profile, ApiError> {
    let tenant = call.tenant()?;
    let query = profile_query(
        &call.state.limits.get(&tenant),
        tenant,
        &request.profile_type_id,
        &request.label_selector,
        request.start,
        request.end,
        call.state.clock.now_ms(),
    )?;
    let query = with_call_site(query, request.stack_trace_selector.as_ref());
    call.state
        .querier
        .select_profile(&query)
        .await
        .map_err(internal)
}

pub async fn select_series(
    call: Call,
    request: SelectSeriesRequest,
) -> Result<SelectSeriesResponse, ApiError> {
    let tenant = call.tenant()?;
    let query = profile_query(
        &call.state.limits.get(&tenant),
        tenant,
        &request.profile_type_id,
        &request.label_selector,
        request.start,
        request.end,
        call.state.clock.now_ms(),
    )?;
    let query = with_call_site(query, request.stack_trace_selector.as_ref());
    if request.step == 0.0 || !request.step.is_finite() {
        return Err(invalid("step must be non-zero"));
    }
    if request.step < 0.0 {
        return Err(invalid("step must be positive"));
    }
    if matches!(
        ExemplarType::try_from(request.exemplar_type),
        Ok(ExemplarType::Individual | ExemplarType::Span)
    ) {
        return Err(ApiError::new(
            Code::Unimplemented,
            "exemplars are not supported by this server",
        ));
    }
    let aggregation = match request.aggregation.map(TimeSeriesAggregationType::try_from) {
        Some(Ok(TimeSeriesAggregationType::Average)) => Aggregation::Average,
        _ => Aggregation::Sum,
    };
    let limit = match request.limit {
        Some(limit) if limit > 0 => Some(usize::try_from(limit).unwrap_or(usize::MAX)),
        _ => None,
    };
    let series_query = SeriesQuery {
        group_by: request.group_by.clone(),
        step_ms: ((request.step * 1000.0).round() as i64).max(1),
        aggregation,
        limit,
    };
    let found = call
        .state
        .querier
        .select_series(&query, &series_query)
        .await
        .map_err(internal)?;
    Ok(SelectSeriesResponse {
        series: found
            .into_iter()
            .map(|s| Series {
                labels: s
                    .labels
                    .into_iter()
                    .map(|(name, value)| LabelPair { name, value })
                    .collect(),
                points: s
                    .points
                    .into_iter()
                    .map(|(timestamp, value)| Point {
                        value,
                        timestamp,
                        annotations: Vec::new(),
                    })
                    .collect(),
            })
            .collect(),
    })
}

pub async fn diff(call: Call, request: DiffRequest) -> Result<DiffResponse, ApiError> {
    let tenant = call.tenant()?;
    let left = request.left.unwrap_or_default();
    let right = request.right.unwrap_or_default();
    let left_query = profile_query(
        &call.state.limits.get(&tenant),
        tenant.clone(),
        &left.profile_type_id,
        &left.label_selector,
        left.start,
        left.end,
        call.state.clock.now_ms(),
    )?;
    let right_query = profile_query(
        &call.state.limits.get(&tenant),
        tenant,
        &right.profile_type_id,
        &right.label_selector,
        right.start,
        right.end,
        call.state.clock.now_ms(),
    )?;
    let max_nodes = call
        .state
        .limits
        .get(&left_query.tenant)
        .max_nodes(left.max_nodes.max(right.max_nodes))?;
    let querier = &call.state.querier;
    let (left_tree, right_tree) = futures::try_join!(
        querier.select_tree(&left_query),
        querier.select_tree(&right_query)
    )
    .map_err(internal)?;
    let graph = FlameGraphDiff::from_trees(&left_tree.0, &right_tree.0, max_nodes)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(DiffResponse {
        flamegraph: Some(WireFlameGraphDiff {
            names: graph.names,
            levels: graph
                .levels
                .into_iter()
                .map(|values| Level { values })
                .collect(),
            total: graph.total,
            max_self: graph.max_self,
            left_ticks: graph.left_ticks,
            right_ticks: graph.right_ticks,
        }),
    })
}

pub async fn get_profile_stats(
    call: Call,
    _request: GetProfileStatsRequest,
) -> Result<GetProfileStatsResponse, ApiError> {
    let tenant = call.tenant()?;
    let stats = call
        .state
        .querier
        .tenant_stats(&tenant, ALL_TIME.0, ALL_TIME.1, None)
        .await
        .map_err(internal)?;
    Ok(match stats.range_ms {
        Some((oldest, newest)) => GetProfileStatsResponse {
            data_ingested: true,
            oldest_profile_time: oldest,
            newest_profile_time: newest,
        },
        None => GetProfileStatsResponse::default(),
    })
}

/// `AnalyzeQuery`: what a query would read, from the metastore and the series indexes.
pub async fn analyze_query(
    call: Call,
    request: AnalyzeQueryRequest,
) -> Result<AnalyzeQueryResponse, ApiError> {
    let tenant = call.tenant()?;
    let selector = parse_selector(if request.query.trim().is_empty() {
        "{}"
    } else {
        &request.query
    })
    .map_err(|e| invalid(e.to_string()))?;
    if request.start == 0 || request.end == 0 {
        return Err(invalid("missing time range in the query"));
    }
    if request.start > request.end {
        return Err(invalid("query start time is after end time"));
    }
    let profile_type = selector
        .name
        .as_deref()
        .map(|name| {
            name.parse::<ProfileType>()
                .map_err(|e: model::ProfileTypeError| invalid(e.to_string()))
        })
        .transpose()?;
    let querier = &call.state.querier;
    let stats = querier
        .tenant_stats(
            &tenant,
            request.start,
            request.end,
            profile_type.as_ref().map(ToString::to_string),
        )
        .await
        .map_err(internal)?;
    let mut matchers = selector.matchers;
    if let Some(profile_type) = &profile_type {
        matchers.push(
            model::Matcher::new(
                label_names::PROFILE_TYPE,
                model::MatchOp::Equal,
                profile_type.to_string(),
            )
            .map_err(|e| invalid(e.to_string()))?,
        );
    }
    let series = querier
        .series(&tenant, &[matchers], request.start, request.end)
        .await
        .map_err(internal)?;
    Ok(AnalyzeQueryResponse {
        query_scopes: vec![QueryScope {
            component_type: "Object storage".to_owned(),
            component_count: 1,
            block_count: stats.blocks as u64,
            series_count: series.len() as u64,
            profile_bytes: stats.bytes,
            ..QueryScope::default()
        }],
        query_impact: Some(QueryImpact {
            total_bytes_in_time_range: stats.bytes,
            total_queried_series: series.len() as u64,
            deduplication_needed: false,
        }),
    })
}

/// Parses the `matchers` of a label request; Pyroscope v1 answers an unparsable one with an
/// empty result (200), which `None` stands for here.
fn selectors(matchers: &[String]) -> Option<Vec<Vec<model::Matcher>>> {
    matchers
        .iter()
        .map(|m| parse_selector(m).ok().map(|s| s.matchers))
        .collect()
}

pub(crate) async fn matching_series(
    call: &Call,
    tenant: &model::TenantId,
    matchers: &[String],
    start: i64,
    end: i64,
) -> Result<Vec<model::Labels>, ApiError> {
    let Some(selectors) = selectors(matchers) else {
        return Ok(Vec::new());
    };
    let (start, end) = range(start, end);
    call.state
        .querier
        .series(tenant, &selectors, start, end)
        .await
        .map_err(internal)
}

pub async fn label_names(
    call: Call,
    request: LabelNamesRequest,
) -> Result<LabelNamesResponse, ApiError> {
    let tenant = call.tenant()?;
    let series = matching_series(
        &call,
        &tenant,
        &request.matchers,
        request.start,
        request.end,
    )
    .await?;
    let names: BTreeSet<String> = series
        .iter()
        .flat_map(|l| l.iter().map(|p| p.name.clone()))
        .collect();
    Ok(LabelNamesResponse {
        names: names.into_iter().collect(),
    })
}

pub async fn label_values(
    call: Call,
    request: LabelValuesRequest,
) -> Result<LabelValuesResponse, ApiError> {
    let tenant = call.tenant()?;
    let series = matching_series(
        &call,
        &tenant,
        &request.matchers,
        request.start,
        request.end,
    )
    .await?;
    let values: BTreeSet<String> = series
        .iter()
        .filter_map(|l| l.get(&request.name).map(str::to_owned))
        .collect();
    Ok(LabelValuesResponse {
        names: values.into_iter().collect(),
    })
}

pub async fn series(call: Call, request: SeriesRequest) -> Result<SeriesResponse, ApiError> {
    let tenant = call.tenant()?;
    let series = matching_series(
        &call,
        &tenant,
        &request.matchers,
        request.start,
        request.end,
    )
    .await?;
    // With label names, each set is cut down to them (in the order asked) and repeats removed.
    let mut seen = BTreeSet::new();
    let mut labels_set = Vec::new();
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
            labels_set.push(Labels { labels: pairs });
        }
    }
    Ok(SeriesResponse { labels_set })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_ids_are_sixteen_hex_digits() {
        assert_eq!(
            span_ids(&[
                "00000000000000ff".to_owned(),
                "span1".to_owned(),
                "zz00000000000000".to_owned()
            ]),
            vec![255 << 56]
        );
    }

    #[test]
    fn select_requests_are_checked_like_pyroscope() {
        let tenant = model::TenantId::new("t").expect("tenant");
        let cpu = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
        let limits = Limits::default();
        let message = |r: Result<ProfileQuery, ApiError>| r.err().map(|e| e.message);
        assert_eq!(
            message(profile_query(&limits, tenant.clone(), cpu, "{}", 0, 5, 10)),
            Some("missing time range in the query".to_owned())
        );
        assert_eq!(
            message(profile_query(&limits, tenant.clone(), cpu, "{}", 6, 5, 10)),
            Some("query start time is after end time".to_owned())
        );
        assert!(profile_query(&limits, tenant.clone(), cpu, "", 1, 5, 10).is_err());
        assert!(profile_query(&limits, tenant.clone(), "cpu", "{}", 1, 5, 10).is_err());
        assert!(profile_query(&limits, tenant, cpu, "{}", 1, 5, 10).is_ok());
    }
}
