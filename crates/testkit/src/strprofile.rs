//! Pyroscope's "strprofile" compact JSON of a pprof (`docs/research/otlp_ingest.md` §6), the
//! form of the OTLP goldens, for tests of the converter and of the server.

use formats::pprof;
use serde_json::{Value, json};

pub fn string(profile: &pprof::Profile, index: i64) -> &str {
    usize::try_from(index)
        .ok()
        .and_then(|i| profile.string_table.get(i))
        .map_or("", String::as_str)
}

/// `strprofile.ToCompactProfile` of a pprof; `with_time` adds `time_nanos` and `duration_nanos`.
pub fn strprofile(profile: &pprof::Profile, with_time: bool) -> Value {
    let s = |index: i64| string(profile, index);
    let sample_types: Vec<Value> = profile
        .sample_type
        .iter()
        .map(|st| json!({"type": s(st.r#type), "unit": s(st.unit)}))
        .collect();
    let mut samples = Vec::new();
    for sample in &profile.sample {
        let mut out = serde_json::Map::new();
        let mut locations = Vec::new();
        for id in &sample.location_id {
            let Some(location) = profile.location.iter().find(|l| l.id == *id) else {
                continue;
            };
            let mut loc = serde_json::Map::new();
            loc.insert("address".into(), json!(format!("0x{:x}", location.address)));
            let lines: Vec<Value> = location
                .line
                .iter()
                .filter_map(|line| {
                    let f = profile.function.iter().find(|f| f.id == line.function_id)?;
                    Some(json!(format!(
                        "{}[{}]@{}:{}",
                        s(f.name),
                        s(f.system_name),
                        s(f.filename),
                        line.line
                    )))
                })
                .collect();
            if !lines.is_empty() {
                loc.insert("lines".into(), Value::Array(lines));
            }
            if let Some(m) = profile
                .mapping
                .iter()
                .find(|m| location.mapping_id != 0 && m.id == location.mapping_id)
            {
                loc.insert(
                    "mapping".into(),
                    json!(format!(
                        "0x{:x}-0x{:x}@0x{:x} {}({})",
                        m.memory_start,
                        m.memory_limit,
                        m.file_offset,
                        s(m.filename),
                        s(m.build_id)
                    )),
                );
            }
            locations.push(Value::Object(loc));
        }
        if !locations.is_empty() {
            out.insert("locations".into(), Value::Array(locations));
        }
        let values: Vec<String> = sample.value.iter().map(i64::to_string).collect();
        out.insert("values".into(), json!(values.join(",")));
        let mut labels: Vec<String> = sample
            .label
            .iter()
            .map(|l| {
                let value = if l.str == 0 {
                    l.num.to_string()
                } else {
                    s(l.str).to_owned()
                };
                format!("{}={}", s(l.key), value)
            })
            .collect();
        labels.sort();
        if !labels.is_empty() {
            out.insert("labels".into(), json!(labels.join(",")));
        }
        samples.push(Value::Object(out));
    }
    let mut out = serde_json::Map::new();
    out.insert("sample_types".into(), Value::Array(sample_types));
    out.insert("samples".into(), Value::Array(samples));
    if with_time {
        out.insert("time_nanos".into(), json!(profile.time_nanos.to_string()));
        out.insert(
            "duration_nanos".into(),
            json!(profile.duration_nanos.to_string()),
        );
    }
    out.insert("period".into(), json!(profile.period.to_string()));
    Value::Object(out)
}

/// Samples sorted by their canonical JSON text, so that comparisons are of multisets.
pub fn sorted_samples(mut profile: Value) -> Value {
    if let Some(Value::Array(samples)) = profile.get_mut("samples") {
        samples.sort_by_cached_key(Value::to_string);
    }
    profile
}
