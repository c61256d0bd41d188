//! A string-keyed hash map in many parts, for the memory backend's records
//! and index keys.
//!
//! One hash table over every record rehashes everything each time it
//! doubles, a pause that grew to a third of a second at 500,000 contacts
//! with every request of the kind waiting behind it. A B-tree has no such
//! pause but walks some forty keys per lookup, each a pointer to chase
//! through a heap of a gigabyte or more (9% of the CPU of a create at
//! 300,000 contacts). Here each of [`PARTS`] tables grows on its own, so a
//! rehash moves 1/256 of the map and a lookup reads one or two keys. The hash
//! is foldhash, seeded at random per map (a fixed hash would let a client
//! choose ids that collide). Keys are [`CompactString`]s: an id (20
//! characters) sits in the table itself, so a growing table rehashes it
//! without a read elsewhere in the heap (that read was a twentieth of the
//! CPU of a create).

use std::collections::HashMap;
use std::hash::BuildHasher;

use compact_str::CompactString;
use foldhash::fast::RandomState;

/// How many tables the map is split into.
pub const PARTS: usize = 256;

pub struct Split<V> {
    parts: Vec<HashMap<CompactString, V, RandomState>>,
    chooser: RandomState,
}

impl<V> Default for Split<V> {
    fn default() -> Self {
        Self { parts: Vec::new(), chooser: RandomState::default() }
    }
}

impl<V> Split<V> {
    fn part(&self, key: &str) -> usize {
        (self.chooser.hash_one(key) >> 56) as usize % PARTS
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.parts.get(self.part(key))?.get(key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let i = self.part(key);
        self.parts.get_mut(i)?.get_mut(key)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The table of `key`'s part; the tables are made on first use (an empty
    /// map holds none, so a kind or a location with few records costs little).
    fn table(&mut self, key: &str) -> &mut HashMap<CompactString, V, RandomState> {
        if self.parts.is_empty() {
            self.parts = (0..PARTS).map(|_| HashMap::with_hasher(RandomState::default())).collect();
        }
        let i = self.part(key);
        &mut self.parts[i]
    }

    /// Stores `value` at `key`, answering what was there.
    pub fn insert(&mut self, key: CompactString, value: V) -> Option<V> {
        self.table(&key).insert(key, value)
    }

    /// The value at `key`, made with `make` when there is none.
    pub fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> V) -> &mut V {
        self.table(key).entry(CompactString::from(key)).or_insert_with(make)
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        let i = self.part(key);
        self.parts.get_mut(i)?.remove(key)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&CompactString, &V)> {
        self.parts.iter().flat_map(|t| t.iter())
    }

    pub fn keys(&self) -> impl Iterator<Item = &CompactString> {
        self.iter().map(|(k, _)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_split_map_agrees_with_an_ordered_map_over_inserts_and_removes() {
        let mut split = Split::default();
        let mut model = BTreeMap::new();
        let mut rng = fastrand::Rng::with_seed(7);
        for step in 0..5_000u32 {
            let key = format!("k{}", rng.u32(0..3_000));
            match rng.u8(0..3) {
                0 => assert_eq!(split.insert(key.as_str().into(), step), model.insert(key, step)),
                1 => assert_eq!(split.remove(&key), model.remove(&key)),
                _ => {
                    let got = *split.get_or_insert_with(&key, || step);
                    assert_eq!(got, *model.entry(key).or_insert(step));
                }
            }
            assert_eq!(split.iter().count(), model.len());
        }
        let mut seen: Vec<(String, u32)> = split.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        seen.sort();
        let expected: Vec<(String, u32)> = model.into_iter().collect();
        assert_eq!(seen, expected);
        assert!(split.get("absent").is_none() && !split.contains_key("absent"));
    }
}
