//! OTLP profiles ingest (`api.md` §2.3): the gRPC service
//! `opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export` on the HTTP
//! port, and OTLP/HTTP `POST /v1development/profiles` (protobuf or protojson, optionally
//! gzip). Conversion is `formats::otlp`; every converted profile then takes the Push path
//! (validation, normalisation, series split, limits).
//!
//! One deliberate difference: Pyroscope v1.18 answers conversion errors over OTLP/HTTP with 500
//! (its gRPC status leaks through); emberscope answers 400, the status of invalid input.

use crate::AppState;
use crate::distributor::{self, Batch, Body, Incoming};
use crate::error::{ApiError, Code};
use crate::rpc::{self, Call};
use crate::tenant::tenant;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use formats::otlp::{ExportProfilesServiceRequest, ExportProfilesServiceResponse, OtlpError};
use std::sync::Arc;

/// Converts and stores one export request for `tenant`: all of it, or (on any error) none.
/// `decode` makes the request (on the blocking thread that converts it).
async fn export(
    state: &Arc<AppState>,
    tenant: &model::TenantId,
    decode: impl FnOnce() -> Result<ExportProfilesServiceRequest, ApiError> + Send + 'static,
) -> Result<(), ApiError> {
    let now = state.clock.now_nanos();
    distributor::distribute(state, tenant, move || {
        let request = decode()?;
        let converted = formats::otlp::convert(&request, now).map_err(|e| {
            let message = e.to_string();
            match e {
                OtlpError::MissingDictionary | OtlpError::MissingResourceProfiles => {
                    ApiError::new(Code::InvalidArgument, message)
                }
                OtlpError::Convert(_) => ApiError::new(Code::InvalidArgument, message),
            }
        })?;
        drop(request);
        let profiles = converted
            .into_iter()
            .map(|series| {
                Incoming::new(
                    Body::Profile {
                        labels: model::Labels::from_pairs(series.labels),
                        profile: series.profile,
                    },
                    series.raw_size,
                )
            })
            .collect();
        Ok(Batch::summed(profiles))
    })
    .await
}

/// The gRPC (and Connect) method.
pub async fn export_rpc(
    call: Call,
    request: ExportProfilesServiceRequest,
) -> Result<ExportProfilesServiceResponse, ApiError> {
    let tenant = call.tenant()?;
    export(&call.state, &tenant, move || Ok(request)).await?;
    Ok(ExportProfilesServiceResponse::default())
}

/// The gRPC path: gRPC (and gRPC-Web, Connect) calls go to the service; anything else is
/// OTLP/HTTP, as Pyroscope's handler dispatches it.
pub async fn export_path(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/grpc") {
        return rpc::unary(state, headers, body, export_rpc).await;
    }
    http(State(state), headers, body).await
}

/// A plain-text OTLP/HTTP error.
fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

/// `POST /v1development/profiles`: `application/x-protobuf` / `application/protobuf` or
/// `application/json` (protojson), `Content-Encoding: gzip` allowed.
pub async fn http(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let tenant = match tenant(&headers, state.multitenancy) {
        Ok(tenant) => tenant,
        Err(error) => return plain(error.code.status(), &error.message),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let json = match content_type {
        "application/json" => true,
        "application/x-protobuf" | "application/protobuf" => false,
        other => {
            return plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("Unsupported Content-Type: {other}"),
            );
        }
    };
    let limit = state.limits.get(&tenant).body_limit_bytes();
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    if !gzip && body.len() > limit {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("profile payload size exceeds limit of {limit} bytes"),
        );
    }
    let decode = move || decode_http(&body, gzip, json, limit);
    match export(&state, &tenant, decode).await {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            Vec::new(),
        )
            .into_response(),
        Err(error) => plain(error.code.status(), &error.message),
    }
}

/// An OTLP/HTTP body: gunzipped (within `limit`), then protobuf or protojson.
fn decode_http(
    body: &[u8],
    gzip: bool,
    json: bool,
    limit: usize,
) -> Result<ExportProfilesServiceRequest, ApiError> {
    let bad = |message: &str| ApiError::new(Code::InvalidArgument, message);
    let body = if gzip {
        formats::compression::decompress(body, limit).map_err(|e| match e {
            formats::compression::DecompressError::TooLarge { .. } => ApiError::new(
                Code::PayloadTooLarge,
                format!("uncompressed profile payload size exceeds limit of {limit} bytes"),
            ),
            _ => bad("Failed to read request body"),
        })?
    } else {
        std::borrow::Cow::Borrowed(body)
    };
    if json {
        serde_json::from_slice(&body).map_err(|_| bad("Failed to parse JSON request"))
    } else {
        <ExportProfilesServiceRequest as prost::Message>::decode(&*body)
            .map_err(|_| bad("Failed to parse protobuf request"))
    }
}
