//! The series a range aggregation holds while it is evaluated, bounded in number and in memory.
//!
//! A pipeline can make a series of every line (`| label_format l="{{__line__}}"`), so what a
//! range aggregation holds is not bounded by the data's streams. [`SeriesSlots`] keeps values
//! per series key and refuses series past two bounds:
//!
//! - a number, set by the caller from the query's steps and limits;
//! - memory: each new series is charged, before it is kept, its key's bytes, its slot and the
//!   bytes its values take when made, and values that grow as lines come (the samples
//!   `quantile_over_time` and its kin keep) are charged as they grow
//!   ([`SeriesSlots::charge_values`]), on the budget every query in flight shares
//!   (`querier.max_inflight_series_bytes`). Partial results on different workers each hold their
//!   own part of the query's reservation, so the bound covers them all together, and a refusal
//!   tells a query that alone needs more than the whole budget from one that found it held by
//!   others.
//!
//! Keys past either bound share one overflow slot, so evaluation can go on cheaply until the
//! caller looks at [`SeriesSlots::refusal`] and refuses the query.

use std::hash::{BuildHasher, RandomState};

use fjord_model::Labels;
use fjord_model::memory_budget::{OverBudget, PartReservation};
use hashbrown::HashTable;

/// Why a key got no slot of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// More series than the caller's maximum.
    TooMany,
    /// The memory budget had no room for the series.
    OverBudget(OverBudget),
}

/// Values per series key. Callers look a key up once ([`SeriesSlots::slot`]) and then reach
/// the value by its slot, so the per-entry work hashes nothing. Each key is kept once, in
/// `series`; the index holds slots, hashed by their keys.
#[derive(Debug)]
pub struct SeriesSlots<T> {
    index: HashTable<usize>,
    hasher: RandomState,
    series: Vec<(Labels, T)>,
    max: usize,
    /// The slot shared by refused keys, once one was met; the last of `series`.
    overflow: Option<usize>,
    refusal: Option<Refusal>,
    /// The memory charged for the series kept.
    memory: PartReservation,
    /// Heap bytes of each series' value, charged with its key.
    value_bytes: u64,
}

impl<T> SeriesSlots<T> {
    /// Room for at most `max` series, each charged to `memory` with `value_bytes` for the heap
    /// its value takes.
    pub fn new(max: usize, memory: PartReservation, value_bytes: usize) -> Self {
        SeriesSlots {
            index: HashTable::new(),
            hasher: RandomState::new(),
            series: Vec::new(),
            max,
            overflow: None,
            refusal: None,
            memory,
            value_bytes: value_bytes as u64,
        }
    }

    /// The slot of a series, created with `make` on first use.
    pub fn slot(&mut self, key: &Labels, make: impl FnOnce() -> T) -> usize {
        let hash = self.hasher.hash_one(key);
        if let Some(i) = self.find(hash, key) {
            return i;
        }
        if let Some(overflow) = self.overflow {
            return overflow;
        }
        let refusal = self.refusal_of_new(key);
        self.insert(hash, key.clone(), make(), refusal)
    }

    fn find(&self, hash: u64, key: &Labels) -> Option<usize> {
        let series = &self.series;
        self.index.find(hash, |&i| series[i].0 == *key).copied()
    }

    /// Why a new series of `key` gets no slot of its own, if it does not; charges it when it
    /// does.
    fn refusal_of_new(&mut self, key: &Labels) -> Option<Refusal> {
        if self.index.len() >= self.max {
            return Some(Refusal::TooMany);
        }
        let bytes = self.series_bytes(key);
        self.memory.grow(bytes).err().map(Refusal::OverBudget)
    }

    /// A slot for a key not kept yet, while none was refused: its own, or the overflow slot
    /// when `refusal` says it gets none.
    fn insert(&mut self, hash: u64, key: Labels, value: T, refusal: Option<Refusal>) -> usize {
        let i = self.series.len();
        if let Some(refusal) = refusal {
            self.refusal = Some(refusal);
            self.overflow = Some(i);
            self.series.push((Labels::empty(), value));
            return i;
        }
        self.series.push((key, value));
        let (series, hasher) = (&self.series, &self.hasher);
        self.index
            .insert_unique(hash, i, |&j| hasher.hash_one(&series[j].0));
        i
    }

    /// What a new series of `key` is charged: the key's heap, its place in `series` and in the
    /// index, and its value's heap.
    fn series_bytes(&self, key: &Labels) -> u64 {
        (key.heap_bytes() + std::mem::size_of::<(Labels, T)>() + std::mem::size_of::<usize>())
            as u64
            + self.value_bytes
    }

    pub fn at(&mut self, slot: usize) -> &mut T {
        &mut self.series[slot].1
    }

    /// Charges `bytes` the values held grew by beyond what their series were charged when
    /// made; past the budget, the query is refused as for a new series.
    pub fn charge_values(&mut self, bytes: u64) {
        if let Err(e) = self.memory.grow(bytes) {
            self.refusal.get_or_insert(Refusal::OverBudget(e));
        }
    }

    /// Why a key was refused a slot, or values their memory, once one was.
    pub fn refusal(&self) -> Option<Refusal> {
        self.refusal
    }

    /// Folds `other`'s series into these, combining the values of a key both hold with `add`.
    /// What `other` was charged moves here with its values; a key both hold gives back its
    /// second charge.
    pub fn merge(&mut self, mut other: SeriesSlots<T>, mut add: impl FnMut(&mut T, T)) {
        if let Some(refusal) = other.refusal.take() {
            self.refusal.get_or_insert(refusal);
        }
        let series = other.take_series();
        self.memory.absorb(other.memory);
        for (key, value) in series {
            let hash = self.hasher.hash_one(&key);
            if let Some(i) = self.find(hash, &key) {
                let twice = self.series_bytes(&key);
                self.memory.shrink_by(twice);
                add(self.at(i), value);
            } else if self.overflow.is_none() {
                let refusal = (self.index.len() >= self.max).then_some(Refusal::TooMany);
                self.insert(hash, key, value, refusal);
            }
        }
    }

    /// The series kept, in the order they were first met, leaving the memory charged.
    fn take_series(&mut self) -> Vec<(Labels, T)> {
        if self.overflow.take().is_some() {
            self.series.pop();
        }
        self.index.clear();
        std::mem::take(&mut self.series)
    }

    /// The series kept, in the order they were first met; their memory is given back.
    pub fn into_series(mut self) -> Vec<(Labels, T)> {
        self.take_series()
    }

    /// The series kept, in the order they were first met, and the memory they are charged,
    /// held until the caller is done with them.
    pub fn into_charged_series(mut self) -> (Vec<(Labels, T)>, PartReservation) {
        (self.take_series(), self.memory)
    }
}

#[cfg(test)]
mod tests {
    use fjord_model::memory_budget::MemoryBudget;

    use super::*;

    fn key(v: &str) -> Labels {
        Labels::from_pairs([("k", v)])
    }

    #[test]
    fn series_past_the_maximum_share_one_slot_and_are_not_returned() {
        let mut slots: SeriesSlots<u32> = SeriesSlots::new(2, PartReservation::unbounded(), 0);
        let (a, b) = (slots.slot(&key("a"), || 0), slots.slot(&key("b"), || 0));
        assert_eq!(slots.refusal(), None);
        let c = slots.slot(&key("c"), || 0);
        assert_eq!(slots.slot(&key("d"), || 0), c);
        assert_eq!(slots.slot(&key("a"), || 0), a);
        *slots.at(a) += 1;
        *slots.at(b) += 2;
        *slots.at(c) += 5;
        assert_eq!(slots.refusal(), Some(Refusal::TooMany));
        assert_eq!(slots.into_series(), vec![(key("a"), 1), (key("b"), 2)]);
    }

    #[test]
    fn each_series_is_charged_its_key_slot_and_value_and_given_back_at_the_end() {
        let budget = MemoryBudget::new(u64::MAX);
        let query = budget.work();
        let mut slots: SeriesSlots<u32> = SeriesSlots::new(10, query.reservation(), 100);
        let long = key(&"x".repeat(300));
        slots.slot(&key("a"), || 0);
        slots.slot(&key("a"), || 0);
        let short_cost = budget.in_use();
        assert_eq!(
            short_cost,
            (key("a").heap_bytes() + std::mem::size_of::<(Labels, u32)>() + 8) as u64 + 100
        );
        slots.slot(&long, || 0);
        assert!(
            budget.in_use() >= 2 * short_cost + 300,
            "{}",
            budget.in_use()
        );
        drop(slots.into_series());
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn partial_results_of_one_query_share_its_budget() {
        let budget = MemoryBudget::new(1000);
        let query = budget.work();
        let mut a: SeriesSlots<u32> = SeriesSlots::new(usize::MAX, query.reservation(), 100);
        let mut b: SeriesSlots<u32> = SeriesSlots::new(usize::MAX, query.reservation(), 100);
        let mut kept = 0;
        for i in 0..20 {
            let (slots, name) = if i % 2 == 0 {
                (&mut a, "a")
            } else {
                (&mut b, "b")
            };
            let slot = slots.slot(&key(&format!("{name}{i}")), || 0);
            *slots.at(slot) += 1;
            if slots.refusal().is_none() {
                kept += 1;
            }
        }
        assert!(budget.in_use() <= 1000);
        assert!((1..20).contains(&kept), "kept {kept}");
        assert!(matches!(
            a.refusal().or(b.refusal()),
            Some(Refusal::OverBudget(OverBudget::Never { limit: 1000, .. }))
        ));
    }

    #[test]
    fn merging_adds_values_of_shared_keys_and_gives_back_the_merged_memory() {
        let budget = MemoryBudget::new(u64::MAX);
        let query = budget.work();
        let mut a: SeriesSlots<u32> = SeriesSlots::new(10, query.reservation(), 0);
        let mut b: SeriesSlots<u32> = SeriesSlots::new(10, query.reservation(), 0);
        let s = a.slot(&key("x"), || 1);
        *a.at(s) += 1;
        b.slot(&key("x"), || 5);
        b.slot(&key("y"), || 7);
        let before = budget.in_use();
        a.merge(b, |v, o| *v += o);
        assert!(budget.in_use() < before, "b's charge for x was given back");
        let mut got = a.into_series();
        got.sort();
        assert_eq!(got, vec![(key("x"), 7), (key("y"), 7)]);
        assert_eq!(budget.in_use(), 0);
    }
}
