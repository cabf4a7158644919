//! Trigram filters: a one-hash Bloom filter over every 3-byte window of a block's text.
//!
//! A substring filter `|= "needle"` can match a block only if every trigram of the needle is
//! in the block, so a block whose filter lacks any of them is skipped without decompressing.
//! With one hash per trigram the per-trigram false positive rate is high (tens of percent), but
//! a needle of n bytes tests n−2 trigrams and all must hit, so the block-level false positive
//! rate falls geometrically with needle length; that lets the filter stay small.
//!
//! **Invariant:** no false negatives: [`TrigramFilter::may_contain`] is true whenever the text
//! contains the needle.

/// Multiplier for Fibonacci hashing of the 24-bit trigram value.
const GOLDEN: u32 = 0x9E37_79B1;

/// A built filter: `bits.len() * 64` bits, a power of two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrigramFilter {
    bits: Vec<u64>,
    shift: u32,
}

impl TrigramFilter {
    /// Builds a filter with about `bits_per_byte` bits per byte of text (rounded to a power of
    /// two, at least 512 bits).
    pub fn build<'a>(
        texts: impl Iterator<Item = &'a [u8]>,
        total_bytes: usize,
        bits_per_byte: f64,
    ) -> Self {
        let want = ((total_bytes as f64) * bits_per_byte).max(512.0) as u64;
        let nbits = want.next_power_of_two().min(1 << 28);
        let log2 = nbits.trailing_zeros();
        let mut f = TrigramFilter {
            bits: vec![0u64; (nbits / 64) as usize],
            shift: 32 - log2,
        };
        for t in texts {
            for w in t.windows(3) {
                let h = f.slot(w);
                f.bits[(h >> 6) as usize] |= 1u64 << (h & 63);
            }
        }
        f
    }

    fn slot(&self, w: &[u8]) -> u32 {
        let v = u32::from(w[0]) | u32::from(w[1]) << 8 | u32::from(w[2]) << 16;
        v.wrapping_mul(GOLDEN) >> self.shift
    }

    /// False only when `needle` certainly does not occur in the text. Needles shorter than
    /// three bytes always pass.
    pub fn may_contain(&self, needle: &[u8]) -> bool {
        needle.windows(3).all(|w| {
            let h = self.slot(w);
            self.bits[(h >> 6) as usize] & (1u64 << (h & 63)) != 0
        })
    }

    /// Serialized size in bytes.
    pub fn encoded_len(&self) -> usize {
        1 + self.bits.len() * 8
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push((32 - self.shift) as u8);
        for w in &self.bits {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        let (&log2, rest) = b.split_first()?;
        if !(6..=28).contains(&log2) || rest.len() != (1usize << log2) / 8 {
            return None;
        }
        let bits = rest
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        Some(TrigramFilter {
            bits,
            shift: 32 - u32::from(log2),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let lines: Vec<String> = (0..2000)
            .map(|i| format!("GET /api/v1/items/{i} 200 user=u{}", i * 7))
            .collect();
        let total = lines.iter().map(|l| l.len()).sum();
        let f = TrigramFilter::build(lines.iter().map(|l| l.as_bytes()), total, 0.25);
        for l in &lines {
            assert!(f.may_contain(l.as_bytes()));
            assert!(f.may_contain(&l.as_bytes()[3..10]));
        }
        assert!(!f.may_contain(b"NEEDLE-7f3a9c-zzqq"));
        assert!(f.may_contain(b"ab"));
        let back = TrigramFilter::decode(&{
            let mut v = Vec::new();
            f.encode(&mut v);
            v
        })
        .unwrap();
        assert_eq!(back, f);
    }
}
