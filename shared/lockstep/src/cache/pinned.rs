//! The per-thread pinned read path: where a cache keeps its current [`CacheState`], and how a
//! read on a fresh cache reaches it touching no shared reference count.
//!
//! The state lives in an [`ArcSwap`] with a generation counter bumped after every store. Each
//! thread keeps pinned copies of caches' states, direct-mapped by cache id; a read compares its
//! pinned copy's generation with the current one (one atomic load) and reloads only when a newer
//! state was stored since. A slot holds at most one state, so a thread keeps at most
//! [`PINNED_SLOTS`] states alive after their caches are gone.

use crate::cache::view::CacheState;
use arc_swap::ArcSwap;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Per-thread slots for pinned states.
const PINNED_SLOTS: usize = 8;

static CACHE_IDS: AtomicU64 = AtomicU64::new(1);

struct Pinned {
    cache: u64,
    generation: u64,
    state: Arc<CacheState>,
}

thread_local! {
    static PINNED: RefCell<[Option<Pinned>; PINNED_SLOTS]> =
        const { RefCell::new([const { None }; PINNED_SLOTS]) };
}

/// A cache's current state, readable through this thread's pinned copy.
pub(crate) struct StateCell {
    /// Unique for the life of the process: keys the per-thread pinned state.
    id: u64,
    /// Bumped after every store of `state`: a pinned copy of an older generation is reloaded.
    generation: AtomicU64,
    state: ArcSwap<CacheState>,
}

impl StateCell {
    /// A cell holding `initial`, with an id of its own.
    pub(crate) fn new(initial: CacheState) -> Self {
        Self {
            id: CACHE_IDS.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
            state: ArcSwap::from_pointee(initial),
        }
    }

    /// The current state, with its own reference (for the refresh, never the fresh read path).
    pub(crate) fn load_full(&self) -> Arc<CacheState> {
        self.state.load_full()
    }

    /// Stores a new state; every thread's pinned copy is reloaded on its next read.
    pub(crate) fn store(&self, state: Arc<CacheState>) {
        self.state.store(state);
        // Stored state first, generation second (release): a reader that sees a generation
        // finds that state or a newer one.
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Runs `f` on this thread's pinned copy of the current state, reloading it when a newer
    /// state was stored since (the generation moved).
    #[inline]
    pub(crate) fn pinned<R>(&self, f: impl FnOnce(&Arc<CacheState>) -> R) -> R {
        let generation = self.generation.load(Ordering::Acquire);
        let mut f = Some(f);
        let pinned = PINNED.try_with(|slots| {
            let mut slots = slots.borrow_mut();
            let slot = &mut slots[self.id as usize % PINNED_SLOTS];
            let f = f.take().expect("called once");
            match slot {
                Some(p) if p.cache == self.id && p.generation == generation => f(&p.state),
                _ => {
                    let state = self.state.load_full();
                    let result = f(&state);
                    *slot = Some(Pinned {
                        cache: self.id,
                        generation,
                        state,
                    });
                    result
                }
            }
        });
        match pinned {
            Ok(result) => result,
            // The thread is exiting and its locals are gone: read the shared state.
            Err(_) => (f.take().expect("not called"))(&self.state.load_full()),
        }
    }
}

impl std::fmt::Debug for StateCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.state.load().fmt(f)
    }
}
