//! omelse's own rsyslog template, and the one reader of the lines rendered with it.

use std::ops::Range;

use super::config::HostnameSource;
use crate::parse::{header, SyslogLine};

/// The fields omelse's own template renders, separated by spaces (none of the first five can
/// contain one); the tag and message come last, whatever they contain. The input's name rides on
/// the uuid (`uuid@input`), so that a line spooled before it was added still reads the same.
pub const TEMPLATE: &str =
    "%uuid%@%inputname% %timereported:::date-rfc3339% %hostname% %fromhost% %fromhost-ip% %syslogtag%%msg%";
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

/// The uuid of a rendered line's first field (`uuid@input`, or the uuid alone when rendered
/// before the template had the input).
pub(super) fn uuid(first: &str) -> &str {
    first.split_once('@').map_or(first, |(uuid, _)| uuid)
}

/// The server name of a rendered line (from the field `source` names) and the name of the input
/// it came in by; `None` when the line lacks the fields.
pub fn host_and_input(rendered: &[u8], source: HostnameSource) -> Option<(&[u8], &[u8])> {
    let [first, _, hostname, fromhost, fromhost_ip, _] = fields(rendered)?;
    let first = &rendered[first];
    let input = memchr::memchr(b'@', first).map_or(&first[first.len()..], |at| &first[at + 1..]);
    let host = chosen_host(source, hostname, fromhost, fromhost_ip);
    Some((&rendered[host], input))
}

/// The one of a line's three host fields that `source` names as its server name.
fn chosen_host<T>(source: HostnameSource, hostname: T, fromhost: T, fromhost_ip: T) -> T {
    match source {
        HostnameSource::Hostname => hostname,
        HostnameSource::FromHost => fromhost,
        HostnameSource::FromHostIp => fromhost_ip,
    }
}

/// The tag and message of a rendered line (empty when it has fewer fields).
pub fn tag_and_message(rendered: &[u8]) -> &[u8] {
    fields(rendered).map_or(&[], |[.., rest]| &rendered[rest])
}

/// Splits a rendered line into its uuid and envelope, the host taken from the field `source`
/// names.
pub fn split(text: &str, source: HostnameSource) -> Option<(&str, SyslogLine<'_>)> {
    let [first, time, hostname, fromhost, fromhost_ip, rest] = fields(text.as_bytes())?.map(|range| &text[range]);
    let uuid = uuid(first);
    let (time, _) = header::parse_rfc3339(time)?;
    let host = chosen_host(source, hostname, fromhost, fromhost_ip);
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
        let text = "0A1B@else-host:mx1 2026-11-28T20:16:47.123456+01:00 mx1 relay.example 192.0.2.7 postfix/submission/smtpd[25198]: connect from x[192.0.2.1]";
        let (uuid, line) = split(text, HostnameSource::Hostname).unwrap();
        assert_eq!(uuid, "0A1B");
        assert_eq!(
            host_and_input(text.as_bytes(), HostnameSource::Hostname),
            Some((&b"mx1"[..], &b"else-host:mx1"[..]))
        );
        assert_eq!(
            host_and_input(text.as_bytes(), HostnameSource::FromHost),
            Some((&b"relay.example"[..], &b"else-host:mx1"[..]))
        );
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
    fn a_line_spooled_before_the_input_name_reads_the_same() {
        let text = "0A1B 2026-11-28T20:16:47+01:00 mx1 mx1 192.0.2.7 postfix/smtpd[1]: connect from x[192.0.2.1]";
        let (uuid, line) = split(text, HostnameSource::Hostname).unwrap();
        assert_eq!((uuid, line.host, line.program), ("0A1B", "mx1", "postfix/smtpd"));
        assert_eq!(
            host_and_input(text.as_bytes(), HostnameSource::Hostname).unwrap().1,
            b""
        );
    }

    #[test]
    fn a_line_without_the_fields_has_no_tag() {
        assert_eq!(tag_and_message(b"only three fields"), b"");
        assert!(split("only three fields", HostnameSource::Hostname).is_none());
    }
}
