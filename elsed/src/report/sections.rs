//! The report as titled tables, in pflogsumm's order: what the text and HTML formats both draw, so
//! the two cannot disagree.

use super::Report;

pub struct Table {
    pub title: String,
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    /// Columns aligned to the right (numbers).
    pub numeric: Vec<bool>,
}

impl Table {
    fn new(title: impl Into<String>, header: &[&'static str], numeric: &[bool]) -> Table {
        Table {
            title: title.into(),
            header: header.to_vec(),
            rows: Vec::new(),
            numeric: numeric.to_vec(),
        }
    }
}

/// `1234567` → `1205k`, as pflogsumm prints counts and bytes (k above 512k, m above 512m).
pub fn units(value: i64) -> String {
    if value > 536_870_912 {
        format!("{}m", value / 1_048_576)
    } else if value > 524_288 {
        format!("{}k", value / 1024)
    } else {
        value.to_string()
    }
}

/// Seconds as pflogsumm prints delays: `12.3 s`, `4.5 m`, `1.2 h`.
fn delay(seconds: f64) -> String {
    if seconds > 3600.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else if seconds > 60.0 {
        format!("{:.1} m", seconds / 60.0)
    } else {
        format!("{seconds:.1} s")
    }
}

fn hms(seconds: f64) -> String {
    let s = seconds.round() as i64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

pub fn tables(report: &Report) -> Vec<Table> {
    let t = &report.grand_totals;
    let mut tables = Vec::new();
    let mut totals = Table::new("Grand Totals", &["", ""], &[true, false]);
    let deferred = if t.deferrals > 0 {
        format!("deferred ({} deferrals)", units(t.deferrals))
    } else {
        "deferred".to_owned()
    };
    for (value, what) in [
        (t.received, "received".to_owned()),
        (t.delivered, "delivered".to_owned()),
        (t.forwarded, "forwarded".to_owned()),
        (t.deferred, deferred),
        (t.bounced, "bounced".to_owned()),
        (t.rejected, format!("rejected ({}%)", t.rejected_percent)),
        (t.reject_warnings, "reject warnings".to_owned()),
        (t.held, "held".to_owned()),
        (t.discarded, format!("discarded ({}%)", t.discarded_percent)),
        (t.bytes_received, "bytes received".to_owned()),
        (t.bytes_delivered, "bytes delivered".to_owned()),
        (t.senders, "senders".to_owned()),
        (t.sending_domains, "sending hosts/domains".to_owned()),
        (t.recipients, "recipients".to_owned()),
        (t.recipient_domains, "recipient hosts/domains".to_owned()),
    ] {
        totals.rows.push(vec![units(value), what]);
    }
    let hops = &report.filter_hops;
    if hops.reinjected + hops.handed_to_filter > 0 {
        totals.rows.push(vec![
            units(hops.handed_to_filter),
            format!(
                "content-filter hops, not counted above ({} re-injected, {} bytes)",
                units(hops.reinjected),
                units(hops.bytes_reinjected)
            ),
        ]);
    }
    tables.push(totals);

    let traffic_header = ["", "received", "delivered", "deferred", "bounced", "rejected"];
    let traffic_numeric = [false, true, true, true, true, true];
    let mut per_day = Table::new("Per-Day Traffic Summary", &traffic_header, &traffic_numeric);
    per_day.header[0] = "date";
    for day in &report.traffic.days {
        let c = &day.counts;
        per_day.rows.push(
            [day.date.clone()]
                .into_iter()
                .chain([c.received, c.delivered, c.deferred, c.bounced, c.rejected].map(units))
                .collect(),
        );
    }
    tables.push(per_day);
    let days = report.traffic.days.len().max(1) as f64;
    let title = if days > 1.0 {
        "Per-Hour Traffic Daily Average"
    } else {
        "Per-Hour Traffic Summary"
    };
    let mut per_hour = Table::new(title, &traffic_header, &traffic_numeric);
    per_hour.header[0] = "time";
    for hour in &report.traffic.hours {
        let c = &hour.counts;
        let average = |v: i64| format!("{}", (v as f64 / days + 0.5) as i64);
        per_hour.rows.push(
            [format!("{:02}00-{:02}00", hour.hour, hour.hour + 1)]
                .into_iter()
                .chain([c.received, c.delivered, c.deferred, c.bounced, c.rejected].map(average))
                .collect(),
        );
    }
    tables.push(per_hour);

    let s = &report.summaries;
    let mut delivery = Table::new(
        "Host/Domain Summary: Message Delivery",
        &["sent cnt", "bytes", "defers", "avg dly", "max dly", "host/domain"],
        &[true, true, true, true, true, false],
    );
    for d in &s.delivery_domains {
        delivery.rows.push(vec![
            units(d.sent),
            units(d.bytes),
            units(d.deferrals),
            delay(d.average_delay),
            delay(d.max_delay),
            d.domain.clone(),
        ]);
    }
    tables.push(delivery);
    let mut reception = Table::new(
        "Host/Domain Summary: Messages Received",
        &["msg cnt", "bytes", "host/domain"],
        &[true, true, false],
    );
    for d in &s.received_domains {
        reception
            .rows
            .push(vec![units(d.messages), units(d.bytes), d.domain.clone()]);
    }
    tables.push(reception);
    for (title, list, by_size) in [
        ("Senders by message count", &s.senders_by_count, false),
        ("Recipients by message count", &s.recipients_by_count, false),
        ("Senders by message size", &s.senders_by_size, true),
        ("Recipients by message size", &s.recipients_by_size, true),
    ] {
        let mut table = Table::new(
            title,
            &[if by_size { "bytes" } else { "messages" }, "address"],
            &[true, false],
        );
        for p in list {
            table.rows.push(vec![
                units(if by_size { p.bytes } else { p.messages }),
                p.address.clone(),
            ]);
        }
        tables.push(table);
    }

    let p = &report.problems;
    for (title, list, by) in [
        ("Message deferral detail", &p.deferrals, "agent"),
        ("Message bounce detail (by relay)", &p.bounces, "relay"),
    ] {
        let mut table = Table::new(title, &["count", by, "reason"], &[true, false, false]);
        for f in list {
            table.rows.push(vec![units(f.count), f.by.clone(), f.reason.clone()]);
        }
        tables.push(table);
    }
    let mut refusals = Table::new(
        "Message reject, warning, hold and discard detail",
        &["count", "action", "stage", "code", "reason"],
        &[true, false, false, true, false],
    );
    for r in &p.refusals {
        refusals.rows.push(vec![
            units(r.count),
            r.action.clone(),
            r.stage.clone(),
            r.code.map(|c| c.to_string()).unwrap_or_default(),
            r.reason.clone(),
        ]);
    }
    tables.push(refusals);

    let c = &report.smtpd;
    let mut smtpd = Table::new("SMTPD connections", &["", ""], &[true, false]);
    let average = if c.total.connections > 0 {
        c.total.total_seconds / c.total.connections as f64
    } else {
        0.0
    };
    smtpd
        .rows
        .push(vec![units(c.total.connections), "connections".to_owned()]);
    smtpd.rows.push(vec![units(c.hosts), "hosts/domains".to_owned()]);
    smtpd
        .rows
        .push(vec![format!("{average:.0}"), "avg. connect time (seconds)".to_owned()]);
    smtpd
        .rows
        .push(vec![hms(c.total.total_seconds), "total connect time".to_owned()]);
    tables.push(smtpd);
    for (title, list, key) in [
        ("Per-Day SMTPD Connection Summary", &c.per_day, "date"),
        ("Per-Hour SMTPD Connection Summary", &c.per_hour, "hour"),
        ("Host/Domain Summary: SMTPD Connections", &c.per_domain, "host/domain"),
    ] {
        let mut table = Table::new(
            title,
            &[key, "connections", "time conn.", "avg./conn.", "max. time"],
            &[false, true, true, true, true],
        );
        for k in list {
            let n = k.connections.connections.max(1) as f64;
            table.rows.push(vec![
                k.key.clone(),
                units(k.connections.connections),
                hms(k.connections.total_seconds),
                format!("{:.0}s", k.connections.total_seconds / n),
                format!("{:.0}s", k.connections.max_seconds),
            ]);
        }
        tables.push(table);
    }

    let mut diagnostics = Table::new(
        "Warnings, fatal errors and panics",
        &["count", "severity", "daemon", "text"],
        &[true, false, false, false],
    );
    for d in &report.diagnostics {
        diagnostics.rows.push(vec![
            units(d.count),
            d.severity.clone(),
            d.daemon.clone(),
            d.text.clone(),
        ]);
    }
    tables.push(diagnostics);
    tables
}
