//! omelse's own rsyslog template, and the one reader of the lines rendered with it.

use std::ops::Range;

use super::config::HostnameSource;
use crate::parse::{header, SyslogLine};

/// The fields omelse's own template renders, separated by spaces (none of the first five can
/// contain one); the tag and message come last, whatever they contain.
pub const TEMPLATE: &str = "%uuid% %timereported:::date-rfc3339% %hostname% %fromhost% %fromhost-ip% %syslogtag%%msg%";
pub const TEMPLATE_NAME: &str = "OmElseFormat";

/// The byte ranges of a rendered line's six fields: uuid, time, hostname, fromhost, fromhost-ip,
/// then the tag with the message. Bytes, so that a line can be looked at before it is copied.
pub fn fields(rendered: &[u8]) -> Option<[Range<usize>; 6]> {
    let mut spaces = memchr::memchr_iter(b' ', rendered);
    let mut start = 0;
    let mut next = || {
        let end = spaces.next()?;
        let field = start..end;
        start = end + 1;
        Some(field)
    };
    let first_five = [next()?, next()?, next()?, next()?, next()?];
    let [uuid, time, hostname, fromhost, fromhost_ip] = first_five;
    Some([uuid, time, hostname, fromhost, fromhost_ip, start..rendered.len()])
}

/// The tag and message of a rendered line (empty when it has fewer fields).
pub fn tag_and_message(rendered: &[u8]) -> &[u8] {
    fields(rendered).map_or(&[], |[.., rest]| &rendered[rest])
}

/// Splits a rendered line into its uuid and envelope, the host taken from the field `source`
/// names.
pub fn split(text: &str, source: HostnameSource) -> Option<(&str, SyslogLine<'_>)> {
    let [uuid, time, hostname, fromhost, fromhost_ip, rest] = fields(text.as_bytes())?.map(|range| &text[range]);
    let (time, _) = header::parse_rfc3339(time)?;
    let host = match source {
        HostnameSource::Hostname => hostname,
        HostnameSource::FromHost => fromhost,
        HostnameSource::FromHostIp => fromhost_ip,
    };
    let (program, pid, message) = header::split_tag(rest)?;
    Some((
        uuid,
        SyslogLine {
            time,
            host,
            program,
            pid,
            message,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_line_splits_into_uuid_and_envelope() {
        let text = "0A1B 2026-11-28T20:16:47.123456+01:00 mx1 relay.example 192.0.2.7 postfix/submission/smtpd[25198]: connect from x[192.0.2.1]";
        let (uuid, line) = split(text, HostnameSource::Hostname).unwrap();
        assert_eq!(uuid, "0A1B");
        assert_eq!(
            (line.host, line.program, line.pid, line.message),
            (
                "mx1",
                "postfix/submission/smtpd",
                Some(25198),
                "connect from x[192.0.2.1]"
            )
        );
        assert_eq!(line.time.to_rfc3339(), "2026-11-28T19:16:47.123456Z");
        let (_, line) = split(text, HostnameSource::FromHostIp).unwrap();
        assert_eq!(line.host, "192.0.2.7");
        assert_eq!(
            tag_and_message(text.as_bytes()),
            b"postfix/submission/smtpd[25198]: connect from x[192.0.2.1]"
        );
    }

    #[test]
    fn a_line_without_the_fields_has_no_tag() {
        assert_eq!(tag_and_message(b"only three fields"), b"");
        assert!(split("only three fields", HostnameSource::Hostname).is_none());
    }
}
