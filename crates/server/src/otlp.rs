//! OTLP profiles ingest (`api.md` §2.3): the gRPC service
//! `opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export` on the HTTP
//! port, and OTLP/HTTP `POST /v1development/profiles` (protobuf or protojson, optionally
//! gzip). Conversion is `formats::otlp`; every converted profile then takes the Push path
//! (validation, normalisation, series split, limits).
//!
//! One deliberate difference: Pyroscope v1.18 answers conversion errors over OTLP/HTTP with 500
//! (its gRPC status leaks through); emberscope answers 400, the status of invalid input.

use crate::AppState;
use crate::error::{ApiError, Code};
use crate::rpc::{self, Call};
use crate::store;
use crate::tenant::tenant;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use formats::otlp::{ExportProfilesServiceRequest, ExportProfilesServiceResponse, OtlpError};
use std::sync::Arc;

/// Converts and stores one export request for `tenant`: all of it, or (on any error) none.
async fn export(
    state: &AppState,
    tenant: &model::TenantId,
    request: &ExportProfilesServiceRequest,
) -> Result<(), ApiError> {
    let now = state.clock.now_nanos();
    let reservation = state
        .inflight
        .reserve(prost::Message::encoded_len(request))
        .await;
    let converted = formats::otlp::convert(request, now).map_err(|e| {
        let message = e.to_string();
        match e {
            OtlpError::MissingDictionary | OtlpError::MissingResourceProfiles => {
                ApiError::new(Code::InvalidArgument, message)
            }
            OtlpError::Convert(_) => ApiError::new(Code::InvalidArgument, message),
        }
    })?;
    let limits = state.limits.get(tenant);
    let mut slots: Vec<formats::pprof::RewriteSlot> = converted.iter().map(|_| None).collect();
    let mut prepared = Vec::with_capacity(converted.len());
    let mut total = 0usize;
    for (series, slot) in converted.iter().zip(slots.iter_mut()) {
        let labels = model::Labels::from_pairs(series.labels.iter().cloned());
        let size = series.raw_size;
        total = total.saturating_add(size);
        let profile = formats::pprof::ProfileView::from_profile(&series.profile);
        let stored = store::prepare(state, tenant, profile, slot, &labels, &limits, size, now)?;
        prepared.push((stored, size));
    }
    // The converted profiles are freed once they are in the head; the request is borrowed
    // from the handler, so the reservation is kept until the answer.
    let added = store::add(state, tenant, total, prepared, None).await;
    drop(slots);
    drop(converted);
    added?.durable(state, tenant).await?;
    drop(reservation);
    Ok(())
}

/// The gRPC (and Connect) method.
pub async fn export_rpc(
    call: Call,
    request: ExportProfilesServiceRequest,
) -> Result<ExportProfilesServiceResponse, ApiError> {
    let tenant = call.tenant()?;
    export(&call.state, &tenant, &request).await?;
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
    let body = if gzip {
        match formats::compression::decompress(&body, limit) {
            Ok(bytes) => Bytes::from(bytes.into_owned()),
            Err(formats::compression::DecompressError::TooLarge { .. }) => {
                return plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("uncompressed profile payload size exceeds limit of {limit} bytes"),
                );
            }
            Err(_) => return plain(StatusCode::BAD_REQUEST, "Failed to read request body"),
        }
    } else {
        if body.len() > limit {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("profile payload size exceeds limit of {limit} bytes"),
            );
        }
        body
    };
    let request: ExportProfilesServiceRequest = if json {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(_) => return plain(StatusCode::BAD_REQUEST, "Failed to parse JSON request"),
        }
    } else {
        match <ExportProfilesServiceRequest as prost::Message>::decode(body) {
            Ok(request) => request,
            Err(_) => return plain(StatusCode::BAD_REQUEST, "Failed to parse protobuf request"),
        }
    };
    match export(&state, &tenant, &request).await {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            Vec::new(),
        )
            .into_response(),
        Err(error) => plain(error.code.status(), &error.message),
    }
}
