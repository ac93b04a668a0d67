//! `querier.v1.QuerierService`, every method of Pyroscope v1.18 (`api.md` §3), with its
//! validation and messages. Each is one `async fn(Call, Request)`; [`crate::rpc`] carries it
//! over Connect, gRPC and gRPC-Web.

use crate::error::ApiError;
use crate::limits::Limits;
use crate::rpc::{Call, invalid};
use api::proto::querier::v1::{
    AnalyzeQueryRequest, AnalyzeQueryResponse, DiffRequest, DiffResponse,
    FlameGraph as WireFlameGraph, FlameGraphDiff as WireFlameGraphDiff, HeatmapQueryType, Level,
    ProfileFormat, ProfileTypesRequest, ProfileTypesResponse, QueryImpact, QueryScope,
    SelectHeatmapRequest, SelectHeatmapResponse, SelectMergeProfileRequest,
    SelectMergeSpanProfileRequest, SelectMergeSpanProfileResponse, SelectMergeStacktracesRequest,
    SelectMergeStacktracesResponse, SelectSeriesRequest, SelectSeriesResponse, SeriesRequest,
    SeriesResponse,
};
use api::proto::types::v1::{
    Exemplar as WireExemplar, ExemplarType, GetProfileStatsRequest, GetProfileStatsResponse,
    HeatmapSeries as WireHeatmapSeries, HeatmapSlot as WireHeatmapSlot, LabelNamesRequest,
    LabelNamesResponse, LabelPair, LabelValuesRequest, LabelValuesResponse, Labels, Point,
    ProfileType as WireProfileType, Series, StackTraceSelector, TimeSeriesAggregationType,
};
use model::label_names;
use model::{FlameGraph, FlameGraphDiff, ProfileType, TimeRange, Tree, parse_selector};
use query::{
    Aggregation, ExemplarKind, HeatmapParams, Output, Query, QueryLimits, Selection, SeriesParams,
};
use std::collections::BTreeSet;

/// The whole time axis, for requests without a range.
pub(crate) const ALL_TIME: (i64, i64) = (i64::MIN / 4, i64::MAX / 4);

/// Runs CPU work (rendering an answer) off the async runtime, on the query engine's pool.
pub(crate) async fn cpu<T: Send + 'static>(
    call_state: &crate::AppState,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    Ok(call_state.querier()?.data().cpu(work).await?)
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
        .querier()?
        .profile_types(&tenant, start, end)
        .await?;
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

/// The selection of a Select* request, checked as Pyroscope checks it: a valid profile type
/// id, a non-empty parsable label selector, and a range with `0 < start <= end`, cut to the
/// tenant's `max_query_lookback`.
pub(crate) fn selection(
    limits: &Limits,
    tenant: model::TenantId,
    profile_type_id: &str,
    label_selector: &str,
    start: i64,
    end: i64,
    now_ms: i64,
) -> Result<Selection, ApiError> {
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
    let range = TimeRange::new(start, end).map_err(|e| invalid(e.to_string()))?;
    Ok(Selection::new(
        tenant,
        profile_type.to_string(),
        selector.matchers,
        range,
    ))
}

/// A request's selection and the tenant's query limits.
fn checked(
    call: &Call,
    profile_type_id: &str,
    label_selector: &str,
    start: i64,
    end: i64,
) -> Result<(Selection, QueryLimits), ApiError> {
    let tenant = call.tenant()?;
    let limits = call.state.limits.get(&tenant);
    let selection = selection(
        &limits,
        tenant,
        profile_type_id,
        label_selector,
        start,
        end,
        call.state.clock.now_ms(),
    )?;
    Ok((selection, limits.query_limits()))
}

/// The profiles a `profile_id_selector` names (UUIDs); `None` when it is empty.
fn profile_ids(selector: &[String]) -> Result<Option<Vec<block::ProfileId>>, ApiError> {
    if selector.is_empty() {
        return Ok(None);
    }
    selector
        .iter()
        .map(|id| query::parse_profile_id(id).map_err(invalid))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A time (ms) before any profile: a query range of [NOTHING, NOTHING] reads nothing.
const NOTHING: i64 = i64::MIN / 8;

/// Applies a `StackTraceSelector`'s call site (Go PGO options are not supported).
fn with_call_site(mut selection: Selection, selector: Option<&StackTraceSelector>) -> Selection {
    if let Some(selector) = selector {
        selection.call_site = selector.call_site.iter().map(|l| l.name.clone()).collect();
    }
    selection
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

/// A tree in the requested format: flame graph (default) or tree bytes, rendered off the
/// async runtime.
async fn tree_answer(
    call: &Call,
    tree: Tree,
    format: i32,
    max_nodes: usize,
) -> Result<(Option<WireFlameGraph>, Vec<u8>), ApiError> {
    cpu(&call.state, move || {
        if format == ProfileFormat::Tree as i32 {
            (None, tree.to_bytes(max_nodes))
        } else {
            (
                Some(wire_flame_graph(FlameGraph::from_tree(&tree, max_nodes))),
                Vec::new(),
            )
        }
    })
    .await
}

pub async fn select_merge_stacktraces(
    call: Call,
    request: SelectMergeStacktracesRequest,
) -> Result<SelectMergeStacktracesResponse, ApiError> {
    let (selection, limits) = checked(
        &call,
        &request.profile_type_id,
        &request.label_selector,
        request.start,
        request.end,
    )?;
    // A call site keeps the stacks that pass through it (the UI re-queries a focused,
    // truncated subtree this way).
    let mut selection = with_call_site(selection, request.stack_trace_selector.as_ref());
    selection.profile_ids = profile_ids(&request.profile_id_selector)?;
    let max_nodes = call
        .state
        .limits
        .get(&selection.tenant)
        .max_nodes(request.max_nodes)?;
    let (tree, _) = call
        .state
        .querier()?
        .select_tree(&selection, &limits)
        .await?;
    let (flamegraph, tree) = tree_answer(&call, tree, request.format, max_nodes).await?;
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
    let (mut selection, limits) = checked(
        &call,
        &request.profile_type_id,
        &request.label_selector,
        request.start,
        request.end,
    )?;
    let max_nodes = call
        .state
        .limits
        .get(&selection.tenant)
        .max_nodes(request.max_nodes)?;
    selection.span_ids = Some(span_ids(&request.span_selector));
    let (tree, _) = call
        .state
        .querier()?
        .select_tree(&selection, &limits)
        .await?;
    let (flamegraph, tree) = tree_answer(&call, tree, request.format, max_nodes).await?;
    Ok(SelectMergeSpanProfileResponse { flamegraph, tree })
}

/// `SelectMergeProfile`: the selection as one pprof (`google.v1.Profile`, the pprof wire
/// format; its protojson form for JSON callers).
pub async fn select_merge_profile(
    call: Call,
    request: SelectMergeProfileRequest,
) -> Result<formats::pprof::Profile, ApiError> {
    let (selection, limits) = checked(
        &call,
        &request.profile_type_id,
        &request.label_selector,
        request.start,
        request.end,
    )?;
    let mut selection = with_call_site(selection, request.stack_trace_selector.as_ref());
    selection.profile_ids = profile_ids(&request.profile_id_selector)?;
    let (profile, _) = call
        .state
        .querier()?
        .select_profile(&selection, &limits)
        .await?;
    Ok(profile)
}

/// An exemplar as the wire carries it.
fn wire_exemplar(exemplar: query::Exemplar) -> WireExemplar {
    WireExemplar {
        timestamp: exemplar.timestamp,
        profile_id: exemplar.profile_id,
        span_id: exemplar.span_id,
        value: exemplar.value,
        labels: exemplar
            .labels
            .into_iter()
            .map(|(name, value)| LabelPair { name, value })
            .collect(),
        trace_id: String::new(),
    }
}

/// A step in seconds (the wire's) as whole milliseconds; under 1 ms is refused as Pyroscope
/// refuses it.
fn step_ms(step: f64) -> Result<i64, ApiError> {
    if step == 0.0 || !step.is_finite() {
        return Err(invalid("step must be non-zero"));
    }
    if step < 0.001 {
        return Err(invalid(format!("step must be >= 1ms, got {step:.6}")));
    }
    Ok((step * 1000.0).round() as i64)
}

fn exemplar_kind(exemplar_type: i32) -> ExemplarKind {
    match ExemplarType::try_from(exemplar_type) {
        Ok(ExemplarType::Individual) => ExemplarKind::Individual,
        Ok(ExemplarType::Span) => ExemplarKind::Span,
        _ => ExemplarKind::None,
    }
}

pub async fn select_series(
    call: Call,
    request: SelectSeriesRequest,
) -> Result<SelectSeriesResponse, ApiError> {
    let (selection, limits) = checked(
        &call,
        &request.profile_type_id,
        &request.label_selector,
        request.start,
        request.end,
    )?;
    let selection = with_call_site(selection, request.stack_trace_selector.as_ref());
    let step_ms = step_ms(request.step)?;
    let aggregation = match request.aggregation.map(TimeSeriesAggregationType::try_from) {
        Some(Ok(TimeSeriesAggregationType::Average)) => Aggregation::Average,
        _ => Aggregation::Sum,
    };
    let limit = match request.limit {
        Some(limit) if limit > 0 => Some(usize::try_from(limit).unwrap_or(usize::MAX)),
        _ => None,
    };
    let params = SeriesParams {
        group_by: request.group_by.clone(),
        step_ms,
        aggregation,
        limit,
        exemplars: exemplar_kind(request.exemplar_type),
    };
    let (found, _) = call
        .state
        .querier()?
        .select_series(&selection, &params, &limits)
        .await?;
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
                    .map(|point| Point {
                        value: point.value,
                        timestamp: point.timestamp,
                        annotations: Vec::new(),
                        exemplars: point.exemplars.into_iter().map(wire_exemplar).collect(),
                    })
                    .collect(),
            })
            .collect(),
    })
}

/// `SelectHeatmap` (Pyroscope v2): per time slot, how the selected profiles' (or spans')
/// totals are distributed over 20 linear buckets, with the profile behind each bucket.
pub async fn select_heatmap(
    call: Call,
    request: SelectHeatmapRequest,
) -> Result<SelectHeatmapResponse, ApiError> {
    if request.step < 0.001 || !request.step.is_finite() {
        return Err(invalid(format!(
            "step must be >= 1ms, got {:.6}",
            request.step
        )));
    }
    if request.limit.is_some_and(|l| l < 0) {
        return Err(invalid(format!(
            "limit must be non-negative, got {}",
            request.limit.unwrap_or(0)
        )));
    }
    if request.start >= request.end {
        return Err(invalid(format!(
            "start time must be before end time, got start={} end={}",
            request.start, request.end
        )));
    }
    let spans = match HeatmapQueryType::try_from(request.query_type) {
        Ok(HeatmapQueryType::Individual) => false,
        Ok(HeatmapQueryType::Span) => true,
        _ => return Err(invalid("valid heatmap query type must be specified")),
    };
    let exemplars = exemplar_kind(request.exemplar_type);
    match (exemplars, spans) {
        (ExemplarKind::Individual, true) => {
            return Err(invalid(
                "individual exemplars only available for individual query type",
            ));
        }
        (ExemplarKind::Span, false) => {
            return Err(invalid("span exemplars only available for span query type"));
        }
        _ => {}
    }
    let (selection, limits) = checked(
        &call,
        &request.profile_type_id,
        &request.label_selector,
        request.start,
        request.end,
    )?;
    let params = HeatmapParams {
        group_by: request.group_by.clone(),
        step_ms: (request.step * 1000.0).round() as i64,
        spans,
        exemplars,
        limit: request
            .limit
            .filter(|&l| l > 0)
            .map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
    };
    let (found, _) = call
        .state
        .querier()?
        .select_heatmap(&selection, &params, &limits)
        .await?;
    Ok(SelectHeatmapResponse {
        series: found
            .into_iter()
            .map(|s| WireHeatmapSeries {
                labels: s
                    .labels
                    .into_iter()
                    .map(|(name, value)| LabelPair { name, value })
                    .collect(),
                slots: s
                    .slots
                    .into_iter()
                    .map(|slot| WireHeatmapSlot {
                        timestamp: slot.timestamp,
                        y_min: slot.y_min,
                        counts: slot.counts,
                        exemplars: slot.exemplars.into_iter().map(wire_exemplar).collect(),
                    })
                    .collect(),
            })
            .collect(),
    })
}

pub async fn diff(call: Call, request: DiffRequest) -> Result<DiffResponse, ApiError> {
    let left = request.left.unwrap_or_default();
    let right = request.right.unwrap_or_default();
    let (left_selection, limits) = checked(
        &call,
        &left.profile_type_id,
        &left.label_selector,
        left.start,
        left.end,
    )?;
    let (right_selection, _) = checked(
        &call,
        &right.profile_type_id,
        &right.label_selector,
        right.start,
        right.end,
    )?;
    let max_nodes = call
        .state
        .limits
        .get(&left_selection.tenant)
        .max_nodes(left.max_nodes.max(right.max_nodes))?;
    let querier = call.state.querier()?;
    let ((left_tree, _), (right_tree, _)) = futures::try_join!(
        querier.select_tree(&left_selection, &limits),
        querier.select_tree(&right_selection, &limits)
    )?;
    let graph = cpu(&call.state, move || {
        FlameGraphDiff::from_trees(&left_tree, &right_tree, max_nodes)
    })
    .await?
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
        .querier()?
        .tenant_stats(&tenant, ALL_TIME.0, ALL_TIME.1, None)
        .await?;
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
    let querier = call.state.querier()?;
    let stats = querier
        .tenant_stats(
            &tenant,
            request.start,
            request.end,
            profile_type.as_ref().map(ToString::to_string),
        )
        .await?;
    let mut matchers = selector.matchers;
    let Some(profile_type) = profile_type else {
        // Without a profile type there is no read to plan: what the range holds.
        let series = querier
            .series(&tenant, &[matchers], request.start, request.end)
            .await?;
        return Ok(AnalyzeQueryResponse {
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
        });
    };
    // The real plan of a flame graph of the query: per table read (the profiles, each
    // rollup), its blocks, row groups (`component_count`), rows and bytes.
    let limits = call.state.limits.get(&tenant);
    let range = TimeRange::new(request.start, request.end).map_err(|e| invalid(e.to_string()))?;
    matchers.retain(|m| m.name != label_names::PROFILE_TYPE);
    let mut with_type = matchers.clone();
    with_type.push(
        model::Matcher::new(
            label_names::PROFILE_TYPE,
            model::MatchOp::Equal,
            profile_type.to_string(),
        )
        .map_err(|e| invalid(e.to_string()))?,
    );
    let total_series = querier
        .series(&tenant, &[with_type], request.start, request.end)
        .await?
        .len() as u64;
    let query = Query {
        selection: Selection::new(tenant, profile_type.to_string(), matchers, range),
        output: Output::Tree,
        max_nodes: limits.query_limits().max_nodes,
    };
    let plan = querier.plan(&query, &limits.query_limits()).await?;
    let mut scopes: std::collections::BTreeMap<String, (BTreeSet<ulid::Ulid>, QueryScope)> =
        Default::default();
    for task in &plan.tasks {
        let name = match task.table {
            query::TaskTable::Profiles => "Profiles".to_owned(),
            query::TaskTable::Rollup { resolution_ms } => format!(
                "Rollup {}",
                model::format_duration(std::time::Duration::from_millis(
                    resolution_ms.max(0) as u64
                ))
            ),
        };
        let (blocks, scope) = scopes.entry(name.clone()).or_default();
        scope.component_type = name;
        blocks.insert(task.block.id);
        scope.block_count = blocks.len() as u64;
        scope.component_count += task.row_groups.len() as u64;
        scope.profile_count += task.rows;
        scope.profile_bytes += task.bytes;
    }
    Ok(AnalyzeQueryResponse {
        query_scopes: scopes
            .into_values()
            .map(|(_, mut scope)| {
                scope.series_count = total_series;
                scope
            })
            .collect(),
        query_impact: Some(QueryImpact {
            total_bytes_in_time_range: stats.bytes,
            total_queried_series: total_series,
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
        .querier()?
        .series(tenant, &selectors, start, end)
        .await
        .map_err(ApiError::from)
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
        let message = |r: Result<Selection, ApiError>| r.err().map(|e| e.message);
        assert_eq!(
            message(selection(&limits, tenant.clone(), cpu, "{}", 0, 5, 10)),
            Some("missing time range in the query".to_owned())
        );
        assert_eq!(
            message(selection(&limits, tenant.clone(), cpu, "{}", 6, 5, 10)),
            Some("query start time is after end time".to_owned())
        );
        assert!(selection(&limits, tenant.clone(), cpu, "", 1, 5, 10).is_err());
        assert!(selection(&limits, tenant.clone(), "cpu", "{}", 1, 5, 10).is_err());
        assert!(selection(&limits, tenant, cpu, "{}", 1, 5, 10).is_ok());
        assert_eq!(
            profile_ids(&["nope".to_owned()]).err().map(|e| e.message),
            Some("invalid UUID length: 4".to_owned())
        );
        assert_eq!(
            step_ms(0.0).err().map(|e| e.message),
            Some("step must be non-zero".to_owned())
        );
        assert_eq!(
            step_ms(0.0001).err().map(|e| e.message),
            Some("step must be >= 1ms, got 0.000100".to_owned())
        );
        assert_eq!(step_ms(15.0).ok(), Some(15_000));
    }
}
