//! From one pushed pprof to the series Pyroscope stores (`api.md` §2.2, §6.2, §6.3): the full
//! push pipeline (`prepare_push`), the split by pprof sample labels, label validation with
//! Pyroscope's messages and `.`→`_` sanitisation, and the per-sample-type profile type labels.

use super::frames::string_at;
use super::go_fix::{
    has_go_type_parameters, repair_view_stacks, view_may_have_truncated_go_stacks,
};
use super::proto::Profile;
use super::validate::{ProfileLimits, Reason, ValidationError, labels_string, validate_profile};
use super::view::ProfileView;
use super::{MergeOptions, ProfileMerger, ViewIndex, normalize};
use model::label_names;
use model::{LabelPair, Labels, ProfileType};
use rustc_hash::FxHashMap;

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

/// One series of a [`PreparedView`]: its labels (sample labels merged in) and which of the
/// profile's samples it holds (`None`: all of them).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSamples {
    pub labels: Labels,
    pub samples: Option<Vec<u32>>,
}

/// A pushed profile ready to store, still in the flat arrays it was decoded into (nothing copied
/// per sample): validated, repaired and normalised, with its series. Samples carry only their
/// `span_id` labels that matter; others are ignored by the series they are in.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedView<'a> {
    pub profile: ProfileView<'a>,
    pub series: Vec<SeriesSamples>,
}

impl PreparedView<'_> {
    /// The index of the `span_id` string, if the profile has one.
    pub fn span_key(&self) -> Option<i64> {
        self.profile
            .strings
            .iter()
            .position(|s| *s == label_names::SPAN_ID)
            .map(|p| p as i64)
    }

    /// The series as owned profiles, each with only what its samples reference and only their
    /// span ids (a profile of one series stays whole).
    pub fn into_series(self) -> Vec<SeriesProfile> {
        let span_key = self.span_key();
        let view = self.profile;
        let mut out = Vec::with_capacity(self.series.len());
        let index = (self.series.len() > 1 || self.series.iter().any(|s| s.samples.is_some()))
            .then(|| ViewIndex::new(&view));
        for series in self.series {
            let (Some(members), Some(index)) = (series.samples, &index) else {
                out.push(SeriesProfile {
                    labels: series.labels,
                    profile: view.to_profile(),
                });
                continue;
            };
            let mut merger = ProfileMerger::new(MergeOptions::default());
            let members = members.iter().map(|&m| m as usize);
            let part = match merger
                .merge_view_subset(&view, index, members, |l| Some(l.key) == span_key)
            {
                Ok(()) => merger.finish(),
                Err(_) => continue,
            };
            out.push(SeriesProfile {
                labels: series.labels,
                profile: part,
            });
        }
        out
    }

    /// The profile type id and stored labels of each sample type of `labels`' series.
    pub fn profile_types(&self, labels: &Labels) -> Vec<(ProfileType, Labels)> {
        let view = &self.profile;
        type_labels(
            labels,
            view.period_type
                .map(|(ty, unit)| (view.string(ty), view.string(unit))),
            view.sample_type
                .iter()
                .map(|&(ty, unit)| (view.string(ty), view.string(unit))),
        )
    }
}

/// A profile ready for the segment writer: what [`prepare_view`] gives (the flat profile and
/// its series), or owned series (what callers that hold owned series hand the writer).
#[derive(Debug, Clone, PartialEq)]
pub enum Prepared<'a> {
    View(Box<PreparedView<'a>>),
    Series(Vec<SeriesProfile>),
}

impl Prepared<'_> {
    /// No series (every sample was dropped).
    pub fn is_empty(&self) -> bool {
        match self {
            Prepared::View(view) => view.series.is_empty(),
            Prepared::Series(series) => series.is_empty(),
        }
    }

    pub fn into_series(self) -> Vec<SeriesProfile> {
        match self {
            Prepared::View(view) => (*view).into_series(),
            Prepared::Series(series) => series,
        }
    }
}

impl From<Vec<SeriesProfile>> for Prepared<'static> {
    fn from(series: Vec<SeriesProfile>) -> Self {
        Prepared::Series(series)
    }
}

fn invalid(reason: Reason, message: String) -> ValidationError {
    ValidationError { reason, message }
}

/// `__name__` of an uploaded pprof, from its sample types, as Pyroscope picks it on `/ingest`
/// (`pkg/og/convert/pprof/profile.go:createLabels`); the upload client uses it too.
pub fn upload_profile_name(profile: &ProfileView<'_>) -> String {
    let types: Vec<&str> = profile
        .sample_type
        .iter()
        .map(|&(ty, _)| profile.string(ty))
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
    language_of(profile.string_table.iter().map(String::as_str), labels)
}

fn language_of<'s>(strings: impl Iterator<Item = &'s str>, labels: &Labels) -> &'static str {
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
    for s in strings {
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
        .any(|p| p.name == label_names::SERVICE_NAME && !p.value.is_empty())
    {
        pairs.push(LabelPair::new(
            label_names::SERVICE_NAME,
            label_names::UNKNOWN_SERVICE,
        ));
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

/// [`prepare_view`] on an owned profile, with owned series (each with only what its samples
/// reference; `comment`, `drop_frames`, `keep_frames` and `doc_url` are not kept). It takes the
/// profile as converters hand theirs over, though it only reads it.
#[allow(clippy::needless_pass_by_value)]
pub fn prepare_push(
    profile: Profile,
    series_labels: &Labels,
    profile_limits: &ProfileLimits,
    label_limits: &LabelLimits,
    uncompressed_size: usize,
    now_nanos: i64,
) -> Result<Vec<SeriesProfile>, ValidationError> {
    let mut rewrites = None;
    prepare_view(
        ProfileView::from_profile(&profile),
        &mut rewrites,
        series_labels,
        profile_limits,
        label_limits,
        uncompressed_size,
        now_nanos,
    )
    .map(Prepared::into_series)
}

/// What Pyroscope's distributor does to one pushed profile before storing it: default
/// `service_name`, validate, repair Go profiles, normalise, split by sample labels and validate
/// each series' labels. A profile left with no samples yields no series (and no error).
///
/// All of it works on the view's flat arrays, so a profile is stored without a copy per
/// sample. Go profiles whose strings hold type parameters go through the owned
/// [`super::fix_go_profile`]; the repaired profile is kept in `rewrites` and prepared as a view
/// of it.
pub fn prepare_view<'a>(
    mut profile: ProfileView<'a>,
    rewrites: &'a mut RewriteSlot,
    series_labels: &Labels,
    profile_limits: &ProfileLimits,
    label_limits: &LabelLimits,
    uncompressed_size: usize,
    now_nanos: i64,
) -> Result<Prepared<'a>, ValidationError> {
    let mut labels = series_labels.clone();
    if labels
        .get(label_names::SERVICE_NAME)
        .is_none_or(str::is_empty)
    {
        labels.set(label_names::SERVICE_NAME, label_names::UNKNOWN_SERVICE);
    }
    validate_profile(
        &mut profile,
        profile_limits,
        &labels,
        uncompressed_size,
        now_nanos,
    )?;
    if language_of(profile.strings.iter().copied(), &labels) == "go" {
        // `fix_go_profile`: the rare rewrite of type parameters (and the self-merge after it)
        // is done on an owned copy kept in `rewrites`, whose view goes on from here; the
        // truncated-stack repair works on the view.
        if has_go_type_parameters(&profile) {
            let mut owned = profile.to_profile();
            drop(profile);
            super::go_fix::fix_go_profile(&mut owned);
            profile = ProfileView::from_profile(rewrites.insert(owned));
        } else if view_may_have_truncated_go_stacks(&profile) {
            repair_view_stacks(&mut profile);
        }
    }
    split_and_check(profile, &labels, label_limits).map(|view| Prepared::View(Box::new(view)))
}

/// Where [`prepare_view`] keeps a profile it had to rewrite as an owned profile (a Go profile
/// whose strings hold type parameters): the prepared view borrows from it, so it lives as long
/// as the prepared profile. One per profile, `None` to start with.
pub type RewriteSlot = Option<Profile>;

/// Normalises, splits and validates each series' labels.
fn split_and_check<'a>(
    mut profile: ProfileView<'a>,
    labels: &Labels,
    label_limits: &LabelLimits,
) -> Result<PreparedView<'a>, ValidationError> {
    normalize(&mut profile);
    if profile.samples.is_empty() {
        return Ok(PreparedView {
            profile,
            series: Vec::new(),
        });
    }
    let mut prepared = split_by_sample_labels(profile, labels);
    for one in &mut prepared.series {
        validate_labels(&mut one.labels, label_limits)?;
    }
    Ok(prepared)
}

/// Splits a profile into one series per distinct set of sample labels, `span_id` excepted
/// (`profile_id` is renamed to `span_id` first). Sample labels join the series labels unless the
/// series already has a non-empty value for that name. Expects normalised samples (no empty
/// labels, labels sorted).
pub fn split_by_sample_labels<'a>(
    mut profile: ProfileView<'a>,
    series_labels: &Labels,
) -> PreparedView<'a> {
    rename_label_key(&mut profile, label_names::PROFILE_ID, label_names::SPAN_ID);
    let span_key = profile
        .strings
        .iter()
        .position(|s| *s == label_names::SPAN_ID)
        .map(|k| k as i64);
    let is_span = |key: i64| Some(key) == span_key;
    let has_group_labels = profile.samples.iter().any(|s| {
        profile
            .sample_labels(s)
            .iter()
            .any(|l| !is_span(l.key) && l.str != 0)
    });
    if !has_group_labels {
        return PreparedView {
            profile,
            series: vec![SeriesSamples {
                labels: series_labels.clone(),
                samples: None,
            }],
        };
    }
    // Group samples by their non-span (key, value) labels, then groups by their final label
    // sets (series labels win over sample labels, so different keys can meet), in first-seen
    // order.
    let mut by_sample_labels: FxHashMap<Vec<(i64, i64)>, usize> = FxHashMap::default();
    let mut groups: Vec<SeriesSamples> = Vec::new();
    let mut group_of_labels: FxHashMap<Labels, usize> = FxHashMap::default();
    let mut key: Vec<(i64, i64)> = Vec::new();
    for (index, sample) in profile.samples.iter().enumerate() {
        key.clear();
        key.extend(
            profile
                .sample_labels(sample)
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
                    let name = profile.string(k);
                    if labels.get(name).is_none_or(str::is_empty) {
                        labels.set(name, profile.string(v));
                    }
                }
                let group = *group_of_labels.entry(labels.clone()).or_insert_with(|| {
                    groups.push(SeriesSamples {
                        labels,
                        samples: Some(Vec::new()),
                    });
                    groups.len() - 1
                });
                by_sample_labels.insert(key.clone(), group);
                group
            }
        };
        if let Some(members) = &mut groups[group].samples {
            members.push(index as u32);
        }
    }
    PreparedView {
        profile,
        series: groups,
    }
}

fn rename_label_key(profile: &mut ProfileView<'_>, from: &str, to: &'static str) {
    let Some(old) = profile.strings.iter().position(|s| *s == from) else {
        return;
    };
    if old == 0 {
        return;
    }
    let new = match profile.strings.iter().position(|s| *s == to) {
        Some(index) => index,
        None => {
            profile.strings.push(to);
            profile.strings.len() - 1
        }
    };
    for label in &mut profile.labels {
        if label.key == old as i64 {
            label.key = new as i64;
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
    if labels
        .get(label_names::METRIC_NAME)
        .is_none_or(str::is_empty)
    {
        return Err(invalid(
            Reason::InvalidLabels,
            format!(
                "invalid labels '{}' with error: invalid metric name",
                labels_string(&*labels)
            ),
        ));
    }
    if labels
        .get(label_names::SERVICE_NAME)
        .is_none_or(str::is_empty)
    {
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
    type_labels(
        series_labels,
        profile
            .period_type
            .map(|pt| (string_at(profile, pt.r#type), string_at(profile, pt.unit))),
        profile
            .sample_type
            .iter()
            .map(|st| (string_at(profile, st.r#type), string_at(profile, st.unit))),
    )
}

/// [`profile_type_labels`] from the period type and sample types as (type, unit) strings.
fn type_labels<'s>(
    series_labels: &Labels,
    period: Option<(&str, &str)>,
    sample_types: impl Iterator<Item = (&'s str, &'s str)>,
) -> Vec<(ProfileType, Labels)> {
    let mut base = series_labels.clone();
    for consumed in [label_names::DELTA, "__otel__", "__order__"] {
        base.remove(consumed);
    }
    if let Some(service) = base
        .get(label_names::SERVICE_NAME)
        .filter(|s| !s.is_empty())
    {
        let service = service.to_owned();
        base.set("__service_name__", service);
    }
    let (period_type, period_unit) = match period {
        Some((t, u)) => {
            base.set(label_names::PERIOD_TYPE, t);
            base.set(label_names::PERIOD_UNIT, u);
            (t.to_owned(), u.to_owned())
        }
        None => (String::new(), String::new()),
    };
    let name = base
        .get(label_names::METRIC_NAME)
        .unwrap_or_default()
        .to_owned();
    sample_types
        .map(|(sample_type, sample_unit)| {
            let profile_type = ProfileType {
                name: name.clone(),
                sample_type: sample_type.to_owned(),
                sample_unit: sample_unit.to_owned(),
                period_type: period_type.clone(),
                period_unit: period_unit.clone(),
            };
            let mut labels = base.clone();
            labels.set(label_names::SAMPLE_TYPE, profile_type.sample_type.clone());
            labels.set(label_names::SAMPLE_UNIT, profile_type.sample_unit.clone());
            labels.set(label_names::PROFILE_TYPE, profile_type.to_string());
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
