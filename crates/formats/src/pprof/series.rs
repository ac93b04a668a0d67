//! From one pushed pprof to the series Pyroscope stores (`api.md` §2.2, §6.2, §6.3): the full
//! push pipeline (`prepare_push`), the split by pprof sample labels, label validation with
//! Pyroscope's messages and `.`→`_` sanitisation, and the per-sample-type profile type labels.

use super::frames::string_at;
use super::proto::Profile;
use super::validate::{ProfileLimits, Reason, ValidationError, labels_string, validate_profile};
use super::view::ProfileView;
use super::{MergeOptions, ProfileMerger, ViewIndex, normalize};
use model::{LabelPair, Labels, ProfileType};
use rustc_hash::FxHashMap;

pub const SERVICE_NAME: &str = "service_name";
pub const UNKNOWN_SERVICE: &str = "unknown_service";
pub const SPAN_ID: &str = "span_id";
pub const PROFILE_ID: &str = "profile_id";

/// Limits on a series' labels, with Pyroscope's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelLimits {
    pub max_label_names: usize,
    pub max_name_length: usize,
    pub max_value_length: usize,
}

impl Default for LabelLimits {
    fn default() -> Self {
        LabelLimits {
            max_label_names: 30,
            max_name_length: 1024,
            max_value_length: 2048,
        }
    }
}

/// One series of a pushed profile: its labels (sample labels merged in) and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesProfile {
    pub labels: Labels,
    pub profile: Profile,
}

impl SeriesProfile {
    /// The profile type id and stored labels of each sample type of this series.
    pub fn profile_types(&self) -> Vec<(ProfileType, Labels)> {
        profile_type_labels(&self.labels, &self.profile)
    }
}

fn invalid(reason: Reason, message: String) -> ValidationError {
    ValidationError { reason, message }
}

/// `__name__` of an uploaded pprof, from its sample types, as Pyroscope picks it on `/ingest`
/// (`pkg/og/convert/pprof/profile.go:createLabels`); the upload client uses it too.
pub fn upload_profile_name(profile: &Profile) -> String {
    let types: Vec<&str> = profile
        .sample_type
        .iter()
        .map(|st| {
            usize::try_from(st.r#type)
                .ok()
                .and_then(|i| profile.string_table.get(i))
                .map_or("", String::as_str)
        })
        .collect();
    if types.contains(&"wall") {
        return "wall".to_owned();
    }
    for t in &types {
        if t.contains("cpu") {
            return "process_cpu".to_owned();
        }
        if t.contains("alloc_") || t.contains("inuse_") || *t == "space" || *t == "objects" {
            return "memory".to_owned();
        }
        if t.contains("mutex_") {
            return "mutex".to_owned();
        }
        if t.contains("block_") {
            return "block".to_owned();
        }
        if t.contains("goroutines") {
            return "goroutines".to_owned();
        }
    }
    types.last().map_or_else(String::new, |t| (*t).to_owned())
}

/// The language a profile comes from, as Pyroscope guesses it: the `pyroscope_spy` label, else
/// the first string of the table that starts or ends with a language's marker.
pub fn profile_language(profile: &Profile, labels: &Labels) -> &'static str {
    let by_spy = match labels.get("pyroscope_spy") {
        Some("gospy") => Some("go"),
        Some("dotnetspy") => Some("dotnet"),
        Some("phpspy") => Some("php"),
        Some("pyspy") => Some("python"),
        Some("rbspy") => Some("ruby"),
        Some("nodespy") => Some("nodejs"),
        Some("javaspy" | "grafana-agent.java") => Some("java"),
        Some("pyroscope-rs") => Some("rust"),
        _ => None,
    };
    if let Some(language) = by_spy {
        return language;
    }
    const MARKERS: [(&str, &[&str]); 7] = [
        ("go", &[".go", "/usr/local/go/"]),
        ("java", &["java/", "sun/"]),
        ("ruby", &[".rb", "gems/"]),
        ("nodejs", &["./node_modules/", ".js"]),
        ("dotnet", &["System.", "Microsoft."]),
        ("python", &[".py"]),
        ("rust", &["main.rs", "core.rs"]),
    ];
    for s in &profile.string_table {
        for (language, markers) in MARKERS {
            if markers.iter().any(|m| s.starts_with(m) || s.ends_with(m)) {
                return language;
            }
        }
    }
    "unknown"
}

/// A client's label list as Pyroscope's distributor takes it: `service_name="unknown_service"`
/// appended when `service_name` is missing or empty, sorted by name (stably), and refused when
/// a name repeats (an explicit empty `service_name` therefore meets the default and is refused,
/// as in Pyroscope).
pub fn request_labels(pairs: &[LabelPair]) -> Result<Labels, ValidationError> {
    let mut pairs = pairs.to_vec();
    if !pairs
        .iter()
        .any(|p| p.name == SERVICE_NAME && !p.value.is_empty())
    {
        pairs.push(LabelPair::new(SERVICE_NAME, UNKNOWN_SERVICE));
    }
    pairs.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(pair) = pairs.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(invalid(
            Reason::DuplicateLabelNames,
            format!(
                "profile with labels '{}' has duplicate label name: '{}'",
                labels_string(&pairs),
                pair[0].name
            ),
        ));
    }
    Ok(Labels::from_pairs(
        pairs.into_iter().map(|p| (p.name, p.value)),
    ))
}

/// What Pyroscope's distributor does to one pushed profile before storing it: default
/// `service_name`, validate, repair Go profiles, normalise, split by sample labels and validate
/// each series' labels. A profile left with no samples yields no series (and no error).
pub fn prepare_push(
    mut profile: Profile,
    series_labels: &Labels,
    profile_limits: &ProfileLimits,
    label_limits: &LabelLimits,
    uncompressed_size: usize,
    now_nanos: i64,
) -> Result<Vec<SeriesProfile>, ValidationError> {
    let mut labels = series_labels.clone();
    if labels.get(SERVICE_NAME).is_none_or(str::is_empty) {
        labels.set(SERVICE_NAME, UNKNOWN_SERVICE);
    }
    validate_profile(
        &mut profile,
        profile_limits,
        &labels,
        uncompressed_size,
        now_nanos,
    )?;
    if profile_language(&profile, &labels) == "go" {
        super::go_fix::fix_go_profile(&mut profile);
    }
    normalize(&mut profile);
    if profile.sample.is_empty() {
        return Ok(Vec::new());
    }
    let mut series = split_by_sample_labels(profile, &labels);
    for one in &mut series {
        validate_labels(&mut one.labels, label_limits)?;
    }
    Ok(series)
}

/// Splits a profile into one series per distinct set of sample labels, `span_id` excepted
/// (`profile_id` is renamed to `span_id` first). Sample labels join the series labels unless the
/// series already has a non-empty value for that name; samples keep only their `span_id`.
pub fn split_by_sample_labels(mut profile: Profile, series_labels: &Labels) -> Vec<SeriesProfile> {
    rename_label_key(&mut profile, PROFILE_ID, SPAN_ID);
    let span_key = profile.string_table.iter().position(|s| s == SPAN_ID);
    let has_group_labels = profile.sample.iter().any(|s| {
        s.label
            .iter()
            .any(|l| Some(l.key as usize) != span_key && l.str != 0)
    });
    if !has_group_labels {
        return vec![SeriesProfile {
            labels: series_labels.clone(),
            profile,
        }];
    }
    // Group samples by their non-span (key, value) labels, then groups by their final label
    // sets (series labels win over sample labels, so different keys can meet), in first-seen
    // order.
    let span_key = span_key.map(|k| k as i64);
    let is_span = |key: i64| Some(key) == span_key;
    let mut by_sample_labels: FxHashMap<Vec<(i64, i64)>, usize> = FxHashMap::default();
    let mut groups: Vec<(Labels, Vec<usize>)> = Vec::new();
    let mut group_of_labels: FxHashMap<Labels, usize> = FxHashMap::default();
    let mut key: Vec<(i64, i64)> = Vec::new();
    for (index, sample) in profile.sample.iter().enumerate() {
        key.clear();
        key.extend(
            sample
                .label
                .iter()
                .filter(|l| !is_span(l.key) && l.str != 0)
                .map(|l| (l.key, l.str)),
        );
        key.sort_unstable();
        let group = match by_sample_labels.get(&key) {
            Some(&group) => group,
            None => {
                let mut labels = series_labels.clone();
                for &(k, v) in &key {
                    let name = string_at(&profile, k);
                    if labels.get(name).is_none_or(str::is_empty) {
                        labels.set(name, string_at(&profile, v));
                    }
                }
                let group = *group_of_labels.entry(labels.clone()).or_insert_with(|| {
                    groups.push((labels, Vec::new()));
                    groups.len() - 1
                });
                by_sample_labels.insert(key.clone(), group);
                group
            }
        };
        groups[group].1.push(index);
    }
    let view = ProfileView::from_profile(&profile);
    let index = ViewIndex::new(&view);
    let mut out = Vec::with_capacity(groups.len());
    for (labels, members) in groups {
        // Each series keeps only what its samples reference, and only their span ids.
        let mut merger = ProfileMerger::new(MergeOptions::default());
        let part = match merger.merge_view_subset(&view, &index, members, |l| is_span(l.key)) {
            Ok(()) => merger.finish(),
            Err(_) => continue,
        };
        out.push(SeriesProfile {
            labels,
            profile: part,
        });
    }
    out
}

fn rename_label_key(profile: &mut Profile, from: &str, to: &str) {
    let Some(old) = profile.string_table.iter().position(|s| s == from) else {
        return;
    };
    if old == 0 {
        return;
    }
    let new = match profile.string_table.iter().position(|s| s == to) {
        Some(index) => index,
        None => {
            profile.string_table.push(to.to_owned());
            profile.string_table.len() - 1
        }
    };
    for sample in &mut profile.sample {
        for label in &mut sample.label {
            if label.key == old as i64 {
                label.key = new as i64;
            }
        }
    }
}

/// Pyroscope's legacy label name rule, with dots allowed (to be sanitised into `_`).
fn valid_legacy_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphabetic() || c == '_' || c == '.' || (i > 0 && c.is_ascii_digit())
        })
}

/// Validates (and sanitises) a series' label set as Pyroscope's `ValidateLabels` does.
pub fn validate_labels(labels: &mut Labels, limits: &LabelLimits) -> Result<(), ValidationError> {
    if labels.is_empty() {
        return Err(invalid(
            Reason::MissingLabels,
            "error at least one label pair is required per profile".to_owned(),
        ));
    }
    if labels.len() > limits.max_label_names {
        return Err(invalid(
            Reason::MaxLabelNamesPerSeries,
            format!(
                "profile series '{}' has {} label names; limit {}",
                labels_string(&*labels),
                labels.len(),
                limits.max_label_names
            ),
        ));
    }
    if labels.get("__name__").is_none_or(str::is_empty) {
        return Err(invalid(
            Reason::InvalidLabels,
            format!(
                "invalid labels '{}' with error: invalid metric name",
                labels_string(&*labels)
            ),
        ));
    }
    if labels.get(SERVICE_NAME).is_none_or(str::is_empty) {
        return Err(invalid(
            Reason::MissingLabels,
            format!(
                "invalid labels '{}' with error: service name is not provided",
                labels_string(&*labels)
            ),
        ));
    }
    let pairs: Vec<(String, String)> = labels
        .iter()
        .map(|p| (p.name.clone(), p.value.clone()))
        .collect();
    for (name, value) in &pairs {
        if name.len() > limits.max_name_length {
            return Err(invalid(
                Reason::LabelNameTooLong,
                format!(
                    "profile with labels '{}' has label name too long: '{name}'",
                    labels_string(&*labels)
                ),
            ));
        }
        if value.len() > limits.max_value_length {
            return Err(invalid(
                Reason::LabelValueTooLong,
                format!(
                    "profile with labels '{}' has label value too long: '{value}'",
                    labels_string(&*labels)
                ),
            ));
        }
        if !valid_legacy_name(name) {
            return Err(invalid(
                Reason::InvalidLabels,
                format!(
                    "invalid labels '{}' with error: invalid label name '{name}'",
                    labels_string(&*labels)
                ),
            ));
        }
        if name.contains('.') {
            let sanitized = name.replace('.', "_");
            match labels.get(&sanitized) {
                Some(existing) if existing == value => {
                    labels.remove(name);
                }
                Some(_) => {
                    return Err(invalid(
                        Reason::DuplicateLabelNames,
                        format!(
                            "profile with labels '{}' has duplicate label name '{sanitized}' after label name sanitization from '{name}'",
                            labels_string(&*labels)
                        ),
                    ));
                }
                None => {
                    labels.remove(name);
                    labels.set(sanitized, value.clone());
                }
            }
        }
    }
    Ok(())
}

/// The stored labels of each sample type: the series labels plus `__service_name__`,
/// `__period_type__`, `__period_unit__`, `__type__`, `__unit__` and `__profile_type__`
/// (`__delta__`, `__otel__` and `__order__` are consumed, not stored).
pub fn profile_type_labels(
    series_labels: &Labels,
    profile: &Profile,
) -> Vec<(ProfileType, Labels)> {
    let mut base = series_labels.clone();
    for consumed in ["__delta__", "__otel__", "__order__"] {
        base.remove(consumed);
    }
    if let Some(service) = base.get(SERVICE_NAME).filter(|s| !s.is_empty()) {
        let service = service.to_owned();
        base.set("__service_name__", service);
    }
    let (period_type, period_unit) = match profile.period_type {
        Some(pt) => {
            let (t, u) = (string_at(profile, pt.r#type), string_at(profile, pt.unit));
            base.set("__period_type__", t);
            base.set("__period_unit__", u);
            (t.to_owned(), u.to_owned())
        }
        None => (String::new(), String::new()),
    };
    let name = base.get("__name__").unwrap_or_default().to_owned();
    profile
        .sample_type
        .iter()
        .map(|st| {
            let profile_type = ProfileType {
                name: name.clone(),
                sample_type: string_at(profile, st.r#type).to_owned(),
                sample_unit: string_at(profile, st.unit).to_owned(),
                period_type: period_type.clone(),
                period_unit: period_unit.clone(),
            };
            let mut labels = base.clone();
            labels.set("__type__", profile_type.sample_type.clone());
            labels.set("__unit__", profile_type.sample_unit.clone());
            labels.set("__profile_type__", profile_type.to_string());
            (profile_type, labels)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LabelLimits {
        LabelLimits::default()
    }

    #[test]
    fn label_messages() {
        let mut too_many =
            Labels::from_pairs((0..31).map(|i| (format!("l{i:02}"), "v".to_owned())));
        let err = validate_labels(&mut too_many, &limits()).expect_err("31 names");
        assert_eq!(err.reason, Reason::MaxLabelNamesPerSeries);
        assert!(
            err.message.ends_with("has 31 label names; limit 30"),
            "{}",
            err.message
        );

        let mut no_service = Labels::from_pairs([("__name__", "cpu")]);
        let err = validate_labels(&mut no_service, &limits()).expect_err("no service");
        assert_eq!(
            err.message,
            "invalid labels '{__name__=\"cpu\"}' with error: service name is not provided"
        );

        let mut bad_name =
            Labels::from_pairs([("__name__", "cpu"), ("service_name", "s"), ("a-b", "1")]);
        let err = validate_labels(&mut bad_name, &limits()).expect_err("bad name");
        assert_eq!(
            err.message,
            "invalid labels '{__name__=\"cpu\", a-b=\"1\", service_name=\"s\"}' with error: invalid label name 'a-b'"
        );
    }

    #[test]
    fn request_labels_default_and_refuse_duplicates() {
        let labels = request_labels(&[LabelPair::new("__name__", "cpu")]).expect("valid");
        assert_eq!(labels.get("service_name"), Some("unknown_service"));
        let err = request_labels(&[
            LabelPair::new("__name__", "cpu"),
            LabelPair::new("service_name", "a"),
            LabelPair::new("__name__", "wall"),
        ])
        .expect_err("duplicate");
        assert_eq!(err.reason, Reason::DuplicateLabelNames);
        assert_eq!(
            err.message,
            "profile with labels '{__name__=\"cpu\", __name__=\"wall\", service_name=\"a\"}' has duplicate label name: '__name__'"
        );
        let err = request_labels(&[
            LabelPair::new("__name__", "cpu"),
            LabelPair::new("service_name", ""),
        ])
        .expect_err("explicit empty service_name meets the default");
        assert_eq!(err.reason, Reason::DuplicateLabelNames);
    }

    #[test]
    fn dots_are_sanitised() {
        let mut labels = Labels::from_pairs([
            ("__name__", "cpu"),
            ("service_name", "s"),
            ("foo.bar", "qwe.asd"),
        ]);
        validate_labels(&mut labels, &limits()).expect("valid");
        assert_eq!(labels.get("foo_bar"), Some("qwe.asd"));
        assert_eq!(labels.get("foo.bar"), None);

        let mut clash = Labels::from_pairs([
            ("__name__", "qux"),
            ("label.name", "bar"),
            ("label_name", "foo"),
            ("service_name", "svc"),
        ]);
        let err = validate_labels(&mut clash, &limits()).expect_err("clash");
        assert_eq!(
            err.message,
            "profile with labels '{__name__=\"qux\", label.name=\"bar\", label_name=\"foo\", service_name=\"svc\"}' has duplicate label name 'label_name' after label name sanitization from 'label.name'"
        );
    }
}
