//! The shipped nftables table (`packaging/nftables/else-relp.nft`), edited as install.md asks and
//! loaded into the host's firewall with `nft -f` (tests run as root in CI). Its rules only match
//! the ports a test writes into it, and it is deleted when the test ends.

use std::path::Path;
use std::process::Command;

pub const NFT: &str = "/usr/sbin/nft";

/// The shipped table with install.md's edit: each `define NAME = { … }` named in `definitions`
/// set to the values given (ports, addresses), the others as shipped.
pub fn edited_table(definitions: &[(&str, Vec<String>)]) -> String {
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/nftables/else-relp.nft"))
            .expect("the shipped nftables table");
    let mut edited = Vec::new();
    let text: String = shipped
        .lines()
        .map(|line| {
            let definition = definitions
                .iter()
                .find(|(name, _)| line.starts_with(&format!("define {name} = ")));
            match definition {
                Some((name, values)) => {
                    edited.push(*name);
                    format!("define {name} = {{ {} }}\n", values.join(", "))
                }
                None => format!("{line}\n"),
            }
        })
        .collect();
    for (name, _) in definitions {
        assert!(edited.contains(name), "the shipped table defines {name}");
    }
    text
}

/// The loaded table; deleted when dropped, so that the host's firewall is as before.
pub struct Table;

impl Table {
    /// Loads the table in `file` (loading it again replaces it, as install.md says).
    pub fn load(file: &Path) -> Table {
        let out = Command::new(NFT).arg("-f").arg(file).output().expect("run nft");
        assert!(out.status.success(), "nft -f: {}", String::from_utf8_lossy(&out.stderr));
        Table
    }

    /// What `nft list table inet else_relp` prints, counters included.
    pub fn listing(&self) -> String {
        let out = Command::new(NFT)
            .args(["list", "table", "inet", "else_relp"])
            .output()
            .expect("run nft");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The listed rule that contains `marker`, with its counter.
    pub fn rule(&self, marker: &str) -> String {
        let listing = self.listing();
        listing
            .lines()
            .find(|line| line.contains(marker))
            .unwrap_or_else(|| panic!("no rule with {marker}:\n{listing}"))
            .to_owned()
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        let _ = Command::new(NFT)
            .args(["delete", "table", "inet", "else_relp"])
            .status();
    }
}
