//! `/cluster`: the members this process sees, their roles, addresses, health and (segment
//! writers) share of the ring — as an HTML page, or JSON with `Accept: application/json` or
//! `?format=json`.

use super::membership::{Membership, SEGMENT_WRITER};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Default, Deserialize)]
pub struct PageParams {
    format: Option<String>,
}

#[derive(Debug, Serialize)]
struct ClusterJson {
    /// This process's member id.
    this: String,
    /// When the members were last read from the metastore (ms since the epoch).
    read_ms: i64,
    /// Why the last read failed, if it did (the list is then the one read before).
    error: Option<String>,
    members: Vec<MemberJson>,
}

#[derive(Debug, Serialize)]
struct MemberJson {
    id: String,
    roles: Vec<String>,
    address: String,
    started_ms: i64,
    heartbeat_ms: i64,
    /// `live`, or `suspect` when a call to it failed within the lease.
    health: &'static str,
    /// A segment writer's share of the ring (0–1).
    #[serde(skip_serializing_if = "Option::is_none")]
    ring_share: Option<f64>,
}

fn describe(membership: &Membership) -> ClusterJson {
    let view = membership.view();
    let shares = view.writers.shares();
    ClusterJson {
        this: membership.me().id.clone(),
        read_ms: view.read_ms,
        error: view.error.clone(),
        members: view
            .members
            .iter()
            .map(|m| MemberJson {
                id: m.id.clone(),
                roles: m.roles.clone(),
                address: m.address.clone(),
                started_ms: m.started_ms,
                heartbeat_ms: m.heartbeat_ms,
                health: if membership.is_suspect(&m.id) {
                    "suspect"
                } else {
                    "live"
                },
                ring_share: m
                    .has_role(SEGMENT_WRITER)
                    .then(|| shares.iter().find(|(id, _)| *id == m.id).map(|(_, s)| *s))
                    .flatten(),
            })
            .collect(),
    }
}

pub async fn serve(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(params): Query<PageParams>,
) -> Response {
    let cluster = describe(&state.membership);
    let json = params.format.as_deref() == Some("json")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json"));
    if json {
        return axum::Json(cluster).into_response();
    }
    let now = state.clock.now_ms();
    let mut rows = String::new();
    for m in &cluster.members {
        let this = if m.id == cluster.this {
            " (this process)"
        } else {
            ""
        };
        rows.push_str(&format!(
            "<tr><td>{}{this}</td><td>{}</td><td><a href=\"{}/cluster\">{}</a></td><td>{}</td><td>{:.1} s ago</td><td>{}</td></tr>\n",
            escape(&m.id),
            escape(&m.roles.join(", ")),
            escape(&m.address),
            escape(&m.address),
            m.health,
            (now - m.heartbeat_ms).max(0) as f64 / 1000.0,
            m.ring_share.map_or_else(String::new, |s| format!("{:.1} %", s * 100.0)),
        ));
    }
    let error = cluster.error.as_deref().map_or_else(String::new, |e| {
        format!(
            "<p class=\"error\">The last read of the members failed: {}</p>",
            escape(e)
        )
    });
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>emberscope cluster</title>\
<style>body{{font-family:system-ui,sans-serif;margin:2rem}}table{{border-collapse:collapse}}\
td,th{{border-bottom:1px solid #ddd;padding:.3rem .8rem;text-align:left}}.error{{color:#b00}}</style></head>\
<body><h1>Cluster</h1>{error}<p>{} members heard from within the lease.</p>\
<table><tr><th>member</th><th>roles</th><th>address</th><th>health</th><th>heartbeat</th><th>ring share</th></tr>\n{rows}</table>\
<p><a href=\"?format=json\">JSON</a></p></body></html>",
        cluster.members.len()
    ))
    .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
