//! The listeners: TCP and unix sockets, one task per smtpd connection, connections kept open
//! for as many requests as smtpd sends (pipelined ones included). Slow, idle, over-long or
//! malformed clients are disconnected without a reply, as the protocol asks.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;

use super::policy::{ConnState, Policy};
use super::protocol::{format_reply, read_request, Limits, ProtocolError};
use crate::allow_list::AllowList;
use crate::per_key::{Held, PerKeyLimit};

/// A bound listening socket.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds `inet:HOST:PORT`, `HOST:PORT` or `unix:PATH`. A stale unix socket file is replaced (a
    /// live one is an error) and given `mode` (smtpd runs as another user).
    pub async fn bind(spec: &str, mode: u32) -> io::Result<Listener> {
        if let Some(path) = spec.strip_prefix("unix:") {
            let path = PathBuf::from(path);
            // A socket someone still answers on is in use: do not steal it.
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is served by another process", path.display()),
                ));
            }
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let listener = UnixListener::bind(&path)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
            return Ok(Listener::Unix(listener, path));
        }
        let addr = spec.strip_prefix("inet:").unwrap_or(spec);
        Ok(Listener::Tcp(TcpListener::bind(addr).await?))
    }

    /// The address, for logs and tests (`127.0.0.1:10023`, `unix:/path`).
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| "tcp".into()),
            Listener::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }
}

/// Who may hold a connection: the allowed TCP clients, each within its own share of the slots.
struct Admission {
    slots: Arc<Semaphore>,
    allowed: AllowList,
    per_client: Arc<PerKeyLimit<IpAddr>>,
}

impl Admission {
    /// A place for one more connection of `ip`, or why not (for the log).
    fn admit(&self, ip: IpAddr) -> Result<Held<IpAddr>, &'static str> {
        if !self.allowed.allows(ip) {
            return Err("not in greylist.allowed_clients");
        }
        self.per_client
            .claim(ip)
            .ok_or("greylist.max_connections_per_client reached")
    }
}

/// Serves every listener until one fails to accept (never, in practice).
pub async fn run(policy: Arc<Policy>, listeners: Vec<Listener>) -> io::Result<()> {
    let cfg = policy.config();
    let admission = Arc::new(Admission {
        slots: Arc::new(Semaphore::new(cfg.max_connections.max(1))),
        allowed: cfg
            .allowed()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("greylist.allowed_clients: {e}")))?,
        per_client: PerKeyLimit::new(cfg.max_connections_per_client),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        tracing::info!("greylist: listening on {}", listener.describe());
        tasks.spawn(accept_loop(listener, policy.clone(), admission.clone()));
    }
    while let Some(result) = tasks.join_next().await {
        result.map_err(io::Error::other)??;
    }
    Ok(())
}

async fn accept_loop(listener: Listener, policy: Arc<Policy>, admission: Arc<Admission>) -> io::Result<()> {
    loop {
        let accepted = match &listener {
            Listener::Tcp(l) => l.accept().await.map(|(s, peer)| {
                let _ = s.set_nodelay(true);
                (Box::new(s) as Box<dyn Stream>, Some(peer.ip().to_canonical()))
            }),
            Listener::Unix(l, _) => l.accept().await.map(|(s, _)| (Box::new(s) as Box<dyn Stream>, None)),
        };
        let (stream, peer) = match accepted {
            Ok(stream) => stream,
            Err(e) => {
                // Out of descriptors and the like: wait a little rather than spin.
                tracing::warn!("greylist: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Closing at once is the only refusal the policy protocol has; smtpd logs it and
        // answers as `default_action` of its policy client says.
        let client_slot = match peer.map(|ip| admission.admit(ip)).transpose() {
            Ok(slot) => slot,
            Err(why) => {
                policy.counters.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(peer = ?peer, "greylist: connection refused: {why}");
                continue;
            }
        };
        let Ok(permit) = admission.slots.clone().try_acquire_owned() else {
            policy.counters.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("greylist: too many connections, closing a new one");
            continue;
        };
        let policy = policy.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, &policy).await {
                tracing::warn!("greylist: closing connection without reply: {e}");
            }
            drop((permit, client_slot));
        });
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Serves one connection until the client closes it or breaks the protocol.
async fn handle<S: AsyncRead + AsyncWrite + Unpin>(stream: S, policy: &Policy) -> Result<(), ProtocolError> {
    let cfg = policy.config();
    let limits = Limits {
        max_line_bytes: cfg.max_line_bytes,
        max_attributes: cfg.max_attributes,
        idle: Duration::from_secs(cfg.idle_timeout_secs),
        request: Duration::from_millis(cfg.request_timeout_ms),
    };
    let (reader, mut writer) = tokio::io::split(stream);
    let mut reader = BufReader::with_capacity(16 * 1024, reader);
    let mut line = Vec::with_capacity(256);
    let mut out = Vec::with_capacity(256);
    let mut conn = ConnState::default();
    while let Some(request) = read_request(&mut reader, &limits, &mut line).await? {
        let action = policy.decide(&request, &mut conn).await;
        out.extend_from_slice(&format_reply(&action));
        // Pipelined requests already buffered whole are answered in one write; a partial one
        // must not hold back the replies the client is waiting for.
        if !holds_whole_request(reader.buffer()) {
            tokio::time::timeout(limits.request, writer.write_all(&out))
                .await
                .map_err(|_| ProtocolError::Slow)??;
            out.clear();
        }
    }
    Ok(())
}

/// Whether buffered bytes contain the end of a request (an empty line).
fn holds_whole_request(buffer: &[u8]) -> bool {
    buffer.windows(2).any(|w| w == b"\n\n") || buffer.windows(3).any(|w| w == b"\n\r\n")
}
