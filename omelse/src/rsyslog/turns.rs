//! Batches back in the order rsyslog dequeued them, before they are correlated.
//!
//! With several action workers (the shipped stanza has two), rsyslog dequeues whole batches in
//! queue order, but a worker may reach the commit before the one that took the batch before it (a
//! shorter batch, or simply scheduled first). Its later lines would then be correlated before the
//! earlier ones, and records would depend on thread timing: a message cut in two, a session left
//! open. The correlator cannot make every order give the same records (a message's identity is
//! the time of its first line), so the module restores the order instead.
//!
//! Each worker takes a turn when its transaction begins: rsyslog calls `beginTransaction` at the
//! first line of a batch, right after the dequeue, under no lock of ours. The commit thread takes
//! the batches by turn, waiting up to [`WAIT_FOR_TURN`] for a missing one; a turn that never
//! comes (a batch abandoned at shutdown) is given up then, and a batch whose turn was given up
//! goes next. What is left: a worker descheduled between its dequeue and its first line, while
//! the other dequeues, renders and begins; the batches then keep their arrival order.

use std::collections::BTreeMap;
use std::time::Duration;

/// How long a batch that came before its turn waits for the batches before it.
pub const WAIT_FOR_TURN: Duration = Duration::from_secs(2);

/// Items (a worker's batch) released in turn order; items without a turn go at once.
#[derive(Debug)]
pub struct Turns<T> {
    /// The turn whose batch goes next.
    next: u64,
    /// Batches that came before their turn.
    early: BTreeMap<u64, T>,
}

impl<T> Turns<T> {
    /// Starts at `next`, the first turn not handed over yet.
    pub fn starting_at(next: u64) -> Self {
        Turns {
            next,
            early: BTreeMap::new(),
        }
    }

    /// The first turn not released yet.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Takes a worker's batch; appends to `ready` what may go now, in turn order.
    pub fn push(&mut self, turn: Option<u64>, item: T, ready: &mut Vec<T>) {
        match turn {
            // A check, a batch that began before the thread did, or one whose turn was given up.
            Some(turn) if turn >= self.next => {
                self.early.insert(turn, item);
                self.release(ready);
            }
            _ => ready.push(item),
        }
    }

    /// True while a batch waits for one before it.
    pub fn waiting(&self) -> bool {
        !self.early.is_empty()
    }

    /// The missing turns will not be waited for any longer: every waiting batch goes, in order.
    pub fn give_up(&mut self, ready: &mut Vec<T>) {
        let early = std::mem::take(&mut self.early);
        if let Some((&last, _)) = early.last_key_value() {
            self.next = last + 1;
        }
        ready.extend(early.into_values());
    }

    fn release(&mut self, ready: &mut Vec<T>) {
        while let Some(item) = self.early.remove(&self.next) {
            ready.push(item);
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_that_comes_before_its_turn_waits_for_the_one_before() {
        let mut turns = Turns::starting_at(0);
        let mut ready = Vec::new();
        turns.push(Some(1), "second", &mut ready);
        assert!(ready.is_empty() && turns.waiting());
        turns.push(None, "check", &mut ready);
        assert_eq!(ready, ["check"], "what has no turn goes at once");
        turns.push(Some(0), "first", &mut ready);
        assert_eq!(ready, ["check", "first", "second"]);
        assert!(!turns.waiting());
        assert_eq!(turns.next(), 2);
    }

    #[test]
    fn a_turn_given_up_lets_the_waiting_go_and_goes_at_once_when_it_comes() {
        let mut turns = Turns::starting_at(5);
        let mut ready = Vec::new();
        turns.push(Some(7), "c", &mut ready);
        turns.push(Some(6), "b", &mut ready);
        assert!(ready.is_empty());
        turns.give_up(&mut ready);
        assert_eq!(ready, ["b", "c"]);
        assert_eq!(turns.next(), 8);
        turns.push(Some(5), "a, late", &mut ready);
        assert_eq!(ready, ["b", "c", "a, late"]);
        turns.push(Some(8), "d", &mut ready);
        assert_eq!(ready.last(), Some(&"d"));
    }
}
