//! Reading the shared log corpora (`../shared/corpora`): plain, gzip and `.tar.gz` files as text.
//!
//! The corpora are data under their own licences (AGPL, GPL, LGPL …): tests read them where they
//! lie at run time and never copy them into the repository.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The corpora directory, or `None` when it is not there ([`crate::require`]: a failure in CI).
/// `ELSE_CORPORA` names it explicitly (and then only it counts); otherwise [`crate::shared`].
pub fn dir_or_skip() -> Option<PathBuf> {
    match std::env::var_os("ELSE_CORPORA") {
        Some(explicit) => crate::require(
            Some(PathBuf::from(&explicit)).filter(|dir| dir.is_dir()),
            format_args!("no corpora at ELSE_CORPORA={}", explicit.to_string_lossy()),
        ),
        None => crate::shared("corpora"),
    }
}

/// The text of a corpus file, gunzipped when it is gzip (whatever its name); invalid UTF-8 is
/// replaced, as a syslog reader would.
pub fn read_text(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    String::from_utf8_lossy(&gunzip_if_gzip(bytes)).into_owned()
}

/// Every regular file of a `.tar.gz` archive, by its path in the archive, each gunzipped when it
/// is a gzip file itself (logrotate's `mail.log.2.gz`), in archive order.
pub fn tar_gz_texts(path: &Path) -> Vec<(String, String)> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut files = Vec::new();
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().expect("tar path").display().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("tar read");
        let text = String::from_utf8_lossy(&gunzip_if_gzip(bytes)).into_owned();
        files.push((name, text));
    }
    files
}

fn gunzip_if_gzip(bytes: Vec<u8>) -> Vec<u8> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return bytes;
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_end(&mut out)
        .expect("gzip");
    out
}
