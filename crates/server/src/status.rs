//! Operational endpoints that Pyroscope users script against: the effective configuration
//! (`/config`, with `?mode=diff` and `?mode=defaults`, and Pyroscope v2's
//! `/api/v1/status/config`, `/config/diff`, `/config/default`), the runtime overrides
//! (`/runtime_config`, `?mode=diff`), and this process's components and their state
//! (`/services`). All plain text: YAML for the first two.

use crate::AppState;
use crate::error::{ApiError, Code};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The effective configuration as YAML, rendered by whoever read it (the binary): every
/// setting, the defaults, and the settings that differ from their defaults; secrets redacted.
#[derive(Debug, Clone, Default)]
pub struct ConfigPages {
    pub current: String,
    pub defaults: String,
    pub diff: String,
}

#[derive(Debug, serde::Deserialize)]
pub struct ModeParam {
    mode: Option<String>,
}

/// A plain-text answer (YAML, or lines).
fn plain_text(text: String) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `GET /config[?mode=diff|defaults]`.
pub async fn config(
    State(state): State<Arc<AppState>>,
    Query(mode): Query<ModeParam>,
) -> Result<Response, ApiError> {
    let pages = &state.config_pages;
    let page = match mode.mode.as_deref() {
        None | Some("") => &pages.current,
        Some("diff") => &pages.diff,
        Some("defaults") => &pages.defaults,
        Some(other) => {
            return Err(ApiError::new(
                Code::InvalidArgument,
                format!("unknown mode {other:?}: use diff or defaults, or none"),
            ));
        }
    };
    Ok(plain_text(page.clone()))
}

/// `GET /api/v1/status/config`.
pub async fn status_config(State(state): State<Arc<AppState>>) -> Response {
    plain_text(state.config_pages.current.clone())
}

/// `GET /api/v1/status/config/diff`.
pub async fn status_config_diff(State(state): State<Arc<AppState>>) -> Response {
    plain_text(state.config_pages.diff.clone())
}

/// `GET /api/v1/status/config/default`.
pub async fn status_config_default(State(state): State<Arc<AppState>>) -> Response {
    plain_text(state.config_pages.defaults.clone())
}

/// `GET /runtime_config[?mode=diff]`: the overrides as they are in force, in the runtime
/// configuration file's format; with `diff`, only the limits that differ from the defaults.
pub async fn runtime_config(
    State(state): State<Arc<AppState>>,
    Query(mode): Query<ModeParam>,
) -> Result<Response, ApiError> {
    let diff = match mode.mode.as_deref() {
        None | Some("") => false,
        Some("diff") => true,
        Some(other) => {
            return Err(ApiError::new(
                Code::InvalidArgument,
                format!("unknown mode {other:?}: use diff, or none"),
            ));
        }
    };
    let internal = |e: serde_yaml::Error| ApiError::new(Code::Internal, e.to_string());
    let defaults = serde_yaml::to_value(state.limits.defaults()).map_err(internal)?;
    let mut overrides = serde_yaml::Mapping::new();
    for (tenant, limits) in state.limits.overrides() {
        let mut limits = serde_yaml::to_value(&limits).map_err(internal)?;
        if diff
            && let (serde_yaml::Value::Mapping(set), serde_yaml::Value::Mapping(base)) =
                (&mut limits, &defaults)
        {
            set.retain(|key, value| base.get(key) != Some(value));
        }
        overrides.insert(tenant.into(), limits);
    }
    let mut document = serde_yaml::Mapping::new();
    document.insert("overrides".into(), overrides.into());
    Ok(plain_text(
        serde_yaml::to_string(&document).map_err(internal)?,
    ))
}

/// `GET /services`: each component of this process and its state, one per line.
pub async fn services(State(state): State<Arc<AppState>>) -> Response {
    // A component waiting for another (a distributor for a live segment writer, a reader of
    // the metastore for the metastore) is "Starting", as Pyroscope's are until they run.
    let waiting = crate::cluster::ready::waiting(&state);
    let mut out = String::new();
    let components = ["server", "metastore-client", "storage", "membership"]
        .into_iter()
        .chain(state.roles.iter().map(|role| role.name()));
    for name in components {
        let running = !waiting.iter().any(|(component, _)| *component == name);
        out.push_str(name);
        out.push_str(if running {
            ": Running\n"
        } else {
            ": Starting\n"
        });
    }
    plain_text(out)
}
