//! Owners known to have given no share, per backend, so the realtime fan-out of their writes
//! skips the share look-up (bench part 4: most writers share nothing, and that look-up was one of
//! the trigger's statements on every write).
//!
//! Exact, like the key cache: only "has no share that is not revoked" is remembered — a fact that
//! time alone never changes (expiry and windows are checked by the full look-up, which runs for
//! every owner not in this set). Every change to `health.shares` runs the statement trigger
//! `health.shares_changed`, which sends a relcache invalidation for the table: this backend drops
//! the set at its next command, every other backend at the writer's commit. A look-up that was
//! running while such an invalidation arrived does not store its answer (the generation moved), so
//! an answer read before a share committed can never outlive that share's invalidation.
use crate::error;
use crate::pg::spi::types::UUID;
use crate::pg::spi::KeptStatement;
use crate::pg::uuid::to_pg;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;

/// Bounded: a backend serving many users forgets them all rather than grow without limit.
const CAPACITY: usize = 100_000;

static HAS_SHARES: KeptStatement = KeptStatement {
    sql: "SELECT EXISTS (SELECT 1 FROM health.shares WHERE owner_id OPERATOR(pg_catalog.=) $1 AND revoked_at IS NULL)",
    types: &[UUID],
    writes: true,
};

thread_local! {
    static UNSHARED: RefCell<HashSet<uuid::Uuid>> = RefCell::new(HashSet::new());
    static GENERATION: Cell<u64> = const { Cell::new(0) };
}

pub fn init() {
    // Any relcache invalidation empties the set (those of health.shares included): rare, and
    // never wrong — the next write of each owner asks again.
    crate::pg::cache::on_invalidation(|_| forget());
}

/// Drop everything this backend knows (called by the invalidation callback and the trigger).
pub fn forget() {
    GENERATION.with(|g| g.set(g.get().wrapping_add(1)));
    UNSHARED.with(|u| u.borrow_mut().clear());
}

/// Whether `owner` may have a share (false only when known to have none).
pub fn may_have_shares(owner: &uuid::Uuid) -> bool {
    if UNSHARED.with(|u| u.borrow().contains(owner)) {
        return false;
    }
    let generation = GENERATION.with(Cell::get);
    let has = Spi::connect_mut(|c| {
        HAS_SHARES.run(c, |c, plan| c.update(plan, Some(1), &[to_pg(*owner).into()])?.first().get_one::<bool>())
    })
    .unwrap_or_else(|e| error::spi_failed("looking up an owner's shares", e))
    .unwrap_or(true);
    if !has && GENERATION.with(Cell::get) == generation {
        UNSHARED.with(|u| {
            let mut u = u.borrow_mut();
            if u.len() >= CAPACITY {
                u.clear();
            }
            u.insert(*owner);
        });
    }
    has
}
