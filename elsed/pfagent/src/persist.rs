//! snmpd's `pass_persist` protocol (snmpd.conf(5)): `PING` → `PONG`; `get`/`getnext` + OID →
//! OID, type, value or `NONE`; `set` + OID + "TYPE VALUE" → `DONE` or an error word snmpd turns
//! into the SNMP error (`not-writable`, `wrong-type`, `wrong-value`, `commit-failed`).
//!
//! Reads never act: the control objects read as 0 or "". A SET runs its action at once (snmpd
//! passes each SET once) and its result is kept for `lastActionStatus`/`lastActionText`.

use std::io::{BufRead, Write};
use std::time::Instant;

use crate::mib::{self, ActionKind, AGENT_BASE, QUEUES};
use crate::queue::Stats;
use crate::run::Postfix;
use crate::Options;

/// A value as pass_persist spells its type.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Integer(i64),
    Gauge(u64),
    Counter(u64),
    Text(String),
}

impl Value {
    fn answer(&self, oid: &[u32]) -> String {
        let oid = mib::format_oid(oid);
        match self {
            Value::Integer(n) => format!("{oid}\ninteger\n{n}\n"),
            Value::Gauge(n) => format!("{oid}\ngauge\n{}\n", (*n).min(u64::from(u32::MAX))),
            Value::Counter(n) => format!("{oid}\ncounter\n{}\n", n % (1 << 32)),
            Value::Text(s) => format!("{oid}\nstring\n{}\n", s.replace(['\n', '\r'], " ")),
        }
    }
}

/// The agent's state between requests.
pub struct Agent {
    options: Options,
    cache: Option<(Instant, Stats)>,
    /// 0 none yet, 1 done, 2 failed.
    last_status: i64,
    last_text: String,
    actions: u64,
}

impl Agent {
    pub fn new(options: Options) -> Agent {
        Agent {
            options,
            cache: None,
            last_status: 0,
            last_text: String::new(),
            actions: 0,
        }
    }

    /// Answers requests until snmpd closes the pipe.
    pub fn serve(&mut self, input: impl BufRead, mut output: impl Write) -> std::io::Result<()> {
        let mut lines = input.lines();
        while let Some(line) = lines.next() {
            let answer = match line?.trim() {
                "PING" => "PONG\n".to_owned(),
                command @ ("get" | "getnext") => {
                    let oid = lines.next().transpose()?.unwrap_or_default();
                    match mib::parse_oid(&oid) {
                        Some(oid) => self.read(&oid, command == "getnext"),
                        None => "NONE\n".to_owned(),
                    }
                }
                "set" => {
                    let oid = lines.next().transpose()?.unwrap_or_default();
                    let value = lines.next().transpose()?.unwrap_or_default();
                    format!("{}\n", self.set(&oid, &value))
                }
                "" => continue,
                _ => "NONE\n".to_owned(),
            };
            output.write_all(answer.as_bytes())?;
            output.flush()?;
        }
        Ok(())
    }

    /// The statistics, read again when older than the cache time.
    fn stats(&mut self) -> &Stats {
        let fresh = self
            .cache
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < self.options.cache);
        if !fresh {
            self.cache = Some((Instant::now(), Stats::read(&self.options.postfix)));
        }
        &self.cache.as_ref().expect("just filled").1
    }

    /// Every object, in OID order.
    fn objects(&mut self) -> Vec<(Vec<u32>, Value)> {
        let stats = self.stats().clone();
        let mut objects = Vec::new();
        for (i, _) in QUEUES.iter().enumerate() {
            let q = stats.queues[i];
            objects.push((mib::queue_oid(i, mib::COL_COUNT), Value::Gauge(q.count)));
            objects.push((mib::queue_oid(i, mib::COL_BYTES), Value::Gauge(q.bytes)));
            objects.push((mib::queue_oid(i, mib::COL_OLDEST), Value::Gauge(q.oldest)));
        }
        objects.push((
            mib::scalar_oid(mib::MASTER_ALIVE),
            Value::Integer(i64::from(stats.master_alive)),
        ));
        objects.push((
            mib::scalar_oid(mib::STATS_ERROR),
            Value::Text(stats.error.unwrap_or_default()),
        ));
        if let Some(percent) = stats.spool_percent {
            objects.push((mib::scalar_oid(mib::SPOOL_DISK), Value::Gauge(percent)));
        }
        for kind in ActionKind::ALL {
            let idle = if kind.takes_queue_id() {
                Value::Text(String::new())
            } else {
                Value::Integer(0)
            };
            objects.push((kind.oid(), idle));
        }
        objects.push((mib::control_oid(mib::LAST_STATUS), Value::Integer(self.last_status)));
        objects.push((mib::control_oid(mib::LAST_TEXT), Value::Text(self.last_text.clone())));
        objects.push((mib::control_oid(mib::ACTION_COUNT), Value::Counter(self.actions)));
        objects.sort_by(|a, b| a.0.cmp(&b.0));
        objects
    }

    /// `get` (exact match) or `getnext` (the first object after `oid`).
    fn read(&mut self, oid: &[u32], next: bool) -> String {
        if !(oid.starts_with(AGENT_BASE) || next && oid < AGENT_BASE) {
            return "NONE\n".to_owned();
        }
        let objects = self.objects();
        let found = if next {
            objects.iter().find(|(o, _)| o.as_slice() > oid)
        } else {
            objects.iter().find(|(o, _)| o.as_slice() == oid)
        };
        found.map_or_else(|| "NONE\n".to_owned(), |(o, v)| v.answer(o))
    }

    /// A SET: checks the object, the type and the value, then acts; returns the answer word.
    fn set(&mut self, oid: &str, typed_value: &str) -> &'static str {
        let Some(kind) = mib::parse_oid(oid).and_then(|oid| action_of(&oid)) else {
            return "not-writable";
        };
        let (kind_of_value, value) = typed_value.trim().split_once(' ').unwrap_or((typed_value.trim(), ""));
        let queue_id = if kind.takes_queue_id() {
            let text = match kind_of_value {
                "string" => unquote(value),
                "octet" => hex_octets(value),
                _ => return "wrong-type",
            };
            match text {
                Some(id) if mib::valid_queue_id(&id) => Some(id),
                _ => return "wrong-value",
            }
        } else {
            if kind_of_value != "integer" {
                return "wrong-type";
            }
            if value.trim() != "1" {
                return "wrong-value";
            }
            None
        };
        let Some((program, args)) = Postfix::action_args(kind, queue_id.as_deref()) else {
            return "wrong-value";
        };
        let outcome = self.options.postfix.act(program, &args);
        crate::syslog::notice(&self.options.syslog, &outcome.text);
        self.actions += 1;
        self.last_status = if outcome.ok { 1 } else { 2 };
        self.last_text = outcome.text;
        // The queue just changed: the next read counts again.
        self.cache = None;
        if outcome.ok {
            "DONE"
        } else {
            "commit-failed"
        }
    }
}

/// The action whose object is exactly `oid`.
fn action_of(oid: &[u32]) -> Option<ActionKind> {
    ActionKind::ALL.into_iter().find(|kind| kind.oid() == oid)
}

/// `"ABC"` → `ABC` (snmpd quotes printable strings); an unquoted word is taken as is.
fn unquote(value: &str) -> Option<String> {
    let value = value.trim_end_matches(['\r', '\n']);
    match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').map(str::to_owned),
        None => Some(value.to_owned()),
    }
}

/// `"41 42 43"` (how snmpd passes non-printable strings) → the bytes as text, if UTF-8.
fn hex_octets(value: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = value
        .trim()
        .trim_matches('"')
        .split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// An agent whose "Postfix" is `record`, a script that logs its arguments: nothing here
    /// touches a real queue.
    fn agent(dir: &std::path::Path) -> Agent {
        let record = dir.join("record");
        std::fs::write(&record, format!("#!/bin/sh\necho \"$*\" >> {}/ran\n", dir.display())).unwrap();
        std::process::Command::new("chmod")
            .arg("755")
            .arg(&record)
            .status()
            .unwrap();
        let postfix = Postfix::new(&record.display().to_string(), None).unwrap();
        Agent::new(Options {
            postfix,
            cache: Duration::from_secs(60),
            syslog: dir.join("log.sock"),
        })
    }

    fn talk(agent: &mut Agent, input: &str) -> String {
        let mut out = Vec::new();
        agent.serve(input.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn sets_are_checked_then_run_once() {
        let dir = std::env::temp_dir().join(format!("pfagent-persist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut agent = agent(&dir);
        let hold = mib::format_oid(&ActionKind::Hold.oid());
        let flush = mib::format_oid(&ActionKind::Flush.oid());
        let status = mib::format_oid(&mib::control_oid(mib::LAST_STATUS));
        let refused = [
            (format!("set\n{hold}\nstring \"a;b\"\n"), "wrong-value"),
            (format!("set\n{hold}\nstring \"$(reboot)\"\n"), "wrong-value"),
            (format!("set\n{hold}\ninteger 1\n"), "wrong-type"),
            (format!("set\n{flush}\nstring \"1\"\n"), "wrong-type"),
            (format!("set\n{flush}\ninteger 2\n"), "wrong-value"),
            (format!("set\n{status}\ninteger 1\n"), "not-writable"),
            ("set\n.1.3.6.1.2.1.1.4.0\nstring \"x\"\n".to_owned(), "not-writable"),
        ];
        for (input, answer) in refused {
            assert_eq!(talk(&mut agent, &input), format!("{answer}\n"), "{input}");
        }
        assert!(!dir.join("ran").exists(), "nothing ran");
        assert_eq!(
            talk(&mut agent, &format!("set\n{hold}\nstring \"4F1A23B0C5\"\n")),
            "DONE\n"
        );
        assert_eq!(talk(&mut agent, &format!("set\n{flush}\ninteger 1\n")), "DONE\n");
        let ran = std::fs::read_to_string(dir.join("ran")).unwrap();
        assert_eq!(ran, "/usr/sbin/postsuper -h 4F1A23B0C5\n/usr/sbin/postqueue -f\n");
        assert_eq!(
            talk(&mut agent, &format!("get\n{status}\n")),
            format!("{status}\ninteger\n1\n")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn reads_walk_the_tree_in_order_and_never_act() {
        let dir = std::env::temp_dir().join(format!("pfagent-walk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut agent = agent(&dir);
        assert_eq!(talk(&mut agent, "PING\n"), "PONG\n");
        let mut oid = ".1.3.6.1.4.1".to_owned();
        let mut seen = Vec::new();
        loop {
            let answer = talk(&mut agent, &format!("getnext\n{oid}\n"));
            if answer == "NONE\n" {
                break;
            }
            let next = answer.lines().next().unwrap().to_owned();
            assert!(mib::parse_oid(&next) > mib::parse_oid(&oid), "{next} after {oid}");
            seen.push(next.clone());
            oid = next;
        }
        // 4 queues × 3 columns, master, error, 6 triggers, status, text, count; the spool's disk
        // when this machine's Postfix has a configuration to find it in.
        let disk = usize::from(agent.stats().spool_percent.is_some());
        assert_eq!(seen.len(), 12 + 2 + 6 + 3 + disk, "{seen:?}");
        assert_eq!(talk(&mut agent, "get\n.1.3.6.1.2.1.1.1.0\n"), "NONE\n");
        assert!(!dir.join("ran").exists(), "a walk ran something");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
