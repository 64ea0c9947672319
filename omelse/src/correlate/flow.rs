//! Mail flow: where a message came from and where each recipient went, inside or outside the
//! organisation.
//!
//! | origin \ destination | internal   | external   |
//! |----------------------|------------|------------|
//! | internal             | `internal` | `outbound` |
//! | external             | `inbound`  | `relayed`  |
//!
//! **Origin** (per message), first rule that applies:
//! 1. the message came out of another known message (content filter re-injection, `queued as`
//!    from a relay on this host or on another ELSE server, XFORWARD `orig_queue_id`): that
//!    message's origin, when it is known;
//! 2. a notification Postfix generated (`bounce`), a local submission (`pickup`), or a client that
//!    authenticated (SASL): internal;
//! 3. a client that is a known ELSE server: external when that server's role is `incoming` (mail
//!    it passes on came from the Internet), internal otherwise;
//! 4. the client (or the `orig_client` of a re-injection) in an internal network: internal, any
//!    other client: external;
//! 5. nothing known (the life began before the log): the host's role decides — an `incoming`
//!    server's mail is external, an `outgoing` server's mail is internal — else unknown.
//!
//! **Destination** (per recipient, at each delivery attempt):
//! - `local`, `virtual`, `pipe`, `lmtp`: internal (mailbox delivery);
//! - `error`, `discard`, `retry`: unknown (no destination);
//! - into a content filter, or `queued as` on this host or on another ELSE server: the
//!   destination of the same recipient in the next message, once it has one;
//! - `smtp` to a known ELSE server or to an address in an internal network: internal;
//! - any other `smtp` (including `relay=none`, a remote domain that could not be reached):
//!   external. The role does not change this: an `outgoing` server's smtp to a non-internal relay
//!   is external, an `incoming` server's relaying of Internet mail to internal hosts is inbound.
//!
//! A message's flow is the widest of its recipients' (`relayed`/`outbound` before
//! `inbound`/`internal`), none until a recipient has one.

use crate::parse::event::Delivery;

use super::message::{Message, Upstream};
use super::net::in_networks;
use super::{Correlator, ServerRole};

/// Inside or outside the organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Internal,
    External,
}

impl Side {
    /// The origin a flow implies (to rebuild state from a snapshot).
    pub fn origin_of_flow(flow: &str) -> Option<Side> {
        match flow {
            "internal" | "outbound" => Some(Side::Internal),
            "inbound" | "relayed" => Some(Side::External),
            _ => None,
        }
    }

    /// The destination a flow implies.
    pub fn destination_of_flow(flow: &str) -> Option<Side> {
        match flow {
            "internal" | "inbound" => Some(Side::Internal),
            "outbound" | "relayed" => Some(Side::External),
            _ => None,
        }
    }
}

/// Where one recipient went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    Unknown,
    Side(Side),
    /// Handed to the message with this queue key (content filter, relay to a known server):
    /// the recipient's destination is its destination there.
    Via(i64),
}

/// The flow name of an origin and a destination (the table above).
pub fn flow_name(origin: Side, destination: Side) -> &'static str {
    match (origin, destination) {
        (Side::Internal, Side::Internal) => "internal",
        (Side::Internal, Side::External) => "outbound",
        (Side::External, Side::Internal) => "inbound",
        (Side::External, Side::External) => "relayed",
    }
}

/// How wide a flow is: a message takes the widest of its recipients'.
fn width(flow: &str) -> u8 {
    match flow {
        "relayed" | "outbound" => 2,
        "inbound" | "internal" => 1,
        _ => 0,
    }
}

/// How many hops (content filters, relays) a flow is followed through.
const MAX_HOPS: u8 = 8;

impl Correlator {
    /// Rule list "Origin" above.
    pub(super) fn origin_side(&self, msg: &Message, hops: u8) -> Option<Side> {
        match msg.upstream {
            Some(Upstream::Side(side)) => return Some(side),
            Some(Upstream::Message(uid)) if hops < MAX_HOPS => {
                if let Some(side) = self
                    .messages
                    .lives
                    .get(&uid)
                    .and_then(|up| self.origin_side(up, hops + 1))
                {
                    return Some(side);
                }
            }
            _ => {}
        }
        let row = &msg.row;
        if matches!(row.origin, "bounce" | "pickup") || row.sasl_username.is_some() {
            return Some(Side::Internal);
        }
        if let Some(ip) = msg.orig_client_ip.as_deref().or(row.client_ip.as_deref()) {
            let name = if msg.orig_client_ip.is_some() {
                None
            } else {
                row.client_name.as_deref()
            };
            if let Some(server) = self.known_server(name, Some(ip)) {
                return Some(match self.config.role(server) {
                    ServerRole::Incoming => Side::External,
                    _ => Side::Internal,
                });
            }
            return Some(if in_networks(&self.config.internal_networks, ip) {
                Side::Internal
            } else {
                Side::External
            });
        }
        match self.config.role(&row.host) {
            ServerRole::Incoming => Some(Side::External),
            ServerRole::Outgoing => Some(Side::Internal),
            _ => None,
        }
    }

    /// Rule list "Destination" above, at the time of a delivery attempt. `via` is the queue key of
    /// the next message when the delivery handed the mail to a content filter or a known server.
    pub(super) fn classify_destination(&self, daemon: &str, delivery: &Delivery<'_>, via: Option<i64>) -> Dest {
        if let Some(key) = via {
            return Dest::Via(key);
        }
        match daemon {
            "local" | "virtual" | "pipe" | "lmtp" => Dest::Side(Side::Internal),
            "error" | "discard" | "retry" => Dest::Unknown,
            _ => {
                let internal = delivery.relay_peer.is_some_and(|peer| {
                    in_networks(&self.config.internal_networks, peer.ip)
                        || self.known_server(Some(peer.name), Some(peer.ip)).is_some()
                });
                Dest::Side(if internal { Side::Internal } else { Side::External })
            }
        }
    }

    /// The destination side of the recipient `address` of `msg`, following hops.
    pub(super) fn destination_side(&self, msg: &Message, address: &str, hops: u8) -> Option<Side> {
        let rcpt = msg
            .recipients
            .iter()
            .find(|r| r.row.address == address || r.row.orig_address.as_deref() == Some(address))
            .or_else(|| (msg.recipients.len() == 1).then(|| &msg.recipients[0]))?;
        match rcpt.dest {
            Dest::Unknown => None,
            Dest::Side(side) => Some(side),
            Dest::Via(key) if hops < MAX_HOPS => {
                let next = self.messages.latest_life(key)?;
                // A newer life of a reused queue id is not the mail that was handed over.
                if next.row.started_at.0 + super::message::FORGET_CLOSED < rcpt.row.last_attempt_at.0 {
                    return None;
                }
                self.destination_side(next, &rcpt.row.address, hops + 1)
            }
            Dest::Via(_) => None,
        }
    }

    /// The flow of one recipient of `msg` whose origin is `origin`, if both ends are known.
    pub(super) fn recipient_flow(&self, origin: Option<Side>, msg: &Message, address: &str) -> Option<&'static str> {
        let destination = self.destination_side(msg, address, 0)?;
        Some(flow_name(origin?, destination))
    }

    /// The widest of the recipients' flows.
    pub(super) fn message_flow(&self, origin: Option<Side>, msg: &Message) -> Option<&'static str> {
        origin?;
        msg.recipients
            .iter()
            .filter_map(|r| self.recipient_flow(origin, msg, &r.row.address))
            .max_by_key(|f| width(f))
    }
}
