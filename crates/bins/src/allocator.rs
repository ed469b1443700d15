//! The allocator Ferry's binaries run with: mimalloc for small blocks, the
//! system's (glibc's) for the rest.
//!
//! Under many small transfers (64 connections of small dictionaries, the
//! signed log on), `perf` put about a fifth of the server's CPU in glibc's
//! `malloc` and `free`, most of it locking between threads and consolidating
//! free chunks: the small strings, JSON and tasks of every item and receipt.
//! Those blocks go to mimalloc; with it the server spent 66-71 µs of CPU per
//! item instead of 83-86 µs (3 December 2026, `dict_load` example, three
//! interleaved pairs). Larger blocks (packet and dictionary buffers) stay with
//! glibc: mimalloc copies a block that `realloc` grows, where glibc moves its
//! pages, and it keeps freed pages for a while. With mimalloc taking blocks up
//! to 128 KiB, the server's peak RSS under the memory-budget test (dictionaries
//! of 8 MiB growing in buffers) rose from 57 MiB to 70-80 MiB, against that
//! test's bound of 80; with [`LARGE`] at 4 KiB it measured 53-63 MiB.
//!
//! A block belongs to the allocator its size says, at every call: Rust passes
//! `dealloc` and `realloc` the layout the block was allocated (or last
//! reallocated) with, so a block is always freed by the allocator that made it.

#![allow(unsafe_code)] // implementing `GlobalAlloc` takes it; see the safety comments

use std::alloc::{GlobalAlloc, Layout, System};

use mimalloc::MiMalloc;

/// Blocks of this many bytes or more go to the system's allocator: above every
/// per-item string and task, below the buffers a peer can make grow.
pub const LARGE: usize = 4 * 1024;

/// The binaries' global allocator. See the module docs of `allocator.rs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Allocator;

// SAFETY: every call is passed, unchanged, to the allocator that owns the block
// (chosen by its layout's size, which Rust gives the same at allocation and
// release), or, when `realloc` moves a block across `LARGE`, made of an
// allocation from one, a copy of the bytes both sizes hold, and a release to
// the other: the contract of `GlobalAlloc::realloc`.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            if is_large(layout.size()) {
                System.alloc(layout)
            } else {
                MiMalloc.alloc(layout)
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            if is_large(layout.size()) {
                System.alloc_zeroed(layout)
            } else {
                MiMalloc.alloc_zeroed(layout)
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `layout` is the one `ptr` was allocated with, so its size
        // names the allocator that made it.
        unsafe {
            if is_large(layout.size()) {
                System.dealloc(ptr, layout);
            } else {
                MiMalloc.dealloc(ptr, layout);
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `dealloc` for the old block; a move across `LARGE`
        // allocates the new block first and releases the old one only once
        // its bytes are copied.
        unsafe {
            match (is_large(layout.size()), is_large(new_size)) {
                (true, true) => System.realloc(ptr, layout, new_size),
                (false, false) => MiMalloc.realloc(ptr, layout, new_size),
                _ => {
                    let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                    let new = self.alloc(new_layout);
                    if !new.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    new
                }
            }
        }
    }
}

fn is_large(size: usize) -> bool {
    size >= LARGE
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks grown and shrunk across `LARGE` keep their bytes, whichever
    /// allocator holds them.
    #[test]
    fn blocks_keep_their_bytes_across_the_threshold() {
        let sizes = [16, LARGE - 1, LARGE, 4 * LARGE, LARGE - 1, 7, 3 * LARGE];
        let layout = Layout::from_size_align(sizes[0], 64).unwrap();
        // SAFETY: each call gets the block and layout the one before returned.
        unsafe {
            let mut ptr = Allocator.alloc_zeroed(layout);
            assert!(!ptr.is_null());
            assert_eq!(ptr as usize % 64, 0);
            let mut size = sizes[0];
            for &new_size in &sizes[1..] {
                let kept = size.min(new_size);
                for i in 0..kept {
                    ptr.add(i).write((i % 251) as u8);
                }
                ptr = Allocator.realloc(ptr, Layout::from_size_align(size, 64).unwrap(), new_size);
                assert!(!ptr.is_null());
                assert_eq!(ptr as usize % 64, 0, "alignment kept at {new_size}");
                for i in 0..kept {
                    assert_eq!(ptr.add(i).read(), (i % 251) as u8, "byte {i} at {new_size}");
                }
                size = new_size;
            }
            Allocator.dealloc(ptr, Layout::from_size_align(size, 64).unwrap());
        }
    }
}
