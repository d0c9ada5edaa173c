//! A configuration version with every flag resolved, built once per fetched version so that a
//! read is a lookup and a comparison.
//!
//! Resolution precedence, written once (design rules 5 and 6):
//! 1. a `FORCE_<FLAG>` override wins over everything, and marks the flag forced;
//! 2. else the document's value, with its per-flag stamp or the profile stamp;
//! 3. else (a declared flag the document lacks) the declared default, stamped with the profile
//!    stamp: the latest deployment is no earlier than the one that removed the flag;
//! 4. with no document at all (bundled defaults), the declared default and no stamp.

use crate::catalog::{FlagCatalog, FlagHandle, Visibility};
use crate::consistency::{self, FlagStatus, Stamp, Window};
use crate::document::{Document, Format};
use crate::journey_key::JourneyKey;
use crate::overrides::Overrides;
use crate::targeted::{anonymous, Context, Evaluation};
use chrono::DateTime;
use lockstep_targeting::Definition;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Where a snapshot's values came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Origin {
    /// Fetched from the configured source.
    Source,
    /// The bundled safe defaults: nothing was ever fetched.
    Defaults,
    /// The durable last-known-good snapshot another instance wrote: the source was unreachable
    /// at cold start.
    Durable,
}

/// One resolved flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedFlag {
    /// Its key.
    pub name: String,
    /// The value this instance serves.
    pub value: bool,
    /// The stamp of the deployment that introduced the value, if known.
    pub stamp: Option<Stamp>,
    /// Whether a `FORCE_` variable set the value.
    pub forced: bool,
    /// Whether `/config` may expose it (undeclared flags are internal).
    pub visibility: Visibility,
    /// The drain time of the deployment that switched it off (rule 9), if it had one.
    pub drain: Option<Duration>,
    /// `T + Δ + P + ε` for this instance's window, computed once per version.
    pub consistent_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `T + Δ + Q + ε` (rule 8), computed once per version.
    pub journey_opens_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `T + Δ + P + ε + drain` (rule 9), for an unforced flag with a drain time.
    pub drain_ends_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Its rules, for a flag defined by them (design rule 10): the value then depends on the
    /// caller ([`crate::targeted`]); `value` is whether it may serve anyone `true`.
    pub definition: Option<Arc<Definition>>,
    /// When this instance saw the flag's stamp go backwards (a rollback happened no later than
    /// that: design rule 7, [`crate::rollback`]); `consistent_at` and `journey_opens_at` are then
    /// no earlier than this moment + P + ε.
    pub rolled_back_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `consistent_at` in Unix milliseconds, the read path's form.
    consistent_at_ms: Option<i64>,
    /// The value [`ResolvedFlag::status`] serves, fixed per version (an anonymous caller's).
    fixed_value: bool,
    /// Whether its rules read the clock, so that its anonymous value is evaluated per read.
    reads_clock: bool,
}

impl ResolvedFlag {
    fn new(name: &str, value: bool, stamp: Option<Stamp>, drain: Option<Duration>) -> Self {
        Self {
            name: name.to_owned(),
            value,
            stamp,
            forced: false,
            visibility: Visibility::Internal,
            drain,
            consistent_at: None,
            journey_opens_at: None,
            drain_ends_at: None,
            definition: None,
            rolled_back_at: None,
            consistent_at_ms: None,
            fixed_value: value,
            reads_clock: false,
        }
    }

    /// Its stamp T in Unix milliseconds, as journey tokens carry it; none for an unstamped or
    /// forced flag.
    #[inline]
    pub fn stamp_millis(&self) -> Option<i64> {
        if self.forced {
            return None;
        }
        self.stamp.map(|s| s.at.timestamp_millis())
    }

    /// Its status at `now_ms` on an instance that is (or is not) degraded: the rule's per-read
    /// half, [`consistency::is_consistent`]. A flag defined by rules is evaluated for an
    /// anonymous caller (an empty context): [`ResolvedFlag::status_for`] for one caller.
    #[inline]
    pub fn status(&self, now_ms: i64, degraded: bool) -> FlagStatus {
        match self.fixed_status(now_ms, degraded) {
            Some(status) => status,
            None => self.status_for(anonymous(), now_ms, degraded),
        }
    }

    /// [`ResolvedFlag::status`] from the value fixed when the version was resolved, or `None`
    /// for a flag whose rules read the clock (its anonymous value may change without a
    /// deployment). The plain read's path: no evaluation, no call.
    #[inline]
    pub(crate) fn fixed_status(&self, now_ms: i64, degraded: bool) -> Option<FlagStatus> {
        (!self.reads_clock).then(|| self.status_with(self.fixed_value, now_ms, degraded))
    }

    /// Fixes the anonymous value once per version: the flag's value, or, for a flag defined by
    /// rules that do not read the clock, their evaluation for the empty context (the same at
    /// every instant).
    fn fix_anonymous_value(&mut self) {
        let (fixed_value, reads_clock) = match self.rules() {
            None => (self.value, false),
            Some(definition) if definition.reads_clock() => (false, true),
            Some(definition) => {
                let evaluation =
                    lockstep_targeting::evaluate(definition, anonymous(), DateTime::UNIX_EPOCH);
                (evaluation.value.as_bool() == Some(true), false)
            }
        };
        self.fixed_value = fixed_value;
        self.reads_clock = reads_clock;
    }

    /// Its status with `value` as the value served.
    #[inline]
    pub(crate) fn status_with(&self, value: bool, now_ms: i64, degraded: bool) -> FlagStatus {
        FlagStatus {
            value,
            consistent: consistency::is_consistent(
                self.consistent_at_ms,
                self.forced,
                now_ms,
                degraded,
            ),
            consistent_at: self.consistent_at,
            journey_opens_at: self.journey_opens_at,
            forced: self.forced,
            rolled_back_at: self.rolled_back_at,
        }
    }

    /// Records that this instance learned at `seen_at` that the flag was rolled back, and
    /// moves its `consistentAt` (and `journeyOpensAt`: a journey token cannot make an instance
    /// catch up on an older stamp) to no earlier than `consistent_from`, the rollback's bound
    /// (computed by the rollback module, which owns that rule). A forced flag waits for nothing
    /// and keeps none.
    pub(crate) fn bound_by_rollback(
        &mut self,
        seen_at: chrono::DateTime<chrono::Utc>,
        consistent_from: chrono::DateTime<chrono::Utc>,
    ) {
        self.rolled_back_at = Some(seen_at);
        if self.forced {
            return;
        }
        let at = self
            .consistent_at
            .map_or(consistent_from, |at| at.max(consistent_from));
        self.consistent_at = Some(at);
        self.journey_opens_at = Some(at);
        self.consistent_at_ms = Some(at.timestamp_millis());
    }
}

/// A flag defined by rules, for one caller (design rule 10, [`crate::targeted`]).
impl ResolvedFlag {
    /// Whether this flag's value depends on the caller: defined by rules and not forced.
    #[inline]
    pub fn rules(&self) -> Option<&lockstep_targeting::Definition> {
        self.definition.as_deref().filter(|_| !self.forced)
    }

    /// The evaluation of its rules for `context` at `now_ms`; `None` for a plain or forced flag
    /// (its one value is [`ResolvedFlag::value`]).
    pub fn evaluate(&self, context: &Context, now_ms: i64) -> Option<Evaluation<'_>> {
        let definition = self.rules()?;
        let now = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        Some(lockstep_targeting::evaluate(definition, context, now))
    }

    /// Its status for the caller `context` at `now_ms` (for a flag defined by rules, the value
    /// is its evaluation: `true` only when it serves the boolean `true`).
    pub fn status_for(&self, context: &Context, now_ms: i64, degraded: bool) -> FlagStatus {
        let value = match self.evaluate(context, now_ms) {
            Some(evaluation) => evaluation.value.as_bool() == Some(true),
            None => self.value,
        };
        self.status_with(value, now_ms, degraded)
    }
}

/// A validated configuration version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The version label (AppConfig's `VersionLabel`, the local file's content hash, or
    /// `defaults`).
    pub version: String,
    /// Where the values came from.
    pub origin: Origin,
    /// The document's format, when there was a document.
    pub format: Option<Format>,
    /// The profile stamp.
    pub profile_stamp: Option<Stamp>,
    flags: Vec<ResolvedFlag>,
    /// The journey keys the document carried (all verify; see [`Snapshot::signing_key`]).
    journey_keys: Vec<JourneyKey>,
    /// `T + Δ + P + ε` of the deployment that rotated the first key in: before it, the second
    /// key signs.
    first_key_signs_at_ms: Option<i64>,
    /// The feature-flag attributes the document carried ([`Document::attributes`]).
    attributes: BTreeMap<String, Map<String, Value>>,
    /// The catalog the flags were resolved against, and for each of its handles the flag's
    /// position in `flags`.
    catalog: u32,
    by_handle: Box<[u32]>,
    /// The journey token handed out in the current second (`journey::issue_reused`).
    issued_token: PerSecond<Option<Arc<str>>>,
}

/// A value made from a snapshot for one second and shared by every read in that second: the
/// journey token, which would otherwise be signed for every `/config` read. A clone of the
/// snapshot starts empty, and comparing snapshots ignores it.
#[derive(Default)]
pub struct PerSecond<T>(Mutex<Option<(i64, T)>>);

impl<T: Clone> PerSecond<T> {
    /// The value for `second`: the one kept, if made for that second, else `make()`'s, kept.
    pub fn get_or_make(&self, second: i64, make: impl FnOnce() -> T) -> T {
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, value)) = kept.as_ref() {
            if *at == second {
                return value.clone();
            }
        }
        // Made outside the lock: two reads racing make the same value.
        drop(kept);
        let value = make();
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some((second, value.clone()));
        value
    }
}

impl<T> Clone for PerSecond<T> {
    fn clone(&self) -> Self {
        Self(Mutex::new(None))
    }
}

impl<T> PartialEq for PerSecond<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> Eq for PerSecond<T> {}

impl<T> std::fmt::Debug for PerSecond<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PerSecond(..)")
    }
}

impl Snapshot {
    /// Resolves a fetched document against the catalog, the overrides and this instance's P and ε.
    pub fn from_document(
        version: String,
        doc: &Document,
        catalog: &FlagCatalog,
        overrides: &Overrides,
        window: Window,
    ) -> Self {
        let mut flags: Vec<ResolvedFlag> = doc
            .flags
            .iter()
            .map(|(name, f)| ResolvedFlag {
                definition: doc.definitions.get(name).cloned(),
                ..ResolvedFlag::new(name, f.enabled, f.stamp, f.drain)
            })
            .collect();
        for decl in catalog.flags() {
            if !doc.flags.contains_key(&decl.name) {
                flags.push(ResolvedFlag::new(
                    &decl.name,
                    decl.default,
                    doc.profile_stamp,
                    None,
                ));
            }
        }
        let mut snapshot = Self::resolve(
            version,
            Origin::Source,
            Some(doc.format),
            doc.profile_stamp,
            flags,
            catalog,
            overrides,
            window,
        );
        snapshot.journey_keys = doc.journey_keys.clone();
        snapshot.first_key_signs_at_ms =
            consistency::consistent_at(doc.journey_key_stamp, false, window)
                .map(|at| at.timestamp_millis());
        snapshot.attributes = doc.attributes.clone();
        snapshot
    }

    /// The bundled safe defaults: every declared flag at its declared default, unstamped.
    pub fn defaults(catalog: &FlagCatalog, overrides: &Overrides, window: Window) -> Self {
        let flags = catalog
            .flags()
            .iter()
            .map(|decl| ResolvedFlag::new(&decl.name, decl.default, None, None))
            .collect();
        Self::resolve(
            "defaults".into(),
            Origin::Defaults,
            None,
            None,
            flags,
            catalog,
            overrides,
            window,
        )
    }

    /// Applies visibility, overrides and the window to the flags, sorts them and indexes the
    /// catalog's handles.
    #[allow(clippy::too_many_arguments)]
    fn resolve(
        version: String,
        origin: Origin,
        format: Option<Format>,
        profile_stamp: Option<Stamp>,
        mut flags: Vec<ResolvedFlag>,
        catalog: &FlagCatalog,
        overrides: &Overrides,
        window: Window,
    ) -> Self {
        for flag in &mut flags {
            if let Some(decl) = catalog.get(&flag.name) {
                flag.visibility = decl.visibility;
            }
            if let Some(value) = overrides.get(&flag.name) {
                flag.value = value;
                flag.forced = true;
            }
            flag.consistent_at = consistency::consistent_at(flag.stamp, flag.forced, window);
            flag.journey_opens_at = consistency::journey_opens_at(flag.stamp, flag.forced, window);
            if flag.rules().is_some() {
                // A journey token claims a flag defined by rules off (`journey::issue`): it makes
                // no instance catch up on it, so a journey on it opens only when every instance
                // holds it, at consistentAt.
                flag.journey_opens_at = flag.consistent_at;
            }
            // A drain only ever applies to a flag that is off.
            flag.drain_ends_at = (!flag.value)
                .then(|| consistency::drain_ends_at(flag.stamp, flag.forced, flag.drain, window))
                .flatten();
            flag.consistent_at_ms = flag.consistent_at.map(|at| at.timestamp_millis());
            flag.fix_anonymous_value();
        }
        flags.sort_by(|a, b| a.name.cmp(&b.name));
        // Every declared flag is present: the document's, or its default added above.
        let by_handle = catalog
            .flags()
            .iter()
            .map(|decl| {
                let i = flags
                    .binary_search_by(|f| f.name.as_str().cmp(&decl.name))
                    .expect("every declared flag is resolved");
                i as u32
            })
            .collect();
        Self {
            version,
            origin,
            format,
            profile_stamp,
            flags,
            journey_keys: Vec::new(),
            first_key_signs_at_ms: None,
            attributes: BTreeMap::new(),
            catalog: catalog.id(),
            by_handle,
            issued_token: PerSecond::default(),
        }
    }

    /// The journey keys: every one verifies the tokens (and cursors) this instance receives;
    /// [`Snapshot::signing_key`] signs. Empty for content without keys and for the bundled
    /// defaults.
    pub fn journey_keys(&self) -> &[JourneyKey] {
        &self.journey_keys
    }

    /// The key that signs at `now_ms`: the first, except while a key just rotated in is
    /// verify-only. Until `T + Δ + P + ε` of the deployment that introduced it, some instance may
    /// still hold the content before it and would refuse what it signs, so the key it replaced
    /// (second) signs until then; after it, every instance holds both. `None` without keys.
    #[inline]
    pub fn signing_key(&self, now_ms: i64) -> Option<&JourneyKey> {
        match (self.journey_keys.as_slice(), self.first_key_signs_at_ms) {
            ([_, previous, ..], Some(signs_at)) if now_ms < signs_at => Some(previous),
            (keys, _) => keys.first(),
        }
    }

    /// The journey token kept for the current second (`journey::issue_reused`).
    pub fn issued_token(&self) -> &PerSecond<Option<Arc<str>>> {
        &self.issued_token
    }

    /// A feature flag's attributes as the document carried them (every field but `enabled`,
    /// unvalidated), or `None` for a flag without any: Freeform flags, the bundled defaults.
    /// For in-process readers (the OpenFeature provider's typed values); `/config` never shows
    /// them. A `FORCE_` override changes the flag's value, never its attributes.
    pub fn attributes(&self, name: &str) -> Option<&Map<String, Value>> {
        self.attributes.get(name)
    }

    /// One flag.
    pub fn flag(&self, name: &str) -> Option<&ResolvedFlag> {
        self.flags
            .binary_search_by(|f| f.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.flags[i])
    }

    /// One declared flag by its handle: an index, no name search. `None` for a handle of
    /// another catalog.
    #[inline]
    pub fn flag_by_handle(&self, handle: FlagHandle) -> Option<&ResolvedFlag> {
        if handle.catalog() != self.catalog {
            return None;
        }
        let i = *self.by_handle.get(handle.index())?;
        self.flags.get(i as usize)
    }

    /// Marks the snapshot as loaded from the durable store.
    pub(crate) fn loaded_from_durable(mut self) -> Self {
        self.origin = Origin::Durable;
        self
    }

    /// Every flag, sorted by name.
    pub fn flags(&self) -> &[ResolvedFlag] {
        &self.flags
    }

    /// The resolved flags, to bound after a rollback (the rollback module's `apply`): their order
    /// and names must not change (handles index them).
    pub(crate) fn flags_mut(&mut self) -> &mut [ResolvedFlag] {
        &mut self.flags
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::FlagDecl;
    use crate::document::parse;
    use std::time::Duration;

    const WINDOW: Window = Window {
        poll_interval: Duration::from_secs(45),
        epsilon: Duration::from_secs(5),
    };

    fn catalog() -> FlagCatalog {
        FlagCatalog::new(vec![
            FlagDecl::public("isFeatureXEnabled"),
            FlagDecl::internal("useSubmissionsGsi").default_value(true),
        ])
        .unwrap()
    }

    #[test]
    fn an_override_wins_over_the_document() {
        let doc = parse(br#"{"isFeatureXEnabled": true}"#).unwrap();
        let overrides = Overrides::none().force("isFeatureXEnabled", false);

        let snap = Snapshot::from_document("1".into(), &doc, &catalog(), &overrides, WINDOW);

        let x = snap.flag("isFeatureXEnabled").unwrap();
        assert!(!x.value);
        assert!(x.forced);
    }

    #[test]
    fn a_declared_flag_missing_from_the_document_takes_its_default_and_the_profile_stamp() {
        let doc = parse(br#"{"isFeatureXEnabled": true, "lockstepMetadata": {"lastModifiedTimestamp": "2026-11-21T10:00:00Z"}}"#).unwrap();

        let snap =
            Snapshot::from_document("1".into(), &doc, &catalog(), &Overrides::none(), WINDOW);

        let gsi = snap.flag("useSubmissionsGsi").unwrap();
        assert!(gsi.value);
        assert_eq!(gsi.stamp, doc.profile_stamp);
        assert_eq!(gsi.visibility, Visibility::Internal);
    }

    #[test]
    fn undeclared_flags_are_kept_but_never_public() {
        let doc = parse(br#"{"isFeatureXEnabled": true, "secretBeta": true}"#).unwrap();
        let snap =
            Snapshot::from_document("1".into(), &doc, &catalog(), &Overrides::none(), WINDOW);
        assert_eq!(
            snap.flag("secretBeta").unwrap().visibility,
            Visibility::Internal
        );
        assert_eq!(
            snap.flag("isFeatureXEnabled").unwrap().visibility,
            Visibility::Public
        );
    }

    #[test]
    fn a_handle_reads_the_same_flag_as_its_name() {
        let catalog = catalog();
        let doc = parse(br#"{"isFeatureXEnabled": true, "aaaUndeclared": false}"#).unwrap();
        let snap = Snapshot::from_document("1".into(), &doc, &catalog, &Overrides::none(), WINDOW);

        for decl in catalog.flags() {
            let handle = catalog.handle(&decl.name).unwrap();
            assert_eq!(snap.flag_by_handle(handle), snap.flag(&decl.name));
        }
        let other = FlagCatalog::new(vec![FlagDecl::public("isFeatureXEnabled")]).unwrap();
        assert_eq!(
            snap.flag_by_handle(other.handle("isFeatureXEnabled").unwrap()),
            None
        );
    }

    #[test]
    fn attributes_follow_the_document_and_survive_an_override() {
        let doc = parse(
            br#"{"isFeatureXEnabled": {"enabled": true, "value": 3}, "plain": {"enabled": true}}"#,
        )
        .unwrap();
        let overrides = Overrides::none().force("isFeatureXEnabled", false);

        let snap = Snapshot::from_document("1".into(), &doc, &catalog(), &overrides, WINDOW);

        assert_eq!(
            snap.attributes("isFeatureXEnabled").unwrap()["value"],
            Value::from(3)
        );
        assert!(!snap.flag("isFeatureXEnabled").unwrap().value);
        assert_eq!(snap.attributes("plain"), None);
        let defaults = Snapshot::defaults(&catalog(), &Overrides::none(), WINDOW);
        assert_eq!(defaults.attributes("isFeatureXEnabled"), None);
    }

    #[test]
    fn bundled_defaults_are_unstamped_declared_defaults() {
        let snap = Snapshot::defaults(&catalog(), &Overrides::none(), WINDOW);
        assert_eq!(snap.origin, Origin::Defaults);
        assert!(!snap.flag("isFeatureXEnabled").unwrap().value);
        assert!(snap.flag("useSubmissionsGsi").unwrap().value);
        assert!(snap.flags().iter().all(|f| f.stamp.is_none()));
    }
}
