//! The series metadata of a text-format profile, from the type suffix of its app name, as
//! Pyroscope's `ingest_adapter.go:convertMetadata` and `Put` derive it: `__name__`, the sample
//! type and unit, and for CPU and wall profiles with a sample rate, the period that every value
//! is multiplied by.

use super::TextError;

/// The start of the message for an app name whose suffix names no profile type.
pub const UNKNOWN_PROFILE_TYPE: &str = "unknown profile type";

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// What the app name and sample rate decide for one profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProfileMeta {
    /// The `__name__` label.
    pub metric: &'static str,
    /// The app name without its type suffix.
    pub service_name: String,
    pub sample_type: &'static str,
    pub sample_unit: &'static str,
    /// The factor every value is multiplied by: the period in nanoseconds (CPU and wall
    /// profiles with a sample rate; it is 0 for sample rates above 10⁹, as in Pyroscope).
    pub scale: Option<i64>,
    /// `(period, period type, period unit)`, present when the period is not 0.
    pub period: Option<(i64, &'static str, &'static str)>,
}

/// Splits `app_name` at its last `.` and maps the suffix (`cpu` when there is no dot) to the
/// metric, sample type and unit; then applies the sample rate to CPU and wall profiles.
pub(crate) fn resolve(app_name: &str, sample_rate: u32) -> Result<ProfileMeta, TextError> {
    let (service_name, suffix) = app_name.rsplit_once('.').unwrap_or((app_name, "cpu"));
    let (metric, sample_type, sample_unit) = match suffix {
        "cpu" | "itimer" => ("process_cpu", "samples", "count"),
        "wall" | "seconds" | "nanoseconds" | "microseconds" | "milliseconds" => {
            ("wall", "samples", "count")
        }
        "inuse_objects" => ("memory", "inuse_objects", "count"),
        "inuse_space" => ("memory", "inuse_space", "bytes"),
        "alloc_objects" => ("memory", "alloc_objects", "count"),
        "alloc_space" => ("memory", "alloc_space", "bytes"),
        "alloc_in_new_tlab_objects" => ("memory", "alloc_in_new_tlab_objects", "count"),
        "alloc_in_new_tlab_bytes" => ("memory", "alloc_in_new_tlab_bytes", "bytes"),
        "alloc_outside_tlab_objects" => ("memory", "alloc_outside_tlab_objects", "count"),
        "alloc_outside_tlab_bytes" => ("memory", "alloc_outside_tlab_bytes", "bytes"),
        "live" => ("memory", "live", "count"),
        "bytes" => ("memory", "samples", "bytes"),
        "goroutines" => ("goroutine", "goroutines", "count"),
        "mutex_count" => ("mutex", "contentions", "count"),
        "mutex_duration" => ("mutex", "delay", "nanoseconds"),
        "block_count" | "lock_count" => ("block", "contentions", "count"),
        "block_duration" | "lock_duration" => ("block", "delay", "nanoseconds"),
        "exceptions" => ("exceptions", "samples", "count"),
        other => return Err(TextError::UnknownProfileType(other.to_owned())),
    };
    let mut meta = ProfileMeta {
        metric,
        service_name: service_name.to_owned(),
        sample_type,
        sample_unit,
        scale: None,
        period: None,
    };
    let timed = metric == "process_cpu" || metric == "wall";
    if sample_rate != 0 && timed {
        let period = NANOS_PER_SECOND / i64::from(sample_rate);
        meta.sample_type = if metric == "wall" { "wall" } else { "cpu" };
        meta.sample_unit = "nanoseconds";
        meta.scale = Some(period);
        meta.period = (period != 0).then_some((period, "cpu", "nanoseconds"));
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_id(app: &str, rate: u32) -> String {
        let meta = resolve(app, rate).expect("known type");
        let (period_type, period_unit) = meta.period.map_or(("", ""), |(_, t, u)| (t, u));
        format!(
            "{}:{}:{}:{}:{}",
            meta.metric, meta.sample_type, meta.sample_unit, period_type, period_unit
        )
    }

    #[test]
    fn suffixes_choose_the_profile_type() {
        let cases = [
            ("app", 100, "process_cpu:cpu:nanoseconds:cpu:nanoseconds"),
            (
                "app.cpu",
                100,
                "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
            ),
            (
                "app.itimer",
                100,
                "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
            ),
            ("app.cpu", 0, "process_cpu:samples:count::"),
            ("app.wall", 100, "wall:wall:nanoseconds:cpu:nanoseconds"),
            ("app.seconds", 100, "wall:wall:nanoseconds:cpu:nanoseconds"),
            ("app.milliseconds", 0, "wall:samples:count::"),
            ("app.inuse_objects", 100, "memory:inuse_objects:count::"),
            ("app.alloc_space", 100, "memory:alloc_space:bytes::"),
            (
                "app.alloc_in_new_tlab_bytes",
                100,
                "memory:alloc_in_new_tlab_bytes:bytes::",
            ),
            ("app.live", 100, "memory:live:count::"),
            ("app.bytes", 0, "memory:samples:bytes::"),
            ("app.goroutines", 100, "goroutine:goroutines:count::"),
            ("app.mutex_count", 100, "mutex:contentions:count::"),
            ("app.mutex_duration", 100, "mutex:delay:nanoseconds::"),
            ("app.lock_duration", 100, "block:delay:nanoseconds::"),
            ("app.block_count", 100, "block:contentions:count::"),
            ("app.exceptions", 100, "exceptions:samples:count::"),
            // A rate above 10⁹ gives a zero period: no period type, values scaled to 0.
            ("app", 2_000_000_000, "process_cpu:cpu:nanoseconds::"),
        ];
        for (app, rate, expected) in cases {
            assert_eq!(type_id(app, rate), expected, "{app} at {rate}");
        }
    }

    #[test]
    fn service_name_drops_only_the_last_suffix() {
        assert_eq!(
            resolve("my.app.cpu", 100).expect("cpu").service_name,
            "my.app"
        );
        assert_eq!(resolve("app", 100).expect("cpu").service_name, "app");
        let meta = resolve("app", 100).expect("cpu");
        assert_eq!(meta.scale, Some(10_000_000));
        assert_eq!(meta.period, Some((10_000_000, "cpu", "nanoseconds")));
    }

    #[test]
    fn unknown_suffixes_are_refused() {
        for app in ["my.app", "app.", "app.CPU", "app.none"] {
            let err = resolve(app, 100).expect_err(app);
            let suffix = app.rsplit_once('.').map_or("", |(_, s)| s);
            assert_eq!(err.to_string(), format!("unknown profile type: {suffix}"));
        }
    }
}
