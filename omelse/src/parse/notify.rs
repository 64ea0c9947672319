//! bounce notifications, pickup, postsuper and the local submission tools.

use super::event::{EventKind, NotificationKind, QueueOperation};
use super::fields;

pub(super) fn parse<'a>(daemon: &str, _queue_id: Option<&'a str>, text: &'a str) -> Option<EventKind<'a>> {
    match daemon {
        "bounce" => notification(text),
        "pickup" => pickup(text),
        "postsuper" => postsuper(text),
        // sendmail and postdrop only log diagnostics (`fatal: root(0): message file too big`).
        _ => None,
    }
}

/// `sender non-delivery notification: NQID` (the original's id is the line's queue id).
fn notification(text: &str) -> Option<EventKind<'_>> {
    let (what, id) = text.split_once(" notification: ")?;
    let notification = match what {
        "sender non-delivery" => NotificationKind::NonDelivery,
        "sender delay" => NotificationKind::Delay,
        "sender delivery status" => NotificationKind::Success,
        "postmaster non-delivery" => NotificationKind::PostmasterNonDelivery,
        "postmaster delay" => NotificationKind::PostmasterDelay,
        _ => return None,
    };
    fields::is_queue_id(id).then_some(EventKind::Notification {
        notification,
        notification_queue_id: id,
    })
}

/// `uid=0 from=<root>`.
fn pickup(text: &str) -> Option<EventKind<'_>> {
    let (uid, rest) = fields::number(text.strip_prefix("uid=")?)?;
    Some(EventKind::Pickup {
        uid,
        from: fields::field_angle(rest, "from=<")?,
    })
}

/// `QID: placed on hold` and friends, and the summaries `Deleted: 3 messages`.
///
/// `QID: removed` (postsuper -d) becomes [`EventKind::Removed`], the same as qmgr's: the message's
/// life ends either way, so the correlator needs no second rule, and the program on the line still
/// tells an administrator's deletion from a delivery's end. The count-only
/// [`QueueOperation::Deleted`] is for the summaries, which name no message.
fn postsuper(text: &str) -> Option<EventKind<'_>> {
    let operation = |operation| Some(EventKind::QueueOperation { operation, count: None });
    match text {
        "removed" => return Some(EventKind::Removed),
        "placed on hold" => return operation(QueueOperation::Held),
        "released from hold" => return operation(QueueOperation::Released),
        "requeued" => return operation(QueueOperation::Requeued),
        _ => {}
    }
    let (what, count) = text.split_once(": ")?;
    let operation = match what {
        "Deleted" => QueueOperation::Deleted,
        "Placed on hold" => QueueOperation::Held,
        "Released from hold" => QueueOperation::Released,
        "Requeued" => QueueOperation::Requeued,
        _ => return None,
    };
    let (count, unit) = fields::number(count)?;
    matches!(unit, " message" | " messages").then_some(EventKind::QueueOperation {
        operation,
        count: Some(count),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounce_notifications() {
        let n = |text| parse("bounce", Some("17CCA8044"), text);
        assert_eq!(
            n("sender non-delivery notification: ADD2F8052"),
            Some(EventKind::Notification {
                notification: NotificationKind::NonDelivery,
                notification_queue_id: "ADD2F8052"
            })
        );
        assert_eq!(
            n("sender non-delivery notification: 4PcV4K5tFpz3tG5"),
            Some(EventKind::Notification {
                notification: NotificationKind::NonDelivery,
                notification_queue_id: "4PcV4K5tFpz3tG5"
            })
        );
        let kind = |text| match n(text) {
            Some(EventKind::Notification { notification, .. }) => notification,
            other => panic!("{other:?}"),
        };
        assert_eq!(kind("sender delay notification: 0A87A1A08"), NotificationKind::Delay);
        assert_eq!(
            kind("sender delivery status notification: 1DF35917"),
            NotificationKind::Success
        );
        assert_eq!(
            kind("postmaster non-delivery notification: 47335405A44"),
            NotificationKind::PostmasterNonDelivery
        );
        assert_eq!(
            kind("postmaster delay notification: 47335405A44"),
            NotificationKind::PostmasterDelay
        );
        assert_eq!(n("sender non-delivery notification: not-an-id"), None);
        assert_eq!(n("warning: malformed request"), None);
    }

    #[test]
    fn pickup_lines() {
        assert_eq!(
            parse("pickup", None, "uid=0 from=<fail2ban>"),
            Some(EventKind::Pickup {
                uid: 0,
                from: "fail2ban"
            })
        );
        assert_eq!(
            parse("pickup", None, "uid=1000 from=<>"),
            Some(EventKind::Pickup { uid: 1000, from: "" })
        );
    }

    #[test]
    fn postsuper_per_message_and_summaries() {
        let p = |text| parse("postsuper", None, text);
        let op = |operation, count| Some(EventKind::QueueOperation { operation, count });
        assert_eq!(p("removed"), Some(EventKind::Removed));
        assert_eq!(p("placed on hold"), op(QueueOperation::Held, None));
        assert_eq!(p("released from hold"), op(QueueOperation::Released, None));
        assert_eq!(p("requeued"), op(QueueOperation::Requeued, None));
        assert_eq!(p("Deleted: 115 messages"), op(QueueOperation::Deleted, Some(115)));
        assert_eq!(p("Requeued: 1 message"), op(QueueOperation::Requeued, Some(1)));
        assert_eq!(p("Placed on hold: 67 messages"), op(QueueOperation::Held, Some(67)));
        assert_eq!(
            p("Released from hold: 13 messages"),
            op(QueueOperation::Released, Some(13))
        );
        assert_eq!(p("Renamed to match inode number: 2 messages"), None);
    }

    #[test]
    fn submission_tools_leave_warnings_to_diagnostics() {
        assert_eq!(parse("postdrop", None, "warning: uid=0: File too large"), None);
        assert_eq!(parse("sendmail", None, "fatal: root(0): message file too big"), None);
    }
}
