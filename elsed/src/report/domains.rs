//! Host/domain summaries (delivery by recipient domain, reception by sending domain) and the
//! senders and recipients by message count and by size: pflogsumm's per-domain and per-user
//! sections, from the same groupings as the totals.

use std::collections::HashMap;

use serde::Serialize;

use super::base::{Attempts, Received};
use super::names;
use super::totals::sending_domain;

#[derive(Debug, Default, Serialize)]
pub struct DeliveryDomain {
    pub domain: String,
    pub sent: i64,
    pub bytes: i64,
    pub deferrals: i64,
    /// Seconds, over the sent messages.
    pub average_delay: f64,
    /// Seconds, over sent and deferred attempts.
    pub max_delay: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct ReceivedDomain {
    pub domain: String,
    pub messages: i64,
    pub bytes: i64,
}

/// One address of a top list.
#[derive(Debug, Default, Serialize)]
pub struct Party {
    pub address: String,
    pub messages: i64,
    pub bytes: i64,
}

#[derive(Debug, Serialize)]
pub struct Summaries {
    pub delivery_domains: Vec<DeliveryDomain>,
    pub received_domains: Vec<ReceivedDomain>,
    pub senders_by_count: Vec<Party>,
    pub recipients_by_count: Vec<Party>,
    pub senders_by_size: Vec<Party>,
    pub recipients_by_size: Vec<Party>,
}

/// `top`: at most this many rows per list (0: all).
pub fn compute(received: &[Received], attempts: &[Attempts], top: usize) -> Summaries {
    let mut delivery: HashMap<String, DeliveryDomain> = HashMap::new();
    let mut recipients: HashMap<String, Party> = HashMap::new();
    for group in attempts.iter().filter(|g| !g.handoff && !g.forwarded) {
        let address = names::address(&group.recipient);
        let domain = names::recipient_domain(&address).to_owned();
        let entry = delivery.entry(domain.clone()).or_insert_with(|| DeliveryDomain {
            domain,
            ..Default::default()
        });
        match group.status.as_str() {
            "sent" => {
                entry.sent += group.lines;
                entry.bytes += group.bytes;
                entry.average_delay += group.delay_sum;
                let party = recipients.entry(address.clone()).or_insert_with(|| Party {
                    address,
                    ..Default::default()
                });
                party.messages += group.lines;
                party.bytes += group.bytes;
            }
            "deferred" => entry.deferrals += group.lines,
            _ => continue,
        }
        entry.max_delay = entry.max_delay.max(group.delay_max);
    }
    let mut delivery_domains: Vec<DeliveryDomain> = delivery
        .into_values()
        .filter(|d| d.sent > 0 || d.deferrals > 0)
        .map(|mut d| {
            d.average_delay = if d.sent > 0 {
                d.average_delay / d.sent as f64
            } else {
                0.0
            };
            d
        })
        .collect();
    delivery_domains.sort_by(|a, b| (b.sent, b.bytes, &a.domain).cmp(&(a.sent, a.bytes, &b.domain)));
    truncate(&mut delivery_domains, top);

    let mut sending: HashMap<String, ReceivedDomain> = HashMap::new();
    let mut senders: HashMap<String, Party> = HashMap::new();
    for group in received.iter().filter(|g| !g.reinjected && g.sized > 0) {
        let Some(sender) = &group.sender else { continue };
        let address = names::address(sender);
        let domain = sending_domain(group, &address);
        let entry = sending.entry(domain.clone()).or_insert_with(|| ReceivedDomain {
            domain,
            ..Default::default()
        });
        entry.messages += group.sized;
        entry.bytes += group.bytes;
        let party = senders.entry(address.clone()).or_insert_with(|| Party {
            address,
            ..Default::default()
        });
        party.messages += group.sized;
        party.bytes += group.bytes;
    }
    let mut received_domains: Vec<ReceivedDomain> = sending.into_values().collect();
    received_domains.sort_by(|a, b| (b.messages, b.bytes, &a.domain).cmp(&(a.messages, a.bytes, &b.domain)));
    truncate(&mut received_domains, top);

    let senders: Vec<Party> = senders.into_values().collect();
    let recipients: Vec<Party> = recipients.into_values().collect();
    Summaries {
        delivery_domains,
        received_domains,
        senders_by_count: ranked(&senders, |p| p.messages, top),
        recipients_by_count: ranked(&recipients, |p| p.messages, top),
        senders_by_size: ranked(&senders, |p| p.bytes, top),
        recipients_by_size: ranked(&recipients, |p| p.bytes, top),
    }
}

fn ranked(parties: &[Party], key: impl Fn(&Party) -> i64, top: usize) -> Vec<Party> {
    let mut list: Vec<Party> = parties
        .iter()
        .map(|p| Party {
            address: p.address.clone(),
            messages: p.messages,
            bytes: p.bytes,
        })
        .collect();
    list.sort_by(|a, b| key(b).cmp(&key(a)).then_with(|| a.address.cmp(&b.address)));
    truncate(&mut list, top);
    list
}

pub fn truncate<T>(list: &mut Vec<T>, top: usize) {
    if top > 0 {
        list.truncate(top);
    }
}
