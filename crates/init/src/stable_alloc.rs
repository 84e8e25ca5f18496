//! The init's allocator: the system's, except that small blocks aligned to
//! 128 bytes (tokio's I/O registrations, `Arc<ScheduledIo>`) are kept on
//! free lists of their own and never given back to malloc.
//!
//! Why: a gVisor restore (runsc 2022) now and then brings back epoll
//! interests that were deleted before the checkpoint (seen: the stdout and
//! stderr pipes of the last command before a full pause, reported as
//! `EPOLLHUP` in the first `epoll_wait` after the restore). tokio's token
//! for an interest is the address of its registration, long freed by then,
//! and tokio writes the readiness into it and wakes its waiters: with the
//! block back in malloc's hands that wrote into malloc's free lists, and
//! glibc aborted the restored init ("malloc_consolidate(): unaligned
//! fastbin chunk detected"). Here such a block is only ever reused for
//! another block of its size class, so a stale token names either a
//! dropped registration, left intact (readiness set on it, no waiter to
//! wake: harmless), or a live one (a spurious wake-up, which tokio
//! expects). The free-list link is kept in the block's first word, which
//! for an `Arc` is its strong count, never the registration itself.
//!
//! Bounded: the lists hold at most as many blocks as were ever live at
//! once.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;

/// The alignment of the blocks kept (tokio's `ScheduledIo` on x86_64 and
/// aarch64).
const ALIGN: usize = 128;
/// Size classes, multiples of `ALIGN`; larger blocks go to malloc.
const CLASSES: usize = 4;

pub struct StableAlloc {
    /// Per size class, the free blocks as a queue: (first, last); each
    /// free block's first word holds the next one's address (0: none).
    free: [Mutex<(usize, usize)>; CLASSES],
}

impl StableAlloc {
    pub const fn new() -> StableAlloc {
        StableAlloc {
            free: [const { Mutex::new((0, 0)) }; CLASSES],
        }
    }

    /// The size class of `layout`, if its blocks are kept here.
    fn class(layout: Layout) -> Option<usize> {
        if layout.align() != ALIGN || layout.size() == 0 {
            return None;
        }
        let class = layout.size().div_ceil(ALIGN) - 1;
        (class < CLASSES).then_some(class)
    }

    fn list(&self, class: usize) -> std::sync::MutexGuard<'_, (usize, usize)> {
        // Nothing under the lock can panic; a poisoned one is still sound.
        self.free[class]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for StableAlloc {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every block handed out is valid for its layout: from System, or a
// block of the same size class (same size and alignment) that was freed.
unsafe impl GlobalAlloc for StableAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = Self::class(layout) else {
            return System.alloc(layout);
        };
        {
            let mut list = self.list(class);
            let (first, _) = *list;
            if first != 0 {
                let next = (first as *const usize).read();
                *list = if next == 0 { (0, 0) } else { (next, list.1) };
                return first as *mut u8;
            }
        }
        // The class's whole size, so the block can serve any of its class.
        match Layout::from_size_align((class + 1) * ALIGN, ALIGN) {
            Ok(whole) => System.alloc(whole),
            // Not reached (a multiple of a power of two, aligned to it); a
            // null is an allocation failure, never a block too small.
            Err(_) => std::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(class) = Self::class(layout) else {
            return System.dealloc(ptr, layout);
        };
        let mut list = self.list(class);
        (ptr as *mut usize).write(0);
        let (first, last) = *list;
        if first == 0 {
            *list = (ptr as usize, ptr as usize);
        } else {
            (last as *mut usize).write(ptr as usize);
            *list = (first, ptr as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(align(128))]
    struct Registration {
        _bytes: [u64; 16],
    }

    /// The point of it all: tokio's registrations (in the init's allocator)
    /// land here once released, so their memory is never malloc's again.
    #[test]
    fn tokio_io_registrations_are_kept_here() {
        let kept = || {
            (0..CLASSES)
                .filter(|c| crate::ALLOC.list(*c).0 != 0)
                .count()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            for _ in 0..4 {
                let (a, b) = tokio::net::UnixStream::pair().expect("a socket pair");
                drop((a, b));
            }
        });
        // Shutting the driver down releases every registration.
        drop(rt);
        assert!(kept() > 0, "no registration block came back to the lists");
    }

    #[test]
    fn a_freed_block_is_reused_for_its_class_and_left_intact_past_its_first_word() {
        let a = StableAlloc::new();
        let layout = Layout::new::<Registration>();
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % ALIGN, 0);
            std::ptr::write_bytes(p, 0xab, layout.size());
            a.dealloc(p, layout);
            // Past the link word the block holds what its owner left:
            // what a stale reader or writer finds.
            assert!(std::slice::from_raw_parts(p.add(8), layout.size() - 8)
                .iter()
                .all(|b| *b == 0xab));
            // The same class takes it back first; another class does not.
            let q = a.alloc(layout);
            assert_eq!(q, p);
            let other = Layout::from_size_align(3 * ALIGN, ALIGN).unwrap();
            let r = a.alloc(other);
            assert_ne!(r, p);
            a.dealloc(r, other);
            a.dealloc(q, layout);
        }
    }

    #[test]
    fn the_block_freed_last_is_reused_last() {
        let a = StableAlloc::new();
        let layout = Layout::new::<Registration>();
        unsafe {
            let blocks: Vec<*mut u8> = (0..3).map(|_| a.alloc(layout)).collect();
            for b in &blocks {
                a.dealloc(*b, layout);
            }
            let again: Vec<*mut u8> = (0..4).map(|_| a.alloc(layout)).collect();
            assert_eq!(&again[..3], &blocks[..], "first freed, first reused");
            assert!(!blocks.contains(&again[3]), "then a new one");
            assert_eq!(*a.list(0), (0, 0));
            for b in again {
                a.dealloc(b, layout);
            }
        }
    }

    #[test]
    fn other_blocks_go_to_the_system() {
        assert_eq!(StableAlloc::class(Layout::new::<u64>()), None);
        let big = Layout::from_size_align(CLASSES * ALIGN + 1, ALIGN).unwrap();
        assert_eq!(StableAlloc::class(big), None);
        assert_eq!(StableAlloc::class(Layout::new::<Registration>()), Some(0));
        let a = StableAlloc::new();
        unsafe {
            let l = Layout::from_size_align(64, 64).unwrap();
            let p = a.alloc(l);
            assert!(!p.is_null());
            a.dealloc(p, l);
            assert_eq!(*a.list(0), (0, 0), "nothing kept");
        }
    }
}
