//! Throwaway check: parses the `data` of postfix-grok-patterns' all_cases.jsonl with the daemon its
//! pattern names and prints the event as JSON next to grok's results.

use std::io::BufRead;

use omelse::parse::{parse_message, Program};

fn main() {
    let path = std::env::args().nth(1).expect("all_cases.jsonl");
    for line in std::io::BufReader::new(std::fs::File::open(path).expect("open")).lines() {
        let case: serde_json::Value = serde_json::from_str(&line.expect("read")).expect("json");
        let pattern = case["pattern"].as_str().unwrap_or("");
        let Some(name) = pattern
            .strip_prefix("^%{POSTFIX_")
            .and_then(|p| p.split_once('}'))
            .map(|(n, _)| n)
        else {
            continue;
        };
        let daemon = match name {
            "SCRIPT" => "postfix-script".to_string(),
            other => other.to_ascii_lowercase().replace('_', "-"),
        };
        let program = format!("postfix/{daemon}");
        let data = case["data"].as_str().unwrap_or("");
        let event = parse_message(&Program::split(&program), data);
        println!(
            "{daemon}\t{data}\n\t{}\n\t{}",
            serde_json::to_string(&event).unwrap(),
            case["results"]
        );
    }
}
