//! Trigram filters: a one-hash Bloom filter over every 3-byte window of a block's text.
//!
//! A substring filter `|= "needle"` can match a block only if every trigram of the needle is
//! in the block, so a block whose filter lacks any of them is skipped without decompressing.
//! With one hash per trigram the per-trigram false positive rate is high (tens of percent), but
//! a needle of n bytes tests n−2 trigrams and all must hit, so the block-level false positive
//! rate falls geometrically with needle length; that lets the filter stay small.
//!
//! A block's filter is first built at the configured bits per byte of text, then halved while
//! at most [`MAX_FILL`] of its bits would be set: log text repeats itself, so a block holds far
//! fewer distinct trigrams than bytes (about one per 30 bytes on the bench dataset), and sizing
//! by bytes alone left nine tenths of the bits unset. Halving is exact because a slot is the
//! top bits of the trigram's hash: dropping one bit of the slot ORs neighbouring bit pairs, and
//! the result equals a filter built at half the size.
//! Because of that, the build of a large filter first tries a quarter of the configured size
//! and only builds the full size when the quarter is too full; the result is the same filter.
//!
//! Searches test a filter in place, over its encoded bytes ([`FilterView`]), without copying it.
//!
//! **Invariant:** no false negatives: [`FilterView::may_contain`] is true whenever the text
//! contains the needle.

/// Multiplier for Fibonacci hashing of the 24-bit trigram value.
const GOLDEN: u32 = 0x9E37_79B1;

/// Largest share of set bits a filter is folded down to. At one third, a needle of n bytes
/// passes a block that lacks it with probability at most about 3^-(n-2).
const MAX_FILL: f64 = 1.0 / 3.0;

/// Smallest filter, in bits.
const MIN_BITS: u64 = 512;

/// The smallest first build, in bits: its 32 KiB of flags fit a core's first-level cache.
/// Blocks of up to 128 KiB at the default 0.25 bits per byte are built once at their full size.
const FIRST_BUILD_BITS: u64 = 1 << 15;

/// Largest filter built, in bits (4 MiB; the format reads up to 2^28). The build sets one byte
/// per bit first, so this also bounds its scratch memory to 32 MiB for any block size and
/// `bits_per_byte` a configuration allows; the default block of 256 KiB at 0.25 bits per byte
/// needs 16 KiB.
const MAX_BITS: u64 = 1 << 25;

/// The first three bytes of `w` as a little-endian 24-bit value.
fn trigram(w: &[u8]) -> u32 {
    u32::from(w[0]) | u32::from(w[1]) << 8 | u32::from(w[2]) << 16
}

/// The slot of window `w` in a filter of `2^(32 - shift)` bits.
fn slot(w: &[u8], shift: u32) -> u32 {
    trigram(w).wrapping_mul(GOLDEN) >> shift
}

/// An encoded filter, read in place: what searches test.
#[derive(Debug, Clone, Copy)]
pub struct FilterView<'a> {
    /// The bits as stored: 64-bit little-endian words, so bit `s` is bit `s % 8` of byte
    /// `s / 8`.
    bits: &'a [u8],
    shift: u32,
}

impl<'a> FilterView<'a> {
    /// The filter encoded in `b` (see [`TrigramFilter::encode`]), if well formed.
    pub fn parse(b: &'a [u8]) -> Option<FilterView<'a>> {
        let (&log2, bits) = b.split_first()?;
        if !(6..=28).contains(&log2) || bits.len() != (1usize << log2) / 8 {
            return None;
        }
        Some(FilterView {
            bits,
            shift: 32 - u32::from(log2),
        })
    }

    /// False only when `needle` certainly does not occur in the text. Needles shorter than
    /// three bytes always pass.
    pub fn may_contain(&self, needle: &[u8]) -> bool {
        needle.windows(3).all(|w| {
            let s = slot(w, self.shift);
            self.bits[(s >> 3) as usize] & (1u8 << (s & 7)) != 0
        })
    }

    /// False only when no line of the text can satisfy `clauses`, a conjunction of
    /// disjunctions: every clause needs one of its literals to occur.
    pub fn may_match(&self, clauses: &[Vec<Vec<u8>>]) -> bool {
        clauses
            .iter()
            .all(|alts| alts.iter().any(|l| self.may_contain(l)))
    }
}

/// Whether a block whose encoded filter is `filter` may hold a line satisfying `clauses`:
/// without clauses, or without a filter (empty), or with one that cannot be read, it may.
pub(crate) fn block_may_match(filter: &[u8], clauses: &[Vec<Vec<u8>>]) -> bool {
    clauses.is_empty() || FilterView::parse(filter).is_none_or(|f| f.may_match(clauses))
}

/// A built filter: `bits.len() * 64` bits, a power of two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrigramFilter {
    bits: Vec<u64>,
    shift: u32,
}

impl TrigramFilter {
    /// Builds a filter with at most about `bits_per_byte` bits per byte of text (rounded to a
    /// power of two, at least 512 bits), then folds it while at most [`MAX_FILL`] of its bits
    /// stay set.
    ///
    /// Folding only raises the fill, so when a filter built at a quarter of that size is at
    /// most [`MAX_FILL`] full, folding from the full size would have passed through it: the
    /// quarter-size build is tried first (it suffices for most blocks of log text, and its
    /// flags stay in the first-level cache), and the full size is built only when it is too
    /// full. The result is the same either way. A filter of at most [`FIRST_BUILD_BITS`] is
    /// built at its full size at once: its flags fit the cache anyway, and the quarter of a
    /// small block's filter is mostly too full, which cost two builds.
    pub fn build<'a>(
        texts: impl Iterator<Item = &'a [u8]> + Clone,
        total_bytes: usize,
        bits_per_byte: f64,
    ) -> Self {
        let full = Self::size_for(total_bytes, bits_per_byte);
        let guess = (full / 4).max(FIRST_BUILD_BITS).min(full);
        let mut f = Self::at_size(texts.clone(), guess);
        if guess < full && f.fill() > MAX_FILL {
            f = Self::at_size(texts, full);
        }
        f.folded_while_sparse()
    }

    /// Folds while the folded filter is at most [`MAX_FILL`] full and above [`MIN_BITS`].
    fn folded_while_sparse(mut self) -> Self {
        while self.bits.len() as u64 * 64 > MIN_BITS {
            let folded = self.folded();
            if folded.fill() > MAX_FILL {
                break;
            }
            self = folded;
        }
        self
    }

    /// The unfolded size for `total_bytes` of text at `bits_per_byte`: a power of two between
    /// [`MIN_BITS`] and [`MAX_BITS`].
    fn size_for(total_bytes: usize, bits_per_byte: f64) -> u64 {
        let want = ((total_bytes as f64) * bits_per_byte) as u64;
        want.clamp(MIN_BITS, MAX_BITS).next_power_of_two()
    }

    /// The filter of `nbits` bits (a power of two of at least 64) with the bit of every window
    /// of every text set.
    ///
    /// Each slot first gets a whole byte, so setting it is one store rather than a read, an OR
    /// and a write of a shared word; the bytes are packed into bits at the end.
    fn at_size<'a>(texts: impl Iterator<Item = &'a [u8]>, nbits: u64) -> Self {
        let shift = 32 - nbits.trailing_zeros();
        let mut flags = vec![0u8; nbits as usize];
        let mut set = |trigram: u32| {
            let slot = trigram.wrapping_mul(GOLDEN) >> shift;
            if let Some(flag) = flags.get_mut(slot as usize) {
                *flag = 1;
            }
        };
        for t in texts {
            // Six trigrams from each 8-byte load, then the windows left at the end.
            let mut at = 0;
            while let Some(eight) = t.get(at..at + 8) {
                let x = u64::from_le_bytes(eight.try_into().unwrap_or([0; 8]));
                for k in 0..6 {
                    set(((x >> (8 * k)) & 0xFF_FFFF) as u32);
                }
                at += 6;
            }
            for w in t[at..].windows(3) {
                set(trigram(w));
            }
        }
        // Eight 0/1 flags read as one little-endian word; the multiplication moves flag i to
        // bit 56 + i (every partial product lands on its own bit, so nothing carries).
        let pack8 = |eight: &[u8]| {
            let x = u64::from_le_bytes(eight.try_into().unwrap_or([0; 8]));
            x.wrapping_mul(0x0102_0408_1020_4080) >> 56
        };
        let bits = flags
            .chunks_exact(64)
            .map(|word| {
                word.chunks_exact(8)
                    .enumerate()
                    .fold(0u64, |w, (j, eight)| w | pack8(eight) << (8 * j))
            })
            .collect();
        TrigramFilter { bits, shift }
    }

    /// The share of bits set.
    fn fill(&self) -> f64 {
        let ones: u32 = self.bits.iter().map(|w| w.count_ones()).sum();
        f64::from(ones) / (self.bits.len() * 64) as f64
    }

    /// The same filter at half the size: slot `s` becomes `s / 2`, so bit pairs are ORed.
    fn folded(&self) -> Self {
        /// ORs each even/odd bit pair of `w` and packs the 32 results into the low half.
        fn pairs(w: u64) -> u64 {
            let mut x = (w | (w >> 1)) & 0x5555_5555_5555_5555;
            x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
            x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
            x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
            x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
            (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF
        }
        TrigramFilter {
            bits: self
                .bits
                .chunks_exact(2)
                .map(|p| pairs(p[0]) | pairs(p[1]) << 32)
                .collect(),
            shift: self.shift + 1,
        }
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

    fn encoded(f: &TrigramFilter) -> Vec<u8> {
        let mut v = Vec::new();
        f.encode(&mut v);
        v
    }

    proptest::proptest! {
        /// The word-at-a-time build sets exactly the bits of one window at a time.
        #[test]
        fn build_sets_the_bit_of_every_window_and_no_other(
            texts in proptest::collection::vec(proptest::collection::vec(0u8..8, 0..40), 0..6)
        ) {
            let total = texts.iter().map(Vec::len).sum();
            let nbits = TrigramFilter::size_for(total, 4.0);
            let built = TrigramFilter::at_size(texts.iter().map(|t| &t[..]), nbits);
            let mut expected = TrigramFilter { bits: vec![0; built.bits.len()], shift: built.shift };
            for w in texts.iter().flat_map(|t| t.windows(3)) {
                let h = slot(w, expected.shift);
                expected.bits[(h >> 6) as usize] |= 1u64 << (h & 63);
            }
            proptest::prop_assert_eq!(built, expected);
        }
    }

    proptest::proptest! {
        /// Trying a quarter of the size first (for filters above `FIRST_BUILD_BITS`) gives the
        /// filter that folding from the full size gives, whether the text repeats (the guess
        /// holds) or not (the full size is built).
        #[test]
        fn build_equals_folding_from_the_full_size(
            seed in 0u64..1_000,
            lines in 1usize..400,
            vocabulary in proptest::sample::select(vec![4u64, 64, 1 << 40]),
            bits_per_byte in proptest::sample::select(vec![0.25, 1.0, 4.0]),
        ) {
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let lines: Vec<String> = (0..lines)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    format!("line {i} user={:x} took {}ms", x % vocabulary, x % 997)
                })
                .collect();
            let total = lines.iter().map(String::len).sum();
            let texts = || lines.iter().map(|l| l.as_bytes());
            let from_full =
                TrigramFilter::at_size(texts(), TrigramFilter::size_for(total, bits_per_byte))
                    .folded_while_sparse();
            proptest::prop_assert_eq!(TrigramFilter::build(texts(), total, bits_per_byte), from_full);
        }
    }

    #[test]
    fn the_size_is_capped_whatever_the_configuration() {
        assert_eq!(TrigramFilter::size_for(usize::MAX / 2, 16.0), MAX_BITS);
        let f = TrigramFilter::build(std::iter::once(&b"abcdef"[..]), 1 << 30, 16.0);
        assert!(
            FilterView::parse(&encoded(&f))
                .unwrap()
                .may_contain(b"bcde")
        );
        assert_eq!(
            f.bits.len() as u64 * 64,
            MIN_BITS,
            "a sparse filter folds all the way"
        );
    }

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let lines: Vec<String> = (0..2000)
            .map(|i| format!("GET /api/v1/items/{i} 200 user=u{}", i * 7))
            .collect();
        let total = lines.iter().map(|l| l.len()).sum();
        let f = TrigramFilter::build(lines.iter().map(|l| l.as_bytes()), total, 0.25);
        let bytes = encoded(&f);
        let view = FilterView::parse(&bytes).unwrap();
        for l in &lines {
            assert!(view.may_contain(l.as_bytes()));
            assert!(view.may_contain(&l.as_bytes()[3..10]));
        }
        assert!(!view.may_contain(b"NEEDLE-7f3a9c-zzqq"));
        assert!(view.may_contain(b"ab"));
        let a_line = lines[5].as_bytes().to_vec();
        assert!(view.may_match(&[vec![b"NEEDLE-7f3a9c-zzqq".to_vec(), a_line.clone()]]));
        assert!(!view.may_match(&[vec![a_line], vec![b"NEEDLE-7f3a9c-zzqq".to_vec()]]));
        assert_eq!(TrigramFilter::decode(&bytes).unwrap(), f);
        // Malformed encodings are refused, not misread.
        assert!(FilterView::parse(&bytes[..bytes.len() - 1]).is_none());
        assert!(FilterView::parse(&[]).is_none());
        assert!(FilterView::parse(&[40, 0]).is_none());
    }

    #[test]
    fn folding_equals_building_at_half_the_size_and_stops_at_the_fill_limit() {
        let lines: Vec<String> = (0..3000)
            .map(|i| format!("level=info msg=\"served\" id={:x} ms={}", i * 7919, i % 97))
            .collect();
        let total: usize = lines.iter().map(|l| l.len()).sum();
        let texts = || lines.iter().map(|l| l.as_bytes());
        let unfolded = |bits_per_byte| {
            TrigramFilter::at_size(texts(), TrigramFilter::size_for(total, bits_per_byte))
        };
        assert_eq!(unfolded(1.0).folded(), unfolded(0.5));
        assert_eq!(unfolded(1.0).folded().folded(), unfolded(0.25));

        let built = TrigramFilter::build(texts(), total, 1.0);
        assert!(
            built.bits.len() < unfolded(1.0).bits.len(),
            "repetitive text folds"
        );
        assert!(built.fill() <= MAX_FILL);
        assert!(
            built.folded().fill() > MAX_FILL,
            "folded as far as the limit allows"
        );
        let bytes = encoded(&built);
        let view = FilterView::parse(&bytes).unwrap();
        for l in &lines {
            assert!(view.may_contain(l.as_bytes()));
        }
    }
}
