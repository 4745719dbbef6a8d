//! A bounded slot table with generations: the storage behind every handle kind. The lowest
//! free slot is reused first, so handle values are a deterministic function of the call
//! sequence.

/// Slots holding `T`, each tagged with the generation of the handle that names it.
#[derive(Debug, Clone)]
pub struct Slots<T> {
    entries: Vec<Option<(u32, T)>>,
    capacity: usize,
}

impl<T> Slots<T> {
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0 && capacity <= usize::from(u16::MAX) + 1);
        Slots {
            entries: Vec::new(),
            capacity,
        }
    }

    /// Stores `value` under `generation`; `None` when full.
    pub fn insert(&mut self, generation: u32, value: T) -> Option<u16> {
        assert_ne!(generation, 0, "generation 0 is reserved");
        let slot = match self.entries.iter().position(Option::is_none) {
            Some(free) => free,
            None if self.entries.len() < self.capacity => {
                self.entries.push(None);
                self.entries.len() - 1
            }
            None => return None,
        };
        self.entries[slot] = Some((generation, value));
        Some(u16::try_from(slot).expect("capacity bounds the slot"))
    }

    pub fn get(&self, slot: u16, generation: u32) -> Option<&T> {
        match self.entries.get(usize::from(slot)) {
            Some(Some((g, value))) if *g == generation => Some(value),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, slot: u16, generation: u32) -> Option<&mut T> {
        match self.entries.get_mut(usize::from(slot)) {
            Some(Some((g, value))) if *g == generation => Some(value),
            _ => None,
        }
    }

    pub fn remove(&mut self, slot: u16, generation: u32) -> Option<T> {
        let entry = self.entries.get_mut(usize::from(slot))?;
        if entry.as_ref().is_some_and(|(g, _)| *g == generation) {
            entry.take().map(|(_, value)| value)
        } else {
            None
        }
    }

    /// Live entries in slot order: `(slot, generation, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (u16, u32, &T)> {
        self.entries.iter().enumerate().filter_map(|(slot, entry)| {
            entry
                .as_ref()
                .map(|(g, value)| (u16::try_from(slot).expect("bounded"), *g, value))
        })
    }

    pub fn len(&self) -> usize {
        self.entries.iter().filter(|e| e.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Slots<T> {
    /// The slot the next `insert` would use, if any.
    pub fn next_free_slot(&self) -> Option<u16> {
        let slot = match self.entries.iter().position(Option::is_none) {
            Some(free) => free,
            None if self.entries.len() < self.capacity => self.entries.len(),
            None => return None,
        };
        u16::try_from(slot).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_generation_is_rejected_after_reuse() {
        let mut slots = Slots::new(2);
        let a = slots.insert(1, "a").unwrap();
        assert_eq!(slots.remove(a, 1), Some("a"));
        let b = slots.insert(2, "b").unwrap();
        assert_eq!(a, b, "lowest free slot is reused");
        assert_eq!(slots.get(a, 1), None);
        assert_eq!(slots.get(b, 2), Some(&"b"));
        assert_eq!(slots.remove(a, 1), None, "double close with a stale handle");
    }

    #[test]
    fn capacity_is_enforced() {
        let mut slots = Slots::new(1);
        assert!(slots.insert(1, ()).is_some());
        assert!(slots.insert(2, ()).is_none());
    }
}
