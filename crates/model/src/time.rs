//! Time as every part of the system reads it: the wall clock ([`Clock`]), a closed range of
//! Unix milliseconds ([`TimeRange`]) and durations written as Go writes them
//! ([`parse_duration`]: `1h30m`, `500ms`, `7d`), the notation of Pyroscope's flags, limits and
//! overrides files.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// A source of wall-clock time. Code that decides by the time of day (retention, lookback
/// limits, leases, a push without a timestamp) asks one, so a test can hold time still.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Nanoseconds since the Unix epoch (the unit of profile timestamps).
    fn now_nanos(&self) -> i64 {
        self.now_ms().saturating_mul(1_000_000)
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that says what it was told: for tests.
#[derive(Debug, Default)]
pub struct FixedClock(std::sync::atomic::AtomicI64);

impl FixedClock {
    pub fn new(now_ms: i64) -> FixedClock {
        FixedClock(std::sync::atomic::AtomicI64::new(now_ms))
    }

    /// Moves the clock to `now_ms`.
    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The system clock's milliseconds since the Unix epoch (shorthand for `SystemClock.now_ms()`).
pub fn now_ms() -> i64 {
    SystemClock.now_ms()
}

/// A range of Unix milliseconds, both ends included (as Pyroscope's `start`/`end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TimeRange {
    pub start_ms: i64,
    pub end_ms: i64,
}

/// A range whose end is before its start.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the time range ends ({end_ms}) before it starts ({start_ms})")]
pub struct TimeRangeError {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl TimeRange {
    /// `[start_ms, end_ms]`; refused when the end is before the start.
    pub fn new(start_ms: i64, end_ms: i64) -> Result<TimeRange, TimeRangeError> {
        if end_ms < start_ms {
            return Err(TimeRangeError { start_ms, end_ms });
        }
        Ok(TimeRange { start_ms, end_ms })
    }

    /// Its length (zero for a single instant).
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.end_ms.abs_diff(self.start_ms))
    }

    /// Whether `t_ms` lies in it.
    pub fn contains(&self, t_ms: i64) -> bool {
        self.start_ms <= t_ms && t_ms <= self.end_ms
    }

    /// Whether it shares an instant with `[start_ms, end_ms]`.
    pub fn overlaps(&self, start_ms: i64, end_ms: i64) -> bool {
        self.start_ms <= end_ms && start_ms <= self.end_ms
    }

    /// The start in nanoseconds (profile timestamps' unit), saturating.
    pub fn start_nanos(&self) -> i64 {
        self.start_ms.saturating_mul(1_000_000)
    }

    /// The last nanosecond of the end millisecond, saturating: a profile stamped anywhere in
    /// the end millisecond is inside.
    pub fn end_nanos(&self) -> i64 {
        self.end_ms
            .saturating_mul(1_000_000)
            .saturating_add(999_999)
    }
}

/// A duration that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{text:?}: {reason}")]
pub struct DurationError {
    pub text: String,
    pub reason: String,
}

/// A duration: Go's form (`1h30m`, `500ms`, `1.5s`, with `w` and `d` as Prometheus and
/// Pyroscope allow), or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let error = |reason: String| DurationError {
        text: text.to_owned(),
        reason,
    };
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    if text.is_empty() {
        return Err(error("empty duration".to_owned()));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| error("a number needs a unit (w, d, h, m, s, ms, us, ns)".to_owned()))?;
        let (number, tail) = rest.split_at(digits);
        let number: f64 = number
            .parse()
            .map_err(|_| error(format!("bad number {number:?}")))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let seconds = match unit {
            "w" => 7.0 * 86400.0,
            "d" => 86400.0,
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(error(format!("unknown unit {unit:?}"))),
        };
        let part = Duration::try_from_secs_f64(number * seconds)
            .map_err(|_| error("out of range".to_owned()))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| error("out of range".to_owned()))?;
        rest = tail;
    }
    Ok(total)
}

/// A duration in Go's short form (`1h30m0s` style, trimmed: `90m` → `1h30m`).
pub fn format_duration(d: Duration) -> String {
    let total = d.as_secs();
    if total == 0 {
        return if d.is_zero() {
            "0s".to_owned()
        } else {
            format!("{}ms", d.as_millis())
        };
    }
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86400)));
        assert_eq!(parse_duration(" 10us "), Ok(Duration::from_micros(10)));
    }

    #[test]
    fn bad_durations_say_why() {
        for (text, reason) in [
            ("", "empty"),
            ("5x", "unknown unit \"x\""),
            ("h", "bad number"),
            ("1.2.3s", "bad number"),
            ("3m5", "a number needs a unit"),
            ("3 furlongs", "unknown unit"),
            ("99999999999999999999999h", "out of range"),
        ] {
            let error = parse_duration(text).expect_err(text);
            assert!(error.to_string().contains(reason), "{text:?}: {error}");
        }
    }

    #[test]
    fn durations_format_as_go_and_parse_back() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        for seconds in [1, 59, 60, 3599, 3600, 93_784, 30 * 86400] {
            let d = Duration::from_secs(seconds);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{seconds}");
        }
    }

    #[test]
    fn ranges_hold_their_ends() {
        let range = TimeRange::new(10, 20).expect("ordered");
        assert!(range.contains(10) && range.contains(20) && !range.contains(21));
        assert!(range.overlaps(20, 30) && range.overlaps(0, 10) && !range.overlaps(21, 30));
        assert_eq!(range.duration(), Duration::from_millis(10));
        assert_eq!(range.start_nanos(), 10_000_000);
        assert_eq!(range.end_nanos(), 20_999_999);
        assert_eq!(
            TimeRange::new(2, 1),
            Err(TimeRangeError {
                start_ms: 2,
                end_ms: 1
            })
        );
    }

    #[test]
    fn clocks_tell_the_time() {
        let fixed = FixedClock::new(5);
        assert_eq!((fixed.now_ms(), fixed.now_nanos()), (5, 5_000_000));
        fixed.set(7);
        assert_eq!(fixed.now_ms(), 7);
        // After 2020-01-01 and before 2100.
        assert!((1_577_836_800_000..4_102_444_800_000).contains(&now_ms()));
    }
}
