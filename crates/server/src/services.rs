//! The small services Grafana and the Profiles Drilldown app call besides the querier:
//! `settings.v1.SettingsService` (per-tenant settings kept in object storage, newest write
//! wins), `capabilities.v1.FeatureFlagsService`, `version.v1.Version`, and
//! `GET /api/v1/status/buildinfo`.

use crate::error::{ApiError, Code};
use crate::rpc::{Call, invalid};
use api::proto::capabilities::v1::{FeatureFlag, GetFeatureFlagsRequest, GetFeatureFlagsResponse};
use api::proto::settings::v1::{
    DeleteSettingsRequest, DeleteSettingsResponse, GetSettingsRequest, GetSettingsResponse,
    SetSettingsRequest, SetSettingsResponse, Setting,
};
use api::proto::version::v1::{VersionRequest, VersionResponse};
use axum::response::{IntoResponse, Response};
use model::TenantId;
use std::collections::BTreeMap;
use storage::{ObjectStore, ObjectStoreExt};

/// The querier API version reported to Grafana.
const QUERIER_API_VERSION: u64 = 1;

fn unavailable(error: impl std::fmt::Display) -> ApiError {
    ApiError::new(Code::Unavailable, format!("settings store: {error}"))
}

/// Settings by name, as stored.
type Stored = BTreeMap<String, (String, i64)>;

async fn load(store: &dyn ObjectStore, tenant: &TenantId) -> Result<Stored, ApiError> {
    match store.get(&storage::paths::settings(tenant)).await {
        Ok(result) => {
            let bytes = result.bytes().await.map_err(unavailable)?;
            serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::new(Code::Internal, format!("settings document: {e}")))
        }
        Err(storage::object_store::Error::NotFound { .. }) => Ok(Stored::new()),
        Err(e) => Err(unavailable(e)),
    }
}

async fn save(
    store: &dyn ObjectStore,
    tenant: &TenantId,
    settings: &Stored,
) -> Result<(), ApiError> {
    let bytes =
        serde_json::to_vec(settings).map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    store
        .put(&storage::paths::settings(tenant), bytes.into())
        .await
        .map(|_| ())
        .map_err(unavailable)
}

fn wire(settings: &Stored) -> Vec<Setting> {
    settings
        .iter()
        .map(|(name, (value, modified_at))| Setting {
            name: name.clone(),
            value: value.clone(),
            modified_at: *modified_at,
        })
        .collect()
}

pub async fn get_settings(
    call: Call,
    _request: GetSettingsRequest,
) -> Result<GetSettingsResponse, ApiError> {
    let tenant = call.tenant()?;
    let settings = load(call.state.store.as_ref(), &tenant).await?;
    Ok(GetSettingsResponse {
        settings: wire(&settings),
    })
}

pub async fn set_settings(
    call: Call,
    request: SetSettingsRequest,
) -> Result<SetSettingsResponse, ApiError> {
    let tenant = call.tenant()?;
    let mut setting = request.setting.ok_or_else(|| invalid("no setting given"))?;
    if setting.name.is_empty() {
        return Err(invalid("setting name is required"));
    }
    if setting.modified_at <= 0 {
        setting.modified_at = call.state.clock.now_ms();
    }
    // Read-modify-write of the tenant's document, one writer at a time in this process.
    let _guard = call.state.settings_lock.lock().await;
    let store = call.state.store.as_ref();
    let mut settings = load(store, &tenant).await?;
    if let Some((value, modified_at)) = settings.get(&setting.name)
        && *modified_at > setting.modified_at
    {
        // A newer write is already stored: it wins.
        return Ok(SetSettingsResponse {
            setting: Some(Setting {
                name: setting.name,
                value: value.clone(),
                modified_at: *modified_at,
            }),
        });
    }
    settings.insert(
        setting.name.clone(),
        (setting.value.clone(), setting.modified_at),
    );
    save(store, &tenant, &settings).await?;
    Ok(SetSettingsResponse {
        setting: Some(setting),
    })
}

pub async fn delete_settings(
    call: Call,
    request: DeleteSettingsRequest,
) -> Result<DeleteSettingsResponse, ApiError> {
    let tenant = call.tenant()?;
    let _guard = call.state.settings_lock.lock().await;
    let store = call.state.store.as_ref();
    let mut settings = load(store, &tenant).await?;
    if settings.remove(&request.name).is_some() {
        save(store, &tenant, &settings).await?;
    }
    Ok(DeleteSettingsResponse {})
}

/// The feature flags of Pyroscope v1.18, all off: emberscope serves the v1 API.
pub async fn feature_flags(
    call: Call,
    _request: GetFeatureFlagsRequest,
) -> Result<GetFeatureFlagsResponse, ApiError> {
    call.tenant()?;
    let flag = |name: &str, description: &str| FeatureFlag {
        name: name.to_owned(),
        enabled: false,
        description: Some(description.to_owned()),
        documentation_url: None,
    };
    Ok(GetFeatureFlagsResponse {
        feature_flags: vec![
            flag("pyroscopeRuler", "recording rules"),
            flag("pyroscopeRulerFunctions", "recording rules on functions"),
            flag("utf8LabelNames", "UTF-8 label names"),
            flag("v2StorageLayer", "Pyroscope's v2 storage API"),
        ],
    })
}

pub async fn version(_call: Call, _request: VersionRequest) -> Result<VersionResponse, ApiError> {
    Ok(VersionResponse {
        querier_api: QUERIER_API_VERSION,
    })
}

/// `GET /api/v1/tenant_limits`: the caller's limits as JSON.
pub async fn tenant_limits(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<crate::AppState>>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = crate::tenant::tenant(&headers, state.multitenancy)?;
    Ok(axum::Json(state.limits.get(&tenant)).into_response())
}

/// `GET /api/v1/status/buildinfo`, in the shape of Pyroscope's (Prometheus-style) answer.
pub async fn build_info() -> Response {
    let body = serde_json::json!({
        "status": "success",
        "data": {
            "version": env!("CARGO_PKG_VERSION"),
            "revision": option_env!("EMBERSCOPE_REVISION").unwrap_or("unknown"),
            "branch": option_env!("EMBERSCOPE_BRANCH").unwrap_or("unknown"),
            "goVersion": "none (emberscope is written in Rust)",
        }
    });
    axum::Json(body).into_response()
}
