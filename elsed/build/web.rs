//! Builds the browser application (`web/`, npm + Vite) that elsed embeds, so that a plain
//! `cargo build` on a fresh clone gives a binary with the UI inside.
//!
//! - `ELSE_WEB_DIST=/path/to/dist` embeds an already built application (packaging, no Node.js).
//! - Otherwise: `npm ci` when `web/node_modules` is missing or older than `package-lock.json`, then
//!   `npm run build` into `web/dist` unless it is newer than every source. Cargo reruns this only
//!   when the web sources change.
//!
//! The folder to embed reaches `elsed/src/web/assets.rs` as the `ELSE_WEB_DIST` compile-time variable.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What cargo reruns the web build for (relative to `web/`).
const INPUTS: &[&str] = &[
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
    "dist/index.html",
];

pub fn build() {
    println!("cargo:rerun-if-env-changed=ELSE_WEB_DIST");
    if let Some(dist) = std::env::var_os("ELSE_WEB_DIST").filter(|v| !v.is_empty()) {
        let dist = PathBuf::from(dist);
        if !dist.join("index.html").is_file() {
            fail(&format!(
                "ELSE_WEB_DIST={} has no index.html: point it at a built web/dist",
                dist.display()
            ));
        }
        println!("cargo:rerun-if-changed={}", dist.display());
        embed(&dist);
        return;
    }

    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let web = manifest.join("../web");
    let web = web.canonicalize().unwrap_or(web);
    for input in INPUTS {
        println!("cargo:rerun-if-changed={}", web.join(input).display());
    }
    if !web.join("package.json").is_file() {
        fail(&format!(
            "{} has no package.json: the web application's sources are missing",
            web.display()
        ));
    }
    check_node();
    if needs_install(&web) {
        npm(&web, &["ci", "--no-audit", "--no-fund"]);
    }
    let dist = web.join("dist");
    if !dist_is_current(&web) {
        npm(&web, &["run", "build"]);
    }
    if !dist.join("index.html").is_file() {
        fail(&format!(
            "`npm run build` left no {}",
            dist.join("index.html").display()
        ));
    }
    embed(&dist);
}

/// Vite 8 needs Node.js 20.19 or newer; say so plainly rather than through a bundler's stack trace.
fn check_node() {
    let version = Command::new("node").arg("--version").output();
    let version = match version {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => fail(
            "cannot run node. elsed embeds the browser application of web/, built with Node.js (>= 20.19) \
             and npm: run scripts/setup-debian.sh, or set ELSE_WEB_DIST to an already built web/dist",
        ),
    };
    let mut parts = version
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (20, 19) {
        fail(&format!(
            "Node.js {version} is too old to build web/ (Vite needs >= 20.19); install a newer nodejs, or \
             set ELSE_WEB_DIST to an already built web/dist"
        ));
    }
}

/// `web/dist` was built after every source last changed. Then it is not rebuilt: `cargo build`
/// and `cargo test` run this script as two units, and a rebuild by one would make the other's
/// elsed stale, so every build would recompile elsed again.
fn dist_is_current(web: &Path) -> bool {
    let Some(built) = modified(&web.join("dist/index.html")) else {
        return false;
    };
    INPUTS
        .iter()
        .filter(|input| !input.starts_with("dist/"))
        .all(|input| newest_change(&web.join(input)).is_some_and(|changed| changed < built))
}

/// The latest modification time of a file, or of any file under a folder.
fn newest_change(path: &Path) -> Option<std::time::SystemTime> {
    let own = modified(path)?;
    let Ok(entries) = std::fs::read_dir(path) else {
        return Some(own);
    };
    entries
        .flatten()
        .map(|entry| newest_change(&entry.path()))
        .try_fold(own, |newest, changed| Some(newest.max(changed?)))
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// `node_modules` is missing, or older than the lockfile (a dependency changed since `npm ci`).
fn needs_install(web: &Path) -> bool {
    let installed = web.join("node_modules/.package-lock.json");
    match (modified(&installed), modified(&web.join("package-lock.json"))) {
        (Some(installed), Some(lock)) => installed < lock,
        _ => true,
    }
}

fn npm(web: &Path, args: &[&str]) {
    let status = Command::new("npm").args(args).current_dir(web).status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => fail(&format!(
            "`npm {}` in {} failed ({status}); its output is above",
            args.join(" "),
            web.display()
        )),
        Err(e) => fail(&format!(
            "cannot run npm ({e}). elsed embeds the browser application of web/, built with Node.js (>= 18) \
             and npm: run scripts/setup-debian.sh (installs nodejs and npm), or set ELSE_WEB_DIST to an \
             already built web/dist"
        )),
    }
}

fn embed(dist: &Path) {
    let dist = dist.canonicalize().unwrap_or_else(|_| dist.to_path_buf());
    println!("cargo:rustc-env=ELSE_WEB_DIST={}", dist.display());
}

fn fail(message: &str) -> ! {
    // cargo shows a build script's stderr when it fails; `cargo:warning` puts the reason on top.
    println!("cargo:warning=web application: {message}");
    eprintln!("error: web application: {message}");
    std::process::exit(1);
}
