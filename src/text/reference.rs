//! Concatenation reference numbers. Owns only the per-destination counters, in fixed memory;
//! never reads a clock or a random source, so the sequence is reproducible.

/// Hands out concatenation references that rotate per destination, in fixed memory.
///
/// Destinations are hashed (FNV-1a, deterministic) into a fixed number of counters; consecutive
/// messages to one destination get consecutive references (so 256 messages in a row to one
/// number never reuse an 8-bit reference), and destinations sharing a slot still get distinct
/// values from the shared counter. Memory is `2 × slots` bytes whatever the traffic.
#[derive(Clone, Debug)]
pub struct ReferenceAllocator {
    slots: Box<[u16]>,
}

impl ReferenceAllocator {
    /// An allocator with `slots` counters (at least 1).
    pub fn new(slots: usize) -> Self {
        ReferenceAllocator {
            slots: vec![0; slots.max(1)].into_boxed_slice(),
        }
    }

    /// The next reference for `destination`.
    pub fn next(&mut self, destination: &str) -> u16 {
        let h = crate::fnv::fnv1a(destination.as_bytes());
        let i = (h % self.slots.len() as u64) as usize;
        let n = self.slots[i];
        self.slots[i] = n.wrapping_add(1);
        // Offset by the hash so different destinations do not all start at 0.
        n.wrapping_add((h >> 48) as u16)
    }
}

impl Default for ReferenceAllocator {
    /// 4096 slots (8 KiB).
    fn default() -> Self {
        ReferenceAllocator::new(4096)
    }
}
