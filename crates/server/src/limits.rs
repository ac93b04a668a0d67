//! Per-tenant limits: defaults from the configuration, overridden per tenant by a runtime file
//! that is re-read while the server runs (Pyroscope's `overrides:` document), and the
//! ingestion rate limiter (a token bucket of uncompressed bytes per tenant).
//!
//! ```yaml
//! overrides:
//!   tenant-a:
//!     ingestion_rate_mb: 10
//!     max_query_length: 7d
//! ```

use crate::error::{ApiError, Code};
use formats::pprof::{LabelLimits, ProfileLimits};
use model::TenantId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// Every limit one tenant is held to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    /// Sustained ingestion rate, MB (10^6 bytes) of uncompressed profiles per second.
    pub ingestion_rate_mb: f64,
    /// Burst allowance of the rate limiter, MB.
    pub ingestion_burst_size_mb: f64,
    /// Largest request body (and sum of a push's uncompressed profiles), MiB.
    pub ingestion_body_limit_mb: f64,
    pub max_profile_size_bytes: usize,
    pub max_profile_stacktrace_samples: usize,
    pub max_profile_stacktrace_sample_labels: usize,
    pub max_profile_stacktrace_depth: usize,
    pub max_profile_symbol_value_length: usize,
    pub max_label_names_per_series: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
    #[serde(serialize_with = "as_duration")]
    pub reject_older_than: Duration,
    #[serde(serialize_with = "as_duration")]
    pub reject_newer_than: Duration,
    /// Longest query range (0: no limit).
    #[serde(serialize_with = "as_duration")]
    pub max_query_length: Duration,
    /// How far back queries may reach (0: no limit); older parts of a range are cut off.
    #[serde(serialize_with = "as_duration")]
    pub max_query_lookback: Duration,
    pub max_flamegraph_nodes_default: usize,
    pub max_flamegraph_nodes_max: usize,
    /// Read tasks of one query in flight at once (0: two per core).
    pub max_query_parallelism: usize,
    /// How long a query may run (0: no limit); past it the answer is 504.
    #[serde(serialize_with = "as_duration")]
    pub query_timeout: Duration,
    /// Distinct stacks one query may merge (its memory bound; 0: no limit).
    pub max_query_nodes: usize,
    /// Data older than this is deleted by the compactor (0: kept forever). Read at start.
    #[serde(serialize_with = "as_duration")]
    pub compactor_blocks_retention_period: Duration,
}

fn as_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&model::format_duration(*d))
}

impl Default for Limits {
    fn default() -> Self {
        let profile = ProfileLimits::default();
        let labels = LabelLimits::default();
        Limits {
            ingestion_rate_mb: 4.0,
            ingestion_burst_size_mb: 2.0,
            ingestion_body_limit_mb: 256.0,
            max_profile_size_bytes: profile.max_profile_size_bytes,
            max_profile_stacktrace_samples: profile.max_samples,
            max_profile_stacktrace_sample_labels: profile.max_sample_labels,
            max_profile_stacktrace_depth: profile.max_stack_depth,
            max_profile_symbol_value_length: profile.max_symbol_length,
            max_label_names_per_series: labels.max_label_names,
            max_label_name_length: labels.max_name_length,
            max_label_value_length: labels.max_value_length,
            reject_older_than: Duration::from_nanos(profile.reject_older_than_nanos.max(0) as u64),
            reject_newer_than: Duration::from_nanos(profile.reject_newer_than_nanos.max(0) as u64),
            max_query_length: Duration::ZERO,
            max_query_lookback: Duration::ZERO,
            max_flamegraph_nodes_default: 8192,
            max_flamegraph_nodes_max: 1_048_576,
            max_query_parallelism: 0,
            query_timeout: Duration::from_secs(120),
            max_query_nodes: query::DEFAULT_MAX_QUERY_NODES,
            compactor_blocks_retention_period: Duration::ZERO,
        }
    }
}

impl Limits {
    /// The bounds of one query of the tenant.
    pub fn query_limits(&self) -> query::QueryLimits {
        let defaults = query::QueryLimits::default();
        query::QueryLimits {
            parallelism: if self.max_query_parallelism == 0 {
                defaults.parallelism
            } else {
                self.max_query_parallelism
            },
            timeout: (!self.query_timeout.is_zero()).then_some(self.query_timeout),
            max_nodes: if self.max_query_nodes == 0 {
                usize::MAX
            } else {
                self.max_query_nodes
            },
        }
    }

    pub fn profile_limits(&self) -> ProfileLimits {
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        ProfileLimits {
            max_profile_size_bytes: self.max_profile_size_bytes,
            max_samples: self.max_profile_stacktrace_samples,
            max_sample_labels: self.max_profile_stacktrace_sample_labels,
            max_stack_depth: self.max_profile_stacktrace_depth,
            max_symbol_length: self.max_profile_symbol_value_length,
            reject_older_than_nanos: nanos(self.reject_older_than),
            reject_newer_than_nanos: nanos(self.reject_newer_than),
        }
    }

    pub fn label_limits(&self) -> LabelLimits {
        LabelLimits {
            max_label_names: self.max_label_names_per_series,
            max_name_length: self.max_label_name_length,
            max_value_length: self.max_label_value_length,
        }
    }

    /// The request body limit in bytes.
    pub fn body_limit_bytes(&self) -> usize {
        (self.ingestion_body_limit_mb * 1024.0 * 1024.0) as usize
    }

    /// Pyroscope's `ValidateMaxNodes` against this tenant's limits: 0 or absent means the
    /// default, more than the maximum or negative is refused.
    pub fn max_nodes(&self, requested: Option<i64>) -> Result<usize, ApiError> {
        let requested = requested.unwrap_or(0);
        let max = self.max_flamegraph_nodes_max;
        if requested < 0 {
            return Err(ApiError::new(
                Code::InvalidArgument,
                format!("max flamegraph nodes limit must be set (max allowed {max})"),
            ));
        }
        if requested as u64 > max as u64 {
            return Err(ApiError::new(
                Code::InvalidArgument,
                format!("max flamegraph nodes limit {requested} is greater than allowed {max}"),
            ));
        }
        Ok(if requested == 0 {
            self.max_flamegraph_nodes_default
        } else {
            requested as usize
        })
    }

    /// Checks a query range against `max_query_length` and cuts it to `max_query_lookback`;
    /// `None` when the whole range is older than the lookback (an empty answer).
    pub fn query_range(
        &self,
        start_ms: i64,
        end_ms: i64,
        now_ms: i64,
    ) -> Result<Option<(i64, i64)>, ApiError> {
        let length = Duration::from_millis(end_ms.saturating_sub(start_ms).max(0) as u64);
        if !self.max_query_length.is_zero() && length > self.max_query_length {
            return Err(ApiError::new(
                Code::InvalidArgument,
                format!(
                    "the query time range exceeds the limit (max_query_length, actual: {}, limit: {})",
                    model::format_duration(length),
                    model::format_duration(self.max_query_length)
                ),
            ));
        }
        if self.max_query_lookback.is_zero() {
            return Ok(Some((start_ms, end_ms)));
        }
        let oldest = now_ms.saturating_sub(self.max_query_lookback.as_millis() as i64);
        if end_ms < oldest {
            return Ok(None);
        }
        Ok(Some((start_ms.max(oldest), end_ms)))
    }
}

/// One tenant's overrides: any subset of the limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Overrides {
    ingestion_rate_mb: Option<f64>,
    ingestion_burst_size_mb: Option<f64>,
    ingestion_body_limit_mb: Option<f64>,
    max_profile_size_bytes: Option<usize>,
    max_profile_stacktrace_samples: Option<usize>,
    max_profile_stacktrace_sample_labels: Option<usize>,
    max_profile_stacktrace_depth: Option<usize>,
    max_profile_symbol_value_length: Option<usize>,
    max_label_names_per_series: Option<usize>,
    max_label_name_length: Option<usize>,
    max_label_value_length: Option<usize>,
    reject_older_than: Option<DurationText>,
    reject_newer_than: Option<DurationText>,
    max_query_length: Option<DurationText>,
    max_query_lookback: Option<DurationText>,
    max_flamegraph_nodes_default: Option<usize>,
    max_flamegraph_nodes_max: Option<usize>,
    max_query_parallelism: Option<usize>,
    query_timeout: Option<DurationText>,
    max_query_nodes: Option<usize>,
    compactor_blocks_retention_period: Option<DurationText>,
}

/// A duration written as text (`1h`) or a number of seconds.
#[derive(Debug, Clone)]
struct DurationText(Duration);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(s) => Ok(DurationText(Duration::from_secs(s))),
            Raw::Text(t) => model::parse_duration(&t)
                .map(DurationText)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverridesFile {
    #[serde(default)]
    overrides: HashMap<String, Overrides>,
}

impl Overrides {
    fn apply(&self, base: &Limits) -> Limits {
        let mut l = base.clone();
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { l.$field = v; } )* };
        }
        set!(
            ingestion_rate_mb,
            ingestion_burst_size_mb,
            ingestion_body_limit_mb,
            max_profile_size_bytes,
            max_profile_stacktrace_samples,
            max_profile_stacktrace_sample_labels,
            max_profile_stacktrace_depth,
            max_profile_symbol_value_length,
            max_label_names_per_series,
            max_label_name_length,
            max_label_value_length,
            max_flamegraph_nodes_default,
            max_flamegraph_nodes_max,
            max_query_parallelism,
            max_query_nodes
        );
        macro_rules! set_duration {
            ($($field:ident),*) => { $( if let Some(v) = &self.$field { l.$field = v.0; } )* };
        }
        set_duration!(
            reject_older_than,
            reject_newer_than,
            max_query_length,
            max_query_lookback,
            query_timeout,
            compactor_blocks_retention_period
        );
        l
    }
}

/// Parses an overrides document into each tenant's limits.
pub fn parse_overrides(text: &str, defaults: &Limits) -> Result<HashMap<String, Limits>, String> {
    let file: OverridesFile = if text.trim().is_empty() {
        OverridesFile::default()
    } else {
        serde_yaml::from_str(text).map_err(|e| e.to_string())?
    };
    Ok(file
        .overrides
        .iter()
        .map(|(tenant, o)| (tenant.clone(), o.apply(defaults)))
        .collect())
}

/// A token bucket of bytes.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The limits of every tenant and their rate limiters.
#[derive(Debug)]
pub struct TenantLimits {
    defaults: Limits,
    overrides: RwLock<HashMap<String, Limits>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    file: Option<PathBuf>,
}

impl TenantLimits {
    /// Limits with `defaults` for every tenant and the overrides of `file` (read now).
    pub fn new(defaults: Limits, file: Option<PathBuf>) -> Result<TenantLimits, String> {
        let limits = TenantLimits {
            defaults,
            overrides: RwLock::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            file,
        };
        limits.reload()?;
        Ok(limits)
    }

    /// Re-reads the overrides file; on error the previous overrides stay in force.
    pub fn reload(&self) -> Result<(), String> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("runtime config {}: {e}", path.display()))?;
        let parsed = parse_overrides(&text, &self.defaults)
            .map_err(|e| format!("runtime config {}: {e}", path.display()))?;
        if let Ok(mut overrides) = self.overrides.write() {
            *overrides = parsed;
        }
        Ok(())
    }

    pub fn defaults(&self) -> &Limits {
        &self.defaults
    }

    /// Every tenant's overridden limits (whole: the defaults where the file says nothing).
    pub fn overrides(&self) -> std::collections::BTreeMap<String, Limits> {
        self.overrides
            .read()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// The limits of `tenant`.
    pub fn get(&self, tenant: &TenantId) -> Limits {
        self.overrides
            .read()
            .ok()
            .and_then(|o| o.get(tenant.as_str()).cloned())
            .unwrap_or_else(|| self.defaults.clone())
    }

    /// Retention periods of the tenants that override it, as the compactor takes them.
    pub fn retention_overrides(&self) -> HashMap<TenantId, Duration> {
        self.overrides
            .read()
            .map(|o| {
                o.iter()
                    .filter(|(_, l)| {
                        l.compactor_blocks_retention_period
                            != self.defaults.compactor_blocks_retention_period
                    })
                    .filter_map(|(t, l)| {
                        Some((TenantId::new(t).ok()?, l.compactor_blocks_retention_period))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Takes `bytes` from the tenant's bucket, or refuses with Pyroscope's 429. The tenant's
    /// rate is global: with `distributors` live distributors each refills its bucket at its
    /// share of the rate, as Pyroscope's global strategy does (the burst is per distributor).
    pub fn admit(
        &self,
        tenant: &TenantId,
        bytes: usize,
        distributors: usize,
    ) -> Result<(), ApiError> {
        let limits = self.get(tenant);
        let global = limits.ingestion_rate_mb * 1e6;
        if global <= 0.0 {
            return Ok(());
        }
        let rate = global / distributors.max(1) as f64;
        let burst = limits.ingestion_burst_size_mb * 1e6;
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let bucket = buckets.entry(tenant.as_str().to_owned()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now;
        let cost = bytes as f64;
        // As dskit's limiter: a request larger than the burst never fits.
        if cost <= bucket.tokens {
            bucket.tokens -= cost;
            return Ok(());
        }
        Err(ApiError::new(
            Code::ResourceExhausted,
            format!(
                "push rate limit ({}) exceeded while adding {}",
                human_bytes(global),
                human_bytes(cost)
            ),
        ))
    }
}

/// Bytes in IEC units, as Go's `humanize.IBytes` prints them (`4.0 MiB`, `512 B`).
fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 10.0 {
        return format!("{bytes:.0} B");
    }
    let exponent = (bytes.ln() / 1024f64.ln()).floor().min(5.0) as usize;
    let value = bytes / 1024f64.powi(exponent as i32);
    if exponent == 0 {
        format!("{value:.0} B")
    } else if value < 10.0 {
        format!("{value:.1} {}", UNITS[exponent])
    } else {
        format!("{value:.0} {}", UNITS[exponent])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_change_only_what_they_name() {
        let defaults = Limits::default();
        let parsed = parse_overrides(
            "overrides:\n  t1:\n    ingestion_rate_mb: 10\n    max_query_length: 7d\n",
            &defaults,
        )
        .expect("parse");
        let t1 = &parsed["t1"];
        assert_eq!(t1.ingestion_rate_mb, 10.0);
        assert_eq!(t1.max_query_length, Duration::from_secs(7 * 86400));
        assert_eq!(t1.max_profile_size_bytes, defaults.max_profile_size_bytes);
        let error = parse_overrides("overrides:\n  t1:\n    ingestion_rate: 1\n", &defaults)
            .expect_err("unknown field");
        assert!(error.contains("ingestion_rate"), "{error}");
    }

    #[test]
    fn the_rate_limiter_allows_the_burst_then_refuses() {
        let defaults = Limits {
            ingestion_rate_mb: 0.001, // 1000 bytes/s
            ingestion_burst_size_mb: 0.002,
            ..Limits::default()
        };
        let limits = TenantLimits::new(defaults, None).expect("limits");
        let tenant = TenantId::new("t").expect("tenant");
        let other = TenantId::new("u").expect("tenant");
        assert!(limits.admit(&tenant, 1500, 1).is_ok());
        let refused = limits.admit(&tenant, 1500, 1).expect_err("over the burst");
        assert_eq!(refused.code, Code::ResourceExhausted);
        assert_eq!(
            refused.message,
            "push rate limit (1000 B) exceeded while adding 1.5 KiB"
        );
        // Tenants have their own buckets.
        assert!(limits.admit(&other, 1500, 1).is_ok());
    }

    /// With four live distributors each refills at a quarter of the tenant's rate.
    #[test]
    fn the_rate_is_shared_by_the_live_distributors() {
        let defaults = Limits {
            ingestion_rate_mb: 0.001, // 1000 bytes/s over the cluster
            ingestion_burst_size_mb: 0.002,
            ..Limits::default()
        };
        let alone = TenantLimits::new(defaults.clone(), None).expect("limits");
        let shared = TenantLimits::new(defaults, None).expect("limits");
        let tenant = TenantId::new("t").expect("tenant");
        assert!(alone.admit(&tenant, 2000, 1).is_ok());
        assert!(shared.admit(&tenant, 2000, 4).is_ok());
        std::thread::sleep(Duration::from_millis(500));
        // Half a second refills at least 500 bytes alone, about 125 as one of four (under
        // 1000 unless the pause lasted over 4 s).
        assert!(alone.admit(&tenant, 400, 1).is_ok());
        let refused = shared
            .admit(&tenant, 1000, 4)
            .expect_err("a quarter of the rate");
        // The message names the tenant's (global) limit.
        assert!(
            refused.message.starts_with("push rate limit (1000 B)"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn query_ranges_respect_length_and_lookback() {
        let limits = Limits {
            max_query_length: Duration::from_secs(3600),
            max_query_lookback: Duration::from_secs(86400),
            ..Limits::default()
        };
        let now = 10 * 86_400_000;
        let error = limits
            .query_range(now - 7_200_000, now, now)
            .expect_err("too long");
        assert_eq!(
            error.message,
            "the query time range exceeds the limit (max_query_length, actual: 2h, limit: 1h)"
        );
        assert_eq!(
            limits.query_range(now - 1000, now, now).expect("ok"),
            Some((now - 1000, now))
        );
        let old = now - 2 * 86_400_000;
        assert_eq!(limits.query_range(old, old + 1000, now).expect("ok"), None);
    }

    #[test]
    fn bytes_read_like_go() {
        assert_eq!(human_bytes(4e6), "3.8 MiB");
        assert_eq!(human_bytes(512.0), "512 B");
    }
}
