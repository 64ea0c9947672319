//! The Postfix SMTPD access policy delegation protocol (SMTPD_POLICY_README): `name=value` lines
//! ended by an empty line; the answer is one `action=…` line and an empty line, on the same
//! connection, which stays open for the next request. On trouble the server logs and closes
//! without answering, so that smtpd applies its `default_action`.

use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::time::{timeout, timeout_at, Instant};

/// The attributes GreyLSE uses; the others are read and ignored, as the protocol requires.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Request {
    pub request: Option<String>,
    pub protocol_state: Option<String>,
    pub client_address: Option<String>,
    pub client_name: Option<String>,
    pub reverse_client_name: Option<String>,
    pub sender: Option<String>,
    pub recipient: Option<String>,
    pub instance: Option<String>,
    pub queue_id: Option<String>,
    /// Present (even empty) from Postfix 2.3 on; Postgrey uses it to add the `4.2.0` status
    /// code, and so do we, so that the two answer alike.
    pub etrn_domain: Option<String>,
}

impl Request {
    /// Sets one attribute; unknown names are ignored and a repeated name keeps the last value.
    fn set(&mut self, name: &str, value: String) {
        let slot = match name {
            "request" => &mut self.request,
            "protocol_state" => &mut self.protocol_state,
            "client_address" => &mut self.client_address,
            "client_name" => &mut self.client_name,
            "reverse_client_name" => &mut self.reverse_client_name,
            "sender" => &mut self.sender,
            "recipient" => &mut self.recipient,
            "instance" => &mut self.instance,
            "queue_id" => &mut self.queue_id,
            "etrn_domain" => &mut self.etrn_domain,
            _ => return,
        };
        *slot = Some(value);
    }
}

/// Bounds on what a client may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_line_bytes: usize,
    pub max_attributes: usize,
    /// Wait for the first line of a request (the connection is idle in between).
    pub idle: Duration,
    /// Time for the rest of a request once its first line arrived.
    pub request: Duration,
}

/// Why a connection ends without a reply.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("connection closed in the middle of a request")]
    Truncated,
    #[error("line longer than {0} bytes")]
    LineTooLong(usize),
    #[error("more than {0} attributes")]
    TooManyAttributes(usize),
    #[error("malformed line {0:?}")]
    Malformed(String),
    #[error("unsupported request type {0:?}")]
    BadRequestType(String),
    #[error("idle for too long")]
    Idle,
    #[error("request not completed in time (slow client)")]
    Slow,
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one request. `Ok(None)` is a clean end of connection between requests.
pub async fn read_request<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    limits: &Limits,
    line: &mut Vec<u8>,
) -> Result<Option<Request>, ProtocolError> {
    let mut request = Request::default();
    let mut attributes = 0usize;
    line.clear();
    // The first line may be long in coming: the connection is idle between requests.
    let first = timeout(limits.idle, read_line(reader, line, limits.max_line_bytes))
        .await
        .map_err(|_| ProtocolError::Idle)??;
    if !first {
        return Ok(None);
    }
    let deadline = Instant::now() + limits.request;
    loop {
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        if text.is_empty() {
            break;
        }
        attributes += 1;
        if attributes > limits.max_attributes {
            return Err(ProtocolError::TooManyAttributes(limits.max_attributes));
        }
        match text.iter().position(|&b| b == b'=') {
            Some(eq) if eq > 0 => {
                let name = String::from_utf8_lossy(&text[..eq]);
                let value = String::from_utf8_lossy(&text[eq + 1..]).into_owned();
                request.set(&name, value);
            }
            _ => {
                let shown = &text[..text.len().min(100)];
                return Err(ProtocolError::Malformed(String::from_utf8_lossy(shown).into_owned()));
            }
        }
        line.clear();
        let more = timeout_at(deadline, read_line(reader, line, limits.max_line_bytes))
            .await
            .map_err(|_| ProtocolError::Slow)??;
        if !more {
            return Err(ProtocolError::Truncated);
        }
    }
    match request.request.as_deref() {
        Some("smtpd_access_policy") => Ok(Some(request)),
        other => Err(ProtocolError::BadRequestType(other.unwrap_or_default().to_owned())),
    }
}

/// Reads one line (without its `\n`) into `line`, refusing to buffer more than `max` bytes.
/// `Ok(false)` at end of input before any byte.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> Result<bool, ProtocolError> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return if line.is_empty() {
                Ok(false)
            } else {
                Err(ProtocolError::Truncated)
            };
        }
        let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (available.len(), false),
        };
        if line.len() + chunk > max {
            return Err(ProtocolError::LineTooLong(max));
        }
        line.extend_from_slice(&available[..chunk]);
        reader.consume(chunk + usize::from(found));
        if found {
            return Ok(true);
        }
    }
}

/// The bytes of a reply.
pub fn format_reply(action: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(action.len() + 9);
    out.extend_from_slice(b"action=");
    out.extend_from_slice(action.as_bytes());
    out.extend_from_slice(b"\n\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    fn limits() -> Limits {
        Limits {
            max_line_bytes: 64,
            max_attributes: 5,
            idle: Duration::from_secs(5),
            request: Duration::from_secs(5),
        }
    }

    async fn read_all(input: &[u8]) -> Vec<Result<Option<Request>, String>> {
        let mut reader = BufReader::new(input);
        let mut line = Vec::new();
        let mut out = Vec::new();
        loop {
            let r = read_request(&mut reader, &limits(), &mut line).await;
            let stop = !matches!(r, Ok(Some(_)));
            out.push(r.map_err(|e| e.to_string()));
            if stop {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn pipelined_requests_unknown_attributes_and_crlf() {
        let input = b"request=smtpd_access_policy\nrecipient=a@b\nfuture_attr=x=y\n\n\
                      request=smtpd_access_policy\r\nsender=\r\nsender=s@t\r\n\r\n";
        let got = read_all(input).await;
        assert_eq!(got.len(), 3);
        let first = got[0].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(first.recipient.as_deref(), Some("a@b"));
        let second = got[1].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(second.sender.as_deref(), Some("s@t"));
        assert_eq!(second.recipient, None);
        assert!(matches!(got[2], Ok(None)));
    }

    #[tokio::test]
    async fn protocol_errors_end_the_connection() {
        for (input, error) in [
            (&b"request=smtpd_access_policy\ngarbage\n\n"[..], "malformed"),
            (b"=value\n\n", "malformed"),
            (b"request=smtpd_access_policy\nsender=", "closed in the middle"),
            (b"request=smtpd_access_policy\n", "closed in the middle"),
            (b"request=other\n\n", "unsupported request"),
            (b"\n", "unsupported request"),
            (b"a=1\nb=2\nc=3\nd=4\ne=5\nf=6\n\n", "more than 5 attributes"),
        ] {
            let got = read_all(input).await;
            let last = got.last().unwrap().as_ref().unwrap_err();
            assert!(last.contains(error), "{input:?}: {last}");
        }
        let long = format!("request=smtpd_access_policy\nsender={}\n\n", "x".repeat(60));
        let got = read_all(long.as_bytes()).await;
        assert!(got[0].as_ref().unwrap_err().contains("longer than 64"));
    }
}
