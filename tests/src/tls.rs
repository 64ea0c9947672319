//! Test certificates made with `openssl`: a private CA and leaf certificates signed by it, each
//! with its name as CN and subjectAltName, for RELP and PostgreSQL over TLS.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl (make test installs it)");
    assert!(status.success(), "openssl {args:?}");
}

/// Makes `dir` with `ca.pem`/`ca.key` (a CA named `ca_name`) and, for each `(file, host)`,
/// `file.pem`/`file.key` for `host` signed by that CA. Returns `dir`.
pub fn certificates(dir: &Path, ca_name: &str, leaves: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("certificate directory");
    let ca_subject = format!("/CN={ca_name}");
    let new_key = ["req", "-newkey", "rsa:2048", "-nodes", "-days", "2"];
    let ca: Vec<&str> = ["req", "-x509"]
        .iter()
        .chain(&new_key[1..])
        .copied()
        .chain(["-subj", &ca_subject, "-keyout", "ca.key", "-out", "ca.pem"])
        .collect();
    openssl(dir, &ca);
    for (file, host) in leaves {
        let (key, csr, pem, ext) = (
            format!("{file}.key"),
            format!("{file}.csr"),
            format!("{file}.pem"),
            format!("{file}.ext"),
        );
        let subject = format!("/CN={host}");
        let request: Vec<&str> = new_key
            .iter()
            .copied()
            .chain(["-subj", &subject, "-keyout", &key, "-out", &csr])
            .collect();
        openssl(dir, &request);
        std::fs::write(dir.join(&ext), format!("subjectAltName=DNS:{host}\n")).expect("extension file");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &pem,
            ],
        );
    }
    dir.to_owned()
}
