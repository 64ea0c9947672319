//! qmgr: queue entry (`from=, size=, nrcpt=`), `removed`, expiry.

use super::event::EventKind;
use super::{delivery, fields};

pub(super) fn parse<'a>(_queue_id: Option<&'a str>, text: &'a str) -> Option<EventKind<'a>> {
    match text {
        "removed" => return Some(EventKind::Removed),
        "skipped, still being delivered" => return Some(EventKind::Skipped),
        _ => {}
    }
    if text.starts_with("from=<") {
        let from = fields::field_angle(text, "from=<")?;
        // `status=expired` (maximal_queue_lifetime) and `status=force-expired` (postsuper -e).
        if let Some(status) = fields::field(text, "status=") {
            return matches!(status, "expired" | "force-expired").then_some(EventKind::Expired { from });
        }
        let size = fields::number(fields::field(text, "size=")?)?.0;
        let nrcpt = fields::number(fields::field(text, "nrcpt=")?)?.0;
        return Some(EventKind::Queued { from, size, nrcpt });
    }
    // qmgr logs the recipients it defers or bounces itself (`relay=none, … status=deferred
    // (delivery temporarily suspended: …)`) in the delivery agents' format.
    delivery::attempt(text).map(EventKind::Delivery)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::event::DeliveryStatus;

    #[test]
    fn queue_entry() {
        assert_eq!(
            parse(
                None,
                "from=<owner-postfix-users@postfix.org>, size=5360, nrcpt=1 (queue active)"
            ),
            Some(EventKind::Queued {
                from: "owner-postfix-users@postfix.org",
                size: 5360,
                nrcpt: 1
            })
        );
        assert_eq!(
            parse(None, "from=<>, size=11803, nrcpt=12 (queue active) "),
            Some(EventKind::Queued {
                from: "",
                size: 11803,
                nrcpt: 12
            })
        );
    }

    #[test]
    fn end_of_life_lines() {
        assert_eq!(parse(None, "removed"), Some(EventKind::Removed));
        assert_eq!(parse(None, "skipped, still being delivered"), Some(EventKind::Skipped));
        assert_eq!(
            parse(None, "from=<uvnhbl@yahoo.com.tw>, status=expired, returned to sender"),
            Some(EventKind::Expired {
                from: "uvnhbl@yahoo.com.tw"
            })
        );
        assert_eq!(
            parse(None, "from=<>, status=expired, returned to sender"),
            Some(EventKind::Expired { from: "" })
        );
        assert_eq!(
            parse(
                None,
                "from=<noreply@domain.com>, status=force-expired, returned to sender"
            ),
            Some(EventKind::Expired {
                from: "noreply@domain.com"
            })
        );
    }

    #[test]
    fn deferrals_logged_by_qmgr_itself() {
        let text = "to=<user@yahoo.com>, relay=none, delay=63495, delays=63350/144/0/0, dsn=4.4.2, \
                    status=deferred (delivery temporarily suspended: connect to mx[192.0.2.1]:25: Connection timed out)";
        match parse(None, text) {
            Some(EventKind::Delivery(d)) => {
                assert_eq!(
                    (d.to, d.relay, d.status),
                    ("user@yahoo.com", "none", DeliveryStatus::Deferred)
                );
                assert_eq!(d.delay, 63495.0);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn others_are_not_ours() {
        assert_eq!(
            parse(None, "warning: lots of deferred mail, that is bad for performance"),
            None
        );
        assert_eq!(parse(None, "STATISTICS1:"), None);
        assert_eq!(parse(None, "from=<a@b>, status=sent, whatever"), None);
    }
}
