//! Giving freed heap back to the system. rsyslogd's queues and omelse's batches rise and fall
//! with the traffic; glibc keeps what was freed inside its arenas (it returns only the top of the
//! main heap by itself), so the peak of a burst would stay in rsyslogd's resident set for good.
//! `malloc_trim` returns the free pages of every arena.

#![allow(unsafe_code)]

/// Returns the heap's free pages to the system (glibc only; elsewhere nothing to do).
pub(super) fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer; it only walks the allocator's own free lists, under
    // the allocator's locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
