//! The net-snmp bindings bindgen generated at build time (see build.rs), the protocol constants
//! its headers only define as casts (bindgen cannot evaluate them), and a check at start that the
//! library's idea of its structures matches the headers'.

// One of the two rooms where `unsafe` is allowed (the other is `session.rs`): C's declarations.
#![allow(unsafe_code)]
#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case, dead_code, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/netsnmp.rs"));

#[link(name = "netsnmp")]
extern "C" {}

/// BER tags (X.690, RFC 3416): fixed by the protocol, so spelled here rather than read from the
/// headers' `((u_char)0x02)` macros.
pub const ASN_INTEGER: u8 = 0x02;
pub const ASN_OCTET_STR: u8 = 0x04;
pub const ASN_NULL: u8 = 0x05;
pub const ASN_OBJECT_ID: u8 = 0x06;
pub const ASN_IPADDRESS: u8 = 0x40;
pub const ASN_COUNTER: u8 = 0x41;
pub const ASN_GAUGE: u8 = 0x42;
pub const ASN_TIMETICKS: u8 = 0x43;
pub const ASN_COUNTER64: u8 = 0x46;
pub const SNMP_NOSUCHOBJECT: u8 = 0x80;
pub const SNMP_NOSUCHINSTANCE: u8 = 0x81;
pub const SNMP_ENDOFMIBVIEW: u8 = 0x82;
pub const SNMP_MSG_GET: i32 = 0xA0;
pub const SNMP_MSG_SET: i32 = 0xA3;

/// The sizes the headers give (and bindgen's compile-time assertions hold the Rust side to),
/// compared with what the library writes: `snmp_sess_init` fills a whole session, so a library
/// built with other options than its headers say would overflow it. Filling a larger buffer and
/// looking for the first untouched byte tells the library's own size.
pub fn check_session_size() -> Result<(), String> {
    const GUARD: u64 = 0xA5A5_A5A5_A5A5_A5A5;
    let size = std::mem::size_of::<netsnmp_session>();
    let words = size.div_ceil(8);
    let mut buffer = vec![GUARD; words + 32];
    // SAFETY: the buffer is larger than a session and 8-byte aligned like it; snmp_sess_init only
    // writes the struct.
    unsafe { snmp_sess_init(buffer.as_mut_ptr().cast()) };
    let tail = &buffer[words..];
    if tail.iter().any(|&w| w != GUARD) {
        return Err(format!(
            "net-snmp wrote past the {size}-byte session its headers declare: headers and library differ"
        ));
    }
    Ok(())
}
