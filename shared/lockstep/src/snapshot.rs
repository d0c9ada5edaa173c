//! A configuration version with every flag resolved, built once per fetched version so that a
//! read is a lookup and a comparison.
//!
//! Resolution precedence, written once (design rules 5 and 6):
//! 1. a `FORCE_<FLAG>` override wins over everything, and marks the flag forced;
//! 2. else the document's value, with its per-flag stamp or the profile stamp;
//! 3. else (a declared flag the document lacks) the declared default, stamped with the profile
//!    stamp: the latest deployment is no earlier than the one that removed the flag;
//! 4. with no document at all (bundled defaults), the declared default and no stamp.

use crate::catalog::{FlagCatalog, FlagHandle};
use crate::consistency::{self, Stamp, Window};
use crate::document::{Document, Format};
use crate::history::History;
use crate::journey_key::JourneyKey;
use crate::overrides::Overrides;
pub use crate::resolved::ResolvedFlag;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

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
            .map(|(name, f)| {
                let mut flag = ResolvedFlag::new(name, f.enabled, f.stamp, f.drain);
                flag.definition = doc.definitions.get(name).cloned();
                flag.history = doc
                    .previous
                    .get(name)
                    .map(|previous| Arc::new(History::new(previous.clone(), window)));
                flag
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
            flag.resolve_times(window);
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
    use crate::catalog::{FlagDecl, Visibility};
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
