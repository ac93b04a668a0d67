//! Flamebearer JSON, the response of `/pyroscope/render` (`api.md` §6.7), with keys in the order
//! Pyroscope's Go structs emit them.

use model::{FlameGraph, FlameGraphDiff, ProfileType};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct FlamebearerProfile {
    pub version: u32,
    pub flamebearer: Flamebearer,
    pub metadata: Metadata,
    pub timeline: Option<Timeline>,
    /// `groupBy` answers: the timeline of each value of the first group-by label.
    pub groups: Option<std::collections::BTreeMap<String, Timeline>>,
    pub heatmap: Option<()>,
    /// Diff ("double") format only, after `heatmap` and omitted when zero, as Go emits them.
    #[serde(rename = "leftTicks", skip_serializing_if = "is_zero")]
    pub left_ticks: i64,
    #[serde(rename = "rightTicks", skip_serializing_if = "is_zero")]
    pub right_ticks: i64,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Flamebearer {
    pub names: Option<Vec<String>>,
    pub levels: Vec<Vec<i64>>,
    pub num_ticks: i64,
    pub max_self: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub format: &'static str,
    pub spy_name: String,
    pub sample_rate: u32,
    pub units: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub start_time: i64,
    pub samples: Vec<u64>,
    pub duration_delta: i64,
    pub watermarks: Option<()>,
}

impl Metadata {
    /// Units and sample rate as Pyroscope derives them from the sample type.
    pub fn for_profile_type(format: &'static str, profile_type: &ProfileType) -> Metadata {
        let (units, sample_rate) = match profile_type.sample_type.as_str() {
            "inuse_objects" | "alloc_objects" | "goroutine" | "samples" => {
                ("objects".to_owned(), 100)
            }
            "cpu" => ("samples".to_owned(), 1_000_000_000),
            _ => (profile_type.sample_unit.clone(), 100),
        };
        Metadata {
            format,
            spy_name: String::new(),
            sample_rate,
            units,
            name: profile_type.sample_type.clone(),
        }
    }
}

impl FlamebearerProfile {
    pub fn single(
        graph: FlameGraph,
        profile_type: &ProfileType,
        timeline: Option<Timeline>,
    ) -> Self {
        FlamebearerProfile {
            version: 1,
            flamebearer: Flamebearer {
                names: Some(graph.names),
                levels: graph.levels,
                num_ticks: graph.total,
                max_self: graph.max_self,
            },
            metadata: Metadata::for_profile_type("single", profile_type),
            timeline,
            groups: None,
            heatmap: None,
            left_ticks: 0,
            right_ticks: 0,
        }
    }

    pub fn double(diff: FlameGraphDiff, profile_type: &ProfileType) -> Self {
        FlamebearerProfile {
            version: 1,
            flamebearer: Flamebearer {
                names: Some(diff.names),
                levels: diff.levels,
                num_ticks: diff.total,
                max_self: diff.max_self,
            },
            metadata: Metadata::for_profile_type("double", profile_type),
            timeline: None,
            groups: None,
            heatmap: None,
            left_ticks: diff.left_ticks,
            right_ticks: diff.right_ticks,
        }
    }

    pub fn to_json(&self) -> String {
        // Serialising plain structs of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Tree;

    #[test]
    fn keys_in_go_order() {
        let mut tree = Tree::new();
        tree.insert(&["a"], 3);
        let profile_type: ProfileType = "memory:inuse_space:bytes:space:bytes"
            .parse()
            .expect("valid id");
        let json = FlamebearerProfile::single(FlameGraph::from_tree(&tree, 0), &profile_type, None)
            .to_json();
        assert_eq!(
            json,
            r#"{"version":1,"flamebearer":{"names":["total","a"],"levels":[[0,3,0,0],[0,3,3,1]],"numTicks":3,"maxSelf":3},"metadata":{"format":"single","spyName":"","sampleRate":100,"units":"bytes","name":"inuse_space"},"timeline":null,"groups":null,"heatmap":null}"#
        );
    }

    #[test]
    fn double_format_puts_ticks_last() {
        let mut left = Tree::new();
        left.insert(&["a"], 1);
        let mut right = Tree::new();
        right.insert(&["a"], 4);
        let diff = FlameGraphDiff::from_trees(&left, &right, 0).expect("non-negative");
        let profile_type: ProfileType = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
            .parse()
            .expect("id");
        let json = FlamebearerProfile::double(diff, &profile_type).to_json();
        assert_eq!(
            json,
            r#"{"version":1,"flamebearer":{"names":["total","a"],"levels":[[0,1,0,0,4,0,0],[0,1,1,0,4,4,1]],"numTicks":5,"maxSelf":4},"metadata":{"format":"double","spyName":"","sampleRate":1000000000,"units":"samples","name":"cpu"},"timeline":null,"groups":null,"heatmap":null,"leftTicks":1,"rightTicks":4}"#
        );
    }

    #[test]
    fn cpu_units() {
        let cpu: ProfileType = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
            .parse()
            .expect("id");
        let m = Metadata::for_profile_type("single", &cpu);
        assert_eq!(
            (m.units.as_str(), m.sample_rate),
            ("samples", 1_000_000_000)
        );
        let objects: ProfileType = "memory:alloc_objects:count:space:bytes"
            .parse()
            .expect("id");
        assert_eq!(
            Metadata::for_profile_type("single", &objects).units,
            "objects"
        );
    }
}
