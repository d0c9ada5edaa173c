//! An in-memory [`SubmissionStore`]: feature X's handler tests run on it, with no DynamoDB.
//!
//! It keeps the port's promises the handlers rely on: an idempotency key returns the original
//! submission for the same request and refuses another request; a listing is oldest first,
//! pages with an opaque cursor, and reports the method it would have read with (a journey
//! listing with the method asked, a user listing with the base key). It can be made to fail
//! (`Unavailable`) to drive the 503 paths, and counts writes so tests can assert "nothing written".

use lockstep::source::BoxFuture;
use lockstep_sample::submissions::{
    Created, Ident, ListQuery, Page, QueryMethod, StoreError, Submission, SubmissionStore, UserId,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Submissions and idempotency records in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    failing: AtomicBool,
    writes: AtomicU64,
    methods: Mutex<Vec<QueryMethod>>,
}

#[derive(Debug, Default)]
struct State {
    submissions: Vec<Submission>,
    /// (user, key) → (fingerprint, submission id).
    keys: HashMap<(String, String), (String, String)>,
}

const CURSOR_PREFIX: &str = "mem.";

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every call fail as unavailable (throttled or unreachable) until called with `false`.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// How many submissions were written.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// The method of every listing so far, in order.
    pub fn methods(&self) -> Vec<QueryMethod> {
        self.methods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Every stored submission, oldest first.
    pub fn all(&self) -> Vec<Submission> {
        self.lock().submissions.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("memory store set to fail".into()))
        } else {
            Ok(())
        }
    }

    fn create_now(
        &self,
        submission: &Submission,
        idempotency: Option<(&Ident, String)>,
    ) -> Result<Created, StoreError> {
        self.check()?;
        let mut state = self.lock();
        if let Some((key, fingerprint)) = &idempotency {
            let slot = (
                submission.user_id.as_str().to_owned(),
                key.as_str().to_owned(),
            );
            if let Some((stored_fingerprint, id)) = state.keys.get(&slot) {
                if stored_fingerprint != fingerprint {
                    return Err(StoreError::KeyReused);
                }
                let original = state
                    .submissions
                    .iter()
                    .find(|s| &s.id == id)
                    .cloned()
                    .ok_or_else(|| {
                        StoreError::Internal("idempotency record without item".into())
                    })?;
                return Ok(Created::Replayed(original));
            }
            state
                .keys
                .insert(slot, (fingerprint.clone(), submission.id.clone()));
        }
        state.submissions.push(submission.clone());
        state.submissions.sort_by(|a, b| a.id.cmp(&b.id));
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(Created::New(submission.clone()))
    }

    fn list_now(&self, query: &ListQuery, method: QueryMethod) -> Result<Page, StoreError> {
        self.check()?;
        let after = match &query.cursor {
            None => None,
            Some(cursor) => Some(
                cursor
                    .strip_prefix(CURSOR_PREFIX)
                    .ok_or(StoreError::BadCursor)?
                    .to_owned(),
            ),
        };
        let state = self.lock();
        let mut matching = state.submissions.iter().filter(|s| {
            s.user_id == query.user_id
                && query.journey_id.as_ref().is_none_or(|j| &s.journey_id == j)
                && after.as_ref().is_none_or(|a| &s.id > a)
        });
        let items: Vec<Submission> = matching
            .by_ref()
            .take(query.limit as usize)
            .cloned()
            .collect();
        let more = matching.next().is_some();
        let method = if query.journey_id.is_some() {
            method
        } else {
            QueryMethod::KeyQuery
        };
        self.methods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(method);
        Ok(Page {
            next_cursor: items
                .last()
                .filter(|_| more)
                .map(|last| format!("{CURSOR_PREFIX}{}", last.id)),
            items,
            method,
        })
    }
}

impl SubmissionStore for MemoryStore {
    fn create<'a>(
        &'a self,
        submission: &'a Submission,
        idempotency: Option<(&'a Ident, String)>,
    ) -> BoxFuture<'a, Result<Created, StoreError>> {
        Box::pin(async move { self.create_now(submission, idempotency) })
    }

    fn get<'a>(
        &'a self,
        user_id: &'a UserId,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Submission>, StoreError>> {
        Box::pin(async move {
            self.check()?;
            Ok(self
                .lock()
                .submissions
                .iter()
                .find(|s| &s.user_id == user_id && s.id == id)
                .cloned())
        })
    }

    fn list<'a>(
        &'a self,
        query: &'a ListQuery,
        method: QueryMethod,
    ) -> BoxFuture<'a, Result<Page, StoreError>> {
        Box::pin(async move { self.list_now(query, method) })
    }
}
