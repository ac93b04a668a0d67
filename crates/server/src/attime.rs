//! Pyroscope's time arguments (`from`, `until`; `api.md` §6.5): `_`, `,` and spaces are
//! ignored; all digits is a date (`YYYYMMDD`) or an epoch in seconds, milliseconds (13 digits),
//! microseconds (16) or nanoseconds (19); otherwise `now` with an offset after the first `+` or
//! `-` in s, m/min, h, d, w, M/mon (30 d) or y (365 d). Anything unreadable is `now`.

/// Milliseconds since the epoch for `input`, relative to `now_ms`.
pub fn parse_ms(input: &str, now_ms: i64) -> i64 {
    let cleaned: String = input
        .chars()
        .filter(|c| !matches!(c, '_' | ',' | ' '))
        .collect();
    if cleaned.is_empty() {
        return now_ms;
    }
    if cleaned.bytes().all(|b| b.is_ascii_digit()) {
        return digits_ms(&cleaned).unwrap_or(now_ms);
    }
    let Some(position) = cleaned.find(['+', '-']) else {
        return now_ms;
    };
    let sign = if cleaned.as_bytes()[position] == b'-' {
        -1
    } else {
        1
    };
    let offset = &cleaned[position + 1..];
    let digits: String = offset.chars().take_while(char::is_ascii_digit).collect();
    let Ok(amount) = digits.parse::<i64>() else {
        return now_ms;
    };
    let Some(unit_ms) = unit_ms(&offset[digits.len()..]) else {
        return now_ms;
    };
    now_ms.saturating_add(sign * amount.saturating_mul(unit_ms))
}

/// An all-digit time: a `YYYYMMDD` date when it is one, else an epoch told by its length
/// (13 digits ms, 16 µs, 19 ns, any other seconds). `None` when the number overflows.
pub fn digits_ms(digits: &str) -> Option<i64> {
    if digits.len() == 8
        && let Some(ms) = date_ms(digits)
    {
        return Some(ms);
    }
    let value = digits.parse::<i64>().ok()?;
    Some(match digits.len() {
        13 => value,
        16 => value / 1_000,
        19 => value / 1_000_000,
        _ => value.saturating_mul(1_000),
    })
}

/// Milliseconds in one offset unit: s, m/min, h, d, w, M/mon (30 d), y (365 d).
pub fn unit_ms(unit: &str) -> Option<i64> {
    Some(match unit {
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "M" | "mon" => 30 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => return None,
    })
}

/// `YYYYMMDD` at midnight UTC, if it is a valid date.
fn date_ms(text: &str) -> Option<i64> {
    let year: i64 = text.get(0..4)?.parse().ok()?;
    let month: i64 = text.get(4..6)?.parse().ok()?;
    let day: i64 = text.get(6..8)?.parse().ok()?;
    Some(civil_days(year, month, day)? * 86_400_000)
}

/// Days since 1970-01-01 of a valid proleptic Gregorian date.
pub fn civil_days(year: i64, month: i64, day: i64) -> Option<i64> {
    if !(1..=12).contains(&month) || day < 1 {
        return None;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day > days_in_month[(month - 1) as usize] {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::parse_ms;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn forms() {
        assert_eq!(parse_ms("1615709120", NOW), 1_615_709_120_000);
        assert_eq!(parse_ms("1615709120123", NOW), 1_615_709_120_123);
        assert_eq!(parse_ms("1615709120123456", NOW), 1_615_709_120_123);
        assert_eq!(parse_ms("1615709120123456789", NOW), 1_615_709_120_123);
        assert_eq!(parse_ms("20210314", NOW), 1_615_680_000_000);
        assert_eq!(parse_ms("now-1h", NOW), NOW - 3_600_000);
        assert_eq!(parse_ms("x-1h", NOW), NOW - 3_600_000);
        assert_eq!(parse_ms("now+30m", NOW), NOW + 1_800_000);
        assert_eq!(parse_ms("now-2mon", NOW), NOW - 60 * 86_400_000);
        assert_eq!(parse_ms("now", NOW), NOW);
        assert_eq!(parse_ms("garbage", NOW), NOW);
        assert_eq!(parse_ms("1_615_709_120", NOW), 1_615_709_120_000);
        assert_eq!(
            parse_ms("20211340", NOW),
            20_211_340_000,
            "not a date: seconds"
        );
    }
}
