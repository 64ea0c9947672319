//! The few calls into libc that the harness needs, each wrapped once so that the rest of the
//! tests crate (and the tests of the other crates) stays free of `unsafe`.

use std::ffi::CString;
use std::path::{Path, PathBuf};

/// Whether this process runs as root.
#[allow(unsafe_code)]
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The kernel's clock ticks per second, the unit of the CPU times in `/proc/PID/stat`.
#[allow(unsafe_code)]
pub fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf takes a plain integer name and has no other preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// The user+system CPU time process `pid` has used, in seconds (0 when it is gone).
pub fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) in parentheses: utime and stime
    // are the 12th and 13th of them, in clock ticks.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<u64>().ok())
        .sum();
    ticks as f64 / clock_ticks_per_second()
}

/// The CPU time of every running process whose command name is `command` (`sshd`), in seconds.
pub fn command_cpu_seconds(command: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == command))
        .map(process_cpu_seconds)
        .sum()
}

/// Sends `signal` (`libc::SIGTERM`, …; 0 only checks) to process `pid`; false when there is no
/// such process (or it may not be signalled).
#[allow(unsafe_code)]
pub fn signal(pid: u32, signal: libc::c_int) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill takes plain integers; a positive pid names one process, never a group.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// The uid and gid of the OS user `name`, when it exists.
#[allow(unsafe_code)]
pub fn user_ids(name: &str) -> Option<(libc::uid_t, libc::gid_t)> {
    let name = CString::new(name).ok()?;
    // SAFETY: `name` is NUL-terminated; getpwnam returns NULL or a pointer to a static record,
    // read at once before any other call could overwrite it.
    unsafe {
        let entry = libc::getpwnam(name.as_ptr());
        (!entry.is_null()).then(|| ((*entry).pw_uid, (*entry).pw_gid))
    }
}

/// A new directory `{template}XXXXXX` (the Xs made unique), mode 0700, as mkdtemp(3) makes it.
#[allow(unsafe_code)]
pub fn make_temp_dir(template: &Path) -> std::io::Result<PathBuf> {
    let mut bytes = template.as_os_str().as_encoded_bytes().to_vec();
    bytes.extend_from_slice(b"XXXXXX");
    let template = CString::new(bytes).map_err(std::io::Error::other)?;
    let raw = template.into_raw();
    // SAFETY: `raw` is a NUL-terminated buffer we own; mkdtemp rewrites the Xs in place.
    let made = unsafe { libc::mkdtemp(raw) };
    // SAFETY: `raw` came from `CString::into_raw` just above, and mkdtemp kept its length.
    let path = unsafe { CString::from_raw(raw) };
    if made.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    Ok(PathBuf::from(path.to_string_lossy().into_owned()))
}

/// Runs `hook` when the process exits normally (statics are never dropped).
#[allow(unsafe_code)]
pub fn at_exit(hook: extern "C" fn()) {
    // SAFETY: registering a plain `extern "C" fn` without arguments, which atexit then calls once.
    unsafe { libc::atexit(hook) };
}

/// Calls `handler` on `signal` (SIGINT, SIGTERM) instead of the default action. The handler must
/// be async-signal-safe: set an atomic flag, nothing more.
#[allow(unsafe_code)]
pub fn on_signal(signal: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: `handler` is a plain `extern "C" fn(c_int)`, the signature signal(2) expects; the
    // caller promises it is async-signal-safe.
    unsafe { libc::signal(signal, handler as *const () as libc::sighandler_t) };
}

/// CPU seconds (user + system) of this process's children that ended and were waited for.
#[allow(unsafe_code)]
pub fn children_cpu_seconds() -> f64 {
    // SAFETY: rusage is plain data, valid when zeroed; getrusage fills the one we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_zero_tells_a_live_process_from_a_gone_one() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        assert!(signal(child.id(), 0));
        assert!(signal(child.id(), libc::SIGTERM));
        child.wait().unwrap();
        assert!(!signal(child.id(), 0));
    }

    #[test]
    fn temp_dirs_are_new_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let template = std::env::temp_dir().join("else-sys-test-");
        let (a, b) = (make_temp_dir(&template).unwrap(), make_temp_dir(&template).unwrap());
        assert_ne!(a, b);
        assert!(a.to_string_lossy().starts_with(&*template.to_string_lossy()));
        assert_eq!(std::fs::metadata(&a).unwrap().permissions().mode() & 0o777, 0o700);
        std::fs::remove_dir(a).unwrap();
        std::fs::remove_dir(b).unwrap();
    }

    #[test]
    fn root_has_uid_zero() {
        assert_eq!(user_ids("root"), Some((0, 0)));
        assert_eq!(user_ids("no-such-user-here"), None);
    }
}
