//! How ELSE's values travel to and from PostgreSQL: timestamps as `timestamptz`, client addresses
//! as `inet` (or NULL when the log said `unknown` or something that is not an address).

use std::error::Error;
use std::net::IpAddr;

use bytes::BytesMut;
use tokio_postgres::types::{accepts, to_sql_checked, FromSql, IsNull, ToSql, Type};

use crate::parse::Timestamp;

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

impl ToSql for Timestamp {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        self.0.saturating_sub(PG_EPOCH_OFFSET_MICROS).to_sql(&Type::INT8, out)
    }

    accepts!(TIMESTAMPTZ, TIMESTAMP);
    to_sql_checked!();
}

impl<'a> FromSql<'a> for Timestamp {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        let micros = i64::from_sql(&Type::INT8, raw)?;
        Ok(Timestamp(micros.saturating_add(PG_EPOCH_OFFSET_MICROS)))
    }

    accepts!(TIMESTAMPTZ, TIMESTAMP);
}

/// Text on its way to a `text` column. PostgreSQL refuses NUL characters, which a garbled log
/// line may contain: they become U+FFFD instead of failing the batch.
#[derive(Debug)]
pub struct Text<'a>(pub &'a str);

impl ToSql for Text<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        if memchr::memchr(0, self.0.as_bytes()).is_some() {
            self.0.replace('\0', "\u{FFFD}").as_str().to_sql(ty, out)
        } else {
            self.0.to_sql(ty, out)
        }
    }

    fn accepts(ty: &Type) -> bool {
        <&str as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// [`Text`] of an optional string.
pub fn text(value: Option<&str>) -> Option<Text<'_>> {
    value.map(Text)
}

/// An address as Postfix logs it (`192.0.2.1`, `2001:db8::1`, `ipv6:2001:db8::1`), or `None` for
/// `unknown` and anything else: a bad address must never fail a batch.
pub fn parse_ip(text: Option<&str>) -> Option<IpAddr> {
    let text = text?.trim();
    let text = match text.get(..5) {
        Some(prefix) if prefix.eq_ignore_ascii_case("ipv6:") => &text[5..],
        _ => text,
    };
    text.parse().ok()
}

/// Days since the Unix epoch (UTC) of a time: the daily partition it belongs to.
pub fn day_of(time: Timestamp) -> i64 {
    time.0.div_euclid(86_400 * Timestamp::MICROS_PER_SECOND)
}

/// `(year, month, day)` of a day number (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::header::days_from_civil;

    #[test]
    fn garbage_addresses_become_none() {
        assert_eq!(parse_ip(Some("192.0.2.1")), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(parse_ip(Some("IPv6:2001:db8::1")), Some("2001:db8::1".parse().unwrap()));
        for bad in ["unknown", "", "999.1.1.1", "fe80::1%eth0", "ipv6:"] {
            assert_eq!(parse_ip(Some(bad)), None, "{bad}");
        }
        assert_eq!(parse_ip(None), None);
    }

    #[test]
    fn days_round_trip_through_civil_dates() {
        for days in [-800_000, -1, 0, 1, 11_016, 20_000, 20_420, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(day_of(Timestamp(-1)), -1);
    }
}
