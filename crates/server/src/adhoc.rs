//! `POST /api/adhoc/flamegraph`: the UI's "view a file without storing it" (Pyroscope's ad hoc
//! view). The body is a profile file — pprof, JFR, speedscope or folded, raw or gzip, told from
//! its bytes — and the answer is one flame graph per profile and sample type in it, as JSON.
//! Nothing is stored and no tenant data is read.

use crate::error::{ApiError, Code};
use axum::Json;
use axum::extract::Query;
use bytes::Bytes;
use formats::detect::FileFormat;
use formats::pprof::Profile;
use model::FlameGraph;
use serde::Deserialize;
use serde_json::{Value, json};

/// The most a file may expand to once decompressed.
const MAX_FILE_BYTES: usize = 256 << 20;

#[derive(Debug, Deserialize)]
pub struct AdhocParams {
    #[serde(rename = "maxNodes")]
    max_nodes: Option<usize>,
}

pub async fn flamegraph(
    Query(params): Query<AdhocParams>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let bad = |message: String| ApiError::new(Code::Unprocessable, message);
    let max_nodes = params.max_nodes.unwrap_or(8192).clamp(1, 1 << 20);
    let raw =
        formats::compression::decompress(&body, MAX_FILE_BYTES).map_err(|e| bad(e.to_string()))?;
    let profiles: Vec<(String, Profile)> = match formats::detect::detect(&raw) {
        FileFormat::Pprof => {
            let profile =
                formats::pprof::decode(&raw, MAX_FILE_BYTES).map_err(|e| bad(e.to_string()))?;
            vec![(String::new(), profile)]
        }
        FileFormat::Jfr => {
            let recording = formats::jfr::convert(formats::jfr::JfrInput {
                body: &raw,
                labels: None,
                sample_rate: formats::jfr::DEFAULT_SAMPLE_RATE,
                start_time_nanos: 0,
                duration_nanos: 0,
                limits: formats::jfr::JfrLimits::default(),
            })
            .map_err(|e| bad(e.to_string()))?;
            recording
                .profiles
                .into_iter()
                .map(|p| (p.metric_name.to_owned(), p.profile))
                .collect()
        }
        format @ (FileFormat::Speedscope | FileFormat::Folded) => {
            let text = if format == FileFormat::Speedscope {
                formats::text::TextFormat::Speedscope
            } else {
                formats::text::TextFormat::Folded
            };
            formats::text::convert(formats::text::TextInput::new(text, &raw, "adhoc"))
                .map_err(|e| bad(e.to_string()))?
                .into_iter()
                .map(|p| (p.metric_name, p.profile))
                .collect()
        }
    };
    let mut out = Vec::new();
    for (metric, profile) in &profiles {
        let string = |i: i64| {
            usize::try_from(i)
                .ok()
                .and_then(|i| profile.string_table.get(i))
                .cloned()
                .unwrap_or_default()
        };
        for (index, sample_type) in profile.sample_type.iter().enumerate() {
            let tree = formats::pprof::to_tree(profile, index);
            let graph = FlameGraph::from_tree(&tree, max_nodes);
            let levels: Vec<Value> = graph
                .levels
                .into_iter()
                .map(|values| json!({ "values": values }))
                .collect();
            out.push(json!({
                "name": metric,
                "sampleType": string(sample_type.r#type),
                "unit": string(sample_type.unit),
                "flamegraph": {
                    "names": graph.names,
                    "levels": levels,
                    "total": graph.total,
                    "maxSelf": graph.max_self,
                },
            }));
        }
    }
    if out.is_empty() {
        return Err(bad("the file holds no profile".to_owned()));
    }
    Ok(Json(json!({ "profiles": out })))
}
