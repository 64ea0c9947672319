//! Links between queue ids: the path of one e-mail through content filters, relays, re-injection
//! and the notifications Postfix generates for it.
//!
//! A link also carries the origin along: the message a content filter re-injects (or a known ELSE
//! server receives) takes its origin from the message it came from (see `flow.rs`).

use std::collections::HashMap;

use crate::keys::hash_parts;
use crate::parse::event::Delivery;
use crate::parse::{Program, Timestamp};
use crate::store::{Batch, LinkRow};

use super::message::{queue_key, Upstream, CLOSED_GRACE, FORGET_CLOSED};
use super::net::{is_loopback, is_this_host};
use super::Correlator;

#[derive(Default)]
pub(super) struct Links {
    /// Upstream messages for queue ids not seen yet (the next hop logs later), by queue key; the
    /// origin side instead once that message was evicted.
    pending: HashMap<i64, (Upstream, Timestamp)>,
    /// Links already emitted, so that amavis' verdict and the delivery line that both name the
    /// same hop give one row.
    recent: HashMap<i64, Timestamp>,
}

impl Links {
    /// The lives whose next hop has not logged yet (they wait for it to take their origin).
    pub fn awaited_upstreams(&self) -> std::collections::HashSet<i64> {
        self.pending
            .values()
            .filter_map(|(from, _)| match from {
                Upstream::Message(uid) => Some(*uid),
                Upstream::Side(_) => None,
            })
            .collect()
    }

    /// The links still waiting for a life that came out of `uid` take its origin side (it is
    /// evicted).
    pub fn hand_over(&mut self, uid: i64, side: super::flow::Side) {
        for (from, _) in self.pending.values_mut() {
            if *from == Upstream::Message(uid) {
                *from = Upstream::Side(side);
            }
        }
    }
}

/// Where a delivery that said `queued as X` handed the mail.
pub(super) struct Hop {
    pub kind: &'static str,
    /// The host that logs the next queue id, when we can tell.
    pub to_host: String,
    /// True when `to_host` sends its lines to ELSE (this host or a known server): the next message
    /// will be seen, and the recipient's destination is its destination there.
    pub followed: bool,
}

/// Ports a local content filter does not listen on: a loopback hop to one of these is plain SMTP.
const SMTP_PORTS: [u16; 3] = [25, 465, 587];
/// Words that name a content filter in a relay or a service name (`amavis:[127.0.0.1]:10024`,
/// `postfix/amavis/smtp`, `smtp-amavis`, `spamfilter`).
const FILTER_WORDS: [&str; 5] = ["amavis", "filter", "spam", "clam", "rspamd"];

/// A delivery goes into a content filter when its next hop is on the loopback at a port other
/// than 25/465/587 (amavis listens on 10024, re-injects on 10025; dkim and spam filters are set
/// up the same way), or when the delivering service (`postfix/amavis/smtp`) or a local relay
/// (loopback, or no address: `relay=amavis`) is named after a filter. A remote relay's name says
/// nothing: `inbound.spamfilter.example` is another MTA.
pub(super) fn is_content_filter(program: &Program<'_>, delivery: &Delivery<'_>) -> bool {
    let named = |text: &str| {
        let lower = text.to_ascii_lowercase();
        FILTER_WORDS.iter().any(|w| lower.contains(w))
    };
    if program.service.is_some_and(named) {
        return true;
    }
    match delivery.relay_peer {
        Some(peer) if is_loopback(peer.ip) => {
            peer.port.is_some_and(|port| !SMTP_PORTS.contains(&port)) || named(peer.name)
        }
        Some(_) => false,
        None => named(delivery.relay),
    }
}

impl Correlator {
    /// The hop of a delivery that said `queued as`: to a configured server's address, that server;
    /// `content_filter` (see [`is_content_filter`]) stays on this host; a `relay` goes to this
    /// host when the relay is the host's own loopback address (127.0.0.1, ::1), has
    /// the host's name, or is the client of the next queue id on this host (a filter on another
    /// address that re-injects); to a known ELSE server by its host name; else to the relay's name.
    pub(super) fn delivery_hop(
        &self,
        host: &str,
        program: &Program<'_>,
        delivery: &Delivery<'_>,
        to_queue_id: &str,
        time: Timestamp,
    ) -> Hop {
        let same = |kind| Hop {
            kind,
            to_host: host.to_owned(),
            followed: true,
        };
        // An address the administrator gave a server is that server, wherever it is.
        if let Some(server) = delivery
            .relay_peer
            .and_then(|peer| self.config.server_addresses.get(peer.ip))
            .filter(|server| !server.eq_ignore_ascii_case(host))
        {
            return Hop {
                kind: "relay",
                to_host: server.clone(),
                followed: true,
            };
        }
        if is_content_filter(program, delivery) {
            return same("content_filter");
        }
        let Some(peer) = delivery.relay_peer else {
            return same("relay");
        };
        if is_this_host(peer.ip) || peer.name.eq_ignore_ascii_case(host) {
            return same("relay");
        }
        if let Some(server) = self.known_server(Some(peer.name), Some(peer.ip)) {
            return Hop {
                kind: "relay",
                to_host: server.to_owned(),
                followed: true,
            };
        }
        let reinjected_here = self
            .messages
            .life_at(queue_key(host, to_queue_id), time)
            .is_some_and(|next| {
                next.row.client_ip.as_deref() == Some(peer.ip)
                    && next.closed_at.is_none_or(|c| time.0 - c.0 <= CLOSED_GRACE)
            });
        if reinjected_here {
            return same("relay");
        }
        let name = if peer.name.is_empty() || peer.name == "unknown" {
            peer.ip
        } else {
            peer.name
        };
        Hop {
            kind: "relay",
            to_host: name.to_owned(),
            followed: false,
        }
    }

    /// Emits a link row (once per hop) and, when `carries_origin`, makes the next message take its
    /// origin from `from_uid`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn link(
        &mut self,
        batch: &mut Batch,
        time: Timestamp,
        line_key: i64,
        kind: &'static str,
        from: (Option<i64>, &str, &str),
        to: (&str, &str),
        relay: Option<&str>,
        carries_origin: bool,
    ) {
        let (from_uid, from_host, from_queue_id) = from;
        let (to_host, to_queue_id) = to;
        let hop = hash_parts(&[
            from_host.as_bytes(),
            from_queue_id.as_bytes(),
            to_host.as_bytes(),
            to_queue_id.as_bytes(),
        ]);
        if self
            .links
            .recent
            .get(&hop)
            .is_none_or(|&seen| time.0 - seen.0 > FORGET_CLOSED)
        {
            self.links.recent.insert(hop, time);
            batch.links.push(LinkRow {
                time,
                line_key,
                kind,
                from_uid,
                from_host: from_host.to_owned(),
                from_queue_id: from_queue_id.to_owned(),
                to_host: Some(to_host.to_owned()),
                to_queue_id: to_queue_id.to_owned(),
                relay: relay.map(str::to_owned),
            });
        }
        if let (true, Some(from_uid)) = (carries_origin, from_uid) {
            self.set_upstream(queue_key(to_host, to_queue_id), from_uid, time);
        }
    }

    /// Makes the current life of queue key `key` come from `from_uid`, or remembers it for the
    /// life that will start.
    fn set_upstream(&mut self, key: i64, from_uid: i64, time: Timestamp) {
        let target = self
            .messages
            .life_at(key, time)
            .filter(|m| m.row.uid != from_uid && m.closed_at.is_none_or(|c| time.0 - c.0 <= CLOSED_GRACE))
            .map(|m| m.row.uid);
        match target {
            Some(uid) => self.attach_upstream(uid, Upstream::Message(from_uid)),
            None => {
                self.links.pending.insert(key, (Upstream::Message(from_uid), time));
            }
        }
    }

    /// Gives a life its upstream; it and its recipients are re-snapshot (their flows may change).
    pub(super) fn attach_upstream(&mut self, uid: i64, upstream: Upstream) {
        let Some(life) = self.messages.lives.get_mut(&uid) else {
            return;
        };
        if life.upstream == Some(upstream) {
            return;
        }
        life.upstream = Some(upstream);
        life.touch_recipients();
        self.messages.touch(uid);
        if let Upstream::Message(from) = upstream {
            if let Some(up) = self.messages.lives.get_mut(&from) {
                if !up.downstream.contains(&uid) {
                    up.downstream.push(uid);
                }
            }
        }
    }

    /// A new life whose queue id a link named before it started takes that upstream.
    pub(super) fn claim_pending_upstream(&mut self, host: &str, queue_id: &str, uid: i64) {
        if self.links.pending.is_empty() {
            return;
        }
        if let Some((from, _)) = self.links.pending.remove(&queue_key(host, queue_id)) {
            if from != Upstream::Message(uid) {
                self.attach_upstream(uid, from);
            }
        }
    }

    /// The messages upstream of `uid` show this message's deliveries in their flows: re-snapshot
    /// them.
    pub(super) fn touch_upstream_chain(&mut self, uid: i64) {
        let mut current = uid;
        for _ in 0..8 {
            let Some(Upstream::Message(up)) = self.messages.lives.get(&current).and_then(|m| m.upstream) else {
                return;
            };
            let Some(life) = self.messages.lives.get_mut(&up) else {
                return;
            };
            life.touch_recipients();
            self.messages.touch(up);
            current = up;
        }
    }

    pub(super) fn sweep_links(&mut self, now: Timestamp) {
        let limit = now.0 - FORGET_CLOSED;
        self.links.pending.retain(|_, (_, t)| t.0 >= limit);
        self.links.recent.retain(|_, t| t.0 >= limit);
    }
}
