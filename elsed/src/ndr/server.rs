//! The LMTP/SMTP server: RFC 5321 with PIPELINING, SIZE, 8BITMIME and ENHANCEDSTATUSCODES, LMTP's
//! one reply per recipient after DATA (RFC 2033). Replies are held while pipelined commands are
//! already buffered and written when the client is about to wait. Lines are bounded (commands to
//! 2048 bytes, a message to `max_size`), every read is under a timeout.

use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::db::Pool;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::store::{self, Incoming};
use super::NdrConfig;
use crate::allow_list::AllowList;

/// Longest command line, CRLF included (RFC 5321 asks for 512; ESMTP parameters make it more).
const MAX_COMMAND: usize = 2048;
/// Recipients of one transaction (RFC 5321 asks a server to take at least 100).
const MAX_RECIPIENTS: usize = 1000;
/// Errors after which a client is disconnected.
const MAX_ERRORS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Lmtp,
    Smtp,
}

impl Protocol {
    /// The protocol's name, as logs and the configuration say it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Lmtp => "LMTP",
            Protocol::Smtp => "SMTP",
        }
    }
}

pub struct Listener {
    pub tcp: TcpListener,
    pub protocol: Protocol,
}

impl Listener {
    /// Binds `HOST:PORT` or `lmtp:HOST:PORT` (LMTP), `smtp:HOST:PORT` (SMTP).
    pub async fn bind(spec: &str) -> io::Result<Listener> {
        let (protocol, addr) = if let Some(a) = spec.strip_prefix("smtp:") {
            (Protocol::Smtp, a)
        } else {
            (Protocol::Lmtp, spec.strip_prefix("lmtp:").unwrap_or(spec))
        };
        let addr = addr.strip_prefix("inet:").unwrap_or(addr);
        Ok(Listener {
            tcp: TcpListener::bind(addr).await?,
            protocol,
        })
    }
}

/// What every connection shares.
pub struct Service {
    cfg: NdrConfig,
    allowed: AllowList,
    hostname: String,
    pool: Pool,
    known_days: Mutex<BTreeSet<i64>>,
    /// Set when `[ndr]` names a certificate: STARTTLS is offered.
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Service {
    pub fn new(cfg: NdrConfig, pool: Pool) -> Result<Service, String> {
        let tls = match (&cfg.tls_cert_file, &cfg.tls_key_file) {
            (Some(cert), Some(key)) => Some(super::tls::acceptor(cert, key)?),
            (None, None) if cfg.require_tls => return Err("require_tls needs tls_cert_file and tls_key_file".into()),
            (None, None) => None,
            _ => return Err("tls_cert_file and tls_key_file go together".into()),
        };
        Ok(Service {
            tls,
            allowed: cfg.allowed().map_err(|e| format!("allowed_clients: {e}"))?,
            hostname: cfg.effective_hostname(),
            cfg,
            pool,
            known_days: Mutex::new(BTreeSet::new()),
        })
    }

    /// Stores one NDR; `false` when it could not be committed (the client is told to retry).
    async fn store(&self, ndr: &Incoming<'_>) -> bool {
        let result = async {
            let mut client = self.pool.get().await?;
            let client: &mut tokio_postgres::Client = &mut client;
            store::insert(client, &self.known_days, ndr).await
        }
        .await;
        match result {
            Ok(id) => {
                tracing::info!("ndr: stored NDR {id} from {} ({} bytes)", ndr.client_ip, ndr.raw.len());
                true
            }
            Err(e) => {
                tracing::warn!("ndr: NDR from {} not stored, deferred: {e:#}", ndr.client_ip);
                false
            }
        }
    }
}

/// Serves every listener until one fails.
pub async fn run(service: Arc<Service>, listeners: Vec<Listener>) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(service.cfg.max_connections.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        match listener.tcp.local_addr() {
            Ok(address) => tracing::info!("ndr: listening for {} on {address}", listener.protocol.name()),
            Err(e) => tracing::warn!("ndr: a {} listener has no address: {e}", listener.protocol.name()),
        }
        tasks.spawn(accept_loop(listener, service.clone(), slots.clone()));
    }
    while let Some(result) = tasks.join_next().await {
        result.map_err(io::Error::other)??;
    }
    Ok(())
}

async fn accept_loop(listener: Listener, service: Arc<Service>, slots: Arc<Semaphore>) -> io::Result<()> {
    loop {
        let (mut stream, peer) = match listener.tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("ndr: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let protocol = listener.protocol;
        let service = service.clone();
        if !service.allowed.allows(peer.ip()) {
            tracing::warn!("ndr: connection from {peer} refused: not in ndr.allowed_clients");
            tokio::spawn(async move {
                let line = format!("554 5.7.1 {} access denied to {}\r\n", service.hostname, peer.ip());
                let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(line.as_bytes())).await;
            });
            continue;
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!("ndr: too many connections, {peer} told to come back");
            tokio::spawn(async move {
                let line = b"421 4.3.2 Too many connections, try again later\r\n";
                let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(line)).await;
            });
            continue;
        };
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            if let Err(e) = session(stream, peer, protocol, &service).await {
                tracing::debug!("ndr: connection from {peer} ended: {e}");
            }
            drop(permit);
        });
    }
}

/// One line read, without its line ending.
enum Line {
    Text,
    TooLong,
    Eof,
}

/// Reads up to `\n` into `buf` (cleared first); a line longer than `max` is read to its end and
/// dropped, so memory stays bounded whatever the client sends.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R, buf: &mut Vec<u8>, max: usize) -> io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::Eof);
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let n = chunk.len();
        if !too_long && buf.len() + n <= max {
            buf.extend_from_slice(chunk);
        } else {
            too_long = true;
        }
        reader.consume(n);
        if done {
            if too_long {
                buf.clear();
                return Ok(Line::TooLong);
            }
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Line::Text);
        }
    }
}

/// The transaction in progress.
#[derive(Default)]
struct Transaction {
    sender: Option<String>,
    recipients: Vec<String>,
}

/// How DATA ended.
enum Data {
    Message(Vec<u8>),
    TooBig,
}

/// Reads the message up to the lone dot, undoing dot-stuffing and restoring CRLF line ends.
/// Past `max` bytes the rest is read and dropped so that the reply lands after the dot.
async fn read_data<R: AsyncBufRead + Unpin>(reader: &mut R, max: usize) -> io::Result<Data> {
    let mut message = Vec::new();
    let mut line = Vec::new();
    let mut too_big = false;
    loop {
        let limit = if too_big { 0 } else { max + 2 - message.len().min(max) };
        match read_line(reader, &mut line, limit.max(3)).await? {
            Line::Eof => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed in DATA",
                ))
            }
            Line::TooLong => too_big = true,
            Line::Text => {
                if line == b"." {
                    return Ok(if too_big { Data::TooBig } else { Data::Message(message) });
                }
                if too_big {
                    continue;
                }
                let text = line.strip_prefix(b".").unwrap_or(&line);
                message.extend_from_slice(text);
                message.extend_from_slice(b"\r\n");
                if message.len() > max {
                    too_big = true;
                    message = Vec::new();
                }
            }
        }
    }
}

/// `<addr>` of `FROM:<addr> PARAMS` / `TO:<addr> PARAMS`, and the parameters.
fn path_argument<'a>(arg: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some((&rest[..end], rest[end + 1..].trim()))
}

/// Whether STARTTLS is on offer in a dialogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tls {
    /// No certificate configured.
    Unavailable,
    /// Offered, not started yet.
    Offered,
    /// The dialogue runs inside TLS.
    Active,
}

/// One connection: the plain dialogue, then, after STARTTLS, a new one inside TLS (RFC 3207:
/// the client starts over with LHLO/EHLO, and nothing it said before the handshake counts).
async fn session(stream: TcpStream, peer: SocketAddr, protocol: Protocol, svc: &Service) -> io::Result<()> {
    let tls = if svc.tls.is_some() {
        Tls::Offered
    } else {
        Tls::Unavailable
    };
    let Some(stream) = dialogue(stream, peer, protocol, svc, tls).await? else {
        return Ok(());
    };
    let Some(acceptor) = &svc.tls else {
        return Ok(());
    };
    let timeout = Duration::from_secs(svc.cfg.command_timeout_secs.max(1));
    let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::warn!("ndr: TLS handshake with {peer} failed: {e}");
            return Ok(());
        }
        Err(_) => {
            tracing::warn!("ndr: TLS handshake with {peer} timed out");
            return Ok(());
        }
    };
    dialogue(stream, peer, protocol, svc, Tls::Active).await?;
    Ok(())
}

/// The command loop on `stream`; returns the bare stream when the client asked for STARTTLS
/// (what it pipelined after the command is dropped, so no plaintext reaches the TLS dialogue).
async fn dialogue<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    protocol: Protocol,
    svc: &Service,
    tls: Tls,
) -> io::Result<Option<S>> {
    let mut reader = BufReader::with_capacity(16 * 1024, stream);
    match commands(&mut reader, peer, protocol, svc, tls).await {
        Ok(true) => Ok(Some(reader.into_inner())),
        ended => {
            // Inside TLS this sends close_notify, so the client sees a clean end.
            let _ = tokio::time::timeout(Duration::from_secs(5), reader.shutdown()).await;
            ended.map(|_| None)
        }
    }
}

/// Reads and answers commands until the client quits or fails; true when it asked for STARTTLS.
async fn commands<S: AsyncRead + AsyncWrite + Unpin>(
    mut reader: &mut BufReader<S>,
    peer: SocketAddr,
    protocol: Protocol,
    svc: &Service,
    tls: Tls,
) -> io::Result<bool> {
    let cfg = &svc.cfg;
    let command_timeout = Duration::from_secs(cfg.command_timeout_secs.max(1));
    let data_timeout = Duration::from_secs(cfg.data_timeout_secs.max(1));
    let proto_name = match protocol {
        Protocol::Lmtp => "LMTP",
        Protocol::Smtp => "ESMTP",
    };
    // Inside TLS the greeting was given already, before STARTTLS.
    let mut out = if tls == Tls::Active {
        Vec::new()
    } else {
        format!("220 {} {proto_name} ELSE NDR collector\r\n", svc.hostname).into_bytes()
    };
    let mut helo: Option<String> = None;
    let mut tx = Transaction::default();
    let mut line = Vec::with_capacity(256);
    let mut errors = 0;
    loop {
        // Pipelining: answer only when no further command is already waiting.
        if reader.buffer().is_empty() && !out.is_empty() {
            send(&mut reader, &mut out, command_timeout).await?;
        }
        let read = match tokio::time::timeout(command_timeout, read_line(&mut reader, &mut line, MAX_COMMAND)).await {
            Err(_) => {
                out.extend_from_slice(b"421 4.4.2 Timeout waiting for a command, closing\r\n");
                return send(&mut reader, &mut out, Duration::from_secs(5))
                    .await
                    .map(|()| false);
            }
            Ok(read) => read?,
        };
        let reply: String = match read {
            Line::Eof => return Ok(false),
            Line::TooLong => "500 5.5.2 Line too long".into(),
            Line::Text => {
                let text = String::from_utf8_lossy(&line);
                let (verb, arg) = match text.split_once(' ') {
                    Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_owned()),
                    None => (text.trim().to_ascii_uppercase(), String::new()),
                };
                match (verb.as_str(), protocol) {
                    ("LHLO", Protocol::Lmtp) | ("EHLO", Protocol::Smtp) => {
                        if arg.is_empty() {
                            format!("501 5.5.4 Syntax: {verb} hostname")
                        } else {
                            helo = Some(arg);
                            tx = Transaction::default();
                            let starttls = if tls == Tls::Offered { "250-STARTTLS\r\n" } else { "" };
                            format!(
                                "250-{}\r\n250-PIPELINING\r\n250-SIZE {}\r\n250-8BITMIME\r\n{starttls}250 ENHANCEDSTATUSCODES",
                                svc.hostname, cfg.max_size
                            )
                        }
                    }
                    ("HELO", Protocol::Smtp) if !arg.is_empty() => {
                        helo = Some(arg);
                        tx = Transaction::default();
                        format!("250 {}", svc.hostname)
                    }
                    ("HELO", Protocol::Smtp) => "501 5.5.4 Syntax: HELO hostname".into(),
                    ("HELO" | "EHLO", Protocol::Lmtp) => "500 5.5.1 This is LMTP: use LHLO".into(),
                    ("LHLO", Protocol::Smtp) => "500 5.5.1 This is SMTP: use EHLO".into(),
                    ("MAIL", _) if helo.is_none() => format!("503 5.5.1 Send {} first", greeting_verb(protocol)),
                    ("MAIL", _) if cfg.require_tls && tls != Tls::Active => {
                        "530 5.7.0 Must issue a STARTTLS command first".into()
                    }
                    ("MAIL", _) if tx.sender.is_some() => "503 5.5.1 Nested MAIL command".into(),
                    ("MAIL", _) => match path_argument(&arg, "FROM:") {
                        None => "501 5.5.4 Syntax: MAIL FROM:<address>".into(),
                        Some((sender, params)) => match declared_size(params) {
                            Err(p) => format!("555 5.5.4 Unsupported parameter {p}"),
                            Ok(Some(size)) if size > cfg.max_size as u64 => {
                                "552 5.3.4 Message size exceeds fixed limit".into()
                            }
                            Ok(_) if !cfg.accepts_sender(sender) => {
                                tracing::warn!(sender, "ndr: sender refused: not in ndr.accepted_senders");
                                format!("550 5.7.1 <{sender}>: only delivery reports (null sender) are collected here")
                            }
                            Ok(_) => {
                                tx.sender = Some(sender.to_owned());
                                "250 2.1.0 Ok".into()
                            }
                        },
                    },
                    ("RCPT", _) if tx.sender.is_none() => "503 5.5.1 Need MAIL before RCPT".into(),
                    ("RCPT", _) => match path_argument(&arg, "TO:") {
                        None => "501 5.5.4 Syntax: RCPT TO:<address>".into(),
                        Some(("", _)) => "501 5.1.3 Empty recipient address".into(),
                        Some(_) if tx.recipients.len() >= MAX_RECIPIENTS => "452 4.5.3 Too many recipients".into(),
                        Some((rcpt, _)) => {
                            tx.recipients.push(rcpt.to_owned());
                            "250 2.1.5 Ok".into()
                        }
                    },
                    ("DATA", _) if !arg.is_empty() => "501 5.5.4 Syntax: DATA".into(),
                    ("DATA", _) if tx.sender.is_none() => "503 5.5.1 Need MAIL before DATA".into(),
                    ("DATA", _) if tx.recipients.is_empty() => "554 5.5.1 No valid recipients".into(),
                    ("DATA", _) => {
                        out.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
                        send(&mut reader, &mut out, command_timeout).await?;
                        let data = match tokio::time::timeout(data_timeout, read_data(&mut reader, cfg.max_size)).await
                        {
                            Err(_) => {
                                out.extend_from_slice(b"421 4.4.2 Timeout reading the message, closing\r\n");
                                return send(&mut reader, &mut out, Duration::from_secs(5))
                                    .await
                                    .map(|()| false);
                            }
                            Ok(data) => data?,
                        };
                        let reply = match data {
                            Data::TooBig => "552 5.3.4 Message size exceeds fixed limit".to_owned(),
                            Data::Message(raw) => {
                                let sender = tx.sender.clone().unwrap_or_default();
                                let ndr = Incoming {
                                    received_at: jiff::Timestamp::now().as_second(),
                                    client_ip: peer.ip().to_canonical(),
                                    helo: helo.as_deref(),
                                    protocol: if protocol == Protocol::Lmtp { "lmtp" } else { "smtp" },
                                    sender: &sender,
                                    recipients: &tx.recipients,
                                    raw: &raw,
                                };
                                if svc.store(&ndr).await {
                                    "250 2.0.0 Ok: stored".to_owned()
                                } else {
                                    "451 4.3.0 Temporary storage failure, try again later".to_owned()
                                }
                            }
                        };
                        // LMTP: one reply per accepted recipient (the message is stored once for all).
                        let times = if protocol == Protocol::Lmtp {
                            tx.recipients.len()
                        } else {
                            1
                        };
                        for _ in 1..times {
                            out.extend_from_slice(reply.as_bytes());
                            out.extend_from_slice(b"\r\n");
                        }
                        tx = Transaction::default();
                        reply
                    }
                    ("RSET", _) => {
                        tx = Transaction::default();
                        "250 2.0.0 Ok".into()
                    }
                    ("NOOP", _) => "250 2.0.0 Ok".into(),
                    ("VRFY", _) => "252 2.5.0 Cannot VRFY user".into(),
                    ("QUIT", _) => {
                        out.extend_from_slice(b"221 2.0.0 Bye\r\n");
                        return send(&mut reader, &mut out, command_timeout).await.map(|()| false);
                    }
                    ("", _) => "500 5.5.2 Empty command".into(),
                    ("STARTTLS", _) if tls != Tls::Offered => match tls {
                        Tls::Active => "503 5.5.1 TLS already active".into(),
                        _ => "502 5.5.1 STARTTLS not available".into(),
                    },
                    ("STARTTLS", _) if !arg.is_empty() => "501 5.5.4 Syntax: STARTTLS".into(),
                    ("STARTTLS", _) => {
                        out.extend_from_slice(b"220 2.0.0 Ready to start TLS\r\n");
                        send(&mut reader, &mut out, command_timeout).await?;
                        return Ok(true);
                    }
                    ("AUTH" | "BDAT" | "ETRN" | "EXPN" | "HELP" | "TURN", _) => {
                        "502 5.5.1 Command not implemented".into()
                    }
                    _ => "500 5.5.2 Command not recognized".into(),
                }
            }
        };
        if reply.starts_with('5') {
            errors += 1;
        }
        out.extend_from_slice(reply.as_bytes());
        out.extend_from_slice(b"\r\n");
        if errors >= MAX_ERRORS {
            out.extend_from_slice(b"421 4.7.0 Too many errors, closing\r\n");
            return send(&mut reader, &mut out, command_timeout).await.map(|()| false);
        }
    }
}

fn greeting_verb(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Lmtp => "LHLO",
        Protocol::Smtp => "EHLO/HELO",
    }
}

/// The `SIZE=` of MAIL parameters; BODY (7BIT, 8BITMIME) and the DSN ones are accepted, anything
/// else is named back.
fn declared_size(params: &str) -> Result<Option<u64>, String> {
    let mut size = None;
    for param in params.split_whitespace() {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key.to_ascii_uppercase().as_str() {
            "SIZE" => size = Some(value.parse().map_err(|_| param.to_owned())?),
            "BODY" | "RET" | "ENVID" | "SMTPUTF8" => {}
            _ => return Err(param.to_owned()),
        }
    }
    Ok(size)
}

async fn send<W: AsyncWrite + Unpin>(writer: &mut W, out: &mut Vec<u8>, limit: Duration) -> io::Result<()> {
    tokio::time::timeout(limit, writer.write_all(out))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client does not read"))??;
    out.clear();
    Ok(())
}
