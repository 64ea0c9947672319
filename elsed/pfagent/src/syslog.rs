//! One line to the local syslog per action run, so that the Postfix host keeps its own record of
//! what was done to its queue (ELSE's audit_log is the other side's). RFC 3164 framing on the
//! local socket, as syslog(3) does; a missing socket only loses the line.

use std::os::unix::net::UnixDatagram;
use std::path::Path;

/// `daemon.notice`: facility 3, severity 5.
const PRIORITY: u8 = 3 * 8 + 5;

pub fn notice(socket: &Path, text: &str) {
    let line = format!(
        "<{PRIORITY}>else-pfagent[{}]: {}",
        std::process::id(),
        text.replace('\n', " ")
    );
    if let Ok(sock) = UnixDatagram::unbound() {
        let _ = sock.send_to(line.as_bytes(), socket);
    }
}
