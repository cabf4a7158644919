//! A push's validation errors, grouped by message as Loki groups them: a single error is its
//! message; otherwise every distinct message is written once as `N errors like: <message>`, the
//! groups joined by `; `. Loki orders the groups as a Go map iterates (at random); Fjord keeps
//! the order in which each message was first seen.
//!
//! At most [`MAX_DISTINCT`] distinct messages are kept. A push of millions of bad entries, each
//! with its own timestamp and so its own message, then costs bounded memory and gets a bounded
//! answer: the messages past the cap are counted in a last group, `N more errors not listed`
//! (Fjord's own wording; Loki lists every one).

use std::collections::HashMap;

/// Most distinct messages kept, about 150 KB of answer at Loki's message lengths.
const MAX_DISTINCT: usize = 1000;

/// The validation errors of one push.
#[derive(Debug, Default)]
pub(crate) struct GroupedErrors {
    /// Distinct messages with their occurrences, in the order first seen.
    groups: Vec<(String, usize)>,
    /// Message → its index in `groups`.
    index: HashMap<String, usize>,
    /// The group the last message went to: bad entries come in runs with one message (a
    /// batch's timestamps within one second), which then cost a comparison, not a hash.
    last: usize,
    /// Errors whose message was new once [`MAX_DISTINCT`] were kept.
    not_listed: usize,
}

impl GroupedErrors {
    pub(crate) fn add(&mut self, message: String) {
        if let Some((last, n)) = self.groups.get_mut(self.last)
            && *last == message
        {
            *n += 1;
        } else if let Some(&i) = self.index.get(&message) {
            self.groups[i].1 += 1;
            self.last = i;
        } else if self.groups.len() < MAX_DISTINCT {
            self.last = self.groups.len();
            self.index.insert(message.clone(), self.last);
            self.groups.push((message, 1));
        } else {
            self.not_listed += 1;
        }
    }

    /// The answer's text, Loki's `GroupedErrors` format; `None` without errors.
    pub(crate) fn message(&self) -> Option<String> {
        let single = self.groups.len() == 1 && self.not_listed == 0;
        let mut out = String::new();
        for (i, (m, n)) in self.groups.iter().enumerate() {
            if i > 0 {
                out.push_str("; ");
            }
            if !single || *n > 1 {
                out.push_str(&format!("{n} errors like: "));
            }
            out.push_str(m);
        }
        if self.not_listed > 0 {
            out.push_str(&format!("; {} more errors not listed", self.not_listed));
        }
        (!out.is_empty()).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grouped(messages: &[&str]) -> Option<String> {
        let mut e = GroupedErrors::default();
        for m in messages {
            e.add(m.to_string());
        }
        e.message()
    }

    #[test]
    fn grouped_like_lokis_grouped_errors() {
        assert_eq!(grouped(&[]), None);
        assert_eq!(grouped(&["a"]).as_deref(), Some("a"));
        assert_eq!(
            grouped(&["a", "a", "a"]).as_deref(),
            Some("3 errors like: a")
        );
        assert_eq!(
            grouped(&["b", "a", "b"]).as_deref(),
            Some("2 errors like: b; 1 errors like: a")
        );
        // Runs of one message and returns to an earlier one count the same.
        assert_eq!(
            grouped(&["a", "a", "b", "b", "b", "a", "c", "b"]).as_deref(),
            Some("3 errors like: a; 4 errors like: b; 1 errors like: c")
        );
    }

    #[test]
    fn distinct_messages_past_the_cap_are_counted_not_kept() {
        let mut e = GroupedErrors::default();
        for i in 0..MAX_DISTINCT + 5 {
            e.add(format!("m{i}"));
        }
        e.add("m0".to_string());
        assert_eq!(e.groups.len(), MAX_DISTINCT);
        let m = e.message().unwrap();
        assert!(
            m.starts_with("2 errors like: m0; 1 errors like: m1; "),
            "{m}"
        );
        assert!(
            m.ends_with("; 1 errors like: m999; 5 more errors not listed"),
            "{m}"
        );
    }
}
