//! The relay's global allocator: mimalloc, called the way its v3 is fast.
//!
//! The `mimalloc` crate hands every Rust allocation to `mi_malloc_aligned`, and mimalloc v3
//! takes the plain path there only when the size class is a power of two: a 1,100-byte buffer
//! with alignment 1 is over-allocated and aligned by hand, and a 4 KiB read buffer goes through
//! the generic aligned path (~190 instructions under callgrind, several times per message).
//! Every mimalloc block is aligned to its size class's granularity (8 bytes, 16 above 16)
//! from a 16-byte aligned page start, so a layout whose alignment is at most 16 and divides
//! its size is served by plain `mi_malloc` with the alignment it asks for. Anything else keeps
//! the aligned calls. Upstream: purpleprotocol/mimalloc_rust PR #170 (open).

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The largest alignment plain `mi_malloc` guarantees (`MI_MAX_ALIGN_SIZE`).
const PLAIN_ALIGN: usize = 16;

pub struct RelayAlloc;

/// Can `mi_malloc(size)` be trusted with this layout's alignment?
#[inline]
fn plain(size: usize, align: usize) -> bool {
    align <= PLAIN_ALIGN && size % align == 0
}

// SAFETY: every path returns memory from mimalloc with at least the layout's alignment (see
// `plain`), or null; `dealloc` and `realloc` get pointers that came from mimalloc.
unsafe impl GlobalAlloc for RelayAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if plain(layout.size(), layout.align()) {
            unsafe { mi::mi_malloc(layout.size()) as *mut u8 }
        } else {
            unsafe { mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8 }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if plain(layout.size(), layout.align()) {
            unsafe { mi::mi_zalloc(layout.size()) as *mut u8 }
        } else {
            unsafe { mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8 }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        unsafe { mi::mi_free(ptr as *mut c_void) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if plain(new_size, layout.align()) {
            unsafe { mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8 }
        } else {
            unsafe {
                mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes up to 64 KiB (all to 512, then sampled, and two beyond) in every alignment up to 4 KiB: eight blocks
    /// held at once (consecutive blocks of a size class, not one block reused), each aligned
    /// and writable over its whole size, then grown, shrunk and freed; and zeroed blocks.
    #[test]
    fn blocks_have_the_alignment_asked_for() {
        let a = RelayAlloc;
        let sizes = (1..=512)
            .chain((513..=4096).step_by(7))
            .chain((4097..=65536).step_by(401))
            .chain([1 << 20, 3 << 20]);
        let mut checked = 0;
        for size in sizes {
            for shift in 0..=12 {
                let align = 1usize << shift;
                let Ok(layout) = Layout::from_size_align(size, align) else {
                    continue;
                };
                let big = size * 2 + 8;
                let Ok(grown) = Layout::from_size_align(big, align) else {
                    continue;
                };
                unsafe {
                    let held: Vec<*mut u8> = (0..8).map(|_| a.alloc(layout)).collect();
                    for &p in &held {
                        assert!(!p.is_null());
                        assert_eq!(p as usize % align, 0, "size {size} align {align}");
                        p.write_bytes(0xA5, size);
                    }
                    for p in held {
                        let q = a.realloc(p, layout, big);
                        assert!(!q.is_null());
                        assert_eq!(q as usize % align, 0, "grown from {size}, align {align}");
                        assert_eq!(*q.add(size - 1), 0xA5);
                        a.dealloc(q, grown);
                    }
                    let zeroed: Vec<*mut u8> = (0..8).map(|_| a.alloc_zeroed(layout)).collect();
                    for z in zeroed {
                        assert_eq!(z as usize % align, 0, "zeroed {size} align {align}");
                        assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                        a.dealloc(z, layout);
                    }
                }
                checked += 1;
            }
        }
        assert!(checked > 8_000, "{checked}");
    }

    #[test]
    fn plain_only_where_mimalloc_guarantees_the_alignment() {
        assert!(plain(4096, 1));
        assert!(plain(984, 8));
        assert!(plain(48, 16));
        assert!(!plain(24, 16), "a 24-byte block sits at 16 + 24k");
        assert!(!plain(64, 32));
        assert!(!plain(128, 64));
    }
}
