//! net-snmp's single-session API made safe to call: open a session to an agent (SNMPv2c or
//! SNMPv3 authPriv), send a GET or SET, read the answer into owned Rust values. Everything here
//! runs on the SNMP thread (`engine.rs`) and nowhere else: net-snmp is not thread-safe.
//!
//! Several sessions can have requests in flight at once ([`run_all`]): one `select` over their
//! sockets, so a slow or silent agent costs its own timeout, not the others' time. One exception
//! is net-snmp's: the first request of an SNMPv3 session discovers the agent's engine id with a
//! blocking round trip (`usm_discover_engineid`), which is why the engine keeps sessions open
//! between polls and backs off from agents that do not answer.

// One of the two rooms where `unsafe` is allowed (the other is `ffi.rs`): the calls into
// net-snmp, each block with the reason it is sound.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_long, c_void, CStr, CString};
use std::ptr;
use std::time::{Duration, Instant};

use super::ffi;

/// How elsed authenticates to an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// SNMPv2c.
    Community(String),
    /// SNMPv3 USM, authPriv: authentication (SHA or SHA-256) and privacy (AES-128) passphrases.
    Usm {
        user: String,
        auth: AuthProtocol,
        auth_pass: String,
        priv_pass: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthProtocol {
    Sha1,
    Sha256,
}

impl AuthProtocol {
    pub fn parse(name: &str) -> Option<AuthProtocol> {
        match name.to_ascii_uppercase().as_str() {
            "SHA" | "SHA1" | "SHA-1" => Some(AuthProtocol::Sha1),
            "SHA-256" | "SHA256" => Some(AuthProtocol::Sha256),
            _ => None,
        }
    }
}

/// An agent and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// net-snmp peer name: `udp:HOST:PORT` (`udp6:[ADDR]:PORT` for IPv6).
    pub peer: String,
    pub credentials: Credentials,
    /// Per attempt.
    pub timeout: Duration,
    pub retries: u32,
}

/// A value of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Integer(i64),
    /// Gauge32, Counter32, TimeTicks, Counter64.
    Unsigned(u64),
    Text(Vec<u8>),
    Oid(Vec<u32>),
    /// noSuchObject, noSuchInstance, endOfMibView: the agent has nothing there.
    Missing,
    Other(u8),
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Integer(n) => u64::try_from(n).ok(),
            Value::Unsigned(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Text(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        }
    }
}

/// An agent's answer: its error status (0 noError) and index, and the variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub error_status: i64,
    pub error_index: i64,
    pub vars: Vec<(Vec<u32>, Value)>,
}

impl Response {
    pub fn get(&self, oid: &[u32]) -> Option<&Value> {
        self.vars.iter().find(|(o, _)| o == oid).map(|(_, v)| v)
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnmpError {
    #[error("no answer from {0} (timeout)")]
    Timeout(String),
    #[error("{0}")]
    Failed(String),
}

/// The name of an SNMP error status (RFC 3416), as operators read them in snmpset's output.
pub fn error_status_name(status: i64) -> &'static str {
    const NAMES: [&str; 19] = [
        "noError",
        "tooBig",
        "noSuchName",
        "badValue",
        "readOnly",
        "genErr",
        "noAccess",
        "wrongType",
        "wrongLength",
        "wrongEncoding",
        "wrongValue",
        "noCreation",
        "inconsistentValue",
        "resourceUnavailable",
        "commitFailed",
        "undoFailed",
        "authorizationError",
        "notWritable",
        "inconsistentName",
    ];
    usize::try_from(status)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("unknownError")
}

/// What a SET writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetValue {
    Integer(i64),
    Text(String),
}

/// Once per process, on the SNMP thread: no configuration files, no persistent state, no MIBs
/// (numeric OIDs only), and the session size check of [`ffi::check_session_size`].
pub fn init_library() -> Result<(), String> {
    ffi::check_session_size()?;
    let id = ffi::NETSNMP_DS_LIBRARY_ID as c_int;
    // SAFETY: plain setters of net-snmp's default store and its initialisation, called once,
    // before any session exists, from the only thread that uses the library.
    unsafe {
        ffi::netsnmp_ds_set_boolean(id, ffi::NETSNMP_DS_LIB_DONT_READ_CONFIGS as c_int, 1);
        ffi::netsnmp_ds_set_boolean(id, ffi::NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD as c_int, 1);
        ffi::netsnmp_ds_set_boolean(id, ffi::NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE as c_int, 1);
        // No MIB directory: no MIB is parsed (numeric OIDs only), and quietly; `MIBS` empty
        // (see `snmp::load_no_mib_modules`) keeps net-snmp from looking for its default list.
        ffi::netsnmp_ds_set_string(
            id,
            ffi::NETSNMP_DS_LIB_MIBDIRS as c_int,
            c"/nonexistent/else-no-mibs".as_ptr(),
        );
        ffi::netsnmp_ds_set_int(id, ffi::NETSNMP_DS_LIB_MIB_WARNINGS as c_int, 0);
        ffi::netsnmp_ds_set_boolean(id, ffi::NETSNMP_DS_LIB_MIB_ERRORS as c_int, 0);
        ffi::init_snmp(c"elsed".as_ptr());
    }
    Ok(())
}

/// An open session (net-snmp's opaque single-session handle).
pub struct Session {
    handle: *mut c_void,
    /// The SNMPv3 user, whose keys net-snmp keeps in its global user list.
    usm_user: Option<CString>,
}

impl Drop for Session {
    fn drop(&mut self) {
        // net-snmp keeps an SNMPv3 user's localised keys in a process-wide list, by engine and
        // name, and a later session of the same user reuses them whatever its passphrases: a
        // corrected (or a wrong) passphrase would never take effect. A session is the only one
        // of its (agent, user), so its entry goes with it.
        // SAFETY: the handle came from snmp_sess_open and is closed once; the user entry is
        // looked up, unlinked and freed as snmpusm.h documents.
        unsafe {
            if let Some(name) = &self.usm_user {
                let session = ffi::snmp_sess_session(self.handle);
                if !session.is_null() && (*session).securityEngineIDLen > 0 {
                    let user = ffi::usm_get_user(
                        (*session).securityEngineID,
                        (*session).securityEngineIDLen,
                        name.as_ptr(),
                    );
                    if !user.is_null() {
                        ffi::usm_remove_user(user);
                        ffi::usm_free_user(user);
                    }
                }
            }
            ffi::snmp_sess_close(self.handle);
        }
    }
}

/// A library error code as text.
fn api_error(code: c_int) -> String {
    // SAFETY: snmp_api_errstring returns a NUL-terminated string (a static buffer: this thread only).
    unsafe { CStr::from_ptr(ffi::snmp_api_errstring(code)) }
        .to_string_lossy()
        .into_owned()
}

/// Localises nothing: turns a passphrase into the key net-snmp wants (Ku), in `key`.
fn passphrase_key(
    proto: *const ffi::oid,
    proto_len: usize,
    pass: &str,
    key: &mut [u8],
    key_len: &mut usize,
) -> Result<(), String> {
    if pass.len() < 8 {
        return Err("SNMPv3 passphrases have at least 8 characters".into());
    }
    *key_len = key.len();
    // SAFETY: the pointers are valid for the lengths given; generate_Ku writes at most *key_len.
    let status = unsafe {
        ffi::generate_Ku(
            proto,
            proto_len as u32,
            pass.as_ptr(),
            pass.len(),
            key.as_mut_ptr(),
            key_len,
        )
    };
    if status != ffi::SNMPERR_SUCCESS as c_int {
        return Err(format!("cannot derive the SNMPv3 key: {}", api_error(status)));
    }
    Ok(())
}

impl Session {
    /// Opens a session. For SNMPv3 the agent's engine is discovered by the first request (one
    /// blocking round trip bounded by the target's timeout and retries).
    pub fn open(target: &Target) -> Result<Session, String> {
        let peer = CString::new(target.peer.as_str()).map_err(|_| "peer name contains NUL".to_owned())?;
        // Strings net-snmp copies in snmp_sess_open; they live until it returns.
        let mut owned: Vec<CString> = Vec::new();
        // SAFETY: a zeroed session is what snmp_sess_init expects to fill.
        let mut s: ffi::netsnmp_session = unsafe { std::mem::zeroed() };
        // SAFETY: `s` is a whole session struct of the headers' layout (checked at start by
        // ffi::check_session_size); snmp_sess_init only writes it.
        unsafe { ffi::snmp_sess_init(&mut s) };
        s.peername = peer.as_ptr().cast_mut();
        s.timeout = target.timeout.as_micros().min(i32::MAX as u128) as c_long;
        s.retries = target.retries.min(10) as c_int;
        match &target.credentials {
            Credentials::Community(community) => {
                let community = CString::new(community.as_str()).map_err(|_| "community contains NUL".to_owned())?;
                s.version = ffi::SNMP_VERSION_2c as c_long;
                s.community = community.as_ptr().cast_mut().cast();
                s.community_len = community.as_bytes().len();
                owned.push(community);
            }
            Credentials::Usm {
                user,
                auth,
                auth_pass,
                priv_pass,
            } => {
                let name = CString::new(user.as_str()).map_err(|_| "user name contains NUL".to_owned())?;
                s.version = ffi::SNMP_VERSION_3 as c_long;
                s.securityName = name.as_ptr().cast_mut();
                s.securityNameLen = name.as_bytes().len();
                s.securityLevel = ffi::SNMP_SEC_LEVEL_AUTHPRIV as c_int;
                owned.push(name);
                // The protocol OIDs are static arrays of the library; only their address is taken.
                let (proto, proto_len) = {
                    match auth {
                        AuthProtocol::Sha1 => (
                            ptr::addr_of_mut!(ffi::usmHMACSHA1AuthProtocol).cast::<ffi::oid>(),
                            ffi::USM_AUTH_PROTO_SHA_LEN as usize,
                        ),
                        AuthProtocol::Sha256 => (
                            ptr::addr_of_mut!(ffi::usmHMAC192SHA256AuthProtocol).cast::<ffi::oid>(),
                            ffi::USM_AUTH_PROTO_SHA_LEN as usize,
                        ),
                    }
                };
                s.securityAuthProto = proto;
                s.securityAuthProtoLen = proto_len;
                passphrase_key(
                    proto,
                    proto_len,
                    auth_pass,
                    &mut s.securityAuthKey,
                    &mut s.securityAuthKeyLen,
                )?;
                s.securityPrivProto = ptr::addr_of_mut!(ffi::usmAESPrivProtocol).cast::<ffi::oid>();
                s.securityPrivProtoLen = ffi::USM_PRIV_PROTO_AES_LEN as usize;
                passphrase_key(
                    proto,
                    proto_len,
                    priv_pass,
                    &mut s.securityPrivKey,
                    &mut s.securityPrivKeyLen,
                )?;
            }
        }
        // SAFETY: `s` is an initialised session whose strings outlive the call; the library
        // copies what it keeps.
        let handle = unsafe { ffi::snmp_sess_open(&mut s) };
        let usm_user = match &target.credentials {
            Credentials::Usm { user, .. } => CString::new(user.as_str()).ok(),
            Credentials::Community(_) => None,
        };
        drop(owned);
        if handle.is_null() {
            let why = if s.s_snmp_errno != 0 {
                api_error(s.s_snmp_errno)
            } else {
                "cannot open a session".to_owned()
            };
            return Err(format!("{}: {why}", target.peer));
        }
        Ok(Session { handle, usm_user })
    }

    /// The session's last library error, as text.
    fn error(&self) -> String {
        // SAFETY: the handle is open; snmp_sess_session returns its session struct.
        let session = unsafe { ffi::snmp_sess_session(self.handle) };
        if session.is_null() {
            return "session lost".into();
        }
        // SAFETY: not null, so the open session's own struct, alive as long as the handle.
        api_error(unsafe { (*session).s_snmp_errno })
    }
}

/// A GET PDU for these OIDs.
fn get_pdu(oids: &[Vec<u32>]) -> *mut ffi::netsnmp_pdu {
    // SAFETY: snmp_pdu_create allocates a PDU; snmp_add_null_var copies the OID.
    unsafe {
        let pdu = ffi::snmp_pdu_create(ffi::SNMP_MSG_GET);
        for oid in oids {
            let oid: Vec<ffi::oid> = oid.iter().map(|&n| ffi::oid::from(n)).collect();
            ffi::snmp_add_null_var(pdu, oid.as_ptr(), oid.len());
        }
        pdu
    }
}

/// A SET PDU of one variable.
fn set_pdu(oid: &[u32], value: &SetValue) -> Result<*mut ffi::netsnmp_pdu, String> {
    let (kind, text) = match value {
        SetValue::Integer(n) => (b'i', n.to_string()),
        SetValue::Text(s) => (b's', s.clone()),
    };
    let text = CString::new(text).map_err(|_| "the value contains NUL".to_owned())?;
    let oid: Vec<ffi::oid> = oid.iter().map(|&n| ffi::oid::from(n)).collect();
    // SAFETY: as in get_pdu; snmp_add_var parses and copies the value.
    unsafe {
        let pdu = ffi::snmp_pdu_create(ffi::SNMP_MSG_SET);
        let status = ffi::snmp_add_var(pdu, oid.as_ptr(), oid.len(), kind as _, text.as_ptr());
        if status != 0 {
            ffi::snmp_free_pdu(pdu);
            return Err(format!("cannot encode the value: {}", api_error(status)));
        }
        Ok(pdu)
    }
}

/// Reads a response PDU into owned values.
///
/// # Safety
/// `pdu` is a valid response PDU from the library.
unsafe fn read_pdu(pdu: *const ffi::netsnmp_pdu) -> Response {
    let pdu = &*pdu;
    let mut vars = Vec::new();
    let mut var = pdu.variables;
    while !var.is_null() {
        let v = &*var;
        let oid: Vec<u32> = std::slice::from_raw_parts(v.name, v.name_length)
            .iter()
            .map(|&n| n as u32)
            .collect();
        let value = match v.type_ {
            // c_long and u_long are 64 bits on the Linux targets ELSE supports.
            ffi::ASN_INTEGER => Value::Integer(*v.val.integer),
            ffi::ASN_COUNTER | ffi::ASN_GAUGE | ffi::ASN_TIMETICKS => {
                Value::Unsigned(*v.val.integer as u64 & 0xFFFF_FFFF)
            }
            ffi::ASN_COUNTER64 => {
                let c = &*v.val.counter64;
                Value::Unsigned((c.high & 0xFFFF_FFFF) << 32 | (c.low & 0xFFFF_FFFF))
            }
            ffi::ASN_OCTET_STR | ffi::ASN_IPADDRESS => {
                Value::Text(std::slice::from_raw_parts(v.val.string, v.val_len).to_vec())
            }
            ffi::ASN_OBJECT_ID => Value::Oid(
                std::slice::from_raw_parts(v.val.objid, v.val_len / std::mem::size_of::<ffi::oid>())
                    .iter()
                    .map(|&n| n as u32)
                    .collect(),
            ),
            ffi::SNMP_NOSUCHOBJECT | ffi::SNMP_NOSUCHINSTANCE | ffi::SNMP_ENDOFMIBVIEW | ffi::ASN_NULL => {
                Value::Missing
            }
            other => Value::Other(other),
        };
        vars.push((oid, value));
        var = v.next_variable;
    }
    Response {
        error_status: pdu.errstat,
        error_index: pdu.errindex,
        vars,
    }
}

/// One request sent with [`Session::send_get`], answered (or not) by [`run_all`].
pub struct InFlight {
    /// Boxed: its address is the callback's `magic` and must not move.
    slot: Box<Option<Result<Response, SnmpError>>>,
    peer: String,
}

impl InFlight {
    pub fn done(&self) -> bool {
        self.slot.is_some()
    }

    /// True when the request could not even be sent (right after [`Session::send_get`]).
    pub fn failed_to_send(&self) -> bool {
        matches!(*self.slot, Some(Err(_)))
    }

    /// The answer, or a timeout if the request is still out.
    pub fn take(mut self) -> Result<Response, SnmpError> {
        self.slot
            .take()
            .unwrap_or_else(|| Err(SnmpError::Timeout(self.peer.clone())))
    }
}

unsafe extern "C" fn on_response(
    op: c_int,
    _session: *mut ffi::netsnmp_session,
    _reqid: c_int,
    pdu: *mut ffi::netsnmp_pdu,
    magic: *mut c_void,
) -> c_int {
    // Never unwind into C.
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: magic is the boxed slot of an InFlight that outlives the session's requests
        // (run_all and Drop order, see Session::send_get).
        let slot = unsafe { &mut *magic.cast::<Option<Result<Response, SnmpError>>>() };
        if slot.is_some() {
            return;
        }
        *slot = Some(
            if op == ffi::NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE as c_int && !pdu.is_null() {
                // SAFETY: a received response PDU.
                Ok(unsafe { read_pdu(pdu) })
            } else if op == ffi::NETSNMP_CALLBACK_OP_TIMED_OUT as c_int {
                Err(SnmpError::Timeout(String::new()))
            } else {
                Err(SnmpError::Failed(format!(
                    "request ended without an answer (net-snmp op {op})"
                )))
            },
        );
    });
    1
}

impl Session {
    /// Sends a GET without waiting; [`run_all`] collects the answer. The session must not be
    /// closed while the returned request is pending unless the request is dropped after it.
    pub fn send_get(&mut self, peer: &str, oids: &[Vec<u32>]) -> InFlight {
        let mut flight = InFlight {
            slot: Box::new(None),
            peer: peer.to_owned(),
        };
        let pdu = get_pdu(oids);
        let magic: *mut Option<Result<Response, SnmpError>> = &mut *flight.slot;
        // SAFETY: the handle is open; on success the library owns the PDU.
        let reqid = unsafe { ffi::snmp_sess_async_send(self.handle, pdu, Some(on_response), magic.cast()) };
        if reqid == 0 {
            // SAFETY: the send failed, so the PDU is still ours, and freed once.
            unsafe { ffi::snmp_free_pdu(pdu) };
            *flight.slot = Some(Err(SnmpError::Failed(format!("{peer}: cannot send: {}", self.error()))));
        }
        flight
    }

    /// A synchronous SET (actions are one at a time and wait for the agent's verdict).
    pub fn set(&mut self, peer: &str, oid: &[u32], value: &SetValue) -> Result<Response, SnmpError> {
        let pdu = set_pdu(oid, value).map_err(SnmpError::Failed)?;
        self.synch(peer, pdu)
    }

    /// A synchronous GET.
    pub fn get(&mut self, peer: &str, oids: &[Vec<u32>]) -> Result<Response, SnmpError> {
        self.synch(peer, get_pdu(oids))
    }

    fn synch(&mut self, peer: &str, pdu: *mut ffi::netsnmp_pdu) -> Result<Response, SnmpError> {
        let mut response: *mut ffi::netsnmp_pdu = ptr::null_mut();
        // SAFETY: the library takes the request PDU; the response is ours to free.
        let status = unsafe { ffi::snmp_sess_synch_response(self.handle, pdu, &mut response) };
        let result = if status == ffi::STAT_SUCCESS as c_int && !response.is_null() {
            // SAFETY: a response PDU the library returned on success.
            Ok(unsafe { read_pdu(response) })
        } else if status == ffi::STAT_TIMEOUT as c_int {
            Err(SnmpError::Timeout(peer.to_owned()))
        } else {
            Err(SnmpError::Failed(format!("{peer}: {}", self.error())))
        };
        if !response.is_null() {
            // SAFETY: the response is ours (see above), read already, and freed once.
            unsafe { ffi::snmp_free_pdu(response) };
        }
        result
    }
}

/// Waits for the requests in flight on these sessions until one more is answered or timed out
/// (the library retries per the target), or all are, or `deadline` passes. One `select` over
/// all their sockets.
pub fn run_all(sessions: &mut [(&mut Session, &InFlight)], deadline: Instant) {
    let done = |s: &[(&mut Session, &InFlight)]| s.iter().filter(|(_, f)| f.done()).count();
    let before = done(sessions);
    loop {
        let now = Instant::now();
        if now >= deadline || done(sessions) > before || done(sessions) == sessions.len() {
            return;
        }
        let left = deadline - now;
        // SAFETY: fd_set and timeval are plain data; select_info/read/timeout take open handles.
        unsafe {
            let mut fds: ffi::fd_set = std::mem::zeroed();
            let mut nfds: c_int = 0;
            let mut block: c_int = 0;
            let mut tv = ffi::timeval {
                tv_sec: left.as_secs().min(1) as _,
                tv_usec: if left.as_secs() >= 1 {
                    0
                } else {
                    left.subsec_micros() as _
                },
            };
            for (session, flight) in sessions.iter() {
                if !flight.done() {
                    ffi::snmp_sess_select_info(session.handle, &mut nfds, &mut fds, &mut tv, &mut block);
                }
            }
            let ready = ffi::select(nfds, &mut fds, ptr::null_mut(), ptr::null_mut(), &mut tv);
            for (session, flight) in sessions.iter_mut() {
                if flight.done() {
                    continue;
                }
                if ready > 0 {
                    ffi::snmp_sess_read(session.handle, &mut fds);
                }
                ffi::snmp_sess_timeout(session.handle);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_fills_exactly_the_session_its_headers_declare() {
        ffi::check_session_size().unwrap();
    }

    #[test]
    fn error_statuses_have_their_rfc_names() {
        assert_eq!(error_status_name(0), "noError");
        assert_eq!(error_status_name(6), "noAccess");
        assert_eq!(error_status_name(10), "wrongValue");
        assert_eq!(error_status_name(14), "commitFailed");
        assert_eq!(error_status_name(99), "unknownError");
    }

    #[test]
    fn auth_protocols_by_name() {
        assert_eq!(AuthProtocol::parse("sha"), Some(AuthProtocol::Sha1));
        assert_eq!(AuthProtocol::parse("SHA-256"), Some(AuthProtocol::Sha256));
        assert_eq!(AuthProtocol::parse("MD5"), None);
    }
}
