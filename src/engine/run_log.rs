//! The engine's log timestamps (`docker logs --timestamps`, a container's
//! `State.StartedAt`): RFC 3339 in UTC with up to nine fraction digits,
//! read into (unix seconds, nanoseconds) so the lines of one run of a
//! restarted container can be told from earlier runs'.

/// `2026-12-06T13:24:06.123456789Z` → (unix seconds, nanoseconds); `None`
/// for anything else (another offset than `Z` included).
pub fn parse_timestamp(text: &str) -> Option<(i64, u32)> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date = date.splitn(3, '-').map(|part| part.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut clock = clock.splitn(3, ':').map(|part| part.parse::<i64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    if fraction.len() > 9 || !fraction.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let nanos = format!("{fraction:0<9}").parse::<u32>().ok()?;
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some((seconds, nanos))
}

/// Splits a `--timestamps` log line into its time and its text.
pub fn split_timestamp(line: &str) -> (Option<(i64, u32)>, &str) {
    match line.split_once(' ') {
        Some((stamp, text)) => match parse_timestamp(stamp) {
            Some(parsed) => (Some(parsed), text),
            None => (None, line),
        },
        None => match parse_timestamp(line) {
            Some(parsed) => (Some(parsed), ""),
            None => (None, line),
        },
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_timestamps_read_as_unix_time_and_order_by_their_fraction() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(
            parse_timestamp("2026-12-06T13:24:06.5Z"),
            Some((1_796_563_446, 500_000_000))
        );
        // Trimmed fractions compare as numbers, not text.
        assert!(
            parse_timestamp("2026-12-06T13:24:06.1Z") < parse_timestamp("2026-12-06T13:24:06.12Z")
        );
        assert_eq!(parse_timestamp("2026-12-06T13:24:06+01:00"), None);
        assert_eq!(
            split_timestamp("2026-12-06T13:24:06.000000001Z version: two"),
            (Some((1_796_563_446, 1)), "version: two")
        );
        assert_eq!(split_timestamp("no stamp here"), (None, "no stamp here"));
    }
}
