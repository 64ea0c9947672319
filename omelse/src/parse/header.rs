//! The syslog envelope of a line: timestamp, host, program tag, pid, and the message text.
//!
//! Three shapes are read: RFC 3164 (`Mar 14 00:00:31 host prog[pid]: msg`, no year, local time),
//! RFC 3339 as rsyslog writes it (`2023-03-14T00:00:31.185246+01:00 host prog[pid]: msg`), and
//! Postfix's own `maillog_file` (RFC 3164 with a fraction of a second). Times become UTC microseconds.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde::{Serialize, Serializer};

/// A point in time, UTC, in microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const MICROS_PER_SECOND: i64 = 1_000_000;

    pub fn from_unix_seconds(seconds: i64) -> Self {
        Timestamp(seconds * Self::MICROS_PER_SECOND)
    }

    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(Self::MICROS_PER_SECOND)
    }

    pub fn now() -> Self {
        Timestamp(jiff::Timestamp::now().as_microsecond())
    }

    pub fn to_jiff(self) -> jiff::Timestamp {
        jiff::Timestamp::from_microsecond(self.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }

    /// RFC 3339 in UTC with microseconds, e.g. `2023-03-13T23:00:31.185246Z`.
    pub fn to_rfc3339(self) -> String {
        format!("{:.6}", self.to_jiff())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

/// The envelope of one syslog line; every field borrows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SyslogLine<'a> {
    pub time: Timestamp,
    pub host: &'a str,
    /// The tag before `[pid]:` (`postfix/submission/smtpd`).
    pub program: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The text after `: `.
    pub message: &'a str,
}

/// Turns the local, year-less timestamps of RFC 3164 lines into UTC.
///
/// The year comes from a reference time (now, or what the caller says, e.g. a file's mtime): a
/// date more than a day after the reference belongs to the year before. Then it follows the log:
/// a month that falls back by more than six (December → January) starts the next year. Local times
/// go through the configured zone; in the repeated hour at the end of summer time the earlier
/// reading is taken unless it would send the log back in time, so both passes come out in order.
#[derive(Debug, Clone)]
pub struct Clock {
    zone: TimeZone,
    reference: Timestamp,
    year: Option<i16>,
    last_month: i8,
    last_utc: i64,
    /// Offset (seconds) for the last unambiguous local hour seen: most lines reuse it.
    cached_hour: Option<(i16, i8, i8, i8, i64)>,
}

impl Clock {
    pub fn new(zone: TimeZone, reference: Timestamp) -> Self {
        Clock {
            zone,
            reference,
            year: None,
            last_month: 0,
            last_utc: i64::MIN,
            cached_hour: None,
        }
    }

    /// The machine's zone, years inferred from now.
    pub fn system() -> Self {
        Clock::new(TimeZone::system(), Timestamp::now())
    }

    /// A zone by IANA name (`Europe/Paris`), or `UTC`.
    pub fn with_zone_name(name: &str, reference: Timestamp) -> Result<Self, jiff::Error> {
        Ok(Clock::new(TimeZone::get(name)?, reference))
    }

    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    fn year_for(&mut self, month: i8, day: i8) -> i16 {
        let year = match self.year {
            None => {
                let reference = self.reference.to_jiff().to_zoned(self.zone.clone());
                let mut year = reference.year();
                let (ref_month, ref_day) = (reference.month(), reference.day());
                // More than a day ahead of the reference: last year's line.
                if (month, day) > (ref_month, ref_day + 1) {
                    year -= 1;
                }
                year
            }
            Some(year) if month + 6 < self.last_month => year + 1,
            Some(year) if month > self.last_month + 6 => {
                // A straggler from December after January began: last year, state unchanged.
                return year - 1;
            }
            Some(year) => year,
        };
        self.year = Some(year);
        self.last_month = month;
        year
    }

    /// UTC microseconds of a local civil time without a year.
    pub fn resolve_local(
        &mut self,
        month: i8,
        day: i8,
        hour: i8,
        minute: i8,
        second: i8,
        micros: i32,
    ) -> Option<Timestamp> {
        let year = self.year_for(month, day);
        let within_hour = i64::from(minute) * 60 + i64::from(second);
        if let Some((y, m, d, h, offset)) = self.cached_hour {
            if (y, m, d, h) == (year, month, day, hour) {
                return Some(self.emit(year, month, day, hour, within_hour, micros, offset));
            }
        }
        let civil = DateTime::new(year, month, day, hour, minute, second, 0).ok()?;
        let ambiguous = self.zone.to_ambiguous_timestamp(civil);
        let offset = match ambiguous.offset() {
            jiff::tz::AmbiguousOffset::Unambiguous { offset } => {
                self.cached_hour = Some((year, month, day, hour, i64::from(offset.seconds())));
                i64::from(offset.seconds())
            }
            jiff::tz::AmbiguousOffset::Gap { before, .. } => i64::from(before.seconds()),
            jiff::tz::AmbiguousOffset::Fold { before, after } => {
                self.cached_hour = None;
                let earlier =
                    local_to_utc_micros(year, month, day, hour, within_hour, micros, i64::from(before.seconds()));
                if earlier + 60 * Timestamp::MICROS_PER_SECOND >= self.last_utc {
                    i64::from(before.seconds())
                } else {
                    i64::from(after.seconds())
                }
            }
        };
        Some(self.emit(year, month, day, hour, within_hour, micros, offset))
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        year: i16,
        month: i8,
        day: i8,
        hour: i8,
        within_hour: i64,
        micros: i32,
        offset: i64,
    ) -> Timestamp {
        let utc = local_to_utc_micros(year, month, day, hour, within_hour, micros, offset);
        self.last_utc = utc;
        Timestamp(utc)
    }
}

fn local_to_utc_micros(
    year: i16,
    month: i8,
    day: i8,
    hour: i8,
    within_hour: i64,
    micros: i32,
    offset_seconds: i64,
) -> i64 {
    let days = days_from_civil(i64::from(year), i64::from(month), i64::from(day));
    let seconds = days * 86_400 + i64::from(hour) * 3600 + within_hour - offset_seconds;
    seconds * Timestamp::MICROS_PER_SECOND + i64::from(micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn month_number(name: &[u8]) -> Option<i8> {
    Some(match name {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

fn digits(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() {
        return None;
    }
    let mut value = 0i64;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(b - b'0');
    }
    Some(value)
}

/// Reads `.ffffff` (any number of digits) as microseconds; returns the value and the bytes used.
fn fraction_micros(bytes: &[u8]) -> (i32, usize) {
    if bytes.first() != Some(&b'.') {
        return (0, 0);
    }
    let mut micros = 0i32;
    let mut scale = 100_000;
    let mut used = 1;
    while let Some(&b) = bytes.get(used) {
        if !b.is_ascii_digit() {
            break;
        }
        micros += i32::from(b - b'0') * scale;
        scale /= 10;
        used += 1;
    }
    (micros, used)
}

/// Parses `2023-03-14T00:00:31.185246+01:00`; returns the time and its length in bytes.
pub fn parse_rfc3339(text: &str) -> Option<(Timestamp, usize)> {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || (b[10] != b'T' && b[10] != b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let (micros, fraction_len) = fraction_micros(&b[19..]);
    let mut pos = 19 + fraction_len;
    let offset = match b.get(pos)? {
        b'Z' | b'z' => {
            pos += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            let hours = digits(b.get(pos + 1..pos + 3)?)?;
            let (minutes, len) = if b.get(pos + 3) == Some(&b':') {
                (digits(b.get(pos + 4..pos + 6)?)?, 6)
            } else {
                (digits(b.get(pos + 3..pos + 5)?)?, 5)
            };
            pos += len;
            let seconds = hours * 3600 + minutes * 60;
            if *sign == b'-' {
                -seconds
            } else {
                seconds
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let utc = (days * 86_400 + hour * 3600 + minute * 60 + second - offset) * Timestamp::MICROS_PER_SECOND
        + i64::from(micros);
    Some((Timestamp(utc), pos))
}

/// Parses `Mar 14 00:00:31` or `Mar  4 00:00:31.123456` through the clock; returns the time and
/// its length in bytes.
fn parse_rfc3164(text: &str, clock: &mut Clock) -> Option<(Timestamp, usize)> {
    let b = text.as_bytes();
    if b.len() < 14 || b[3] != b' ' {
        return None;
    }
    let month = month_number(&b[0..3])?;
    // `Mar  7` as RFC 3164 pads it, and `Mar 7` as some writers (fail2ban's samples) do.
    let (day, time_at) = match (b[4], b[5]) {
        (b' ', d) if d.is_ascii_digit() => (i64::from(d - b'0'), 7),
        (d, b' ') if d.is_ascii_digit() => (i64::from(d - b'0'), 6),
        (t, d) if t.is_ascii_digit() && d.is_ascii_digit() => (i64::from(t - b'0') * 10 + i64::from(d - b'0'), 7),
        _ => return None,
    };
    let t = &b[time_at..];
    if b[time_at - 1] != b' ' || t.len() < 8 || t[2] != b':' || t[5] != b':' {
        return None;
    }
    let hour = digits(&t[0..2])?;
    let minute = digits(&t[3..5])?;
    let second = digits(&t[6..8])?;
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let (micros, fraction_len) = fraction_micros(&t[8..]);
    let time = clock.resolve_local(month, day as i8, hour as i8, minute as i8, second.min(59) as i8, micros)?;
    Some((time, time_at + 8 + fraction_len))
}

/// Splits a whole syslog line into its envelope. `None` when it has no recognisable timestamp,
/// host and tag; such a line is stored raw by the caller.
pub fn split_line<'a>(line: &'a str, clock: &mut Clock) -> Option<SyslogLine<'a>> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (time, used) = if line.as_bytes().first()?.is_ascii_digit() {
        parse_rfc3339(line)?
    } else {
        parse_rfc3164(line, clock)?
    };
    let rest = line.get(used..)?.strip_prefix(' ')?;
    let (host, rest) = rest.split_once(' ')?;
    let (program, pid, message) = split_tag(rest)?;
    Some(SyslogLine {
        time,
        host,
        program,
        pid,
        message,
    })
}

/// Splits `prog[pid]: message` (or `prog: message`) into its parts.
pub fn split_tag(text: &str) -> Option<(&str, Option<u32>, &str)> {
    let colon = memchr::memchr(b':', text.as_bytes())?;
    let tag = &text[..colon];
    let message = text[colon + 1..].strip_prefix(' ').unwrap_or(&text[colon + 1..]);
    let (program, pid) = match tag.strip_suffix(']').and_then(|t| t.rsplit_once('[')) {
        Some((program, pid)) => (program, pid.parse().ok()),
        None => (tag, None),
    };
    if program.is_empty() || program.contains(' ') {
        return None;
    }
    Some((program, pid, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc_clock(reference: &str) -> Clock {
        let reference: jiff::Timestamp = reference.parse().unwrap();
        Clock::new(TimeZone::UTC, Timestamp(reference.as_microsecond()))
    }

    #[test]
    fn rfc3339_with_offset_is_utc() {
        let (t, used) = parse_rfc3339("2023-03-14T00:00:31.185246+01:00 helga").unwrap();
        assert_eq!(used, 32);
        assert_eq!(t.to_rfc3339(), "2023-03-13T23:00:31.185246Z");
    }

    #[test]
    fn rfc3164_line_splits() {
        let mut clock = utc_clock("2020-12-31T23:59:59Z");
        let l = split_line(
            "Dec 18 15:46:00 pmg postfix/smtpd[24784]: connect from x[1.2.3.4]",
            &mut clock,
        )
        .unwrap();
        assert_eq!(l.host, "pmg");
        assert_eq!(l.program, "postfix/smtpd");
        assert_eq!(l.pid, Some(24784));
        assert_eq!(l.message, "connect from x[1.2.3.4]");
        assert_eq!(l.time.to_rfc3339(), "2020-12-18T15:46:00.000000Z");
    }

    #[test]
    fn year_is_inferred_across_new_year() {
        let mut clock = utc_clock("2021-01-02T00:00:00Z");
        let dec = split_line("Dec 31 23:59:59 h p: a", &mut clock).unwrap();
        let jan = split_line("Jan  1 00:00:01 h p: b", &mut clock).unwrap();
        assert_eq!(dec.time.to_rfc3339(), "2020-12-31T23:59:59.000000Z");
        assert_eq!(jan.time.to_rfc3339(), "2021-01-01T00:00:01.000000Z");
    }

    #[test]
    fn repeated_hour_at_end_of_summer_time_stays_in_order() {
        let reference: jiff::Timestamp = "2023-11-01T00:00:00Z".parse().unwrap();
        let mut clock = Clock::with_zone_name("Europe/Paris", Timestamp(reference.as_microsecond())).unwrap();
        let times: Vec<String> = [
            "Oct 29 02:10:00",
            "Oct 29 02:50:00",
            "Oct 29 02:05:00",
            "Oct 29 02:55:00",
            "Oct 29 03:00:00",
        ]
        .iter()
        .map(|t| {
            split_line(&format!("{t} h p: x"), &mut clock)
                .unwrap()
                .time
                .to_rfc3339()
        })
        .collect();
        assert_eq!(
            times,
            [
                "2023-10-29T00:10:00.000000Z",
                "2023-10-29T00:50:00.000000Z",
                "2023-10-29T01:05:00.000000Z",
                "2023-10-29T01:55:00.000000Z",
                "2023-10-29T02:00:00.000000Z"
            ]
        );
    }

    #[test]
    fn unpadded_day_is_read() {
        let mut clock = utc_clock("2024-06-01T00:00:00Z");
        let l = split_line(
            "Mar 7 02:09:33 mx postfix/smtpd[1]: connect from a[192.0.2.1]",
            &mut clock,
        )
        .unwrap();
        assert_eq!(
            (l.host, l.time.to_rfc3339().as_str()),
            ("mx", "2024-03-07T02:09:33.000000Z")
        );
        let l = split_line("Mar  7 02:09:33 mx postfix/smtpd[1]: x", &mut clock).unwrap();
        assert_eq!(l.time.to_rfc3339(), "2024-03-07T02:09:33.000000Z");
    }

    #[test]
    fn maillog_file_fraction_is_kept() {
        let mut clock = utc_clock("2024-06-01T00:00:00Z");
        let l = split_line("May 30 10:00:00.250000 mx postfix/qmgr[1]: ABC: removed", &mut clock).unwrap();
        assert_eq!(l.time.to_rfc3339(), "2024-05-30T10:00:00.250000Z");
    }
}
