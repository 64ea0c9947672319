//! Generates the net-snmp bindings from the headers installed on this machine (Debian
//! `libsnmp-dev`), so that struct layouts are the library's own: the prebuilt `netsnmp-sys`
//! crate's layouts are those of net-snmp 5.7 and overflow a 5.9 session (see the research notes).
//! bindgen's layout tests become compile-time assertions, so a header/ABI mismatch fails the
//! build. Only what the single-session API needs is bound.
//!
//! Linking is not done here but by `#[link(name = "netsnmp")]` in `src/snmp/ffi.rs`, next to the
//! bindings it serves.

pub fn build() {
    println!("cargo:rerun-if-changed=src/snmp/netsnmp.h");
    println!("cargo:rerun-if-changed=build/snmp.rs");
    let bindings = bindgen::Builder::default()
        .header("src/snmp/netsnmp.h")
        .allowlist_function(
            "init_snmp|snmp_sess_(init|open|session|close|error|synch_response|async_send|select_info|read|timeout)\
             |snmp_pdu_create|snmp_add_null_var|snmp_add_var|snmp_free_pdu|snmp_errstring\
             |generate_Ku|snmp_api_errstring|usm_get_user|usm_remove_user|usm_free_user|netsnmp_ds_set_boolean|netsnmp_ds_set_int|netsnmp_ds_set_string|select",
        )
        .allowlist_var(
            "usmHMACSHA1AuthProtocol|usmHMAC192SHA256AuthProtocol|usmAESPrivProtocol\
             |SNMP_VERSION_(2c|3)|SNMP_SEC_LEVEL_AUTHPRIV|SNMP_SEC_MODEL_USM|USM_(AUTH|PRIV)_KU_LEN\
             |STAT_(SUCCESS|ERROR|TIMEOUT)|NETSNMP_CALLBACK_OP_(RECEIVED_MESSAGE|TIMED_OUT)\
             |NETSNMP_DS_LIBRARY_ID|NETSNMP_DS_LIB_(DONT_READ_CONFIGS|DISABLE_PERSISTENT_LOAD|DISABLE_PERSISTENT_SAVE|QUICK_PRINT|MIBDIRS|MIB_WARNINGS|MIB_ERRORS)\
             |USM_(AUTH|PRIV)_PROTO_.*_LEN|SNMP_ERR_.*|SNMPERR_SUCCESS",
        )
        .allowlist_type("netsnmp_session|netsnmp_pdu|netsnmp_variable_list|fd_set|timeval|oid")
        .layout_tests(true)
        .derive_default(false)
        .generate()
        .expect("bindgen over <net-snmp/net-snmp-includes.h> (needs libsnmp-dev and libclang-dev)");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("netsnmp.rs");
    bindings.write_to_file(&out).expect("write the bindings");
}
