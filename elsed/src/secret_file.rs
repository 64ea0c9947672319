//! Files that hold secrets — the SNMP credentials key, TLS private keys, password files — under
//! one rule, documented in docs/install.md: a secret file belongs to the user that reads it and
//! only that user may read it (mode 0600). For what the services read that is `else:else 0600`;
//! a password file handed to one command belongs to the user running it. Each is checked before
//! it is read, and a refusal says the exact `chown`/`chmod` that fixes it.
//!
//! Standard input stands for a file where a password is asked for (`-` or `/dev/stdin`): it is
//! read from the descriptor itself, so `sudo -u postgres elsed setup … < /root/password` works
//! although `postgres` may not open `/root/password`.

use std::io::BufRead;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The OS user and group the services run as (the packages create them).
pub const SERVICE_USER: &str = "else";

/// A user of the password database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// The entry of `name` in `/etc/passwd` (system users live there; no NSS lookup needed).
pub fn system_user(name: &str) -> Option<SystemUser> {
    users().into_iter().find(|u| u.name == name)
}

fn users() -> Vec<SystemUser> {
    let text = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            Some(SystemUser {
                name: (*fields.first()?).to_owned(),
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

/// The name of a uid, else the number.
pub fn user_name(uid: u32) -> String {
    users()
        .into_iter()
        .find(|u| u.uid == uid)
        .map_or_else(|| uid.to_string(), |u| u.name)
}

/// The name of a gid (from `/etc/group`), else the number.
fn group_name(gid: u32) -> String {
    let text = std::fs::read_to_string("/etc/group").unwrap_or_default();
    text.lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.get(2)?.parse::<u32>().ok()? == gid).then(|| fields[0].to_owned())
        })
        .unwrap_or_else(|| gid.to_string())
}

/// The effective uid of this process (the owner of `/proc/self`).
pub fn effective_uid() -> u32 {
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

/// Who a secret file must belong to, for the message: the service user where it exists, else
/// the user running this command (a development machine without the package).
fn expected_owner() -> String {
    match system_user(SERVICE_USER) {
        Some(user) => format!("{0}:{0}", user.name),
        None => {
            let uid = effective_uid();
            format!(
                "{}:{}",
                user_name(uid),
                group_name(std::fs::metadata("/proc/self").map_or(0, |m| m.gid()))
            )
        }
    }
}

/// Checks the rule: mode 0600 or stricter, owned by the service user or by the user running this
/// command. `what` names the file in messages ("SNMP key file").
pub fn check(path: &Path, what: &str) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))?;
    let mode = meta.mode() & 0o777;
    let service_uid = system_user(SERVICE_USER).map(|u| u.uid);
    let owner_ok = meta.uid() == effective_uid() || Some(meta.uid()) == service_uid;
    if mode & 0o077 != 0 || !owner_ok {
        anyhow::bail!(
            "{what} {path} is {owner}:{group} mode {mode:04o}; a secret must be {expected} mode 0600 \
             (`chown {expected} {path} && chmod 600 {path}`)",
            path = path.display(),
            owner = user_name(meta.uid()),
            group = group_name(meta.gid()),
            expected = expected_owner(),
        );
    }
    Ok(())
}

/// The text of a secret file, checked first; an unreadable file says whose it must be.
pub fn read(path: &Path, what: &str) -> anyhow::Result<String> {
    check(path, what)?;
    std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "{what} {}: {e} (run as {}; a secret must be {} mode 0600)",
            path.display(),
            user_name(effective_uid()),
            expected_owner()
        )
    })
}

/// Whether `path` means standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-" || path == Path::new("/dev/stdin")
}

/// The first line of a password file (or of standard input), which must not be empty.
pub fn read_password(path: &Path, what: &str) -> anyhow::Result<String> {
    let text = if is_stdin(path) {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line
    } else {
        read(path, what)?
    };
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r').to_owned();
    anyhow::ensure!(
        !line.is_empty(),
        "{what} {}: the first line (the password) is empty",
        path.display()
    );
    Ok(line)
}

/// Creates a new secret file with `contents` (never overwrites): mode 0600, and when root runs
/// this and the service user exists, owned by it (`else:else`). Returns the owner it has.
pub fn create(path: &Path, contents: &[u8]) -> anyhow::Result<String> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW) // a planted symbolic link is refused
        .open(path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    if effective_uid() == 0 {
        if let Some(user) = system_user(SERVICE_USER) {
            std::os::unix::fs::fchown(&file, Some(user.uid), Some(user.gid))
                .map_err(|e| anyhow::anyhow!("{}: chown {SERVICE_USER}: {e}", path.display()))?;
        }
    }
    let meta = file.metadata()?;
    Ok(format!("{}:{}", user_name(meta.uid()), group_name(meta.gid())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_secret_is_the_readers_alone_and_a_refusal_says_the_fix() {
        let dir = std::env::temp_dir().join(format!("else-secret-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        create(&path, b"first line\nsecond\n").unwrap();
        assert!(create(&path, b"again").is_err(), "never overwrites");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(read_password(&path, "password file").unwrap(), "first line");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let refusal = read(&path, "SNMP key file").unwrap_err().to_string();
        assert!(refusal.contains("mode 0640"), "{refusal}");
        assert!(
            refusal.contains(&format!("chmod 600 {}", path.display())) && refusal.contains("chown "),
            "{refusal}"
        );

        let link = dir.join("link");
        std::os::unix::fs::symlink(dir.join("elsewhere"), &link).unwrap();
        assert!(create(&link, b"x").is_err(), "a planted link is not followed");
        assert!(!dir.join("elsewhere").exists());

        let empty = dir.join("empty");
        create(&empty, b"\n").unwrap();
        assert!(read_password(&empty, "password file")
            .unwrap_err()
            .to_string()
            .contains("empty"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
