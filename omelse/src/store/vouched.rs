//! Whether an envelope sender may be believed. Anyone on the Internet can send mail *from* a
//! customer's address to another customer: a sender's domain counts for that customer (scope,
//! reports, rollups) only when the way the mail came in vouches for it. One definition for the
//! rollups written here and elsed's scope and reports, so that a dashboard and a search agree.

/// SQL: the sender of the `messages` row `m` is vouched for: the message was submitted with
/// authentication (SASL) or locally (`pickup`), or its origin is internal (flow `outbound` or
/// `internal`, as the correlator decides from the client's network and the servers' roles). The
/// sender of `inbound` or `relayed` mail, or of mail whose flow is not known yet, is whatever the
/// client claimed.
pub fn sender(m: &str) -> String {
    format!("({m}.flow IN ('outbound', 'internal') OR {m}.sasl_username IS NOT NULL OR {m}.origin = 'pickup')")
}

/// SQL: the sender of the `rejects` row `r` is vouched for: the client had authenticated in the
/// session of the reject, or the reject is about a message whose sender is ([`sender`]).
pub fn reject_sender(r: &str) -> String {
    let message = sender("vouched_rm");
    format!(
        "(EXISTS (SELECT 1 FROM sessions vouched_rs
                  WHERE vouched_rs.uid = {r}.session_uid AND vouched_rs.sasl_username IS NOT NULL)
          OR EXISTS (SELECT 1 FROM messages vouched_rm WHERE vouched_rm.uid = {r}.message_uid AND {message}))"
    )
}
