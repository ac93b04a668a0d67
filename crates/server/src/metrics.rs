//! `GET /metrics`: the server's counters in the Prometheus text format (version 0.0.4).
//!
//! Requests by route and status (with their total duration), ingested bytes and profiles per
//! tenant, refused profiles per tenant and Pyroscope reason, and the segment writer's flush
//! latency histogram. Label values are route templates, status codes, tenant ids and reason
//! names, never anything from inside a profile.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ingest::FlushStats;
use model::TenantId;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Requests: (method, route, status) → (count, seconds).
type RequestCounts = BTreeMap<(String, String, u16), (u64, f64)>;

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<RequestCounts>,
    /// tenant → (uncompressed bytes, profiles)
    ingested: Mutex<BTreeMap<String, (u64, u64)>>,
    /// (tenant, reason) → profiles
    discarded: Mutex<BTreeMap<(String, String), u64>>,
}

impl Metrics {
    pub fn ingested(&self, tenant: &TenantId, bytes: usize, profiles: u64) {
        if let Ok(mut map) = self.ingested.lock() {
            let slot = map.entry(tenant.as_str().to_owned()).or_default();
            slot.0 = slot.0.saturating_add(bytes as u64);
            slot.1 = slot.1.saturating_add(profiles);
        }
    }

    pub fn discarded(&self, tenant: &TenantId, reason: &str) {
        if let Ok(mut map) = self.discarded.lock() {
            *map.entry((tenant.as_str().to_owned(), reason.to_owned()))
                .or_default() += 1;
        }
    }

    fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut map) = self.requests.lock() {
            let slot = map
                .entry((method.to_owned(), route.to_owned(), status))
                .or_default();
            slot.0 += 1;
            slot.1 += seconds;
        }
    }

    /// The exposition text.
    pub fn render(&self, flushes: &FlushStats) -> String {
        let mut out = String::new();
        out.push_str("# HELP emberscope_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE emberscope_requests_total counter\n");
        let requests = self.requests.lock().map(|m| m.clone()).unwrap_or_default();
        for ((method, route, status), (count, _)) in &requests {
            let _ = writeln!(
                out,
                "emberscope_requests_total{{method=\"{method}\",route=\"{}\",status_code=\"{status}\"}} {count}",
                escape(route)
            );
        }
        out.push_str(
            "# HELP emberscope_request_duration_seconds_total Time spent answering requests.\n",
        );
        out.push_str("# TYPE emberscope_request_duration_seconds_total counter\n");
        for ((method, route, status), (_, seconds)) in &requests {
            let _ = writeln!(
                out,
                "emberscope_request_duration_seconds_total{{method=\"{method}\",route=\"{}\",status_code=\"{status}\"}} {seconds}",
                escape(route)
            );
        }
        let ingested = self.ingested.lock().map(|m| m.clone()).unwrap_or_default();
        out.push_str(
            "# HELP emberscope_ingested_bytes_total Uncompressed bytes of accepted profiles.\n",
        );
        out.push_str("# TYPE emberscope_ingested_bytes_total counter\n");
        for (tenant, (bytes, _)) in &ingested {
            let _ = writeln!(
                out,
                "emberscope_ingested_bytes_total{{tenant=\"{}\"}} {bytes}",
                escape(tenant)
            );
        }
        out.push_str("# HELP emberscope_ingested_profiles_total Accepted profiles.\n");
        out.push_str("# TYPE emberscope_ingested_profiles_total counter\n");
        for (tenant, (_, profiles)) in &ingested {
            let _ = writeln!(
                out,
                "emberscope_ingested_profiles_total{{tenant=\"{}\"}} {profiles}",
                escape(tenant)
            );
        }
        out.push_str(
            "# HELP emberscope_discarded_profiles_total Refused profiles by Pyroscope reason.\n",
        );
        out.push_str("# TYPE emberscope_discarded_profiles_total counter\n");
        let discarded = self.discarded.lock().map(|m| m.clone()).unwrap_or_default();
        for ((tenant, reason), count) in &discarded {
            let _ = writeln!(
                out,
                "emberscope_discarded_profiles_total{{reason=\"{reason}\",tenant=\"{}\"}} {count}",
                escape(tenant)
            );
        }
        out.push_str("# HELP emberscope_segment_flush_duration_seconds Segment flush latency: encode, upload, metastore record.\n");
        out.push_str("# TYPE emberscope_segment_flush_duration_seconds histogram\n");
        for (bound, count) in flushes.buckets() {
            let _ = writeln!(
                out,
                "emberscope_segment_flush_duration_seconds_bucket{{le=\"{bound}\"}} {count}"
            );
        }
        let (count, seconds, failures) = flushes.totals();
        let _ = writeln!(
            out,
            "emberscope_segment_flush_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "emberscope_segment_flush_duration_seconds_sum {seconds}"
        );
        let _ = writeln!(
            out,
            "emberscope_segment_flush_duration_seconds_count {count}"
        );
        out.push_str("# HELP emberscope_segment_flush_failures_total Segment flushes that failed (their writes were not acknowledged).\n");
        out.push_str("# TYPE emberscope_segment_flush_failures_total counter\n");
        let _ = writeln!(out, "emberscope_segment_flush_failures_total {failures}");
        out
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware counting every request by its route template (unmatched paths as `other`).
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics.request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

pub async fn serve(State(state): State<Arc<crate::AppState>>) -> Response {
    let mut text = state.metrics.render(&state.flush_stats);
    crate::cluster::ready::render(&state, &mut text);
    text.push_str("# HELP emberscope_inflight_budget_available_bytes Memory left for pushes being processed.\n");
    text.push_str("# TYPE emberscope_inflight_budget_available_bytes gauge\n");
    let _ = writeln!(
        text,
        "emberscope_inflight_budget_available_bytes {}",
        state.inflight.available_kib() * 1024
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_the_flush_histogram() {
        let metrics = Metrics::default();
        let tenant = TenantId::new("t1").expect("tenant");
        metrics.ingested(&tenant, 100, 1);
        metrics.ingested(&tenant, 50, 2);
        metrics.discarded(&tenant, "not_in_ingestion_window");
        metrics.request("POST", "/ingest", 200, 0.5);
        let text = metrics.render(&FlushStats::default());
        assert!(text.contains("emberscope_ingested_bytes_total{tenant=\"t1\"} 150\n"));
        assert!(text.contains("emberscope_ingested_profiles_total{tenant=\"t1\"} 3\n"));
        assert!(text.contains(
            "emberscope_discarded_profiles_total{reason=\"not_in_ingestion_window\",tenant=\"t1\"} 1\n"
        ));
        assert!(text.contains(
            "emberscope_requests_total{method=\"POST\",route=\"/ingest\",status_code=\"200\"} 1\n"
        ));
        assert!(text.contains("emberscope_segment_flush_duration_seconds_bucket{le=\"+Inf\"} 0\n"));
    }
}
