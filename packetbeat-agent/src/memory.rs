//! Giving memory back after a burst. The agent runs on mimalloc (see `main.rs`), which keeps the
//! pages a thread freed for that thread's next allocations; a worker whose connections all closed
//! may not allocate again for a long time, so after its connection table shrinks it asks the
//! allocator to return what it no longer uses (the "RSS comes back after a burst").

/// Returns this thread's free allocator pages to the operating system.
pub fn release_free_memory() {
    // SAFETY: `mi_collect` has no preconditions; it only frees pages with no live allocation. When
    // mimalloc is not the global allocator (tests), it collects mimalloc's own unused heap.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
