//! What a test needs from the machine (the corpora, the GeoIP database, a Debian tool, root), and
//! the one rule for when it is not there: in CI (`CI=true`), where `make test` has installed
//! everything, the test **fails** with what is missing; elsewhere it prints `skipped: …` and the
//! caller returns, so a developer without Postfix can still run the rest. A test never passes by
//! returning early in CI.

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// Whether this run is CI's: `CI` set to `true` or `1`, as CI services set it.
pub fn in_ci() -> bool {
    ci_says(std::env::var("CI").ok().as_deref())
}

fn ci_says(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Says that the test lacks `what` (a sentence naming the thing and how to get it): panics in
/// CI; elsewhere prints `skipped: {what}`, and the caller returns.
pub fn missing(what: impl Display) {
    missing_in(in_ci(), what)
}

fn missing_in(ci: bool, what: impl Display) {
    if ci {
        panic!("missing in CI (CI=true), where every test must run: {what}");
    }
    println!("skipped: {what}");
}

/// `found`, or `None` after [`missing`]`(what)`.
pub fn require<T>(found: Option<T>, what: impl Display) -> Option<T> {
    if found.is_none() {
        missing(what);
    }
    found
}

/// True when `available`, else false after [`missing`]`(what)`.
pub fn require_that(available: bool, what: impl Display) -> bool {
    require(available.then_some(()), what).is_some()
}

/// The file of a Debian package a test runs (`/usr/sbin/snmpd` of `snmpd`), when installed.
pub fn tool(path: &str, package: &str) -> Option<PathBuf> {
    require(
        Path::new(path).exists().then(|| PathBuf::from(path)),
        format_args!("{path} not found (Debian package {package}; scripts/setup-debian.sh installs it)"),
    )
}

/// True when running as root (a private Postfix, snmpd, network namespaces), else `missing`.
pub fn root(why: &str) -> bool {
    require_that(crate::sys::is_root(), format_args!("needs root ({why})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panic_text(run: impl FnOnce() + std::panic::UnwindSafe) -> Option<String> {
        let payload = std::panic::catch_unwind(run).err()?;
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
    }

    #[test]
    fn in_ci_a_missing_need_fails_the_test_and_names_it() {
        let text = panic_text(|| missing_in(true, "/usr/sbin/snmpd not found (Debian package snmpd)"));
        let text = text.expect("a missing need panics in CI");
        assert!(text.contains("CI=true"), "{text}");
        assert!(
            text.contains("/usr/sbin/snmpd not found (Debian package snmpd)"),
            "{text}"
        );
    }

    #[test]
    fn outside_ci_a_missing_need_skips() {
        assert_eq!(panic_text(|| missing_in(false, "the corpora")), None);
    }

    #[test]
    fn ci_is_true_or_1() {
        assert!(ci_says(Some("true")) && ci_says(Some("TRUE")) && ci_says(Some("1")));
        assert!(!ci_says(None) && !ci_says(Some("")) && !ci_says(Some("false")) && !ci_says(Some("0")));
    }

    #[test]
    fn what_is_there_is_returned() {
        assert_eq!(require(Some(7), "seven"), Some(7));
        assert!(require_that(true, "truth"));
        assert_eq!(tool("/bin/sh", "dash"), Some(PathBuf::from("/bin/sh")));
    }
}
