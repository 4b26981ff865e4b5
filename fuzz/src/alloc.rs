//! A counting global allocator: "no unbounded allocation from a length field" made checkable.
//! Binaries that fuzz install it with `#[global_allocator]`; it forwards to the system allocator
//! and records, per thread, the largest single request and the peak of live bytes since the
//! last [`reset`]. The fuzz loop resets before each input and fails the run when either exceeds
//! its cap.
//!
//! An allocator must not panic or unwind, so it only records; the verdict is the loop's. A
//! request the system cannot satisfy at all still aborts the process; the run is deterministic
//! for a seed, so `lode-fuzz <target> <seconds> <seed>` replays it up to that input.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Allocation figures of the current thread since the last [`reset`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocStats {
    /// The largest single allocation (or reallocation target) requested.
    pub largest: usize,
    /// The peak of bytes allocated and not yet freed on this thread.
    pub peak_live: usize,
}

thread_local! {
    // Const-initialised and without a destructor: safe to touch from inside the allocator.
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// Starts a new measurement on this thread.
pub fn reset() {
    let _ = LIVE.try_with(|l| l.set(0));
    let _ = PEAK.try_with(|p| p.set(0));
    let _ = LARGEST.try_with(|l| l.set(0));
}

/// What this thread allocated since the last [`reset`]. All zeros when [`CountingAlloc`] is not
/// the global allocator.
pub fn stats() -> AllocStats {
    AllocStats {
        largest: LARGEST.try_with(Cell::get).unwrap_or(0),
        peak_live: PEAK.try_with(Cell::get).unwrap_or(0),
    }
}

fn grew(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    let _ = LIVE.try_with(|l| {
        let live = l.get().saturating_add(size);
        l.set(live);
        let _ = PEAK.try_with(|p| p.set(p.get().max(live)));
    });
}

fn shrank(size: usize) {
    // Memory freed on another thread than it was allocated on only lowers this thread's count.
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(size)));
}

/// The system allocator plus per-thread counting.
pub struct CountingAlloc;

// SAFETY: every method forwards to `System` with the caller's layout and pointer unchanged, so
// it upholds `GlobalAlloc`'s contract exactly as `System` does; the bookkeeping touches only
// const-initialised thread-locals without destructors (no allocation, no unwinding).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: forwarded contract, see above.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: forwarded contract, see above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        // SAFETY: forwarded contract, see above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        shrank(layout.size());
        grew(new_size);
        // SAFETY: forwarded contract, see above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
