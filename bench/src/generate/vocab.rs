//! Skewed choices: a Zipf-distributed vocabulary for free text, Zipf-distributed users (a few
//! are very active, most appear rarely) and weighted pick lists for paths, messages, statuses.
//!
//! Everything here is built once from constants (not from the seed), shared read-only by all
//! stream generators, and sampled with the caller's RNG, so output depends only on that RNG.

use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;

/// Common words of English prose and of software messages; the head of the vocabulary.
const BASE_WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "for",
    "on",
    "with",
    "new",
    "red",
    "black",
    "shoes",
    "shirt",
    "dress",
    "jacket",
    "men",
    "women",
    "kids",
    "sale",
    "blue",
    "white",
    "summer",
    "winter",
    "running",
    "leather",
    "cotton",
    "size",
    "large",
    "small",
    "bag",
    "watch",
    "phone",
    "case",
    "cable",
    "charger",
    "laptop",
    "stand",
    "desk",
    "chair",
    "lamp",
    "coffee",
    "mug",
    "bottle",
    "water",
    "organic",
    "tea",
    "green",
    "gift",
    "card",
    "set",
    "pack",
    "wireless",
    "headphones",
    "speaker",
    "camera",
    "lens",
    "book",
    "kitchen",
    "knife",
    "pan",
    "garden",
    "hose",
    "tool",
    "drill",
    "battery",
    "light",
    "led",
    "usb",
    "adapter",
    "monitor",
    "keyboard",
    "mouse",
    "pad",
    "sport",
    "yoga",
    "mat",
    "ball",
    "bike",
    "helmet",
    "glove",
    "sock",
    "hat",
    "scarf",
    "belt",
    "wallet",
    "ring",
    "necklace",
    "silver",
    "gold",
    "vintage",
    "classic",
    "slim",
    "fit",
    "denim",
    "jeans",
    "boots",
    "sandals",
    "outdoor",
    "tent",
    "sleeping",
    "travel",
    "pillow",
    "blanket",
    "towel",
    "soap",
    "shampoo",
    "cream",
    "vitamin",
    "protein",
    "snack",
    "chocolate",
];

/// Syllables for the long tail of rarer words (brand-like and domain words).
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ter", "van", "dor", "el", "ri", "sa", "bel", "no", "qua", "zen", "tor",
    "ix", "ul", "pra", "fen", "go", "lux", "ma", "vi", "ro", "stel", "ar", "bo", "cel", "den",
    "fi", "gra", "hu", "jo",
];

/// Number of distinct words; the Zipf exponent below makes the top 100 cover about half of all
/// uses, as in natural text.
pub(crate) const VOCAB_SIZE: usize = 8192;
const WORD_EXPONENT: f64 = 1.07;
/// Distinct users; a Zipf exponent near 1 gives a handful of power users and a long tail.
pub(crate) const USERS: usize = 200_000;
const USER_EXPONENT: f64 = 0.95;

/// A list of strings with Zipf weights by position (first = most frequent).
pub(crate) struct Pick {
    items: Vec<&'static str>,
    dist: WeightedIndex<f64>,
}

impl Pick {
    /// Zipf weights `1/(rank)^s` over `items` in the given order.
    pub(crate) fn zipf(items: &[&'static str], s: f64) -> Pick {
        let weights: Vec<f64> = (1..=items.len())
            .map(|r| 1.0 / (r as f64).powf(s))
            .collect();
        Pick::build(items, &weights)
    }

    /// Explicit weights (same length as `items`).
    pub(crate) fn weighted(pairs: &[(&'static str, f64)]) -> Pick {
        let items: Vec<&'static str> = pairs.iter().map(|p| p.0).collect();
        let weights: Vec<f64> = pairs.iter().map(|p| p.1).collect();
        Pick::build(&items, &weights)
    }

    fn build(items: &[&'static str], weights: &[f64]) -> Pick {
        // The lists are compile-time constants with positive weights, so this cannot fail for
        // any input the tool reads; an empty list would be a programming error caught by tests.
        let dist =
            WeightedIndex::new(weights).expect("pick lists are non-empty with positive weights");
        Pick {
            items: items.to_vec(),
            dist,
        }
    }

    pub(crate) fn pick<R: Rng>(&self, rng: &mut R) -> &'static str {
        self.items[self.dist.sample(rng)]
    }
}

/// The shared vocabulary and user population.
pub(crate) struct Vocab {
    words: Vec<String>,
    word_dist: WeightedIndex<f64>,
    user_dist: WeightedIndex<f64>,
}

impl Vocab {
    pub(crate) fn new() -> Vocab {
        let mut words: Vec<String> = BASE_WORDS.iter().map(|w| (*w).to_string()).collect();
        let mut seen: std::collections::HashSet<String> = words.iter().cloned().collect();
        // Deterministic tail: two- and three-syllable combinations in a fixed order.
        let n = SYLLABLES.len();
        let mut i = 0usize;
        while words.len() < VOCAB_SIZE {
            let a = SYLLABLES[i % n];
            let b = SYLLABLES[(i / n) % n];
            let word = if i < n * n {
                format!("{a}{b}")
            } else {
                format!("{a}{b}{}", SYLLABLES[(i / (n * n)) % n])
            };
            if seen.insert(word.clone()) {
                words.push(word);
            }
            i += 1;
        }
        let weights: Vec<f64> = (1..=words.len())
            .map(|r| 1.0 / (r as f64).powf(WORD_EXPONENT))
            .collect();
        let word_dist = WeightedIndex::new(&weights).expect("vocabulary weights are positive");
        let user_weights: Vec<f64> = (1..=USERS)
            .map(|r| 1.0 / (r as f64).powf(USER_EXPONENT))
            .collect();
        let user_dist = WeightedIndex::new(&user_weights).expect("user weights are positive");
        Vocab {
            words,
            word_dist,
            user_dist,
        }
    }

    /// Rank of a word (0 = most frequent); [`Vocab::word_at`] gives its text.
    pub(crate) fn word_rank<R: Rng>(&self, rng: &mut R) -> usize {
        self.word_dist.sample(rng)
    }

    pub(crate) fn word_at(&self, rank: usize) -> &str {
        &self.words[rank % self.words.len()]
    }

    /// Appends `n` Zipf-chosen words separated by `sep`.
    pub(crate) fn words<R: Rng>(&self, rng: &mut R, out: &mut Vec<u8>, n: usize, sep: u8) {
        for i in 0..n {
            if i > 0 {
                out.push(sep);
            }
            out.extend_from_slice(self.word_at(self.word_rank(rng)).as_bytes());
        }
    }

    /// A user id number. Ranks are scattered over a 7-digit space by an odd multiplier (a
    /// bijection modulo a power of two), so popular users do not have small ids.
    pub(crate) fn user<R: Rng>(&self, rng: &mut R) -> u32 {
        let rank = self.user_dist.sample(rng) as u64;
        ((rank.wrapping_mul(2_654_435_761) % (1 << 23)) + 1_000_000) as u32
    }
}

/// An IPv4 address that stays the same for a user (their home address), from a 64-bit mix.
pub(crate) fn user_ip(user: u32) -> [u8; 4] {
    let h = splitmix(user as u64);
    let first = [81u8, 84, 88, 91, 93, 95, 176, 178, 185, 188, 203, 212][(h % 12) as usize];
    [
        first,
        (h >> 8) as u8,
        (h >> 16) as u8,
        ((h >> 24) as u8).max(1),
    ]
}

/// SplitMix64 finaliser: a fixed bijective mix used to derive stable per-key values.
pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn vocabulary_is_distinct_and_skewed() {
        let v = Vocab::new();
        assert_eq!(v.words.len(), VOCAB_SIZE);
        let mut sorted = v.words.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), VOCAB_SIZE, "words are distinct");

        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let n = 200_000;
        let mut counts = vec![0u32; VOCAB_SIZE];
        for _ in 0..n {
            counts[v.word_rank(&mut rng)] += 1;
        }
        let top100: u32 = counts[..100].iter().sum();
        let share = top100 as f64 / n as f64;
        assert!((0.4..0.75).contains(&share), "top 100 words cover {share}");
        // Zipf: the first word is about twice as frequent as the second.
        let ratio = counts[0] as f64 / counts[1] as f64;
        assert!((1.7..2.5).contains(&ratio), "rank1/rank2 = {ratio}");
        assert!(
            counts.iter().filter(|c| **c > 0).count() > 3000,
            "the long tail is used"
        );
    }

    #[test]
    fn users_are_skewed_and_spread() {
        let v = Vocab::new();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut seen = std::collections::HashMap::new();
        for _ in 0..100_000 {
            *seen.entry(v.user(&mut rng)).or_insert(0u32) += 1;
        }
        let max = *seen.values().max().unwrap();
        assert!(max > 1_000, "a power user appears often ({max})");
        assert!(seen.len() > 20_000, "many users appear ({})", seen.len());
        assert!(
            seen.keys()
                .all(|u| (1_000_000..1_000_000 + (1 << 23)).contains(u))
        );
    }
}
