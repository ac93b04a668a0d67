//! The `labels` form field that the Pyroscope Java agent sends beside a recording: a
//! `LabelsSnapshot` protobuf mapping each context id (the `contextId` field of its events) to
//! label key/value string ids, with the strings alongside. Each context's labels become pprof
//! sample labels, so the server splits series by them as it does for pushed pprof.

use super::error::JfrError;
use rustc_hash::FxHashMap;
use std::collections::HashMap;

/// `Context { map<int64, int64> labels = 1; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct Context {
    #[prost(map = "int64, int64", tag = "1")]
    pub labels: HashMap<i64, i64>,
}

/// `LabelsSnapshot { map<int64, Context> contexts = 1; map<int64, string> strings = 2; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelsSnapshot {
    #[prost(map = "int64, message", tag = "1")]
    pub contexts: HashMap<i64, Context>,
    #[prost(map = "int64, string", tag = "2")]
    pub strings: HashMap<i64, String>,
}

/// Each context's labels as (key, value) pairs, sorted by key, empty ones left out.
#[derive(Debug, Default)]
pub(crate) struct ContextLabels {
    contexts: FxHashMap<i64, Vec<(String, String)>>,
    strings: HashMap<i64, String>,
}

impl ContextLabels {
    /// Decodes a snapshot (already decompressed); an empty field means no labels.
    pub(crate) fn decode(bytes: &[u8]) -> Result<ContextLabels, JfrError> {
        use prost::Message;
        let snapshot =
            LabelsSnapshot::decode(bytes).map_err(|e| JfrError::Labels(e.to_string()))?;
        let text = |id: &i64| snapshot.strings.get(id).cloned().unwrap_or_default();
        let mut contexts = FxHashMap::default();
        for (id, context) in &snapshot.contexts {
            let mut labels: Vec<(String, String)> = context
                .labels
                .iter()
                .map(|(k, v)| (text(k), text(v)))
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .collect();
            labels.sort();
            labels.dedup_by(|a, b| a.0 == b.0);
            contexts.insert(*id, labels);
        }
        Ok(ContextLabels {
            contexts,
            strings: snapshot.strings,
        })
    }

    /// A string of the snapshot (span names are string ids).
    pub(crate) fn string(&self, id: i64) -> Option<&str> {
        self.strings
            .get(&id)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub(crate) fn get(&self, context_id: i64) -> &[(String, String)] {
        self.contexts.get(&context_id).map_or(&[], Vec::as_slice)
    }
}
