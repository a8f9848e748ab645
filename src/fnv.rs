//! FNV-1a (64-bit): the crate's one hand-written hash, for values that must be the same in every
//! build and on every platform (std's `DefaultHasher` promises neither): receipt fingerprints
//! and the parts' receipt-lookup hash kept in the store, the store's held-receipt filter, the
//! per-destination concatenation reference slots. Owns only the function; it must never key a
//! map over input a peer chooses to collide (those keep std's SipHash): a collision here costs
//! at most a query or a shared counter.

/// FNV-1a's 64-bit offset basis and prime.
const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0100_0000_01b3;

/// An FNV-1a hash being fed; `Fnv1a::new().write(a).field(b).finish()`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fnv1a(u64);

impl Fnv1a {
    pub(crate) const fn new() -> Fnv1a {
        Fnv1a(OFFSET)
    }

    /// Feeds bytes.
    pub(crate) fn write(mut self, bytes: &[u8]) -> Fnv1a {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
        self
    }

    /// Feeds one field of several, then a 0xff after it (a byte no UTF-8 text holds), so that
    /// `("ab", "c")` and `("a", "bc")` hash apart.
    pub(crate) fn field(self, bytes: &[u8]) -> Fnv1a {
        self.write(bytes).write(&[0xff])
    }

    pub(crate) fn finish(self) -> u64 {
        self.0
    }
}

/// FNV-1a of `bytes`.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    Fnv1a::new().write(bytes).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_test_vectors() {
        // From the FNV reference (Fowler, Noll, Vo): FNV-1a 64-bit.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fields_are_separated() {
        let ab_c = Fnv1a::new().field(b"ab").field(b"c").finish();
        let a_bc = Fnv1a::new().field(b"a").field(b"bc").finish();
        assert_ne!(ab_c, a_bc);
        assert_eq!(ab_c, fnv1a(b"ab\xffc\xff"));
    }
}
