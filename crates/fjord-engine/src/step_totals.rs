//! Additive range aggregations — `count_over_time`, `rate`, `bytes_over_time`, `bytes_rate` —
//! accumulated straight into per-step totals instead of per-entry samples.
//!
//! Each of these is a function of two sums over the window: the number of entries and the sum
//! of their line lengths. Both sums are exact integers, so adding them in any order, a block at
//! a time, gives the same answer to the last bit as Loki's sample-by-sample evaluation. That
//! allows three shortcuts, cheapest first:
//!
//! 1. A block that lies wholly inside every window it touches adds its header's entry count and
//!    byte total to those windows: no decompression at all.
//! 2. Without pipeline stages, the text is never needed: the entry index (timestamps and line
//!    lengths) and, when it can change the series key, the structured metadata section suffice.
//! 3. Entries that do go through a pipeline add to the totals of the windows containing them,
//!    with no per-entry sample stored and no sort.
//!
//! Whichever way they come, an entry or a block's header adds to the whole run of steps whose
//! windows hold it at the cost of one step ([`Totals`]).

use std::collections::HashMap;
use std::ops::Range;

use fjord_model::memory_budget::PartReservation;
use fjord_model::{Label, Labels};

use crate::range_fns::RangeOp;
use crate::series_slots::{Refusal, SeriesSlots};

/// The evaluation steps of one range aggregation: times `start + i·step` for `i < count`, each
/// with the window `(t − offset − range, t − offset]`.
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    pub start: i64,
    pub step: i64,
    pub count: usize,
    pub offset: i64,
    pub range: i64,
}

/// `⌈a / b⌉` for `b > 0`, computed without overflow.
fn ceil_div(a: i128, b: i128) -> i128 {
    -((-a).div_euclid(b))
}

impl Windows {
    fn clamp(&self, i: i128) -> usize {
        i.clamp(0, self.count as i128) as usize
    }

    /// Steps `i` with `lo ≤ t_i < hi`.
    fn steps_in(&self, lo: i128, hi: i128) -> Range<usize> {
        let step = i128::from(self.step.max(1));
        let start = i128::from(self.start);
        let a = self.clamp(ceil_div(lo - start, step));
        let b = self.clamp(ceil_div(hi - start, step));
        a..b.max(a)
    }

    /// The steps whose window contains `ts` (`t − offset − range < ts ≤ t − offset`), and the
    /// latest time whose windows are the same: every time in `[ts, until]` is in exactly these
    /// steps' windows.
    fn containing_until(&self, ts: i64) -> (Range<usize>, i64) {
        let step = i128::from(self.step.max(1));
        let range = i128::from(self.range);
        let lo = i128::from(ts) + i128::from(self.offset) - i128::from(self.start);
        // Step i's window holds ts when lo ≤ i·step < lo + range.
        let (a, b) = (ceil_div(lo, step), ceil_div(lo + range, step));
        let steps = self.clamp(a)..self.clamp(b).max(self.clamp(a));
        // a and b stay while lo ≤ a·step and lo + range ≤ b·step.
        let last_lo = (a * step).min(b * step - range);
        let until = last_lo - i128::from(self.offset) + i128::from(self.start);
        (steps, i64::try_from(until).unwrap_or(i64::MAX))
    }

    /// Steps whose window contains every time in `[min, max]`.
    pub fn covering(&self, min: i64, max: i64) -> Range<usize> {
        let off = i128::from(self.offset);
        self.steps_in(
            i128::from(max) + off,
            i128::from(min) + off + i128::from(self.range),
        )
    }

    /// Steps whose window contains some time in `[min, max]`.
    pub fn touching(&self, min: i64, max: i64) -> Range<usize> {
        let off = i128::from(self.offset);
        self.steps_in(
            i128::from(min) + off,
            i128::from(max) + off + i128::from(self.range),
        )
    }
}

/// Finds the steps whose windows hold each of a stream's entry times, which mostly come in time
/// order: the steps found for one time serve every later time until the windows change
/// ([`Windows::containing_until`]), so most entries cost a comparison, not two divisions.
#[derive(Debug, Clone)]
pub struct WindowCursor<'w> {
    windows: &'w Windows,
    /// Every time in `[from, until]` is in exactly `steps`' windows.
    from: i64,
    until: i64,
    steps: Range<usize>,
}

impl<'w> WindowCursor<'w> {
    pub fn new(windows: &'w Windows) -> Self {
        WindowCursor {
            windows,
            from: i64::MAX,
            until: i64::MIN,
            steps: 0..0,
        }
    }

    /// The steps whose window contains `ts` (see [`Windows::containing_until`]).
    pub fn containing(&mut self, ts: i64) -> Range<usize> {
        if !self.holds(ts) {
            let (steps, until) = self.windows.containing_until(ts);
            (self.from, self.until, self.steps) = (ts, until, steps);
        }
        self.steps.clone()
    }

    /// Whether `ts` is in the windows [`Self::containing`] last answered.
    fn holds(&self, ts: i64) -> bool {
        self.from <= ts && ts <= self.until
    }
}

/// Entry count and byte total of one series at every step, kept as the differences between
/// neighbouring steps while they are added up: an entry counts in every step whose window holds
/// it (five at `[5m]` and a one-minute step), and adding it to a run of steps costs two
/// differences instead of a sum per step. Wrapping arithmetic: the differences may be
/// negative, the totals they add up to are not.
#[derive(Debug, Clone)]
pub struct Totals {
    /// `lines(i) − lines(i − 1)` for each step `i`, and one past the last.
    line_deltas: Vec<u64>,
    byte_deltas: Vec<u64>,
}

impl Totals {
    fn new(steps: usize) -> Self {
        Totals {
            line_deltas: vec![0; steps + 1],
            byte_deltas: vec![0; steps + 1],
        }
    }

    /// Adds one entry of `bytes` bytes at `ts`.
    pub fn add_entry(&mut self, windows: &mut WindowCursor, ts: i64, bytes: u64) {
        self.add_span(windows.containing(ts), 1, bytes);
    }

    /// Adds entries at times `ts` with line lengths `lens`, mostly in time order: a run of
    /// entries in the same windows is added at once.
    pub fn add_sorted(&mut self, windows: &mut WindowCursor, ts: &[i64], lens: &[u32]) {
        let mut i = 0;
        while i < ts.len() {
            let steps = windows.containing(ts[i]);
            let (mut j, mut bytes) = (i, 0u64);
            while j < ts.len() && windows.holds(ts[j]) {
                bytes += u64::from(lens[j]);
                j += 1;
            }
            self.add_span(steps, (j - i) as u64, bytes);
            i = j;
        }
    }

    /// Adds `lines` entries totalling `bytes` bytes to each of `steps`.
    pub fn add_span(&mut self, steps: Range<usize>, lines: u64, bytes: u64) {
        if steps.is_empty() {
            return;
        }
        for (deltas, n) in [
            (&mut self.line_deltas, lines),
            (&mut self.byte_deltas, bytes),
        ] {
            deltas[steps.start] = deltas[steps.start].wrapping_add(n);
            deltas[steps.end] = deltas[steps.end].wrapping_sub(n);
        }
    }

    fn add(&mut self, other: Totals) {
        for (mine, theirs) in [
            (&mut self.line_deltas, other.line_deltas),
            (&mut self.byte_deltas, other.byte_deltas),
        ] {
            for (a, b) in mine.iter_mut().zip(theirs) {
                *a = a.wrapping_add(b);
            }
        }
    }

    /// The entry count and byte total at each step, in step order.
    pub fn per_step(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let steps = self.line_deltas.len() - 1;
        self.line_deltas
            .iter()
            .zip(&self.byte_deltas)
            .take(steps)
            .scan((0u64, 0u64), |(lines, bytes), (dl, db)| {
                *lines = lines.wrapping_add(*dl);
                *bytes = bytes.wrapping_add(*db);
                Some((*lines, *bytes))
            })
    }
}

/// Totals per series key, each series reached by its slot ([`SeriesTotals::slot`]).
#[derive(Debug)]
pub struct SeriesTotals {
    slots: SeriesSlots<Totals>,
    steps: usize,
}

impl SeriesTotals {
    /// Totals over `steps` steps for at most `max_series` series, charged to `memory` (see
    /// [`SeriesSlots`]).
    pub fn new(steps: usize, max_series: usize, memory: PartReservation) -> Self {
        SeriesTotals {
            slots: SeriesSlots::new(
                max_series,
                memory,
                2 * (steps + 1) * std::mem::size_of::<u64>(),
            ),
            steps,
        }
    }

    /// Why a series was refused, once one was: the caller refuses the query.
    pub fn refusal(&self) -> Option<Refusal> {
        self.slots.refusal()
    }

    /// The slot of a series, created empty on first use.
    pub fn slot(&mut self, key: &Labels) -> usize {
        let steps = self.steps;
        self.slots.slot(key, || Totals::new(steps))
    }

    pub fn at(&mut self, slot: usize) -> &mut Totals {
        self.slots.at(slot)
    }

    /// Folds another partial result into this one; callers check for a refusal after.
    pub fn merge(&mut self, other: SeriesTotals) {
        self.slots.merge(other.slots, Totals::add);
    }

    /// The series, in no particular order.
    pub fn into_series(self) -> Vec<(Labels, Totals)> {
        self.slots.into_series()
    }
}

/// Whether `op` is one of the additive operations this module evaluates.
pub fn is_additive(op: RangeOp) -> bool {
    matches!(
        op,
        RangeOp::Count | RangeOp::Rate { unwrapped: false } | RangeOp::Bytes | RangeOp::BytesRate
    )
}

/// The value of an additive `op` for a window holding `lines` entries of `bytes` bytes, with
/// the arithmetic of [`crate::range_fns::eval`].
pub fn value(op: RangeOp, lines: u64, bytes: u64, range: i64) -> f64 {
    let secs = range as f64 / 1e9;
    match op {
        RangeOp::Count => lines as f64,
        RangeOp::Rate { .. } => lines as f64 / secs,
        RangeOp::Bytes => bytes as f64,
        RangeOp::BytesRate => bytes as f64 / secs,
        _ => f64::NAN,
    }
}

/// Remembers the series slot of each distinct set of structured metadata seen in a stream, so
/// that entries sharing metadata (such as `detected_level="info"`) find their series without
/// building or hashing a key; consecutive entries with equal metadata skip even the lookup.
#[derive(Debug, Default)]
pub struct SlotMemo {
    slots: HashMap<Vec<Label>, usize>,
    last: Option<(Vec<Label>, usize)>,
}

impl SlotMemo {
    /// The slot for `metadata`, computing its key with `make` the first time.
    pub fn slot(
        &mut self,
        metadata: &[Label],
        totals: &mut SeriesTotals,
        make: impl FnOnce() -> Labels,
    ) -> usize {
        if let Some((md, slot)) = &self.last
            && md.as_slice() == metadata
        {
            return *slot;
        }
        let slot = match self.slots.get(metadata) {
            Some(&s) => s,
            None => {
                let s = totals.slot(&make());
                self.slots.insert(metadata.to_vec(), s);
                s
            }
        };
        self.last = Some((metadata.to_vec(), slot));
        slot
    }
}

/// Remembers the series slots of the first few `by (…)` keys met in a stream: an entry's key is
/// its values of the group labels, compared where they lie instead of collected into labels
/// and hashed for every entry. A stream with more keys than the memo holds stops using it once
/// misses show it does not pay. A slot is whatever index the caller keeps its series under.
#[derive(Debug, Default)]
pub struct GroupKeyMemo {
    keys: Vec<(Vec<Option<String>>, usize)>,
    last: usize,
    misses: usize,
}

impl GroupKeyMemo {
    /// Most keys remembered per stream.
    const KEYS: usize = 16;
    /// Misses with a full memo after which it is no longer searched.
    const GIVE_UP: usize = 256;

    /// The slot of the key `values` (an entry's value of each group label, in group order),
    /// found with `find` (from the entry's labels) when the key is not remembered.
    pub fn slot<'v>(
        &mut self,
        values: impl Iterator<Item = Option<&'v str>> + Clone,
        find: impl FnOnce() -> usize,
    ) -> usize {
        if self.misses >= Self::GIVE_UP {
            return find();
        }
        // Every key has one value per group label, so pairing them up compares all.
        let same = |key: &[Option<String>]| {
            key.iter()
                .zip(values.clone())
                .all(|(k, v)| k.as_deref() == v)
        };
        if let Some((key, slot)) = self.keys.get(self.last)
            && same(key)
        {
            return *slot;
        }
        if let Some(i) = self.keys.iter().position(|(key, _)| same(key)) {
            self.last = i;
            return self.keys[i].1;
        }
        let slot = find();
        if self.keys.len() < Self::KEYS {
            self.last = self.keys.len();
            self.keys
                .push((values.map(|v| v.map(str::to_string)).collect(), slot));
        } else {
            self.misses += 1;
        }
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_model::memory_budget::MemoryBudget;

    #[test]
    fn group_key_memo_finds_the_slot_of_each_key_and_builds_labels_only_on_a_miss() {
        let mut totals = SeriesTotals::new(1, usize::MAX, PartReservation::unbounded());
        let mut memo = GroupKeyMemo::default();
        let mut built = 0;
        let mut slot_of = |memo: &mut GroupKeyMemo, status: Option<&str>, path: &str| {
            memo.slot([status, Some(path)].into_iter(), || {
                built += 1;
                let mut pairs = vec![("path", path.to_string())];
                pairs.extend(status.map(|s| ("status", s.to_string())));
                totals.slot(&Labels::from_pairs(pairs))
            })
        };
        let ok = slot_of(&mut memo, Some("200"), "/a");
        let missing = slot_of(&mut memo, None, "/a");
        assert_ne!(ok, missing);
        assert_eq!(slot_of(&mut memo, Some("200"), "/a"), ok);
        assert_eq!(slot_of(&mut memo, None, "/a"), missing);
        assert_ne!(slot_of(&mut memo, Some("500"), "/a"), ok);
        // Past its capacity and its patience the memo still answers right, by building labels.
        let paths: Vec<String> = (0..400).map(|i| format!("/p{i}")).collect();
        let first: Vec<usize> = paths.iter().map(|p| slot_of(&mut memo, None, p)).collect();
        let again: Vec<usize> = paths.iter().map(|p| slot_of(&mut memo, None, p)).collect();
        assert_eq!(first, again);
        assert_eq!(slot_of(&mut memo, Some("200"), "/a"), ok);
        assert!(
            built > 3 + 400,
            "keys past the memo are built each time: {built}"
        );
    }

    fn w(start: i64, step: i64, count: usize, range: i64) -> Windows {
        Windows {
            start,
            step,
            count,
            offset: 0,
            range,
        }
    }

    /// Brute force: the steps whose window contains `ts`.
    fn brute(w: &Windows, ts: i64) -> Vec<usize> {
        (0..w.count)
            .filter(|&i| {
                let t = w.start + i as i64 * w.step - w.offset;
                t - w.range < ts && ts <= t
            })
            .collect()
    }

    #[test]
    fn window_arithmetic_matches_brute_force() {
        for (step, range, offset) in [(10, 10, 0), (10, 50, 0), (10, 5, 0), (7, 30, 3), (1, 1, 0)] {
            let mut win = w(100, step, 20, range);
            win.offset = offset;
            for ts in 0..400 {
                let (steps, until) = win.containing_until(ts);
                let got: Vec<usize> = steps.collect();
                assert_eq!(got, brute(&win, ts), "ts={ts} step={step} range={range}");
                assert!(until >= ts);
                for later in ts..=until.min(ts + 60) {
                    assert_eq!(brute(&win, later), got, "ts={ts} until={until} at {later}");
                }
            }
            for min in (40..300).step_by(7) {
                for len in [0, 1, 5, 9, 10, 30] {
                    let max = min + len;
                    let covering: Vec<usize> = win.covering(min, max).collect();
                    let want: Vec<usize> = (0..win.count)
                        .filter(|i| {
                            let b = brute(&win, min);
                            b.contains(i) && brute(&win, max).contains(i)
                        })
                        .collect();
                    assert_eq!(covering, want, "covering {min}..={max}");
                    let touching: Vec<usize> = win.touching(min, max).collect();
                    let want: Vec<usize> = (0..win.count)
                        .filter(|i| (min..=max).any(|t| brute(&win, t).contains(i)))
                        .collect();
                    assert_eq!(touching, want, "touching {min}..={max}");
                }
            }
        }
    }

    #[test]
    fn entries_added_in_runs_count_as_each_added_alone() {
        // A small deterministic generator: times with repeats, gaps and one out of order.
        let mut x = 7u64;
        let mut next = move |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        for (start, step, count, range, offset) in [
            (0, 10, 8, 20, 0),
            (5, 10, 8, 10, 0),
            (0, 7, 20, 30, 3),
            (100, 60, 5, 300, 0),
            (-50, 1, 200, 1, 0),
            (0, 25, 6, 10, 0),
        ] {
            let win = Windows {
                start,
                step,
                count,
                offset,
                range,
            };
            let mut ts: Vec<i64> = Vec::new();
            let mut t = start - range - 5;
            for _ in 0..300 {
                t += next(4) as i64;
                ts.push(t);
            }
            ts[150] = ts[10];
            let lens: Vec<u32> = (0..ts.len()).map(|_| next(100) as u32).collect();
            let (mut runs, mut each) = (Totals::new(count), Totals::new(count));
            runs.add_sorted(&mut WindowCursor::new(&win), &ts, &lens);
            let mut cursor = WindowCursor::new(&win);
            for (&t, &len) in ts.iter().zip(&lens) {
                each.add_entry(&mut cursor, t, u64::from(len));
            }
            let want: Vec<(u64, u64)> = (0..count)
                .map(|i| {
                    ts.iter()
                        .zip(&lens)
                        .filter(|&(&t, _)| brute(&win, t).contains(&i))
                        .fold((0, 0), |(n, b), (_, &len)| (n + 1, b + u64::from(len)))
                })
                .collect();
            assert_eq!(runs.per_step().collect::<Vec<_>>(), want, "{win:?}");
            assert_eq!(each.per_step().collect::<Vec<_>>(), want, "{win:?}");
        }
    }

    #[test]
    fn totals_add_and_merge() {
        let win = w(0, 10, 5, 20);
        let key = Labels::from_pairs([("a", "b")]);
        let query = MemoryBudget::new(u64::MAX).work();
        let mut a = SeriesTotals::new(5, 10, query.reservation());
        let slot = a.slot(&key);
        a.at(slot).add_entry(&mut WindowCursor::new(&win), 15, 3);
        let mut b = SeriesTotals::new(5, 10, query.reservation());
        let slot = b.slot(&key);
        b.at(slot).add_span(1..3, 2, 10);
        a.merge(b);
        let series = a.into_series();
        assert_eq!(series.len(), 1);
        let per_step: Vec<(u64, u64)> = series[0].1.per_step().collect();
        assert_eq!(per_step, vec![(0, 0), (2, 10), (3, 13), (1, 3), (0, 0)]);
        assert_eq!(
            value(RangeOp::BytesRate, 3, 13, 20_000_000_000),
            13.0 / 20.0
        );
    }
}
