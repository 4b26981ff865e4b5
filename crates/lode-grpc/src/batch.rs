//! Cutting a large answer into messages of a bounded size, and putting it back together.
//!
//! An answer is a list of labelled groups (a stream's entries, a series' samples). A batch takes
//! whole groups while they fit and cuts the group that does not, so one huge stream spreads
//! over several messages; `first_continues` on a message says its first group is the rest of
//! the previous message's last one. The receiver appends such a group instead of starting a new
//! one, so what it assembles equals what the sender cut, group for group.

use std::collections::VecDeque;

/// Bytes counted for a group's framing besides its labels.
const GROUP_OVERHEAD: usize = 16;

/// One message's groups, and whether its first group continues the previous message's last.
pub(crate) struct Batch<T> {
    pub groups: Vec<(String, Vec<T>)>,
    pub first_continues: bool,
}

/// Yields batches of at most about `budget` bytes (at least one item each, so a single item
/// larger than the budget still goes, alone) and always at least one batch, which may be empty.
pub(crate) struct Batcher<T, F> {
    queue: VecDeque<(String, Vec<T>)>,
    budget: usize,
    size_of: F,
    /// The front group's head went out in an earlier batch.
    continuing: bool,
    started: bool,
}

impl<T, F: Fn(&T) -> usize> Batcher<T, F> {
    pub(crate) fn new(groups: Vec<(String, Vec<T>)>, budget: usize, size_of: F) -> Self {
        Batcher {
            queue: groups.into(),
            budget,
            size_of,
            continuing: false,
            started: false,
        }
    }
}

impl<T, F: Fn(&T) -> usize> Iterator for Batcher<T, F> {
    type Item = Batch<T>;

    fn next(&mut self) -> Option<Batch<T>> {
        if self.queue.is_empty() && self.started {
            return None;
        }
        self.started = true;
        let first_continues = self.continuing;
        let mut groups: Vec<(String, Vec<T>)> = Vec::new();
        let mut used = 0;
        while let Some((labels, items)) = self.queue.front_mut() {
            let mut size = used + labels.len() + GROUP_OVERHEAD;
            if size > self.budget && !groups.is_empty() {
                break;
            }
            let mut n = 0;
            while n < items.len() {
                let s = (self.size_of)(&items[n]);
                if size + s > self.budget && (n > 0 || !groups.is_empty()) {
                    break;
                }
                size += s;
                n += 1;
            }
            if n == items.len() {
                if let Some(g) = self.queue.pop_front() {
                    groups.push(g);
                }
                self.continuing = false;
                used = size;
                if used >= self.budget {
                    break;
                }
                continue;
            }
            if n > 0 {
                let rest = items.split_off(n);
                let head = std::mem::replace(items, rest);
                groups.push((labels.clone(), head));
                self.continuing = true;
            }
            break;
        }
        debug_assert!(
            !groups.is_empty() || self.queue.is_empty(),
            "a batch always makes progress"
        );
        Some(Batch {
            groups,
            first_continues,
        })
    }
}

/// Puts batches back together.
pub(crate) struct Assembler<T> {
    groups: Vec<(String, Vec<T>)>,
}

impl<T> Assembler<T> {
    pub(crate) fn new() -> Self {
        Assembler { groups: Vec::new() }
    }

    pub(crate) fn add(&mut self, batch: Batch<T>) {
        let mut it = batch.groups.into_iter();
        if batch.first_continues
            && let Some((_, more)) = it.next()
        {
            match self.groups.last_mut() {
                Some((_, items)) => items.extend(more),
                // A continuation of nothing: keep it rather than lose entries.
                None => self.groups.push((String::new(), more)),
            }
        }
        self.groups.extend(it);
    }

    pub(crate) fn finish(self) -> Vec<(String, Vec<T>)> {
        self.groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(spec: &[(&str, usize)]) -> Vec<(String, Vec<u32>)> {
        let mut next = 0;
        spec.iter()
            .map(|(l, n)| {
                let items = (next..next + *n as u32).collect();
                next += *n as u32;
                (l.to_string(), items)
            })
            .collect()
    }

    fn round_trip(spec: &[(&str, usize)], budget: usize) -> usize {
        let input = groups(spec);
        let mut asm = Assembler::new();
        let mut batches = 0;
        for b in Batcher::new(input.clone(), budget, |_| 10) {
            let size: usize = b
                .groups
                .iter()
                .map(|(l, v)| l.len() + GROUP_OVERHEAD + 10 * v.len())
                .sum();
            let items: usize = b.groups.iter().map(|(_, v)| v.len()).sum();
            assert!(size <= budget || items == 1, "batch of {size} bytes over {budget}");
            asm.add(b);
            batches += 1;
        }
        assert_eq!(asm.finish(), input, "{spec:?} budget {budget}");
        batches
    }

    #[test]
    fn batches_reassemble_exactly() {
        assert_eq!(round_trip(&[], 100), 1);
        assert_eq!(round_trip(&[("a", 0)], 100), 1);
        assert_eq!(round_trip(&[("a", 2), ("b", 3)], 1000), 1);
        // One stream over many messages, groups with the same labels kept apart.
        assert!(round_trip(&[("a", 100)], 100) > 10);
        round_trip(&[("a", 3), ("a", 3), ("b", 0), ("c", 50), ("d", 1)], 60);
        // Items larger than the budget go one per message.
        assert_eq!(round_trip(&[("a", 5)], 5), 5);
    }
}
