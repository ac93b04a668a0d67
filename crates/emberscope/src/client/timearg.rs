//! Time arguments in the forms Pyroscope's `from`/`until` take (`attime`, `api.md` §6.5):
//! `now`, `now-1h` (`+`/`-` and a duration in `s`, `m`/`min`, `h`, `d`, `w`, `M`/`mon` = 30 d,
//! `y` = 365 d, parts may follow each other: `now-1h30m`), a `YYYYMMDD` date, Unix seconds,
//! milliseconds (13 digits), microseconds (16) or nanoseconds (19); and, beyond `attime`, an
//! RFC 3339 time (`2026-11-27T10:00:00Z`, `2026-11-27T12:00:00+02:00`). `_`, `,` and spaces are
//! ignored as `attime` ignores them. Resolved to Unix milliseconds. Where the server's
//! `attime` (whose date, epoch and unit rules this shares) falls back to "now" on text it
//! cannot read, the command line says what is wrong instead.

use anyhow::{Context as _, Result, anyhow, bail};
use server::attime::{civil_days, digits_ms, unit_ms};

/// `text` as Unix milliseconds, relative forms measured from `now_ms`.
pub fn parse_ms(text: &str, now_ms: i64) -> Result<i64> {
    let text: String = text
        .chars()
        .filter(|c| !matches!(c, '_' | ',' | ' '))
        .collect();
    if text.is_empty() {
        bail!("empty time");
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return digits_ms(&text).ok_or_else(|| anyhow!("{text:?}: too large a number"));
    }
    if let Some(rest) = text.strip_prefix("now") {
        if rest.is_empty() {
            return Ok(now_ms);
        }
        let (sign, offset) = if let Some(d) = rest.strip_prefix('-') {
            (-1, d)
        } else if let Some(d) = rest.strip_prefix('+') {
            (1, d)
        } else {
            bail!("{text:?}: after `now` comes + or - and a duration, like now-1h")
        };
        let ms = offset_ms(offset).with_context(|| format!("{text:?}"))?;
        return Ok(now_ms.saturating_add(sign * ms));
    }
    rfc3339_ms(&text).with_context(|| {
        format!(
            "{text:?} is not a time: use now, now-1h, YYYYMMDD, Unix seconds or milliseconds, or RFC 3339"
        )
    })
}

/// `1h`, `90s`, `1h30m`, `7d`, `1mon`: the length of a relative offset, in milliseconds.
fn offset_ms(text: &str) -> Result<i64> {
    if text.is_empty() {
        bail!("a duration is missing after the sign");
    }
    let mut total: i64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| anyhow!("{rest:?} needs a unit (s, m, h, d, w, M, y)"))?;
        let (number, tail) = rest.split_at(end);
        let number: i64 = number
            .parse()
            .map_err(|_| anyhow!("a number is missing before {tail:?}"))?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        // attime's units, plus ms and sec.
        let unit_ms = match unit {
            "ms" => 1,
            "sec" => 1_000,
            other => unit_ms(other)
                .ok_or_else(|| anyhow!("unknown unit {other:?} (s, m, h, d, w, M, y)"))?,
        };
        total = total.saturating_add(number.saturating_mul(unit_ms));
        rest = tail;
    }
    Ok(total)
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` (a space or `t` may stand for `T`; spaces were
/// removed before, so the date and time then follow each other directly).
fn rfc3339_ms(text: &str) -> Result<i64> {
    let bytes = text.as_bytes();
    let field = |range: std::ops::Range<usize>| -> Result<&str> {
        let part = text.get(range).context("too short")?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            Ok(part)
        } else {
            bail!("{part:?} is not a number")
        }
    };
    if bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        bail!("expected YYYY-MM-DD");
    }
    let days = civil_days(
        field(0..4)?.parse()?,
        field(5..7)?.parse()?,
        field(8..10)?.parse()?,
    )
    .context("no such date")?;
    let time_at = match bytes.get(10) {
        Some(b'T' | b't') => 11,
        Some(b'0'..=b'9') => 10,
        _ => bail!("expected T and a time after the date"),
    };
    if bytes.get(time_at + 2) != Some(&b':') || bytes.get(time_at + 5) != Some(&b':') {
        bail!("expected HH:MM:SS");
    }
    let (h, m, s): (i64, i64, i64) = (
        field(time_at..time_at + 2)?.parse()?,
        field(time_at + 3..time_at + 5)?.parse()?,
        field(time_at + 6..time_at + 8)?.parse()?,
    );
    if h > 23 || m > 59 || s > 60 {
        bail!("no such time of day");
    }
    let mut at = time_at + 8;
    let mut millis = 0i64;
    if bytes.get(at) == Some(&b'.') {
        let digits = text[at + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len() - at - 1);
        if digits == 0 {
            bail!("a fraction needs digits");
        }
        let fraction = &text[at + 1..at + 1 + digits];
        millis = format!("{fraction:0<3}")[..3].parse()?;
        at += 1 + digits;
    }
    let offset_minutes = match &text[at..] {
        "Z" | "z" => 0,
        zone if zone.len() == 6 && matches!(zone.as_bytes()[0], b'+' | b'-') => {
            if zone.as_bytes()[3] != b':' {
                bail!("expected a zone like +02:00");
            }
            let (zh, zm): (i64, i64) = (
                field(at + 1..at + 3)?.parse()?,
                field(at + 4..at + 6)?.parse()?,
            );
            let minutes = zh * 60 + zm;
            if zone.starts_with('-') {
                -minutes
            } else {
                minutes
            }
        }
        "" => bail!("the time zone is missing (Z or ±HH:MM)"),
        zone => bail!("{zone:?} is not a time zone (Z or ±HH:MM)"),
    };
    let seconds = days * 86_400 + h * 3_600 + m * 60 + s - offset_minutes * 60;
    Ok(seconds * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_237_600_000; // 2025-11-27T10:00:00Z

    #[test]
    fn reads_pyroscopes_forms() {
        assert_eq!(parse_ms("now", NOW).expect("now"), NOW);
        assert_eq!(parse_ms("now-1h", NOW).expect("relative"), NOW - 3_600_000);
        assert_eq!(parse_ms("now+90s", NOW).expect("relative"), NOW + 90_000);
        assert_eq!(parse_ms("now-1h30m", NOW).expect("parts"), NOW - 5_400_000);
        assert_eq!(parse_ms("now-7d", NOW).expect("days"), NOW - 7 * 86_400_000);
        assert_eq!(parse_ms("now-1w", NOW).expect("week"), NOW - 7 * 86_400_000);
        assert_eq!(
            parse_ms("now-1M", NOW).expect("month"),
            NOW - 30 * 86_400_000
        );
        assert_eq!(
            parse_ms("now-1mon", NOW).expect("month"),
            NOW - 30 * 86_400_000
        );
        assert_eq!(
            parse_ms("now-1y", NOW).expect("year"),
            NOW - 365 * 86_400_000
        );
        assert_eq!(parse_ms("now-5min", NOW).expect("min"), NOW - 300_000);
        assert_eq!(parse_ms("1764237600", NOW).expect("seconds"), NOW);
        assert_eq!(parse_ms("1_764_237_600", NOW).expect("separators"), NOW);
        assert_eq!(parse_ms("1764237600000", NOW).expect("ms"), NOW);
        assert_eq!(parse_ms("1764237600000000", NOW).expect("µs"), NOW);
        assert_eq!(parse_ms("1764237600000000000", NOW).expect("ns"), NOW);
        // attime's date form, and eight digits that are no date are seconds.
        assert_eq!(
            parse_ms("20251127", NOW).expect("date"),
            NOW - 10 * 3_600_000
        );
        assert_eq!(parse_ms("20200101", NOW).expect("date"), 1_577_836_800_000);
        assert_eq!(parse_ms("20201301", NOW).expect("seconds"), 20_201_301_000);
    }

    #[test]
    fn reads_rfc3339_with_any_zone() {
        assert_eq!(parse_ms("2025-11-27T10:00:00Z", NOW).expect("utc"), NOW);
        assert_eq!(
            parse_ms("2025-11-27T12:00:00+02:00", NOW).expect("east"),
            NOW
        );
        assert_eq!(
            parse_ms("2025-11-27T05:30:00-04:30", NOW).expect("west"),
            NOW
        );
        assert_eq!(
            parse_ms("2025-11-27 10:00:00.250Z", NOW).expect("space"),
            NOW + 250
        );
        assert_eq!(
            parse_ms("2025-11-27T10:00:00.5Z", NOW).expect("fraction"),
            NOW + 500
        );
        assert_eq!(
            parse_ms("2024-02-29T00:00:00Z", NOW).expect("leap"),
            1_709_164_800_000
        );
        assert_eq!(
            parse_ms("1969-12-31T23:59:59Z", NOW).expect("before"),
            -1000
        );
    }

    #[test]
    fn says_what_is_wrong() {
        for bad in [
            "",
            "yesterday",
            "now*2",
            "now-",
            "now-1",
            "now-1q",
            "now€1h",
            "now-1€",
            "2025-11-27T10:00:00",
            "2025-02-30T10:00:00Z",
            "2025-11-27T25:00:00Z",
            "2025-11-27T10:00:00+0200",
            "2025-11-27",
            "99999999999999999999",
        ] {
            assert!(parse_ms(bad, NOW).is_err(), "{bad:?} was accepted");
        }
        let message = format!(
            "{:#}",
            parse_ms("2025-11-27T10:00:00", NOW).expect_err("no zone")
        );
        assert!(message.contains("time zone is missing"), "{message}");
    }
}
