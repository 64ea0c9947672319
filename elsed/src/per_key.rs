//! At most so many of something at once per key (a client address, an account): one counting
//! map for every limit of that kind, each place given back when its holder is dropped.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Places per key, at most `limit` held at once.
#[derive(Debug)]
pub struct PerKeyLimit<K: Eq + Hash> {
    limit: usize,
    held: Mutex<HashMap<K, usize>>,
}

/// One place of `key`, held until dropped.
#[derive(Debug)]
pub struct Held<K: Eq + Hash> {
    limits: Arc<PerKeyLimit<K>>,
    key: K,
}

impl<K: Eq + Hash + Clone> PerKeyLimit<K> {
    /// At most `limit` (at least 1) places per key.
    pub fn new(limit: usize) -> Arc<PerKeyLimit<K>> {
        Arc::new(PerKeyLimit {
            limit: limit.max(1),
            held: Mutex::new(HashMap::new()),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A place for `key`, or `None` when it holds `limit` already.
    pub fn claim(self: &Arc<Self>, key: K) -> Option<Held<K>> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(key.clone()).or_default();
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(Held {
            limits: self.clone(),
            key,
        })
    }
}

impl<K: Eq + Hash> Drop for Held<K> {
    fn drop(&mut self) {
        let mut held = self.limits.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PerKeyLimit;

    #[test]
    fn each_key_holds_its_limit_and_gets_places_back() {
        let limits = PerKeyLimit::new(2);
        let (a1, a2) = (limits.claim("a").unwrap(), limits.claim("a").unwrap());
        assert!(limits.claim("a").is_none());
        let b = limits.claim("b");
        assert!(b.is_some(), "another key has its own places");
        drop(a1);
        assert!(limits.claim("a").is_some());
        drop((a2, b));
        assert!(limits.held.lock().unwrap().is_empty(), "nothing left behind");
    }
}
