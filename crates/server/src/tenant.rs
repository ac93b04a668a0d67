//! The tenant of a request: `X-Scope-OrgID` when multi-tenancy is on, `anonymous` otherwise.

use crate::error::{ApiError, Code};
use axum::http::HeaderMap;
use model::TenantId;

pub const DEFAULT_TENANT: &str = "anonymous";

/// The request's tenant, or Pyroscope's 401 `no org id`.
pub fn tenant(headers: &HeaderMap, multitenancy: bool) -> Result<TenantId, ApiError> {
    if !multitenancy {
        return TenantId::new(DEFAULT_TENANT)
            .map_err(|e| ApiError::new(Code::Internal, e.to_string()));
    }
    let Some(value) = headers.get("x-scope-orgid") else {
        return Err(ApiError::new(Code::Unauthenticated, "no org id"));
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::new(Code::Unauthenticated, "no org id"))?;
    if value.contains('|') {
        return Err(ApiError::new(
            Code::InvalidArgument,
            "multiple org IDs present",
        ));
    }
    TenantId::new(value).map_err(|e| ApiError::new(Code::Unauthenticated, e.to_string()))
}
