//! The flags a function declares: name, safe default, and whether `/config` may expose it.
//!
//! The catalog is what makes cold start safe (rule 5): when nothing was ever fetched, every
//! declared flag takes its declared default, and a flag declared without one is disabled.
//!
//! Declared flags are resolved to [`FlagHandle`]s once, at init ([`FlagCatalog::handle`]): a
//! read by handle is an index, not a name search.

use std::sync::atomic::{AtomicU32, Ordering};
use thiserror::Error;

/// A declared flag, resolved once at init: what a read takes instead of a name.
///
/// A handle belongs to the catalog that made it (and its clones): a cache built from another
/// catalog answers `None` for it rather than another flag's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlagHandle {
    catalog: u32,
    index: u32,
}

impl FlagHandle {
    /// The flag's position in its catalog (declarations sorted by name).
    pub fn index(self) -> usize {
        self.index as usize
    }

    pub(crate) fn catalog(self) -> u32 {
        self.catalog
    }
}

static CATALOG_IDS: AtomicU32 = AtomicU32::new(1);

/// The key of the reserved metadata entry in both content formats (see [`crate::document`]).
pub const METADATA_KEY: &str = "lockstepMetadata";

/// Whether `/config` may expose a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Exposed by `/config` (value, consistency, stamp). Never its attributes.
    Public,
    /// Used by the backend only; never exposed.
    Internal,
}

/// One declared flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagDecl {
    /// The flag's key, as in the configuration (`isFeatureXEnabled`).
    pub name: String,
    /// The value used when no configuration was ever fetched.
    pub default: bool,
    /// Whether `/config` may expose it.
    pub visibility: Visibility,
}

impl FlagDecl {
    /// A public flag, disabled by default.
    pub fn public(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            default: false,
            visibility: Visibility::Public,
        }
    }

    /// An internal flag, disabled by default.
    pub fn internal(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            default: false,
            visibility: Visibility::Internal,
        }
    }

    /// The same flag with another default.
    pub fn default_value(mut self, default: bool) -> Self {
        self.default = default;
        self
    }
}

/// A catalog that cannot be built.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CatalogError {
    /// A flag name that AppConfig's feature-flag format would refuse.
    #[error(transparent)]
    BadName(#[from] BadFlagName),
    /// The reserved metadata key was declared as a flag.
    #[error("{METADATA_KEY:?} is reserved for Lockstep's metadata and cannot be a flag")]
    Reserved,
    /// The same flag twice.
    #[error("flag {0:?} is declared twice")]
    Duplicate(String),
    /// Two flags whose `FORCE_` variables would collide.
    #[error("flags {0:?} and {1:?} share the override variable FORCE_{2}")]
    OverrideCollision(String, String, String),
    /// A public-flag list naming a flag the catalog does not declare.
    #[error("public flag {0:?} is not declared")]
    UnknownPublic(String),
}

/// A flag key outside AppConfig's feature-flag key pattern.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("flag name {0:?} must match ^[a-z][a-zA-Z0-9_-]{{0,63}}$")]
pub struct BadFlagName(pub String);

/// The declared flags, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagCatalog {
    /// Tells this catalog's handles from another's (clones share it).
    id: u32,
    flags: Vec<FlagDecl>,
}

impl FlagCatalog {
    /// Validates the declarations: names in AppConfig's feature-flag key pattern, no duplicates,
    /// no reserved key, no two names sharing one `FORCE_` variable.
    pub fn new(mut flags: Vec<FlagDecl>) -> Result<Self, CatalogError> {
        flags.sort_by(|a, b| a.name.cmp(&b.name));
        for flag in &flags {
            if flag.name == METADATA_KEY {
                return Err(CatalogError::Reserved);
            }
            check_flag_name(&flag.name)?;
        }
        for pair in flags.windows(2) {
            if pair[0].name == pair[1].name {
                return Err(CatalogError::Duplicate(pair[0].name.clone()));
            }
        }
        for (i, a) in flags.iter().enumerate() {
            for b in &flags[i + 1..] {
                let var = screaming_snake(&a.name);
                if var == screaming_snake(&b.name) {
                    return Err(CatalogError::OverrideCollision(
                        a.name.clone(),
                        b.name.clone(),
                        var,
                    ));
                }
            }
        }
        Ok(Self {
            id: CATALOG_IDS.fetch_add(1, Ordering::Relaxed),
            flags,
        })
    }

    /// Makes exactly `names` public and every other flag internal (the `LOCKSTEP_PUBLIC_FLAGS`
    /// setting). Naming an undeclared flag is an error.
    pub fn with_public(mut self, names: &[String]) -> Result<Self, CatalogError> {
        if let Some(unknown) = names.iter().find(|n| self.get(n).is_none()) {
            return Err(CatalogError::UnknownPublic(unknown.clone()));
        }
        for flag in &mut self.flags {
            flag.visibility = if names.contains(&flag.name) {
                Visibility::Public
            } else {
                Visibility::Internal
            };
        }
        Ok(self)
    }

    /// The declarations, sorted by name.
    pub fn flags(&self) -> &[FlagDecl] {
        &self.flags
    }

    /// One declaration.
    pub fn get(&self, name: &str) -> Option<&FlagDecl> {
        self.position(name).map(|i| &self.flags[i])
    }

    /// The handle of a declared flag (resolve once, at init), or `None` for an undeclared name.
    pub fn handle(&self, name: &str) -> Option<FlagHandle> {
        self.position(name).map(|i| FlagHandle {
            catalog: self.id,
            index: i as u32,
        })
    }

    /// The declaration behind a handle of this catalog.
    pub fn decl(&self, handle: FlagHandle) -> Option<&FlagDecl> {
        (handle.catalog == self.id)
            .then(|| self.flags.get(handle.index()))
            .flatten()
    }

    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.flags
            .binary_search_by(|f| f.name.as_str().cmp(name))
            .ok()
    }
}

/// [`is_valid_flag_name`] as a check, with the error every module reports.
pub fn check_flag_name(name: &str) -> Result<(), BadFlagName> {
    if is_valid_flag_name(name) {
        Ok(())
    } else {
        Err(BadFlagName(name.to_owned()))
    }
}

/// AppConfig's feature-flag key pattern, `^[a-z][a-zA-Z\d_-]{0,63}$`, which Lockstep applies to
/// Freeform flags too so that a configuration can move between formats.
pub fn is_valid_flag_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_lowercase()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
}

/// `isFeatureXEnabled` → `IS_FEATURE_X_ENABLED`: a word starts at an upper-case letter that
/// follows a lower-case letter or digit, or that begins a capitalised word after an acronym
/// (`useGSIIndex` → `USE_GSI_INDEX`); `-` becomes `_`.
pub fn screaming_snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        if c == '-' || c == '_' {
            if !out.ends_with('_') {
                out.push('_');
            }
            continue;
        }
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let boundary = prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_is_lower);
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_names_become_screaming_snake_override_names() {
        assert_eq!(screaming_snake("isFeatureXEnabled"), "IS_FEATURE_X_ENABLED");
        assert_eq!(screaming_snake("useSubmissionsGsi"), "USE_SUBMISSIONS_GSI");
        assert_eq!(screaming_snake("useGSIIndex"), "USE_GSI_INDEX");
        assert_eq!(screaming_snake("v2Checkout"), "V2_CHECKOUT");
        assert_eq!(screaming_snake("dark-mode"), "DARK_MODE");
        assert_eq!(screaming_snake("snake_case_flag"), "SNAKE_CASE_FLAG");
    }

    #[test]
    fn the_key_pattern_of_appconfig_feature_flags_is_enforced() {
        assert!(is_valid_flag_name("isFeatureXEnabled"));
        assert!(is_valid_flag_name("a"));
        assert!(is_valid_flag_name(&format!("a{}", "b".repeat(63))));
        assert!(!is_valid_flag_name(&format!("a{}", "b".repeat(64))));
        assert!(!is_valid_flag_name("IsFeature"));
        assert!(!is_valid_flag_name("1flag"));
        assert!(!is_valid_flag_name("has space"));
        assert!(!is_valid_flag_name(""));
    }

    #[test]
    fn a_catalog_refuses_duplicates_reserved_keys_and_colliding_overrides() {
        let dup = FlagCatalog::new(vec![FlagDecl::public("a"), FlagDecl::internal("a")]);
        assert_eq!(dup, Err(CatalogError::Duplicate("a".into())));
        let reserved = FlagCatalog::new(vec![FlagDecl::public(METADATA_KEY)]);
        assert_eq!(reserved, Err(CatalogError::Reserved));
        let bad = FlagCatalog::new(vec![FlagDecl::public("Bad name")]);
        assert_eq!(
            bad,
            Err(CatalogError::BadName(BadFlagName("Bad name".into())))
        );
        let collide = FlagCatalog::new(vec![
            FlagDecl::public("darkMode"),
            FlagDecl::public("dark-mode"),
        ]);
        assert!(matches!(collide, Err(CatalogError::OverrideCollision(..))));
    }

    #[test]
    fn a_handle_names_its_flag_in_its_own_catalog_and_nothing_in_another() {
        let catalog =
            FlagCatalog::new(vec![FlagDecl::public("b"), FlagDecl::internal("a")]).unwrap();
        let other = FlagCatalog::new(vec![FlagDecl::public("b")]).unwrap();

        let b = catalog.handle("b").unwrap();

        assert_eq!(b.index(), 1, "declarations are sorted by name");
        assert_eq!(catalog.decl(b).unwrap().name, "b");
        assert_eq!(catalog.clone().decl(b).unwrap().name, "b");
        assert_eq!(other.decl(b), None);
        assert_eq!(catalog.handle("zzz"), None);
    }

    #[test]
    fn a_public_list_replaces_the_declared_visibility() {
        let catalog = FlagCatalog::new(vec![FlagDecl::public("a"), FlagDecl::internal("b")])
            .unwrap()
            .with_public(&["b".to_string()])
            .unwrap();
        assert_eq!(catalog.get("a").unwrap().visibility, Visibility::Internal);
        assert_eq!(catalog.get("b").unwrap().visibility, Visibility::Public);
        let unknown = FlagCatalog::new(vec![FlagDecl::public("a")])
            .unwrap()
            .with_public(&["zzz".to_string()]);
        assert_eq!(unknown, Err(CatalogError::UnknownPublic("zzz".into())));
    }
}
