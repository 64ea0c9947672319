//! rsyslog 8.2302's native output-module ABI, declared by hand from the facts in
//! `shared/design/rsyslog-module-abi.md` (no rsyslog source copied). x86_64 layouts; the tests at
//! the end pin sizes and offsets to the measured values.

#![allow(non_camel_case_types, non_snake_case, dead_code)]

use std::ffi::{c_char, c_int, c_void};

/// rsyslog's `rsRetVal`: 0 is OK, errors are negative.
pub type RsRetVal = i32;

pub const RS_RET_OK: RsRetVal = 0;
pub const RS_RET_PARAM_ERROR: RsRetVal = -1000;
pub const RS_RET_MISSING_INTERFACE: RsRetVal = -1001;
pub const RS_RET_MODULE_ENTRY_POINT_NOT_FOUND: RsRetVal = -1004;
pub const RS_RET_CONFLINE_UNPROCESSED: RsRetVal = -2001;
pub const RS_RET_SUSPENDED: RsRetVal = -2007;
pub const RS_RET_MISSING_CNFPARAMS: RsRetVal = -2211;
pub const RS_RET_CONF_PARAM_INVLD: RsRetVal = -2425;
pub const RS_RET_ERR: RsRetVal = -3000;

/// The only interface version rsyslogd 8.x speaks.
pub const CURR_MOD_IF_VERSION: c_int = 6;
pub const EMOD_OUT: c_int = 1;
pub const EMOD_KEEP: c_int = 1;
pub const CORE_FEATURE_BATCHING: u32 = 1;
pub const CNFPARAMBLK_VERSION: u16 = 1;
pub const OMSR_NO_RQD_TPL_OPTS: c_int = 0;
pub const NO_ERRCODE: c_int = -1;
pub const LOG_ERR: c_int = 3;
pub const LOG_WARNING: c_int = 4;
pub const LOG_INFO: c_int = 6;

/// Parameter types (`ecslCmdHdrlType`) used by omelse.
pub const E_CMD_HDLR_BINARY: c_int = 4;
pub const E_CMD_HDLR_INT: c_int = 6;
pub const E_CMD_HDLR_POSITIVE_INT: c_int = 8;
pub const E_CMD_HDLR_GET_WORD: c_int = 13;
pub const E_CMD_HDLR_STRING: c_int = 14;

/// One rendered template string for one message, owned by rsyslog for the call only.
#[repr(C)]
pub struct actWrkrIParams {
    pub param: *mut u8,
    pub lenBuf: u32,
    pub lenStr: u32,
}

/// libestr's string: a header followed directly by the bytes (not NUL-terminated).
#[repr(C)]
pub struct es_str_t {
    pub lenStr: u32,
    pub lenBuf: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union svar_data {
    pub estr: *mut es_str_t,
    pub ar: *mut c_void,
    pub n: i64,
    pub json: *mut c_void,
}

#[repr(C)]
pub struct svar {
    pub d: svar_data,
    pub datatype: c_char,
}

#[repr(C)]
pub struct cnfparamvals {
    pub val: svar,
    pub bUsed: u8,
}

#[repr(C)]
pub struct cnfparamdescr {
    pub name: *const c_char,
    pub type_: c_int,
    pub flags: u32,
}

#[repr(C)]
pub struct cnfparamblk {
    pub version: u16,
    pub nParams: u16,
    pub descr: *const cnfparamdescr,
}

/// Opaque to modules: only passed through to `nvlstGetParams`.
#[repr(C)]
pub struct nvlst {
    _private: [u8; 0],
}

/// Opaque to modules: built with `OMSRconstruct` / `OMSRsetEntry`.
#[repr(C)]
pub struct omodStringRequest {
    _private: [u8; 0],
}

/// The host's query function, handed to `modInit`.
pub type HostQueryFn = unsafe extern "C" fn(name: *const u8, out: *mut *const c_void) -> RsRetVal;
pub type QueryCoreFeatureSupportFn = unsafe extern "C" fn(p_bool: *mut c_int, feature: u32) -> RsRetVal;
/// The module's query function, returned from `modInit`.
pub type ModuleQueryFn = unsafe extern "C" fn(name: *const u8, out: *mut *const c_void) -> RsRetVal;

/// The rsyslogd functions omelse calls. They are looked up in the running process with `dlsym`
/// when rsyslogd loads the module (rsyslogd exports them; modules are not linked against it), so
/// that the library also links into programs and tests that are not rsyslogd.
pub type LogMsgFn = unsafe extern "C" fn(errno: c_int, code: c_int, severity: c_int, fmt: *const c_char, ...);
pub type NvlstGetParamsFn =
    unsafe extern "C" fn(lst: *mut nvlst, blk: *const cnfparamblk, vals: *mut cnfparamvals) -> *mut cnfparamvals;
pub type CnfparamvalsDestructFn = unsafe extern "C" fn(vals: *const cnfparamvals, blk: *const cnfparamblk);
pub type OmsrConstructFn = unsafe extern "C" fn(pp: *mut *mut omodStringRequest, n: c_int) -> RsRetVal;
pub type OmsrSetEntryFn =
    unsafe extern "C" fn(p: *mut omodStringRequest, i: c_int, tpl_name: *mut u8, opts: c_int) -> RsRetVal;
pub type OmsrDestructFn = unsafe extern "C" fn(p: *mut omodStringRequest) -> RsRetVal;
/// Defines a template from a legacy `$template` line: the name, and the rest after the comma.
pub type TplAddLineFn = unsafe extern "C" fn(conf: *mut c_void, name: *const c_char, rest: *mut *mut u8) -> *mut c_void;

pub struct Imports {
    pub log_msg: LogMsgFn,
    pub nvlst_get_params: NvlstGetParamsFn,
    pub cnfparamvals_destruct: CnfparamvalsDestructFn,
    pub omsr_construct: OmsrConstructFn,
    pub omsr_set_entry: OmsrSetEntryFn,
    pub omsr_destruct: OmsrDestructFn,
    pub tpl_add_line: TplAddLineFn,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    fn layouts_match_rsyslog_8_2302_on_x86_64() {
        assert_eq!(size_of::<actWrkrIParams>(), 16);
        assert_eq!(offset_of!(actWrkrIParams, lenBuf), 8);
        assert_eq!(offset_of!(actWrkrIParams, lenStr), 12);
        assert_eq!(size_of::<es_str_t>(), 8);
        assert_eq!(size_of::<svar>(), 16);
        assert_eq!(align_of::<svar>(), 8);
        assert_eq!(offset_of!(svar, datatype), 8);
        assert_eq!(size_of::<cnfparamvals>(), 24);
        assert_eq!(offset_of!(cnfparamvals, bUsed), 16);
        assert_eq!(size_of::<cnfparamdescr>(), 16);
        assert_eq!(offset_of!(cnfparamdescr, type_), 8);
        assert_eq!(offset_of!(cnfparamdescr, flags), 12);
        assert_eq!(size_of::<cnfparamblk>(), 16);
        assert_eq!(offset_of!(cnfparamblk, nParams), 2);
        assert_eq!(offset_of!(cnfparamblk, descr), 8);
    }
}
