//! Pyroscope's profile validation (`api.md` §2.2): the checks a pushed pprof must pass, in
//! Pyroscope's order and with its exact messages, plus the two repairs it makes on the way
//! (stacks deeper than the limit keep their root side; strings longer than the limit keep their
//! suffix).
//!
//! Two choices where Pyroscope's versions or Go's types differ: long strings are cut on a
//! character boundary (as Pyroscope does since v1.19; v1.18 cut bytes, which a Rust `String`
//! cannot hold), and negative string indices are refused with the out-of-range message (Go
//! does not check them and would fail later).

use super::view::ProfileView;
use model::{LabelPair, Labels};
use std::fmt::Write as _;

/// Per-tenant limits on one profile, with Pyroscope's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileLimits {
    /// Decompressed size limit in bytes (0: none).
    pub max_profile_size_bytes: usize,
    /// Samples per profile (0: none).
    pub max_samples: usize,
    /// Labels per sample (0: none).
    pub max_sample_labels: usize,
    /// Stack depth; deeper stacks are cut, keeping the root side (0: none).
    pub max_stack_depth: usize,
    /// String length in bytes; longer strings keep their suffix (0: none).
    pub max_symbol_length: usize,
    /// Profiles older than now minus this are refused (0: no lower bound).
    pub reject_older_than_nanos: i64,
    /// Profiles newer than now plus this are refused (0: no upper bound).
    pub reject_newer_than_nanos: i64,
}

impl Default for ProfileLimits {
    fn default() -> Self {
        ProfileLimits {
            max_profile_size_bytes: 4 << 20,
            max_samples: 16_000,
            max_sample_labels: 100,
            max_stack_depth: 1_000,
            max_symbol_length: 65_535,
            reject_older_than_nanos: 3_600 * 1_000_000_000,
            reject_newer_than_nanos: 600 * 1_000_000_000,
        }
    }
}

/// Why a profile was refused, with Pyroscope's reason name (used as the discard metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    MalformedProfile,
    NotInIngestionWindow,
    ProfileSizeLimit,
    SamplesLimit,
    SampleLabelsLimit,
    InvalidLabels,
    MissingLabels,
    MaxLabelNamesPerSeries,
    LabelNameTooLong,
    LabelValueTooLong,
    DuplicateLabelNames,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MalformedProfile => "malformed_profile",
            Reason::NotInIngestionWindow => "not_in_ingestion_window",
            Reason::ProfileSizeLimit => "profile_size_limit",
            Reason::SamplesLimit => "samples_limit",
            Reason::SampleLabelsLimit => "sample_labels_limit",
            Reason::InvalidLabels => "invalid_labels",
            Reason::MissingLabels => "missing_labels",
            Reason::MaxLabelNamesPerSeries => "max_label_names_per_series",
            Reason::LabelNameTooLong => "label_name_too_long",
            Reason::LabelValueTooLong => "label_value_too_long",
            Reason::DuplicateLabelNames => "duplicate_label_names",
        }
    }
}

/// A refused profile or label set: the reason and Pyroscope's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub reason: Reason,
    pub message: String,
}

fn malformed(message: &str) -> ValidationError {
    ValidationError {
        reason: Reason::MalformedProfile,
        message: message.to_owned(),
    }
}

/// A label set as Pyroscope prints it in messages: `{name="value", ...}`, values quoted as Go's
/// `strconv.Quote` does.
pub fn labels_string<'a>(labels: impl IntoIterator<Item = &'a LabelPair>) -> String {
    let mut out = String::from("{");
    for (index, pair) in labels.into_iter().enumerate() {
        if index > 0 {
            out.push_str(", ");
        }
        out.push_str(&pair.name);
        out.push('=');
        out.push_str(&go_quote(&pair.value));
    }
    out.push('}');
    out
}

/// Go's `strconv.Quote` for valid UTF-8 strings. Control characters are escaped as Go escapes
/// them; other runes Go deems unprintable (U+00A0, U+200B, …) are kept as they are here.
pub fn go_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() && (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A UTC time as Go's `time.Time.String()` prints it: `2023-02-17 13:13:14 +0000 UTC`, with
/// fractional seconds only when non-zero.
pub fn go_time_string(unix_millis: i64) -> String {
    let seconds = unix_millis.div_euclid(1000);
    let millis = unix_millis.rem_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    );
    if millis != 0 {
        let fraction = format!("{millis:03}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's civil calendar algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The last `limit` bytes of `s`, moved forward to a character boundary.
fn keep_suffix(s: &str, limit: usize) -> &str {
    if s.len() <= limit {
        return s;
    }
    let mut start = s.len() - limit;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Validates `profile` as Pyroscope's `ValidateProfile` does, repairing what it repairs:
/// `time_nanos <= 0` becomes `now_nanos`, deep stacks and long strings are cut (in the view:
/// a sample's location range and a string shrink, nothing is copied).
/// `series_labels` only appear in messages; `uncompressed_size` is checked against the limit.
pub fn validate_profile(
    profile: &mut ProfileView<'_>,
    limits: &ProfileLimits,
    series_labels: &Labels,
    uncompressed_size: usize,
    now_nanos: i64,
) -> Result<(), ValidationError> {
    if profile.sample_type.is_empty() {
        return Err(malformed("empty profile"));
    }
    check_ingestion_window(&mut profile.time_nanos, limits, series_labels, now_nanos)?;
    if limits.max_profile_size_bytes != 0 && uncompressed_size > limits.max_profile_size_bytes {
        return Err(ValidationError {
            reason: Reason::ProfileSizeLimit,
            message: format!(
                "the profile with labels '{}' exceeds the size limit (max_profile_size_byte, actual: {uncompressed_size}, limit: {})",
                labels_string(series_labels),
                limits.max_profile_size_bytes
            ),
        });
    }
    if limits.max_samples != 0 && profile.samples.len() > limits.max_samples {
        return Err(ValidationError {
            reason: Reason::SamplesLimit,
            message: format!(
                "the profile with labels '{}' exceeds the samples count limit (max_profile_stacktrace_samples, actual: {}, limit: {})",
                labels_string(series_labels),
                profile.samples.len(),
                limits.max_samples
            ),
        });
    }
    for sample in &mut profile.samples {
        let depth = sample.locations.1.saturating_sub(sample.locations.0) as usize;
        if limits.max_stack_depth != 0 && depth > limits.max_stack_depth {
            // The first location is the leaf: drop leaf-side frames, keep the root side.
            sample.locations.0 += (depth - limits.max_stack_depth) as u32;
        }
        let labels = sample.labels.1.saturating_sub(sample.labels.0) as usize;
        if limits.max_sample_labels != 0 && labels > limits.max_sample_labels {
            return Err(ValidationError {
                reason: Reason::SampleLabelsLimit,
                message: format!(
                    "the profile with labels '{}' exceeds the sample labels limit (max_profile_stacktrace_sample_labels, actual: {labels}, limit: {})",
                    labels_string(series_labels),
                    limits.max_sample_labels
                ),
            });
        }
    }
    if limits.max_symbol_length > 0 {
        for s in &mut profile.strings {
            *s = keep_suffix(s, limits.max_symbol_length);
        }
    }
    if profile.locations.iter().any(|l| l.id == 0) {
        return Err(malformed("location id is 0"));
    }
    if profile.functions.iter().any(|f| f.id == 0) {
        return Err(malformed("function id is 0"));
    }
    let types = profile.sample_type.len();
    if profile
        .samples
        .iter()
        .any(|s| s.values.1.saturating_sub(s.values.0) as usize != types)
    {
        return Err(malformed("sample value length mismatch"));
    }
    check_string_table(profile)?;
    if profile
        .sample_type
        .iter()
        .any(|&(ty, _)| profile.string(ty).contains('-'))
    {
        return Err(malformed("sample type contains -"));
    }
    Ok(())
}

fn check_ingestion_window(
    time_nanos: &mut i64,
    limits: &ProfileLimits,
    series_labels: &Labels,
    now_nanos: i64,
) -> Result<(), ValidationError> {
    if *time_nanos <= 0 {
        *time_nanos = now_nanos;
        return Ok(());
    }
    let now_ms = now_nanos / 1_000_000;
    let t_ms = *time_nanos / 1_000_000;
    let from = (limits.reject_older_than_nanos != 0)
        .then(|| now_ms - limits.reject_older_than_nanos / 1_000_000);
    let to = (limits.reject_newer_than_nanos != 0)
        .then(|| now_ms + limits.reject_newer_than_nanos / 1_000_000);
    let valid = from.is_none_or(|from| t_ms > from) && to.is_none_or(|to| t_ms < to);
    if valid {
        return Ok(());
    }
    let detail = match (from, to) {
        (Some(from), Some(to)) => format!(
            "the ingestion window starts at {} and ends at {}",
            go_time_string(from),
            go_time_string(to)
        ),
        (Some(from), None) => format!("the ingestion window starts at {}", go_time_string(from)),
        (None, Some(to)) => format!("the ingestion window ends at {}", go_time_string(to)),
        (None, None) => String::new(),
    };
    Err(ValidationError {
        reason: Reason::NotInIngestionWindow,
        message: format!(
            "profile with labels '{}' is outside of ingestion window (profile timestamp: {}, {detail})",
            labels_string(series_labels),
            go_time_string(t_ms)
        ),
    })
}

fn check_string_table(profile: &ProfileView<'_>) -> Result<(), ValidationError> {
    let len = profile.strings.len() as i64;
    if profile.strings.first().is_none_or(|s| !s.is_empty()) {
        return Err(malformed("string 0 should be empty string"));
    }
    let out_of_range = |index: i64| index >= len || index < 0;
    if profile.sample_type.iter().any(|&(ty, _)| out_of_range(ty)) {
        return Err(malformed("sample type type string index out of range"));
    }
    for sample in &profile.samples {
        if profile
            .sample_labels(sample)
            .iter()
            .any(|l| out_of_range(l.str) || out_of_range(l.key))
        {
            return Err(malformed("sample label string index out of range"));
        }
    }
    for function in &profile.functions {
        if out_of_range(function.name) {
            return Err(malformed("function name string index out of range"));
        }
        if out_of_range(function.system_name) {
            return Err(malformed("function system name index string out of range"));
        }
        if out_of_range(function.filename) {
            return Err(malformed("function file name string index out of range"));
        }
    }
    for mapping in &profile.mappings {
        if out_of_range(mapping.filename) {
            return Err(malformed("mapping file name string index out of range"));
        }
        if out_of_range(mapping.build_id) {
            return Err(malformed("mapping build id string index out of range"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::proto::{Function, Location, Profile, Sample, ValueType};

    fn profile() -> Profile {
        Profile {
            sample_type: vec![ValueType { r#type: 1, unit: 2 }],
            string_table: vec!["".into(), "cpu".into(), "nanoseconds".into(), "main".into()],
            function: vec![Function {
                id: 1,
                name: 3,
                ..Default::default()
            }],
            location: vec![Location {
                id: 1,
                ..Default::default()
            }],
            sample: vec![Sample {
                location_id: vec![1],
                value: vec![5],
                label: vec![],
            }],
            time_nanos: 0,
            ..Default::default()
        }
    }

    /// Validates `p` through its view and writes the repaired view back.
    fn check(p: &mut Profile) -> Result<(), ValidationError> {
        let mut view = ProfileView::from_profile(p);
        validate_profile(
            &mut view,
            &ProfileLimits::default(),
            &Labels::from_pairs([("foo", "bar")]),
            10,
            1_676_639_594_000_000_000,
        )?;
        let repaired = view.to_profile();
        *p = repaired;
        Ok(())
    }

    #[test]
    fn valid_profile_gets_a_time() {
        let mut p = profile();
        check(&mut p).expect("valid");
        assert_eq!(p.time_nanos, 1_676_639_594_000_000_000);
    }

    #[test]
    fn exact_messages() {
        type Corruption = Box<dyn Fn(&mut Profile)>;
        let cases: Vec<(Corruption, &str)> = vec![
            (Box::new(|p| p.sample_type.clear()), "empty profile"),
            (Box::new(|p| p.location[0].id = 0), "location id is 0"),
            (Box::new(|p| p.function[0].id = 0), "function id is 0"),
            (
                Box::new(|p| p.sample[0].value.push(1)),
                "sample value length mismatch",
            ),
            (
                Box::new(|p| p.string_table[0] = "x".into()),
                "string 0 should be empty string",
            ),
            (
                Box::new(|p| p.sample_type[0].r#type = 99),
                "sample type type string index out of range",
            ),
            (
                Box::new(|p| p.function[0].name = 99),
                "function name string index out of range",
            ),
            (
                Box::new(|p| p.function[0].system_name = 99),
                "function system name index string out of range",
            ),
            (
                Box::new(|p| p.function[0].filename = 99),
                "function file name string index out of range",
            ),
            (
                Box::new(|p| p.string_table[1] = "cpu-time".into()),
                "sample type contains -",
            ),
        ];
        for (corrupt, message) in cases {
            let mut p = profile();
            corrupt(&mut p);
            let err = check(&mut p).expect_err(message);
            assert_eq!(err.message, message);
            assert_eq!(err.reason, Reason::MalformedProfile);
        }
    }

    #[test]
    fn ingestion_window_message() {
        let mut p = profile();
        // 50 minutes in the future of now (13:13:14): beyond the 10 minute window.
        p.time_nanos = 1_676_639_594_000_000_000 + 50 * 60 * 1_000_000_000;
        let err = check(&mut p).expect_err("too new");
        assert_eq!(err.reason, Reason::NotInIngestionWindow);
        assert_eq!(
            err.message,
            "profile with labels '{foo=\"bar\"}' is outside of ingestion window (profile timestamp: 2023-02-17 14:03:14 +0000 UTC, the ingestion window starts at 2023-02-17 12:13:14 +0000 UTC and ends at 2023-02-17 13:23:14 +0000 UTC)"
        );
    }

    #[test]
    fn limits_cut_and_refuse() {
        let mut p = profile();
        // 80,001 bytes; the limit (65,535) falls inside a two-byte character.
        p.string_table[3] = format!("x{}", "é".repeat(40_000));
        p.location = (1..=1500)
            .map(|id| Location {
                id,
                ..Default::default()
            })
            .collect();
        p.sample[0].location_id = (1..=1500).collect();
        check(&mut p).expect("cut, not refused");
        // The first id is the leaf: the root side (the last 1,000) is kept.
        assert_eq!(p.sample[0].location_id, (501..=1500).collect::<Vec<u64>>());
        // The suffix is kept, moved forward to a character boundary.
        assert_eq!(p.string_table[3], "é".repeat(32_767));
        let mut many = profile();
        many.sample = (0..16_001).map(|_| many.sample[0].clone()).collect();
        let err = check(&mut many).expect_err("too many samples");
        assert_eq!(err.reason, Reason::SamplesLimit);
        assert!(err.message.starts_with("the profile with labels '{foo=\"bar\"}' exceeds the samples count limit (max_profile_stacktrace_samples, actual: 16001, limit: 16000)"));
    }

    #[test]
    fn quoting_and_times() {
        assert_eq!(go_quote("a\"b\\\n\u{1}é"), "\"a\\\"b\\\\\\n\\x01é\"");
        assert_eq!(go_time_string(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_time_string(951_782_400_500),
            "2000-02-29 00:00:00.5 +0000 UTC"
        );
    }
}
