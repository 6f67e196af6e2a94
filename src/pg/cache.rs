//! Per-backend caches of what was read from a table, dropped when that table changes.
//!
//! Keys, the metric catalog and trigger column layouts are read on every call or row, so they
//! are cached per backend and must never be stale. A change to the table sends a relcache
//! invalidation for it (our statement triggers on `auth.keys` and `health.metric_kinds` call
//! `CacheInvalidateRelcacheByRelid`; ALTER TABLE does it itself). Postgres delivers it to this
//! backend at its next command and to every other backend at commit, and drops it on rollback:
//! exactly the visibility of the change. One relcache callback serves every cache.
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;

/// One cached value: its key, the relations it was read from, the value.
type Entry<K, V> = (K, Vec<pg_sys::Oid>, Rc<V>);

/// Values keyed by `K`, each remembered with the relations it was read from.
pub struct RelCache<K, V> {
    entries: RefCell<Vec<Entry<K, V>>>,
}

impl<K: PartialEq, V> RelCache<K, V> {
    pub const fn new() -> Self {
        RelCache { entries: RefCell::new(Vec::new()) }
    }

    /// The value for `key`; when absent, `load` reads it and names the relations it came from.
    /// No borrow is held while `load` runs (it may run SQL, which may deliver invalidations).
    pub fn get(&self, key: K, load: impl FnOnce() -> (Vec<pg_sys::Oid>, V)) -> Rc<V> {
        let found = self.entries.borrow().iter().find(|(k, _, _)| *k == key).map(|(_, _, v)| v.clone());
        if let Some(v) = found {
            return v;
        }
        let (relids, value) = load();
        let value = Rc::new(value);
        self.entries.borrow_mut().push((key, relids, value.clone()));
        value
    }

    /// Drop what was read from `relid` (everything for `InvalidOid`, Postgres's "reset all").
    pub fn forget(&self, relid: pg_sys::Oid) {
        self.entries
            .borrow_mut()
            .retain(|(_, read_from, _)| relid != pg_sys::InvalidOid && !read_from.contains(&relid));
    }
}

impl<K: PartialEq, V> Default for RelCache<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

type Forget = fn(pg_sys::Oid);

thread_local! {
    static FORGETTERS: RefCell<Vec<Forget>> = const { RefCell::new(Vec::new()) };
}

/// Have `forget` called with every relcache invalidation this backend receives.
pub fn on_invalidation(forget: Forget) {
    FORGETTERS.with(|f| f.borrow_mut().push(forget));
}

pub(super) fn init() {
    // SAFETY: runs once, from _PG_init; the callback is a static function that lives as long as
    // the library (which is never unloaded).
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache_invalidation), pg_sys::Datum::from(0)) };
}

#[pg_guard]
extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let forgetters: Vec<Forget> = FORGETTERS.with(|f| f.borrow().clone());
    for forget in forgetters {
        forget(relid);
    }
}

/// Tell every backend (this one at its next command, the others at commit) that what was read
/// from `relid` is stale.
pub fn invalidate(relid: pg_sys::Oid) {
    // SAFETY: queues a relcache invalidation message; any oid is accepted.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(relid) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_once_and_forgets_by_relation() {
        let cache: RelCache<u32, String> = RelCache::new();
        let (a, b) = (pg_sys::Oid::from(100u32), pg_sys::Oid::from(200u32));
        let c = pg_sys::Oid::from(300u32);
        assert_eq!(*cache.get(1, || (vec![a], "one".into())), "one");
        assert_eq!(*cache.get(1, || unreachable!("cached")), "one");
        assert_eq!(*cache.get(2, || (vec![b, c], "two".into())), "two");
        cache.forget(a);
        assert_eq!(*cache.get(1, || (vec![a], "one again".into())), "one again");
        assert_eq!(*cache.get(2, || unreachable!("other relation kept")), "two");
        cache.forget(c);
        assert_eq!(*cache.get(2, || (vec![b, c], "read from either".into())), "read from either");
        cache.forget(pg_sys::InvalidOid);
        assert_eq!(*cache.get(2, || (vec![b], "reloaded".into())), "reloaded");
    }
}
