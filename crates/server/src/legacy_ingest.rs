//! `POST /ingest` (and `/pyroscope/ingest`), the legacy Pyroscope API: pprof bodies (raw or gzip,
//! told by their bytes) or `multipart/form-data` with a `profile` field, metadata in the query
//! string (`api.md` §2.1); the text formats (folded, lines, trie, tree) and speedscope,
//! converted by `formats::text`; Java Flight Recorder recordings (`format=jfr`, raw or a
//! multipart form with `jfr` and `labels` fields), converted by `formats::jfr`. Labels and the
//! profile name are derived as Pyroscope derives them.

use crate::AppState;
use crate::attime;
use crate::distributor::{self, Batch, Body, Incoming, Upload};
use crate::error::{ApiError, Code};
use crate::labelset;
use crate::tenant::tenant;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use formats::pprof::{self, ProfileView};
use formats::text::{TextFormat, TextInput};
use model::Labels;
use model::label_names;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Default, Deserialize)]
pub struct IngestParams {
    name: Option<String>,
    from: Option<String>,
    until: Option<String>,
    #[serde(rename = "spyName")]
    spy_name: Option<String>,
    format: Option<String>,
    #[serde(rename = "sampleRate")]
    sample_rate: Option<String>,
}

/// One entry of the `sample_type_config` form field.
#[derive(Debug, Default, Deserialize)]
struct SampleTypeConfig {
    #[serde(rename = "display-name")]
    display_name: Option<String>,
}

pub async fn ingest(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(params): Query<IngestParams>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let tenant = tenant(&headers, state.multitenancy)?;
    let limits = state.limits.get(&tenant);
    if body.len() > limits.body_limit_bytes() {
        return Err(ApiError::new(
            Code::PayloadTooLarge,
            format!(
                "request body too large: {} bytes, the limit is {} bytes",
                body.len(),
                limits.body_limit_bytes()
            ),
        ));
    }
    let name = labelset::parse(params.name.as_deref().unwrap_or(""))?;
    let now = state.clock.now_ms();
    let from_ms = params
        .from
        .as_deref()
        .map_or(now, |f| attime::parse_ms(f, now));
    let spy = params
        .spy_name
        .clone()
        .unwrap_or_else(|| "unknown".to_owned());
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = params.format.as_deref().unwrap_or("");
    if let Some(text) = TextFormat::select(format, content_type) {
        let sample_rate = params
            .sample_rate
            .as_deref()
            .and_then(|r| r.parse::<u32>().ok())
            .unwrap_or(formats::text::DEFAULT_SAMPLE_RATE);
        return ingest_text(&state, tenant, text, body, name, spy, sample_rate, from_ms).await;
    }
    if format == "jfr" {
        let until_ms = params
            .until
            .as_deref()
            .map_or(now, |u| attime::parse_ms(u, now));
        let (jfr, labels) = if content_type.contains("multipart/form-data") {
            multipart_jfr(content_type, body).await?
        } else {
            (body, None)
        };
        let input = JfrRequest {
            body: jfr,
            labels,
            name,
            spy,
            sample_rate: params.sample_rate.clone(),
            from_ms,
            until_ms,
        };
        return ingest_jfr(&state, &limits, tenant, input).await;
    }
    let (profile_bytes, config) = match format {
        "pprof" => (body, HashMap::new()),
        _ => multipart_profile(content_type, body).await?,
    };
    if profile_bytes.is_empty() {
        return Ok(StatusCode::OK);
    }
    let limit = match limits.max_profile_size_bytes {
        0 => usize::MAX,
        limit => limit,
    };
    let upload = Upload {
        dotnet: pprof::is_dotnet_spy(&spy, config.contains_key("inuse-space")),
        renames: config
            .into_iter()
            .filter_map(|(from, c)| c.display_name.map(|to| (from, to)))
            .collect(),
        name,
        spy,
        from_nanos: from_ms.saturating_mul(1_000_000),
    };
    distributor::distribute(&state, &tenant, move || {
        let raw = formats::compression::decompress(&profile_bytes, limit).map_err(|e| match e {
            formats::compression::DecompressError::TooLarge { .. } => {
                ApiError::new(Code::InvalidArgument, e.to_string())
            }
            other => ApiError::new(Code::Unprocessable, other.to_string()),
        })?;
        let size = raw.len();
        let bytes = match raw {
            std::borrow::Cow::Owned(raw) => Bytes::from(raw),
            std::borrow::Cow::Borrowed(_) => profile_bytes,
        };
        Ok(Batch::summed(vec![Incoming::new(
            Body::Upload { bytes, upload },
            size,
        )]))
    })
    .await?;
    Ok(StatusCode::OK)
}

/// The view of an `/ingest` pprof upload, repaired as Pyroscope repairs it (its time, the
/// scripting and .NET names, the `sample_type_config` renames), and the series labels
/// Pyroscope gives it. The scripting and .NET repairs rewrite names and ids: they work on an
/// owned copy (`repaired`), and the decoded view is freed once it is made.
pub(crate) fn repair_upload<'a>(
    bytes: &'a [u8],
    upload: &'a Upload,
    repaired: &'a mut Option<pprof::Profile>,
) -> Result<(ProfileView<'a>, Labels), ApiError> {
    let decoded = ProfileView::decode(bytes)
        .map_err(|e| ApiError::new(Code::Unprocessable, e.to_string()))?;
    let mut profile = if pprof::is_scripting_spy(&upload.spy) || upload.dotnet {
        let mut owned = decoded.to_profile();
        drop(decoded);
        pprof::fix_scripting_function_names(&mut owned, &upload.spy);
        if upload.dotnet {
            pprof::fix_dotnet(&mut owned);
        }
        ProfileView::from_profile(repaired.insert(owned))
    } else {
        decoded
    };
    pprof::fix_time(&mut profile.time_nanos, upload.from_nanos);
    rename_sample_types(&mut profile, &upload.renames);
    let labels = upload_labels(
        &upload.name,
        &pprof::upload_profile_name(&profile),
        &upload.spy,
        &upload.name.name,
        false,
    );
    Ok((profile, labels))
}

/// A text-format or speedscope body: converted to pprof profiles, each pushed with the labels
/// Pyroscope gives them (`ingest_adapter.go:Put`).
#[allow(clippy::too_many_arguments)]
async fn ingest_text(
    state: &Arc<AppState>,
    tenant: model::TenantId,
    format: TextFormat,
    body: Bytes,
    name: labelset::AppName,
    spy: String,
    sample_rate: u32,
    from_ms: i64,
) -> Result<StatusCode, ApiError> {
    // Pyroscope drops text uploads labelled with a profile id, and answers 200.
    if name
        .labels
        .iter()
        .any(|(key, _)| key == label_names::PROFILE_ID)
    {
        return Ok(StatusCode::OK);
    }
    distributor::distribute(state, &tenant, move || {
        let mut input = TextInput::new(format, &body, &name.name);
        input.sample_rate = sample_rate;
        input.start_time_nanos = from_ms.saturating_mul(1_000_000);
        let converted = formats::text::convert(input)
            .map_err(|e| ApiError::new(Code::Unprocessable, e.to_string()))?;
        let mut profiles = Vec::with_capacity(converted.len());
        for converted in converted {
            let mut labels = upload_labels(
                &name,
                &converted.metric_name,
                &spy,
                &converted.service_name,
                true,
            );
            for pair in &converted.labels {
                if pair.value.is_empty() {
                    labels.remove(&pair.name);
                } else {
                    labels.set(pair.name.clone(), pair.value.clone());
                }
            }
            // Each profile counts as the whole body, the request once.
            profiles.push(Incoming::new(
                Body::Profile {
                    profile: converted.profile,
                    labels,
                },
                body.len(),
            ));
        }
        Ok(Batch {
            profiles,
            total: body.len(),
            request: None,
        })
    })
    .await?;
    Ok(StatusCode::OK)
}

/// A `format=jfr` request, parsed.
struct JfrRequest {
    body: Bytes,
    labels: Option<Bytes>,
    name: labelset::AppName,
    spy: String,
    sample_rate: Option<String>,
    from_ms: i64,
    until_ms: i64,
}

/// The most of one chunk a recording may make the server hold (the JDK rotates chunks at
/// about 12 MB; the Java agent sends one small chunk per upload).
const MAX_JFR_CHUNK_BYTES: usize = 64 << 20;

/// A recording: converted to one profile per series kind, each pushed with the labels
/// Pyroscope gives it (`jfr-parser`'s `pyroscope.Labels`: the `name` labels, `__name__`,
/// `pyroscope_spy`, `service_name` or `app_name`, and `jfr_event`).
async fn ingest_jfr(
    state: &Arc<AppState>,
    limits: &crate::limits::Limits,
    tenant: model::TenantId,
    request: JfrRequest,
) -> Result<StatusCode, ApiError> {
    let sample_rate = request
        .sample_rate
        .as_deref()
        .and_then(|r| r.parse::<u32>().ok())
        .unwrap_or(formats::jfr::DEFAULT_SAMPLE_RATE);
    let max_bytes = match limits.max_profile_size_bytes {
        0 => formats::jfr::JfrLimits::default().max_bytes,
        // A recording is several times the size of the profiles it yields.
        limit => limit.saturating_mul(16),
    };
    distributor::distribute(state, &tenant, move || {
        let recording = formats::jfr::convert(formats::jfr::JfrInput {
            body: &request.body,
            labels: request.labels.as_deref(),
            sample_rate,
            start_time_nanos: request.from_ms.saturating_mul(1_000_000),
            duration_nanos: request
                .until_ms
                .saturating_sub(request.from_ms)
                .saturating_mul(1_000_000),
            limits: formats::jfr::JfrLimits {
                max_bytes,
                max_chunk_bytes: MAX_JFR_CHUNK_BYTES,
            },
        })
        .map_err(|e| ApiError::new(Code::Unprocessable, e.to_string()))?;
        drop(request.body);
        let mut profiles = Vec::with_capacity(recording.profiles.len());
        for converted in recording.profiles {
            let mut labels = upload_labels(
                &request.name,
                converted.metric_name,
                &request.spy,
                &request.name.name,
                true,
            );
            if !recording.event.is_empty() {
                labels.set("jfr_event", recording.event.clone());
            }
            let size = prost::Message::encoded_len(&converted.profile);
            profiles.push(Incoming::new(
                Body::Profile {
                    profile: converted.profile,
                    labels,
                },
                size,
            ));
        }
        Ok(Batch::summed(profiles))
    })
    .await?;
    Ok(StatusCode::OK)
}

/// The `jfr` field (required) and `labels` field (optional) of a multipart form.
async fn multipart_jfr(
    content_type: &str,
    body: Bytes,
) -> Result<(Bytes, Option<Bytes>), ApiError> {
    let bad = |message: String| ApiError::new(Code::Unprocessable, message);
    let boundary = multer::parse_boundary(content_type).map_err(|e| bad(e.to_string()))?;
    let stream = futures::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let (mut jfr, mut labels) = (None, None);
    while let Some(field) = form.next_field().await.map_err(|e| bad(e.to_string()))? {
        match field.name() {
            Some("jfr") => jfr = Some(field.bytes().await.map_err(|e| bad(e.to_string()))?),
            Some("labels") => labels = Some(field.bytes().await.map_err(|e| bad(e.to_string()))?),
            _ => {}
        }
    }
    let jfr = jfr
        .filter(|j| !j.is_empty())
        .ok_or_else(|| bad("jfr field is required".to_owned()))?;
    Ok((jfr, labels))
}

/// The `profile` field (and `sample_type_config`) of a multipart form.
async fn multipart_profile(
    content_type: &str,
    body: Bytes,
) -> Result<(Bytes, HashMap<String, SampleTypeConfig>), ApiError> {
    let bad = |message: String| ApiError::new(Code::Unprocessable, message);
    let boundary = multer::parse_boundary(content_type).map_err(|e| bad(e.to_string()))?;
    let stream = futures::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let (mut profile, mut config) = (None, HashMap::new());
    while let Some(field) = form.next_field().await.map_err(|e| bad(e.to_string()))? {
        match field.name() {
            Some("profile") => profile = Some(field.bytes().await.map_err(|e| bad(e.to_string()))?),
            Some("prev_profile") => {
                return Err(bad(
                    "unsupported client version. Please update github.com/grafana/pyroscope-go to the latest version".to_owned(),
                ));
            }
            Some("sample_type_config") => {
                let text = field.bytes().await.map_err(|e| bad(e.to_string()))?;
                config = serde_json::from_slice(&text)
                    .map_err(|e| bad(format!("sample_type_config: {e}")))?;
            }
            _ => {}
        }
    }
    let profile = profile.ok_or_else(|| bad("multipart form has no profile field".to_owned()))?;
    Ok((profile, config))
}

/// Applies `display-name` renames of `sample_type_config` to the sample types.
fn rename_sample_types<'a>(profile: &mut ProfileView<'a>, renames: &'a [(String, String)]) {
    for index in 0..profile.sample_type.len() {
        let current = profile.string(profile.sample_type[index].0);
        if let Some((_, name)) = renames.iter().find(|(from, _)| from == current) {
            profile.strings.push(name);
            profile.sample_type[index].0 = profile.strings.len() as i64 - 1;
        }
    }
}

/// The series labels Pyroscope gives an `/ingest` upload: the `name` labels (reserved `__`
/// ones dropped, `__session_id__` kept), `__name__`, `pyroscope_spy`, and `service_name` =
/// `service` unless the request names one — then text and JFR uploads (`app_name_too`) keep
/// the app name as `app_name`.
fn upload_labels(
    name: &labelset::AppName,
    metric: &str,
    spy: &str,
    service: &str,
    app_name_too: bool,
) -> Labels {
    let mut labels = Labels::new();
    for (key, value) in &name.labels {
        if !key.starts_with("__") || key == "__session_id__" {
            labels.set(key.clone(), value.clone());
        }
    }
    labels.set(label_names::METRIC_NAME, metric);
    labels.set("pyroscope_spy", spy);
    if labels.get(label_names::SERVICE_NAME).is_none() {
        labels.set(label_names::SERVICE_NAME, service);
    } else if app_name_too {
        labels.set("app_name", name.name.clone());
    }
    labels
}
