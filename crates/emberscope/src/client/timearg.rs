//! Time arguments as Pyroscope's tools take them: `now`, `now-1h` (`+`/`-` a Go-style
//! duration), Unix seconds, milliseconds, microseconds or nanoseconds (told by the number of
//! digits), or an RFC 3339 time (`2026-11-27T10:00:00Z`). Resolved to Unix milliseconds.

use anyhow::{Result, anyhow, bail};

/// `text` as Unix milliseconds, relative forms measured from `now_ms`.
pub fn parse_ms(text: &str, now_ms: i64) -> Result<i64> {
    let text = text.trim();
    if text.is_empty() {
        bail!("empty time");
    }
    if let Some(rest) = text.strip_prefix("now") {
        if rest.is_empty() {
            return Ok(now_ms);
        }
        let (sign, duration) = match rest.split_at(1) {
            ("-", d) => (-1, d),
            ("+", d) => (1, d),
            _ => bail!("{text:?}: after `now` comes + or - and a duration, like now-1h"),
        };
        let duration =
            server::limits::parse_duration(duration).map_err(|e| anyhow!("{text:?}: {e}"))?;
        let ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        return Ok(now_ms.saturating_add(sign * ms));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let value: i64 = text
            .parse()
            .map_err(|_| anyhow!("{text:?}: too large a number"))?;
        return Ok(match text.len() {
            19.. => value / 1_000_000,
            16..=18 => value / 1_000,
            13..=15 => value,
            _ => value.saturating_mul(1000),
        });
    }
    let time = humantime::parse_rfc3339_weak(text).map_err(|e| {
        anyhow!("{text:?} is not a time: use now, now-1h, Unix seconds or milliseconds, or RFC 3339 ({e})")
    })?;
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| anyhow!("{text:?} is before 1970"))?;
    Ok(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pyroscopes_forms() {
        let now = 1_764_237_600_000;
        assert_eq!(parse_ms("now", now).expect("now"), now);
        assert_eq!(parse_ms("now-1h", now).expect("relative"), now - 3_600_000);
        assert_eq!(parse_ms("now+90s", now).expect("relative"), now + 90_000);
        assert_eq!(parse_ms("1764237600", now).expect("seconds"), now);
        assert_eq!(parse_ms("1764237600000", now).expect("ms"), now);
        assert_eq!(parse_ms("1764237600000000000", now).expect("ns"), now);
        assert_eq!(parse_ms("2025-11-27T10:00:00Z", now).expect("rfc3339"), now);
        assert!(parse_ms("yesterday", now).is_err());
        assert!(parse_ms("now*2", now).is_err());
        assert!(parse_ms("", now).is_err());
    }
}
