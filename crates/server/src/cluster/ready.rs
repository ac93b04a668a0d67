//! `/ready` and the cluster's part of `/metrics`, by the roles this process runs: a process is
//! ready when its last read of the members succeeded and what its roles call exists — a
//! distributor without a segment writer of its own needs a live one, a query frontend without
//! a query backend of its own needs a live one. Kubernetes and load balancers route by it.

use super::backends::QUERY_BACKEND;
use crate::{AppState, Role};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// Why this process is not ready, by the component that waits; empty when it is ready.
pub(crate) fn waiting(state: &AppState) -> Vec<(&'static str, String)> {
    let view = state.membership.view();
    let mut reasons = Vec::new();
    if let Some(error) = &view.error {
        reasons.push((
            "metastore-client",
            format!("the metastore cannot be read: {error}"),
        ));
    }
    let has = |role: Role| state.roles.contains(&role);
    if has(Role::Distributor) && state.writer.is_none() && view.writers.owners(0).is_empty() {
        reasons.push((
            Role::Distributor.name(),
            "no segment writer is live".to_owned(),
        ));
    }
    if has(Role::QueryFrontend)
        && state.backend.is_none()
        && !view.members.iter().any(|m| m.has_role(QUERY_BACKEND))
    {
        reasons.push((
            Role::QueryFrontend.name(),
            "no query backend is live".to_owned(),
        ));
    }
    reasons
}

/// Why this process is not ready; empty when it is.
fn not_ready(state: &AppState) -> Vec<String> {
    waiting(state)
        .into_iter()
        .map(|(_, reason)| reason)
        .collect()
}

pub async fn serve(State(state): State<Arc<AppState>>) -> Response {
    let reasons = not_ready(&state);
    if reasons.is_empty() {
        return "ready".into_response();
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("not ready: {}", reasons.join("; ")),
    )
        .into_response()
}

/// The cluster's metrics: live members by role, this process's failovers, queued read tasks.
pub fn render(state: &AppState, out: &mut String) {
    let view = state.membership.view();
    let mut by_role: BTreeMap<&str, usize> = BTreeMap::new();
    for role in Role::ALL {
        by_role.insert(role.name(), 0);
    }
    for member in &view.members {
        for role in &member.roles {
            if let Some(count) = by_role.get_mut(role.as_str()) {
                *count += 1;
            }
        }
    }
    out.push_str("# HELP emberscope_cluster_members Live members of the cluster, by role.\n");
    out.push_str("# TYPE emberscope_cluster_members gauge\n");
    for (role, count) in by_role {
        let _ = writeln!(out, "emberscope_cluster_members{{role=\"{role}\"}} {count}");
    }
    out.push_str("# HELP emberscope_cluster_ready Whether this process is ready (1) or not (0).\n");
    out.push_str("# TYPE emberscope_cluster_ready gauge\n");
    let _ = writeln!(
        out,
        "emberscope_cluster_ready {}",
        u8::from(not_ready(state).is_empty())
    );
    let failovers = state.membership.failovers();
    out.push_str("# HELP emberscope_cluster_failovers_total Calls to another member that failed and moved on to the next one, by the role called.\n");
    out.push_str("# TYPE emberscope_cluster_failovers_total counter\n");
    for role in [super::membership::SEGMENT_WRITER, QUERY_BACKEND] {
        let count = failovers.get(role).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "emberscope_cluster_failovers_total{{role=\"{role}\"}} {count}"
        );
    }
    if let crate::cluster::writers::Writers::Remote(writers) = &state.writers {
        let counts = &writers.counts;
        for (name, help, counter) in [
            (
                "emberscope_distributor_writer_http_calls_total",
                "HTTP calls to segment writers (a call carries one or more requests: distributor.writer-batch-window).",
                &counts.http_calls,
            ),
            (
                "emberscope_distributor_writer_requests_total",
                "Requests sent to segment writers, retries included.",
                &counts.requests,
            ),
        ] {
            let value = counter.load(std::sync::atomic::Ordering::Relaxed);
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
    }
    if state.roles.contains(&Role::QueryFrontend) {
        out.push_str("# HELP emberscope_query_tasks_waiting Read tasks waiting for a slot (query.max-concurrent-tasks).\n");
        out.push_str("# TYPE emberscope_query_tasks_waiting gauge\n");
        let _ = writeln!(
            out,
            "emberscope_query_tasks_waiting {}",
            state
                .querier
                .as_ref()
                .map_or(0, query::Querier::tasks_waiting)
        );
    }
}
