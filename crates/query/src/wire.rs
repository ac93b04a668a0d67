//! Read tasks and their partial results as bytes, for query backends in other processes: a
//! task and its query as JSON (they are small), a result as one tag byte, the length of its
//! statistics (JSON) as four bytes, the statistics, then the partial in its own format — a
//! stack tree in the tree encoding (`model::Tree::to_bytes`, untruncated), a profile as pprof,
//! series and heatmap points as JSON. Decoding checks everything and never panics: a backend
//! that answers garbage is an error, which the frontend retries elsewhere.

use crate::error::QueryError;
use crate::partial::{Bucket, GroupKey, HeatPoint, Partial};
use crate::plan::ReadTask;
use crate::request::{Query, QueryStats};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Serialize)]
struct TaskRef<'a> {
    task: &'a ReadTask,
    query: &'a Query,
}

#[derive(Deserialize)]
struct TaskRequest {
    task: ReadTask,
    query: Query,
}

/// A task of a query, to send to a backend.
pub fn encode_task(task: &ReadTask, query: &Query) -> Vec<u8> {
    serde_json::to_vec(&TaskRef { task, query }).unwrap_or_default()
}

/// A task and its query, as a backend receives them.
pub fn decode_task(bytes: &[u8]) -> Result<(ReadTask, Query), QueryError> {
    let request: TaskRequest = serde_json::from_slice(bytes)
        .map_err(|e| QueryError::InvalidArgument(format!("a malformed read task: {e}")))?;
    Ok((request.task, request.query))
}

/// A heatmap partial's groups, exemplar label sets and points.
type HeatmapParts = (Vec<GroupKey>, Vec<Vec<(String, String)>>, Vec<HeatPoint>);

const TREE: u8 = 1;
const PROFILE: u8 = 2;
const SERIES: u8 = 3;
const HEATMAP: u8 = 4;

/// A task's result, as a backend answers it.
pub fn encode_result(partial: &Partial, stats: &QueryStats) -> Vec<u8> {
    let (tag, body) = match partial {
        Partial::Tree(tree) => (TREE, tree.to_bytes(0)),
        Partial::Profile(profile) => (PROFILE, prost::Message::encode_to_vec(profile)),
        Partial::Series(groups) => {
            let series: Vec<(&GroupKey, Vec<(&i64, &Bucket)>)> = groups
                .iter()
                .map(|(key, buckets)| (key, buckets.iter().collect()))
                .collect();
            (SERIES, serde_json::to_vec(&series).unwrap_or_default())
        }
        Partial::Heatmap {
            groups,
            labels,
            points,
        } => (
            HEATMAP,
            serde_json::to_vec(&(groups, labels, points)).unwrap_or_default(),
        ),
    };
    let stats = serde_json::to_vec(stats).unwrap_or_default();
    let mut out = Vec::with_capacity(5 + stats.len() + body.len());
    out.push(tag);
    out.extend_from_slice(&u32::try_from(stats.len()).unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&stats);
    out.extend_from_slice(&body);
    out
}

fn malformed(what: impl std::fmt::Display) -> QueryError {
    QueryError::Internal(format!(
        "a query backend answered a malformed result: {what}"
    ))
}

/// A backend's answer back into a partial result and its statistics.
pub fn decode_result(bytes: &[u8]) -> Result<(Partial, QueryStats), QueryError> {
    let (&tag, rest) = bytes.split_first().ok_or_else(|| malformed("empty"))?;
    let (length, rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| malformed("short"))?;
    let length = u32::from_le_bytes(*length) as usize;
    if rest.len() < length {
        return Err(malformed("short statistics"));
    }
    let (stats, body) = rest.split_at(length);
    let stats: QueryStats = serde_json::from_slice(stats).map_err(malformed)?;
    let partial = match tag {
        TREE => Partial::Tree(model::tree_from_bytes(body).map_err(malformed)?),
        PROFILE => Partial::Profile(prost::Message::decode(body).map_err(malformed)?),
        SERIES => {
            let series: Vec<(GroupKey, Vec<(i64, Bucket)>)> =
                serde_json::from_slice(body).map_err(malformed)?;
            Partial::Series(
                series
                    .into_iter()
                    .map(|(key, buckets)| (key, buckets.into_iter().collect::<BTreeMap<_, _>>()))
                    .collect(),
            )
        }
        HEATMAP => {
            let (groups, labels, points): HeatmapParts =
                serde_json::from_slice(body).map_err(malformed)?;
            if points.iter().any(|p| p.group as usize >= groups.len()) {
                return Err(malformed("a heatmap point of no group"));
            }
            Partial::Heatmap {
                groups,
                labels,
                points,
            }
        }
        other => return Err(malformed(format!("unknown kind {other}"))),
    };
    Ok((partial, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partial::Exemplar;
    use proptest::prelude::*;

    fn stats() -> QueryStats {
        QueryStats {
            profiles: 7,
            bytes_read: 4096,
            ..QueryStats::default()
        }
    }

    #[test]
    fn trees_and_series_survive_the_trip() {
        let mut tree = model::Tree::new();
        tree.insert(&["main", "work", "parse"], 30);
        tree.insert(&["main", "idle"], 12);
        let (back, back_stats) =
            decode_result(&encode_result(&Partial::Tree(tree.clone()), &stats())).expect("tree");
        assert_eq!(back_stats, stats());
        match back {
            Partial::Tree(back) => assert_eq!(back.to_bytes(0), tree.to_bytes(0)),
            other => panic!("{other:?}"),
        }
        let mut buckets = BTreeMap::new();
        buckets.insert(
            60_000,
            Bucket {
                sum: 5,
                count: 2,
                exemplar: Some(Exemplar {
                    timestamp: 59_000,
                    profile_id: "9f1c2b1e-6c44-4f0e-8e55-7a1f0c2d9b11".to_owned(),
                    span_id: String::new(),
                    value: 4,
                    labels: vec![("pod".to_owned(), "a".to_owned())],
                }),
            },
        );
        let series = Partial::Series(
            [(vec![("pod".to_owned(), "a".to_owned())], buckets)]
                .into_iter()
                .collect(),
        );
        let (back, _) = decode_result(&encode_result(&series, &stats())).expect("series");
        match (back, series) {
            (Partial::Series(back), Partial::Series(series)) => assert_eq!(back, series),
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        /// Any bytes are an error or a result, never a panic.
        #[test]
        fn garbage_is_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_result(&bytes);
            let _ = decode_task(&bytes);
        }
    }
}
