//! The agent's memory: its allocator ([`Allocator`], mimalloc) and giving memory back after a
//! burst. mimalloc keeps the pages a thread freed for that thread's next allocations; a worker
//! whose connections all closed may not allocate again for a long time, so after its connection
//! table shrinks it asks the allocator to return what it no longer uses (the issue's "RSS comes
//! back after a burst"). It also keeps the process off transparent huge pages
//! ([`disable_transparent_huge_pages`]).

/// Turns transparent huge pages off for this process (`PR_SET_THP_DISABLE`), before the agent
/// allocates anything that matters; `false` if the kernel refused.
///
/// Huge pages cost this agent more than they give. The first touch of every 2 MiB makes the kernel
/// clear a whole huge page, in the thread that touched it, and on a guest whose host hands memory
/// in lazily that costs milliseconds per fault: a 2-worker replay of the HTTP keep-alive benchmark
/// capture took about 20 of them and spent 15% of its CPU samples in `clear_page_erms`, against
/// 0.3-0.6% with ordinary pages. A capture agent's working set is a few MiB of tables and buffers,
/// touched evenly, so huge pages buy it little, and ordinary pages also keep its resident size to
/// what it uses.
///
/// Two things hand them out. mimalloc marks its arenas `MADV_HUGEPAGE` unless built with its
/// `no_thp` feature, which the workspace `Cargo.toml` asks for: it allocates before `main` runs, and
/// with the flag alone its first arenas still took two huge-page faults (3.6% of a 1-worker replay's
/// CPU samples in `clear_page_erms`, against 0.1% without them). And a host whose THP mode is
/// `always` gives huge pages to any large mapping without being asked; this flag is what covers
/// that case.
pub fn disable_transparent_huge_pages() -> bool {
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes a flag of this process.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 }
}

/// Returns this thread's free allocator pages to the operating system.
pub fn release_free_memory() {
    // SAFETY: `mi_collect` has no preconditions; it only frees pages with no live allocation. When
    // mimalloc is not the global allocator (tests), it collects mimalloc's own unused heap.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// The agent's global allocator: mimalloc, asked for plain blocks whenever the alignment allows.
///
/// `mimalloc::MiMalloc` sends every request through `mi_malloc_aligned`, whose checks cost about
/// half again as much as `mi_malloc` per block and whose slower path takes every block over 1 KiB
/// (a transaction's field list is one). Every mimalloc block is a whole number of words from an
/// aligned page start, so requests aligned to at most a word (nearly all of the agent's: strings,
/// byte buffers, lists of pointers and integers) take `mi_malloc`; the rest keep the aligned calls.
pub struct Allocator;

/// The alignment every mimalloc block has.
const WORD: usize = std::mem::size_of::<usize>();

/// Whether a plain mimalloc block satisfies `layout`'s alignment (see [`Allocator`]).
fn plain_block(layout: std::alloc::Layout) -> bool {
    layout.align() <= WORD
}

type Plain = unsafe extern "C" fn(usize) -> *mut std::ffi::c_void;
type Aligned = unsafe extern "C" fn(usize, usize) -> *mut std::ffi::c_void;

/// A new block for `layout` from `plain` when [`plain_block`], else from `aligned`.
///
/// # Safety
/// `layout` has a non-zero size (the `GlobalAlloc` contract).
#[inline(always)]
unsafe fn new_block(layout: std::alloc::Layout, plain: Plain, aligned: Aligned) -> *mut u8 {
    if plain_block(layout) {
        // SAFETY: no precondition beyond a non-zero size, which the caller guarantees.
        unsafe { plain(layout.size()).cast() }
    } else {
        // SAFETY: as above; the alignment is a power of two (a `Layout`'s always is).
        unsafe { aligned(layout.size(), layout.align()).cast() }
    }
}

// SAFETY: every block comes from mimalloc with at least the layout's alignment (a word, by the
// argument above, or the aligned calls), and every block is freed or resized by mimalloc.
unsafe impl std::alloc::GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller keeps the `GlobalAlloc` contract.
        unsafe { new_block(layout, libmimalloc_sys::mi_malloc, libmimalloc_sys::mi_malloc_aligned) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller keeps the `GlobalAlloc` contract.
        unsafe { new_block(layout, libmimalloc_sys::mi_zalloc, libmimalloc_sys::mi_zalloc_aligned) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc.
        unsafe { libmimalloc_sys::mi_free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        if plain_block(layout) {
            // SAFETY: `ptr` came from mimalloc; a resized block keeps word alignment.
            unsafe { libmimalloc_sys::mi_realloc(ptr.cast(), new_size).cast() }
        } else {
            // SAFETY: as above, with the layout's own alignment.
            unsafe { libmimalloc_sys::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast() }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout};

    use super::Allocator;

    #[test]
    fn huge_pages_are_turned_off_for_the_process() {
        assert!(super::disable_transparent_huge_pages());
        // SAFETY: PR_GET_THP_DISABLE takes no pointers; it returns the flag.
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) }, 1);
    }

    #[test]
    fn blocks_have_their_alignment_and_keep_their_bytes() {
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [align, 3 * align, 24 * align, 1000 * align, 300_000] {
                let size = size.div_ceil(align) * align;
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero sizes; every block is written within its size and freed once.
                unsafe {
                    let p = Allocator.alloc(layout);
                    assert!(!p.is_null() && p.align_offset(align) == 0, "{size}/{align}");
                    p.write_bytes(0xA5, size);
                    let q = Allocator.realloc(p, layout, size * 2 + align);
                    assert!(!q.is_null() && q.align_offset(align) == 0, "{size}/{align} resized");
                    assert!(std::slice::from_raw_parts(q, size).iter().all(|&b| b == 0xA5));
                    Allocator.dealloc(q, Layout::from_size_align(size * 2 + align, align).unwrap());
                    let z = Allocator.alloc_zeroed(layout);
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    Allocator.dealloc(z, layout);
                }
            }
        }
    }
}
