//! What a mail administrator compares between two databases fed the same log: every message and
//! every recipient, by host and queue id; and the reference to compare with, the same lines
//! through `elsed import` (one reader, in log order).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Every message and every recipient of the database, one line each, sorted.
pub fn message_records(url: &str) -> (Vec<String>, Vec<String>) {
    let messages = texts(
        url,
        "SELECT concat_ws('|', s.name, m.queue_id, m.started_at, m.sender, m.size, m.message_id, m.client_ip, m.state, m.flow)
         FROM messages m JOIN servers s ON s.id = m.server_id ORDER BY 1",
    );
    let recipients = texts(
        url,
        "SELECT concat_ws('|', s.name, m.queue_id, r.address, r.status, r.dsn, r.relay, r.attempts)
         FROM recipients r JOIN messages m ON m.uid = r.message_uid AND m.started_at = r.message_started_at
         JOIN servers s ON s.id = m.server_id ORDER BY 1",
    );
    (messages, recipients)
}

/// Every stored line, one text each, sorted: its time, host, key, program, pid, kind and text, not
/// what it was correlated into (message and session ids). Equal for two databases when each line
/// is there once under the same key.
pub fn stored_lines(url: &str) -> Vec<String> {
    texts(
        url,
        "SELECT concat_ws('|', e.ts, s.name, e.line_key, e.program, e.pid, e.kind, e.raw)
         FROM log_events e JOIN servers s ON s.id = e.server_id ORDER BY 1",
    )
}

/// The first column of every row `sql` returns, as text.
fn texts(url: &str, sql: &str) -> Vec<String> {
    crate::block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
            .query(sql, &[])
            .await
            .expect("records")
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect()
    })
}

/// Imports `lines` (syslog lines without `<PRI>`) into `url` with `elsed import`, through a file
/// in `dir`.
pub fn elsed_import(url: &str, lines: &[String], dir: &Path) {
    let file = dir.join("import.log");
    std::fs::write(&file, lines.join("\n") + "\n").expect("write the lines to import");
    let output = Command::new(crate::rsyslogd::elsed_binary())
        .args(["import", "--force", "--database-url", url])
        .arg(&file)
        .env("ELSE_CONFIG", "/dev/null")
        .output()
        .expect("run elsed import");
    assert!(
        output.status.success(),
        "elsed import: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The records that differ between two databases: how many on each side, and a few of them, for
/// an assertion message.
pub fn differences(left: &[String], right: &[String]) -> String {
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        let b: std::collections::HashSet<&String> = b.iter().collect();
        a.iter().filter(|r| !b.contains(r)).cloned().collect()
    };
    let (only_left, only_right) = (only(left, right), only(right, left));
    format!(
        "{} vs {} rows, {} only left, {} only right; only left: {:#?}; only right: {:#?}",
        left.len(),
        right.len(),
        only_left.len(),
        only_right.len(),
        &only_left[..only_left.len().min(5)],
        &only_right[..only_right.len().min(5)]
    )
}

/// Every table of the database (partitioned ones as a whole) with all its rows as text, sorted.
/// A server is named, not numbered, wherever a row refers to one (`servers.id`, `server_id`,
/// `from_server_id`, shown as JSON with the name in the id's place): its id is the database's own
/// numbering (the hosts new in one transaction, in name order), which depends on where batches
/// ended, so two paths of the same lines need not share it.
pub fn tables(url: &str) -> BTreeMap<String, Vec<String>> {
    crate::block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        let names = client
            .query(
                "SELECT c.relname,
                        coalesce(array_agg(a.attname::text ORDER BY a.attnum)
                                 FILTER (WHERE a.attname = 'server_id' OR a.attname LIKE '%\\_server\\_id'
                                         OR (c.relname = 'servers' AND a.attname = 'id')), '{}')
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                 GROUP BY c.relname ORDER BY 1",
                &[],
            )
            .await
            .expect("table names");
        let mut tables = BTreeMap::new();
        for row in names {
            let (name, servers): (String, Vec<String>) = (row.get(0), row.get(1));
            let row_text = if servers.is_empty() {
                "t::text".to_owned()
            } else {
                let named: Vec<String> = servers
                    .iter()
                    .map(|column| format!("'{column}', (SELECT s.name FROM servers s WHERE s.id = t.\"{column}\")"))
                    .collect();
                format!("(to_jsonb(t) || jsonb_build_object({}))::text", named.join(", "))
            };
            let rows = client
                .query(&format!("SELECT {row_text} FROM \"{name}\" t ORDER BY 1"), &[])
                .await
                .expect("table rows");
            tables.insert(name, rows.iter().map(|r| r.get(0)).collect());
        }
        tables
    })
}
