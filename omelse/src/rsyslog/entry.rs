//! The C boundary: `modInit` and the entry points rsyslogd calls. The only module of omelse
//! allowed `unsafe` code (the crate denies it elsewhere); every `unsafe` block says why it is
//! sound. Every entry point runs inside [`guard`]: thread cancellation is disabled for the call
//! (rsyslog may `pthread_cancel` a worker at shutdown, and a forced unwind through Rust frames is
//! undefined behaviour) and a panic is caught and reported, never unwound into C.
//!
//! What rsyslog promises the entry points (rsyslog-module-abi.md): pointers it passes are null or
//! valid for the call; `data` is an instance this module created in `newActInst` and frees only in
//! `freeInstance`, after every worker of it is freed; a worker handle lives from
//! `createWrkrInstance` to `freeWrkrInstance`.

#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::{Mutex, OnceLock};

use super::abi::*;

/// glibc's values for `pthread_setcancelstate`.
const PTHREAD_CANCEL_DISABLE: c_int = 1;

extern "C" {
    /// From libc (not in the `libc` crate's list): guards entry points against `pthread_cancel`.
    fn pthread_setcancelstate(state: c_int, old: *mut c_int) -> c_int;
}
use super::config::{ActionConfig, ParamType, ParamValue, PARAMS};
use super::sink::{Outcome, Severity, Sink};
use super::template::{TEMPLATE, TEMPLATE_NAME};

/// Name used in `action(type="omelse")`.
static CONFIG_NAME: &CStr = c"omelse";

/// One `action()`: shared by its worker threads.
struct Instance {
    sink: Sink,
}

/// The instances alive (made by `newActInst`, not yet freed), for `activateCnf`.
static INSTANCES: Mutex<Vec<InstanceHandle>> = Mutex::new(Vec::new());

/// An instance's address in [`INSTANCES`].
struct InstanceHandle(*const Instance);

// SAFETY: only dereferenced under the INSTANCES lock, which freeInstance takes before it frees
// the instance; a Sink is shared by rsyslog's threads anyway.
unsafe impl Send for InstanceHandle {}

/// One worker thread's handle on its action.
struct Worker {
    instance: *const Instance,
    /// The turn of the transaction in progress (see `turns`); only this worker's thread uses it.
    turn: std::cell::Cell<Option<u64>>,
}

static IMPORTS: OnceLock<Imports> = OnceLock::new();

fn imports() -> &'static Imports {
    IMPORTS
        .get()
        .expect("modInit resolved the imports before any other entry point")
}

/// Looks up the rsyslogd functions omelse calls; names the first one missing.
fn resolve_imports() -> Result<Imports, &'static str> {
    fn symbol(name: &'static CStr) -> Result<*mut c_void, &'static str> {
        // SAFETY: dlsym with a NUL-terminated name only looks the symbol up.
        let address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        if address.is_null() {
            Err(name.to_str().unwrap_or("?"))
        } else {
            Ok(address)
        }
    }
    // SAFETY: each symbol is non-null and has the signature its Imports field declares (rsyslog
    // 8.2302 headers); a data pointer and a function pointer have the same size here.
    unsafe {
        Ok(Imports {
            log_msg: std::mem::transmute::<*mut c_void, LogMsgFn>(symbol(c"LogMsg")?),
            nvlst_get_params: std::mem::transmute::<*mut c_void, NvlstGetParamsFn>(symbol(c"nvlstGetParams")?),
            cnfparamvals_destruct: std::mem::transmute::<*mut c_void, CnfparamvalsDestructFn>(symbol(
                c"cnfparamvalsDestruct",
            )?),
            omsr_construct: std::mem::transmute::<*mut c_void, OmsrConstructFn>(symbol(c"OMSRconstruct")?),
            omsr_set_entry: std::mem::transmute::<*mut c_void, OmsrSetEntryFn>(symbol(c"OMSRsetEntry")?),
            omsr_destruct: std::mem::transmute::<*mut c_void, OmsrDestructFn>(symbol(c"OMSRdestruct")?),
            tpl_add_line: std::mem::transmute::<*mut c_void, TplAddLineFn>(symbol(c"tplAddLine")?),
        })
    }
}

/// rsyslog's only entry into the module.
///
/// # Safety
/// Called by rsyslogd's module loader with valid out-pointers.
// Under another name in the crate's unit tests: they also link the crate's library through
// else-tests (a dev-dependency that depends on omelse), which defines `modInit` already.
#[cfg_attr(not(test), no_mangle)]
#[cfg_attr(test, export_name = "omelse_unit_test_modInit")]
#[allow(non_snake_case)]
pub unsafe extern "C" fn modInit(
    requested: c_int,
    provided: *mut c_int,
    query: *mut ModuleQueryFn,
    host_query: Option<HostQueryFn>,
    _mod_info: *mut c_void,
) -> RsRetVal {
    guard(RS_RET_ERR, || {
        if provided.is_null() || query.is_null() {
            return RS_RET_PARAM_ERROR;
        }
        if requested != CURR_MOD_IF_VERSION {
            return RS_RET_MISSING_INTERFACE;
        }
        match resolve_imports() {
            Ok(imports) => {
                let _ = IMPORTS.set(imports);
            }
            Err(missing) => {
                eprintln!("omelse: this rsyslogd lacks {missing}; use omelse-ext instead");
                return RS_RET_MISSING_INTERFACE;
            }
        }
        // The transactional interface needs the core's batching support.
        if let Some(host_query) = host_query {
            let mut function: *const c_void = ptr::null();
            // SAFETY: rsyslog's query function takes a NUL-terminated name and an out-pointer.
            let found = unsafe { host_query(c"queryCoreFeatureSupport".as_ptr().cast(), &mut function) };
            if found == RS_RET_OK && !function.is_null() {
                // SAFETY: the function rsyslog returned for this name has this signature.
                let supports: QueryCoreFeatureSupportFn = unsafe { std::mem::transmute(function) };
                let mut batching: c_int = 0;
                // SAFETY: it writes one int through the pointer it is given.
                unsafe { supports(&mut batching, CORE_FEATURE_BATCHING) };
                if batching == 0 {
                    log(
                        Severity::Error,
                        "omelse: this rsyslogd does not support batching; use omelse-ext instead",
                    );
                    return RS_RET_ERR;
                }
            }
        }
        // SAFETY: both out-pointers were checked non-null above; rsyslog passes them writable.
        unsafe {
            *provided = CURR_MOD_IF_VERSION;
            *query = query_entry_point;
        }
        RS_RET_OK
    })
}

/// Hands rsyslog the entry point it names, or says it has none (-1004: any other code aborts the load).
unsafe extern "C" fn query_entry_point(name: *const u8, out: *mut *const c_void) -> RsRetVal {
    guard(RS_RET_MODULE_ENTRY_POINT_NOT_FOUND, || {
        if name.is_null() || out.is_null() {
            return RS_RET_PARAM_ERROR;
        }
        // SAFETY: non-null (checked), and rsyslog passes a NUL-terminated entry point name.
        let name = unsafe { CStr::from_ptr(name.cast()) }.to_bytes();
        let function: *const c_void = match name {
            b"getType" => get_type as *const c_void,
            b"getKeepType" => get_keep_type as *const c_void,
            b"modGetID" => mod_get_id as *const c_void,
            b"modExit" => mod_exit as *const c_void,
            b"getModCnfName" => get_mod_cnf_name as *const c_void,
            b"beginCnfLoad" => begin_cnf_load as *const c_void,
            b"endCnfLoad" | b"checkCnf" => cnf_ok as *const c_void,
            b"activateCnf" => activate_cnf as *const c_void,
            b"freeCnf" => free_cnf as *const c_void,
            b"parseSelectorAct" => parse_selector_act as *const c_void,
            b"newActInst" => new_act_inst as *const c_void,
            b"dbgPrintInstInfo" => dbg_print_inst_info as *const c_void,
            b"freeInstance" => free_instance as *const c_void,
            b"createWrkrInstance" => create_wrkr_instance as *const c_void,
            b"freeWrkrInstance" => free_wrkr_instance as *const c_void,
            b"tryResume" => try_resume as *const c_void,
            b"beginTransaction" => begin_transaction as *const c_void,
            b"commitTransaction" => commit_transaction as *const c_void,
            b"doHUP" => do_hup as *const c_void,
            _ => ptr::null(),
        };
        // SAFETY: `out` was checked non-null above; rsyslog passes it writable.
        unsafe { *out = function };
        if function.is_null() {
            RS_RET_MODULE_ENTRY_POINT_NOT_FOUND
        } else {
            RS_RET_OK
        }
    })
}

unsafe extern "C" fn get_type(out: *mut c_int) -> RsRetVal {
    // SAFETY: rsyslog passes `out` null or writable.
    guard(RS_RET_ERR, || unsafe { write_out(out, EMOD_OUT) })
}

/// KEEP: never `dlclose` a Rust library that may have left thread-locals behind.
unsafe extern "C" fn get_keep_type(out: *mut c_int) -> RsRetVal {
    // SAFETY: rsyslog passes `out` null or writable.
    guard(RS_RET_ERR, || unsafe { write_out(out, EMOD_KEEP) })
}

unsafe extern "C" fn mod_get_id(out: *mut *mut c_void) -> RsRetVal {
    // SAFETY: rsyslog passes `out` null or writable.
    guard(RS_RET_ERR, || unsafe { write_out(out, mod_exit as *mut c_void) })
}

unsafe extern "C" fn mod_exit() -> RsRetVal {
    RS_RET_OK
}

unsafe extern "C" fn get_mod_cnf_name(out: *mut *const u8) -> RsRetVal {
    // SAFETY: rsyslog passes `out` null or writable; the name is static.
    guard(RS_RET_ERR, || unsafe { write_out(out, CONFIG_NAME.as_ptr().cast()) })
}

/// The module-global config object: omelse has no `module()` parameters, but rsyslog wants one.
struct ModConf;

/// Defines omelse's own template in the config being loaded, so users need not write one.
unsafe extern "C" fn begin_cnf_load(mod_conf: *mut *mut c_void, conf: *mut c_void) -> RsRetVal {
    guard(RS_RET_ERR, || {
        if mod_conf.is_null() {
            return RS_RET_PARAM_ERROR;
        }
        // SAFETY: `mod_conf` was checked non-null above; rsyslog passes it writable.
        unsafe { *mod_conf = Box::into_raw(Box::new(ModConf)).cast() };
        if conf.is_null() {
            return RS_RET_OK;
        }
        let name = CString::new(TEMPLATE_NAME).expect("no NUL in the template name");
        let line = CString::new(format!("\"{TEMPLATE}\"")).expect("no NUL in the template");
        // rsyslog reads (and advances) the pointer; the text stays ours and may go after the call.
        let mut rest = line.as_ptr() as *mut u8;
        // SAFETY: `conf` is the config being loaded (non-null, checked); both strings are
        // NUL-terminated and outlive the call, which only reads them.
        let template = unsafe { (imports().tpl_add_line)(conf, name.as_ptr(), &mut rest) };
        if template.is_null() {
            log(Severity::Error, "omelse: could not define its template OmElseFormat");
            return RS_RET_ERR;
        }
        RS_RET_OK
    })
}

unsafe extern "C" fn cnf_ok(_mod_conf: *mut c_void) -> RsRetVal {
    RS_RET_OK
}

/// Whether an action alive already keeps its lines in `path` (two would mix their queues).
fn spool_file_taken(path: &str) -> bool {
    let mut taken = false;
    for_each_instance(|instance| taken |= instance.sink.config().spool_file.as_deref() == Some(path));
    taken
}

/// Runs `f` on every instance alive, under the [`INSTANCES`] lock.
fn for_each_instance(mut f: impl FnMut(&Instance)) {
    let instances = INSTANCES.lock().unwrap_or_else(|e| e.into_inner());
    for handle in instances.iter() {
        // SAFETY: in INSTANCES, so not freed (freeInstance removes it under this lock first).
        if let Some(instance) = unsafe { handle.0.as_ref() } {
            f(instance);
        }
    }
}

/// After the fork and the privilege drop, the first moment threads may start: an action whose
/// spool file holds lines (left by the rsyslogd before) writes them now, not only once the next
/// line comes.
unsafe extern "C" fn activate_cnf(_mod_conf: *mut c_void) -> RsRetVal {
    guard(RS_RET_OK, || {
        for_each_instance(|instance| instance.sink.start_if_spooled());
        RS_RET_OK
    })
}

unsafe extern "C" fn free_cnf(mod_conf: *mut c_void) -> RsRetVal {
    guard(RS_RET_ERR, || {
        if !mod_conf.is_null() {
            // SAFETY: the pointer is the box `begin_cnf_load` made; rsyslog frees it once.
            drop(unsafe { Box::from_raw(mod_conf.cast::<ModConf>()) });
        }
        RS_RET_OK
    })
}

/// Legacy `*.* :omelse:` lines are not ours: let the next module try (-2001).
unsafe extern "C" fn parse_selector_act(
    _line: *mut *mut u8,
    _data: *mut *mut c_void,
    _omsr: *mut *mut omodStringRequest,
) -> RsRetVal {
    RS_RET_CONFLINE_UNPROCESSED
}

/// The parameter block handed to `nvlstGetParams`, built once from [`PARAMS`].
struct ParamBlock {
    _names: Vec<CString>,
    descriptors: Vec<cnfparamdescr>,
    block: cnfparamblk,
}

// SAFETY: the raw pointers point into the block's own vectors, which are never changed after
// creation (the block is immutable and static): sharing or moving it across threads is sound.
unsafe impl Send for ParamBlock {}
// SAFETY: as for Send: nothing in the block is ever written after creation.
unsafe impl Sync for ParamBlock {}

fn param_block() -> &'static ParamBlock {
    static BLOCK: OnceLock<ParamBlock> = OnceLock::new();
    BLOCK.get_or_init(|| {
        let names: Vec<CString> = PARAMS
            .iter()
            .map(|p| CString::new(p.name).expect("no NUL in names"))
            .collect();
        let descriptors: Vec<cnfparamdescr> = PARAMS
            .iter()
            .zip(&names)
            .map(|(spec, name)| cnfparamdescr {
                name: name.as_ptr(),
                type_: match spec.kind {
                    ParamType::String => E_CMD_HDLR_STRING,
                    ParamType::Word => E_CMD_HDLR_GET_WORD,
                    ParamType::PositiveInt => E_CMD_HDLR_INT,
                    ParamType::Binary => E_CMD_HDLR_BINARY,
                },
                flags: 0,
            })
            .collect();
        let block = cnfparamblk {
            version: CNFPARAMBLK_VERSION,
            nParams: descriptors.len() as u16,
            descr: descriptors.as_ptr(),
        };
        ParamBlock {
            _names: names,
            descriptors,
            block,
        }
    })
}

/// Copies a string value out of rsyslog's `es_str_t` (bytes follow the 8-byte header).
///
/// # Safety
/// `value` is null or an `es_str_t` rsyslog made, valid for the call.
unsafe fn es_string(value: *const es_str_t) -> String {
    if value.is_null() {
        return String::new();
    }
    // SAFETY: non-null, and an `es_str_t` by the caller's promise.
    let len = unsafe { (*value).lenStr } as usize;
    // SAFETY: rsyslog's es_str_t keeps its `lenStr` bytes right after the 8-byte header.
    let bytes = unsafe { std::slice::from_raw_parts(value.cast::<u8>().add(8), len) };
    String::from_utf8_lossy(bytes).into_owned()
}

/// One `action(type="omelse" …)`: reads and checks its parameters, asks for omelse's template.
unsafe extern "C" fn new_act_inst(
    _mod_name: *mut u8,
    list: *mut nvlst,
    data: *mut *mut c_void,
    omsr: *mut *mut omodStringRequest,
) -> RsRetVal {
    guard(RS_RET_ERR, || {
        if data.is_null() || omsr.is_null() {
            return RS_RET_PARAM_ERROR;
        }
        // SAFETY: `omsr` was checked non-null above; rsyslog passes it writable.
        unsafe { *omsr = ptr::null_mut() };
        let block = param_block();
        // SAFETY: `list` is the action's parameter list rsyslog passes; the block is static and
        // describes PARAMS; a null third argument asks rsyslog to allocate the values.
        let values = unsafe { (imports().nvlst_get_params)(list, &block.block, ptr::null_mut()) };
        if values.is_null() {
            // rsyslog already said what was wrong.
            return RS_RET_MISSING_CNFPARAMS;
        }
        let mut given = Vec::new();
        for (index, spec) in PARAMS.iter().enumerate() {
            // SAFETY: rsyslog returns one value per parameter of the block, in its order.
            let value = unsafe { &*values.add(index) };
            if value.bUsed == 0 {
                continue;
            }
            let parsed = match value.val.datatype as u8 {
                // SAFETY: datatype 'N' says the union holds the number.
                b'N' => ParamValue::Number(unsafe { value.val.d.n }),
                // SAFETY: datatype 'S' says the union holds an es_str_t, valid until destructed.
                b'S' => ParamValue::Text(unsafe { es_string(value.val.d.estr) }),
                _ => continue,
            };
            given.push((spec.name, parsed));
        }
        // SAFETY: the values nvlstGetParams returned, with the block they were read with; not
        // used after this.
        unsafe { (imports().cnfparamvals_destruct)(values, &block.block) };
        debug_assert_eq!(block.descriptors.len(), PARAMS.len());
        let config = match ActionConfig::from_params(&given) {
            Ok(config) => config,
            Err(e) => {
                log(Severity::Error, &e.to_string());
                return RS_RET_CONF_PARAM_INVLD;
            }
        };
        if let Some(path) = config.spool_file.as_deref().filter(|path| spool_file_taken(path)) {
            log(
                Severity::Error,
                &format!("omelse: spool.file {path} is already another action's: give each action its own"),
            );
            return RS_RET_CONF_PARAM_INVLD;
        }
        // SAFETY: `omsr` is non-null (checked) and writable; one entry is asked for.
        if unsafe { (imports().omsr_construct)(omsr, 1) } != RS_RET_OK {
            return RS_RET_ERR;
        }
        // rsyslog frees the template name with free(): it must come from malloc.
        let template = CString::new(TEMPLATE_NAME).expect("no NUL in the template name");
        // SAFETY: strdup copies a NUL-terminated string.
        let name = unsafe { libc::strdup(template.as_ptr()) };
        // SAFETY: `*omsr` is the request OMSRconstruct made, with entry 0; it takes over `name`.
        let set = !name.is_null()
            && unsafe { (imports().omsr_set_entry)(*omsr, 0, name.cast(), OMSR_NO_RQD_TPL_OPTS) } == RS_RET_OK;
        if !set {
            // SAFETY: the request OMSRconstruct made, destroyed once; `*omsr` is then cleared.
            unsafe {
                (imports().omsr_destruct)(*omsr);
                *omsr = ptr::null_mut();
            }
            return RS_RET_ERR;
        }
        let instance = Box::into_raw(Box::new(Instance {
            sink: Sink::new(config, log),
        }));
        INSTANCES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(InstanceHandle(instance));
        // SAFETY: `data` was checked non-null above; rsyslog passes it writable.
        unsafe { *data = instance.cast() };
        RS_RET_OK
    })
}

unsafe extern "C" fn dbg_print_inst_info(_data: *mut c_void) -> RsRetVal {
    RS_RET_OK
}

unsafe extern "C" fn free_instance(data: *mut c_void) -> RsRetVal {
    guard(RS_RET_ERR, || {
        if !data.is_null() {
            let instance = data.cast::<Instance>();
            INSTANCES
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|handle| !ptr::eq(handle.0, instance));
            // SAFETY: the instance `new_act_inst` boxed; rsyslog frees it once, after its workers.
            drop(unsafe { Box::from_raw(instance) });
        }
        RS_RET_OK
    })
}

unsafe extern "C" fn create_wrkr_instance(worker: *mut *mut c_void, data: *mut c_void) -> RsRetVal {
    guard(RS_RET_ERR, || {
        if worker.is_null() || data.is_null() {
            return RS_RET_PARAM_ERROR;
        }
        let handle = Box::new(Worker {
            instance: data.cast::<Instance>(),
            turn: std::cell::Cell::new(None),
        });
        // SAFETY: `worker` was checked non-null above; rsyslog passes it writable.
        unsafe { *worker = Box::into_raw(handle).cast() };
        RS_RET_OK
    })
}

unsafe extern "C" fn free_wrkr_instance(worker: *mut c_void) -> RsRetVal {
    guard(RS_RET_ERR, || {
        if !worker.is_null() {
            // SAFETY: the handle `create_wrkr_instance` boxed; rsyslog frees it once.
            drop(unsafe { Box::from_raw(worker.cast::<Worker>()) });
        }
        RS_RET_OK
    })
}

/// The sink of a worker; rsyslog keeps the instance alive longer than its workers.
///
/// # Safety
/// `worker` is null or a handle `create_wrkr_instance` made and rsyslog has not freed.
unsafe fn sink<'a>(worker: *mut c_void) -> Option<&'a Sink> {
    // SAFETY: by the caller's promise.
    unsafe { worker_and_sink(worker) }.map(|(_, sink)| sink)
}

/// A worker's handle and its sink.
///
/// # Safety
/// As for [`sink`].
unsafe fn worker_and_sink<'a>(worker: *mut c_void) -> Option<(&'a Worker, &'a Sink)> {
    // SAFETY: null or a live worker handle, by the caller's promise.
    let worker = unsafe { worker.cast::<Worker>().as_ref() }?;
    // SAFETY: a worker's instance outlives the worker (rsyslog frees workers first).
    Some((worker, &unsafe { worker.instance.as_ref() }?.sink))
}

unsafe extern "C" fn try_resume(worker: *mut c_void) -> RsRetVal {
    guard(RS_RET_SUSPENDED, || {
        // SAFETY: rsyslog passes its worker handle.
        match unsafe { sink(worker) }.map(Sink::try_resume) {
            Some(Outcome::Committed) => RS_RET_OK,
            _ => RS_RET_SUSPENDED,
        }
    })
}

/// SUSPENDED when the sink does not take batches ([`Sink::takes_batches`]): rsyslog then keeps
/// the batch in its queue instead of marking it done before the commit. Otherwise the batch
/// takes its turn: rsyslog calls this at a batch's first line, right after the dequeue.
unsafe extern "C" fn begin_transaction(worker: *mut c_void) -> RsRetVal {
    // SAFETY: rsyslog passes its worker handle.
    guard(RS_RET_SUSPENDED, || match unsafe { worker_and_sink(worker) } {
        Some((worker, sink)) if sink.takes_batches() => {
            worker.turn.set(Some(sink.begin()));
            RS_RET_OK
        }
        _ => RS_RET_SUSPENDED,
    })
}

/// One batch: copies the rendered lines and waits for their commit. Never DATAFAIL (it makes
/// rsyslog write the next batch twice): a line omelse cannot read is stored raw instead.
unsafe extern "C" fn commit_transaction(worker: *mut c_void, params: *mut actWrkrIParams, count: u32) -> RsRetVal {
    guard(RS_RET_SUSPENDED, || {
        // SAFETY: rsyslog passes its worker handle.
        let Some((worker, sink)) = (unsafe { worker_and_sink(worker) }) else {
            return RS_RET_SUSPENDED;
        };
        let turn = worker.turn.take();
        if params.is_null() && count > 0 {
            // Its turn passes, so that the other workers' batches do not wait for it.
            sink.commit(turn, Vec::new());
            return RS_RET_SUSPENDED;
        }
        let mut lines = Vec::with_capacity(count as usize);
        for index in 0..count as usize {
            // SAFETY: rsyslog passes `count` parameter sets (non-null, checked) for the batch.
            let param = unsafe { &*params.add(index) };
            if param.param.is_null() {
                continue;
            }
            // SAFETY: a non-null rendered string of `lenStr` bytes, valid during the call.
            let bytes = unsafe { std::slice::from_raw_parts(param.param, param.lenStr as usize) };
            if sink.admit(bytes) {
                lines.push(String::from_utf8_lossy(bytes).into_owned());
            }
        }
        fault_injection(&lines);
        match sink.commit(turn, lines) {
            Outcome::Committed => RS_RET_OK,
            Outcome::Suspended(_) => RS_RET_SUSPENDED,
        }
    })
}

/// SIGHUP (main thread, concurrent with commits): only sets a flag; the commit thread reconnects.
unsafe extern "C" fn do_hup(data: *mut c_void) -> RsRetVal {
    guard(RS_RET_OK, || {
        // SAFETY: null or the instance `new_act_inst` made, alive until freeInstance.
        if let Some(instance) = unsafe { data.cast::<Instance>().as_ref() } {
            instance.sink.request_reconnect();
        }
        RS_RET_OK
    })
}

/// Test builds only: a line containing `OMELSE-FAULT-PANIC` makes the commit panic, to prove that
/// the panic stays on this side of the boundary.
#[cfg(feature = "fault-injection")]
fn fault_injection(lines: &[String]) {
    if lines.iter().any(|l| l.contains("OMELSE-FAULT-PANIC")) {
        panic!("omelse fault injection: panic in commitTransaction");
    }
}

#[cfg(not(feature = "fault-injection"))]
fn fault_injection(_lines: &[String]) {}

/// Writes an entry point's answer through its out-pointer.
///
/// # Safety
/// `out` is null (answered with a parameter error) or valid for a write of `T`.
unsafe fn write_out<T>(out: *mut T, value: T) -> RsRetVal {
    if out.is_null() {
        return RS_RET_PARAM_ERROR;
    }
    // SAFETY: non-null, and writable by the caller's promise.
    unsafe { *out = value };
    RS_RET_OK
}

/// Runs one entry point's body with cancellation disabled and panics caught.
fn guard(on_panic: RsRetVal, body: impl FnOnce() -> RsRetVal) -> RsRetVal {
    let mut previous: c_int = 0;
    // SAFETY: changes only this thread's cancel state; `previous` receives the old one.
    unsafe { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &mut previous) };
    let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        log(
            Severity::Error,
            &format!("omelse: internal error caught at the rsyslog boundary: {what}"),
        );
        on_panic
    });
    // SAFETY: puts back the cancel state saved above.
    unsafe { pthread_setcancelstate(previous, &mut previous) };
    result
}

/// Reports to rsyslog's own log (`LogMsg`).
fn log(severity: Severity, text: &str) {
    let level = match severity {
        Severity::Error => LOG_ERR,
        Severity::Warning => LOG_WARNING,
        Severity::Info => LOG_INFO,
    };
    match IMPORTS.get() {
        Some(imports) => {
            let text = CString::new(text.replace('\0', " ")).unwrap_or_default();
            // SAFETY: LogMsg with the format "%s" reads one NUL-terminated string, given.
            unsafe { (imports.log_msg)(0, NO_ERRCODE, level, c"%s".as_ptr(), text.as_ptr() as *const c_char) };
        }
        None => eprintln!("{text}"),
    }
}
