//! Hands heap memory that bursts of trip events leave free back to the
//! operating system.
//!
//! A burst allocates and frees one batch per route, and glibc's malloc
//! keeps most of that memory resident: `malloc_trim` after bursts of 20,000
//! routes released about 1 KB per route (`cargo bench --bench transports
//! -- --quick`, 2-core machine). The likely reason, inferred and not
//! measured, is the allocations that outlive a burst, such as each route
//! actor's re-armed timer. They keep pages in the middle of the heap in
//! use, and free memory goes back to the system by itself only from the
//! heap's top. `malloc_trim` also releases the free pages in between.

/// Releases the free pages of every malloc arena. It walks the whole heap,
/// so call it after a burst, not per batch. Does nothing where the C
/// library is not glibc.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            /// glibc's allocator call. `pad` is the free space to keep at
            /// the heap's top.
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim takes malloc's own locks and only releases
        // memory that is free, so any thread may call it at any time.
        unsafe {
            malloc_trim(0);
        }
    }
}
