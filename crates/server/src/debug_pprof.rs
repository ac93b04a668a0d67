//! `GET /debug/pprof/profile?seconds=N`: this server's own CPU profile, as Go's and
//! Pyroscope's servers answer it — a gzipped pprof that Google's `pprof` reads, sampled at
//! 100 Hz (the `pprof` crate's signal-based sampler) for N seconds (default 30, at most 300).
//! One profile at a time: the sampler is the process's.

use crate::error::{ApiError, Code};
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use formats::pprof::proto::{Function, Line, Location, Profile, Sample, ValueType};
use std::collections::HashMap;
use std::time::Duration;

/// Samples per second.
const FREQUENCY: i32 = 100;
const DEFAULT_SECONDS: u64 = 30;
const MAX_SECONDS: u64 = 300;

/// Held while a profile is taken.
static TAKING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

#[derive(Debug, serde::Deserialize)]
pub struct ProfileParams {
    seconds: Option<String>,
}

pub async fn profile(Query(params): Query<ProfileParams>) -> Result<Response, ApiError> {
    let seconds = match params.seconds.as_deref() {
        None | Some("") => DEFAULT_SECONDS,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=MAX_SECONDS).contains(s))
            .ok_or_else(|| {
                ApiError::new(
                    Code::InvalidArgument,
                    format!("seconds: {text:?} is not a whole number from 1 to {MAX_SECONDS}"),
                )
            })?,
    };
    let _taking = TAKING.try_acquire().map_err(|_| {
        ApiError::new(
            Code::ResourceExhausted,
            "a CPU profile of this server is already being taken",
        )
    })?;
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| ApiError::new(Code::Internal, format!("cannot start the profiler: {e}")))?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let body = tokio::task::spawn_blocking(move || {
        let report = guard
            .report()
            .build()
            .map_err(|e| format!("cannot read the profiler: {e}"))?;
        drop(guard);
        let profile = to_pprof(&report, seconds);
        let mut out = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut out, &prost::Message::encode_to_vec(&profile))
            .and_then(|()| out.finish())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?
    .map_err(|e| ApiError::new(Code::Internal, e))?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/octet-stream"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"profile\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// The sampler's report as a pprof profile: `samples/count` and `cpu/nanoseconds`, one
/// location per frame (inlined functions as its lines, innermost first), the thread's name
/// as a `thread` label.
fn to_pprof(report: &pprof::Report, seconds: u64) -> Profile {
    let period = 1_000_000_000 / i64::from(FREQUENCY);
    let mut strings: Vec<String> = vec![String::new()];
    let mut string_ids: HashMap<String, i64> = HashMap::new();
    let mut intern = |text: &str| -> i64 {
        if let Some(&id) = string_ids.get(text) {
            return id;
        }
        let id = strings.len() as i64;
        strings.push(text.to_owned());
        string_ids.insert(text.to_owned(), id);
        id
    };
    let mut functions: Vec<Function> = Vec::new();
    let mut function_ids: HashMap<String, u64> = HashMap::new();
    let mut locations: Vec<Location> = Vec::new();
    let mut samples = Vec::new();
    let (samples_type, count_unit, cpu_type, nanoseconds, thread) = (
        intern("samples"),
        intern("count"),
        intern("cpu"),
        intern("nanoseconds"),
        intern("thread"),
    );
    for (frames, count) in &report.data {
        // The innermost frames are the sampler's own (the unwinder and its caller).
        let sampler = frames
            .frames
            .iter()
            .take_while(|frame| {
                frame.iter().any(|symbol| {
                    let name = symbol.name();
                    name.starts_with("backtrace::") || name.contains("pprof::")
                })
            })
            .count();
        let own = &frames.frames[sampler..];
        let mut location_ids = Vec::with_capacity(own.len());
        for frame in own {
            let mut lines = Vec::with_capacity(frame.len());
            for symbol in frame {
                let name = symbol.name();
                let function_id = match function_ids.get(&name) {
                    Some(&id) => id,
                    None => {
                        let id = functions.len() as u64 + 1;
                        let name_id = intern(&name);
                        let file = symbol
                            .filename
                            .as_ref()
                            .map(|f| intern(&f.display().to_string()))
                            .unwrap_or(0);
                        functions.push(Function {
                            id,
                            name: name_id,
                            system_name: name_id,
                            filename: file,
                            start_line: 0,
                        });
                        function_ids.insert(name, id);
                        id
                    }
                };
                lines.push(Line {
                    function_id,
                    line: i64::from(symbol.lineno.unwrap_or(0)),
                    column: 0,
                });
            }
            let id = locations.len() as u64 + 1;
            locations.push(Location {
                id,
                line: lines,
                ..Default::default()
            });
            location_ids.push(id);
        }
        let count = i64::try_from(*count).unwrap_or(0);
        samples.push(Sample {
            location_id: location_ids,
            value: vec![count, count.saturating_mul(period)],
            label: vec![formats::pprof::proto::Label {
                key: thread,
                str: intern(&frames.thread_name),
                ..Default::default()
            }],
        });
    }
    Profile {
        sample_type: vec![
            ValueType {
                r#type: samples_type,
                unit: count_unit,
            },
            ValueType {
                r#type: cpu_type,
                unit: nanoseconds,
            },
        ],
        sample: samples,
        location: locations,
        function: functions,
        string_table: strings,
        time_nanos: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(0)),
        duration_nanos: i64::try_from(seconds).unwrap_or(0) * 1_000_000_000,
        period_type: Some(ValueType {
            r#type: cpu_type,
            unit: nanoseconds,
        }),
        period,
        ..Default::default()
    }
}
