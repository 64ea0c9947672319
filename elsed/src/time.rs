//! Times given on the command line (`--since`, `--until`, `--year-reference`).

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use omelse::parse::Timestamp;

/// Reads a point in time: RFC 3339 with an offset (`2024-03-14T10:00:00+01:00`), a local date and
/// time in `zone` (`2024-03-14 10:00`, `2024-03-14T10:00:00`), a local date (its midnight), or a
/// time before now (`30m`, `2h`, `7d`, `1w`).
pub fn parse_time(text: &str, zone: &TimeZone) -> anyhow::Result<Timestamp> {
    let text = text.trim();
    let bad = || {
        anyhow::anyhow!(
            "'{text}' is not a time: use RFC 3339 (2024-03-14T10:00:00Z), a local date and time \
             (2024-03-14 10:00), a date (2024-03-14) or an age (30m, 2h, 7d, 1w)"
        )
    };
    if let Some(age) = parse_age(text) {
        return Ok(Timestamp(Timestamp::now().0 - age));
    }
    if let Ok(instant) = text.parse::<jiff::Timestamp>() {
        return Ok(Timestamp(instant.as_microsecond()));
    }
    let civil = match text.parse::<DateTime>() {
        Ok(civil) => civil,
        Err(_) => text
            .parse::<Date>()
            .map_err(|_| bad())?
            .to_datetime(jiff::civil::Time::midnight()),
    };
    let zoned = civil.to_zoned(zone.clone()).map_err(|_| bad())?;
    Ok(Timestamp(zoned.timestamp().as_microsecond()))
}

/// `30m`, `2h`, `7d`, `1w` in microseconds.
fn parse_age(text: &str) -> Option<i64> {
    let unit = text.chars().last()?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return None,
    };
    let number: i64 = text[..text.len() - 1].parse().ok()?;
    (number >= 0).then(|| {
        number
            .saturating_mul(seconds)
            .saturating_mul(Timestamp::MICROS_PER_SECOND)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_read() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let at = |text| parse_time(text, &paris).unwrap().to_rfc3339();
        assert_eq!(at("2024-03-14T10:00:00Z"), "2024-03-14T10:00:00.000000Z");
        assert_eq!(at("2024-03-14T10:00:00+01:00"), "2024-03-14T09:00:00.000000Z");
        assert_eq!(at("2024-03-14 10:00"), "2024-03-14T09:00:00.000000Z");
        assert_eq!(at("2024-07-14"), "2024-07-13T22:00:00.000000Z");
        let two_hours_ago = parse_time("2h", &paris).unwrap().0;
        let expected = Timestamp::now().0 - 2 * 3600 * Timestamp::MICROS_PER_SECOND;
        assert!((two_hours_ago - expected).abs() < 5 * Timestamp::MICROS_PER_SECOND);
        for bad in ["yesterday", "2024-13-01", "-2h", ""] {
            assert!(parse_time(bad, &paris).is_err(), "{bad}");
        }
    }
}
