//! The label names the system itself gives meaning to, in one place (Pyroscope's names, so
//! queries and SDKs agree): every series carries [`METRIC_NAME`], [`SERVICE_NAME`] and the
//! profile type labels; datasets are kept per service; [`SPAN_ID`] and [`PROFILE_ID`] are
//! sample labels that link a sample to a trace span or a single profile.

/// The metric (profile kind) a series belongs to: `process_cpu`, `memory`, ...
pub const METRIC_NAME: &str = "__name__";
/// The service a series belongs to; storage keeps one dataset per service.
pub const SERVICE_NAME: &str = "service_name";
/// What a series without a service name is filed under.
pub const UNKNOWN_SERVICE: &str = "unknown_service";
/// The full profile type id, `name:sample type:sample unit:period type:period unit`.
pub const PROFILE_TYPE: &str = "__profile_type__";
/// The sample type of a series (`cpu`, `alloc_space`, ...).
pub const SAMPLE_TYPE: &str = "__type__";
/// The sample unit of a series (`nanoseconds`, `bytes`, ...).
pub const SAMPLE_UNIT: &str = "__unit__";
/// The period type of a series.
pub const PERIOD_TYPE: &str = "__period_type__";
/// The period unit of a series.
pub const PERIOD_UNIT: &str = "__period_unit__";
/// Set on series whose profiles are cumulative and must be turned into deltas.
pub const DELTA: &str = "__delta__";
/// A pprof sample label holding the trace span a sample was taken in.
pub const SPAN_ID: &str = "span_id";
/// A pprof sample label (or push id) naming the single profile a sample came from.
pub const PROFILE_ID: &str = "profile_id";
