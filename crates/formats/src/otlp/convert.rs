//! The export (note §4): checks of the request, the resource service name, and the series labels
//! of every converted pprof.

use super::error::OtlpError;
use super::lookup::{SERVICE_NAME_ATTRIBUTE, string_value};
use super::profile::{Budget, convert_profile};
use super::proto::ExportProfilesServiceRequest;
use super::proto::common::KeyValue;
use crate::pprof::Profile;
use model::label_names;
use prost::Message as _;
use rustc_hash::FxHashSet;

/// Output every request may take, in 8-byte words (128 MiB; Pyroscope's default limits, 16 000
/// samples of at most 1 000 frames, keep less than that in location references).
pub const OUTPUT_WORDS_BASE: usize = 16 << 20;
/// Output allowed on top of the base per byte of the request's protobuf encoding, in words.
pub const OUTPUT_WORDS_PER_INPUT_BYTE: usize = 16;

const EXECUTABLE_NAME_ATTRIBUTE: &str = "process.executable.name";

/// One converted pprof and the labels of the series it is pushed to.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpSeries {
    /// In Pyroscope's order: `__delta__="false"`, `__otel__="true"`, `__name__` (may be empty
    /// for "custom" profile types), the non-empty string attributes of the resource then the
    /// scope (first occurrence of a key wins; keys verbatim, e.g. `container.id`), and last
    /// `service_name`. Label names are neither sanitised nor validated here.
    pub labels: Vec<(String, String)>,
    /// The pprof, before any validation or normalisation. Sample attributes are sample labels.
    pub profile: Profile,
    /// The protobuf size of the OTLP `Profile` message it came from (what Pyroscope reports as
    /// the raw profile size, and what its profile size limit applies to).
    pub raw_size: usize,
}

/// Converts an OTLP export request into pprof profiles with their series labels, as Pyroscope
/// v1.18.2 does (note §4, §5). `now_nanos` stands in for a profile without `time_unix_nano`.
///
/// The result follows the request: per resource, scope and profile, one entry per distinct
/// sample service name in first-seen order. Profiles without samples give nothing.
pub fn convert(
    request: &ExportProfilesServiceRequest,
    now_nanos: i64,
) -> Result<Vec<OtlpSeries>, OtlpError> {
    let limit = OUTPUT_WORDS_BASE
        .saturating_add(OUTPUT_WORDS_PER_INPUT_BYTE.saturating_mul(request.encoded_len()));
    convert_within(request, now_nanos, limit)
}

/// [`convert`] with the output limit (in words) given.
pub(super) fn convert_within(
    request: &ExportProfilesServiceRequest,
    now_nanos: i64,
    max_output_words: usize,
) -> Result<Vec<OtlpSeries>, OtlpError> {
    let dictionary = request
        .dictionary
        .as_ref()
        .ok_or(OtlpError::MissingDictionary)?;
    if request.resource_profiles.is_empty() {
        return Err(OtlpError::MissingResourceProfiles);
    }
    let budget = Budget::new(max_output_words);
    let mut out = Vec::new();
    for resource_profiles in &request.resource_profiles {
        let resource_attributes = resource_profiles
            .resource
            .as_ref()
            .map_or(&[][..], |r| r.attributes.as_slice());
        let resource_service = resource_service_name(resource_attributes);
        for scope_profiles in &resource_profiles.scope_profiles {
            let scope_attributes = scope_profiles
                .scope
                .as_ref()
                .map_or(&[][..], |s| s.attributes.as_slice());
            for profile in &scope_profiles.profiles {
                let converted = convert_profile(profile, dictionary, now_nanos, &budget)?;
                let raw_size = profile.encoded_len();
                for one in converted {
                    let service = if one.service_name.is_empty() {
                        resource_service.as_str()
                    } else {
                        one.service_name.as_str()
                    };
                    let labels =
                        series_labels(&one.name, resource_attributes, scope_attributes, service);
                    let words: usize = labels
                        .iter()
                        .map(|(n, v)| Budget::words(n.len()) + Budget::words(v.len()))
                        .sum();
                    budget.take(words)?;
                    out.push(OtlpSeries {
                        labels,
                        profile: one.profile,
                        raw_size,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The first non-empty string `service.name`; else `unknown_service`, with `:<name>` for every
/// non-empty string `process.executable.name` (note §4 step 3).
fn resource_service_name(attributes: &[KeyValue]) -> String {
    let mut fallback = label_names::UNKNOWN_SERVICE.to_owned();
    for attribute in attributes {
        let Some(value) = string_value(attribute.value.as_ref()).filter(|v| !v.is_empty()) else {
            continue;
        };
        match attribute.key.as_str() {
            SERVICE_NAME_ATTRIBUTE => return value.to_owned(),
            EXECUTABLE_NAME_ATTRIBUTE => {
                fallback.push(':');
                fallback.push_str(value);
            }
            _ => {}
        }
    }
    fallback
}

/// Note §4 step 4.
fn series_labels(
    name: &str,
    resource_attributes: &[KeyValue],
    scope_attributes: &[KeyValue],
    service: &str,
) -> Vec<(String, String)> {
    let mut labels = vec![
        (label_names::DELTA.to_owned(), "false".to_owned()),
        ("__otel__".to_owned(), "true".to_owned()),
        (label_names::METRIC_NAME.to_owned(), name.to_owned()),
    ];
    let mut added: FxHashSet<&str> = FxHashSet::default();
    added.insert(label_names::METRIC_NAME);
    for attribute in resource_attributes.iter().chain(scope_attributes) {
        let Some(value) = string_value(attribute.value.as_ref()).filter(|v| !v.is_empty()) else {
            continue;
        };
        if added.insert(attribute.key.as_str()) {
            labels.push((attribute.key.clone(), value.to_owned()));
        }
    }
    labels.push((label_names::SERVICE_NAME.to_owned(), service.to_owned()));
    labels
}
