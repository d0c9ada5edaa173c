//! `FORCE_<FLAG>` environment overrides: an operator's kill switch that wins over every source.
//!
//! Only declared flags can be forced (the variable name is derived from the declaration). A value
//! other than `true` or `false` (any case) is an init error rather than silently ignored: a kill
//! switch with a typo must not look applied. A `FORCE_` variable that matches no declared flag is
//! logged as a warning, since it is most likely a misspelt kill switch.

use crate::catalog::{screaming_snake, FlagCatalog};
use std::collections::BTreeMap;
use thiserror::Error;

/// The prefix of override variables.
pub const PREFIX: &str = "FORCE_";

/// An override that cannot be read.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{var}={value:?}: expected true or false")]
pub struct OverrideError {
    /// The variable.
    pub var: String,
    /// What it held.
    pub value: String,
}

/// Forced flag values, keyed by flag name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    forced: BTreeMap<String, bool>,
}

impl Overrides {
    /// No overrides.
    pub fn none() -> Self {
        Self::default()
    }

    /// Reads `FORCE_*` from the process environment for the catalog's flags.
    pub fn from_env(catalog: &FlagCatalog) -> Result<Self, OverrideError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        Self::from_vars(catalog, &vars)
    }

    /// Reads overrides from `vars` (name, value) for the catalog's flags.
    pub fn from_vars(
        catalog: &FlagCatalog,
        vars: &[(String, String)],
    ) -> Result<Self, OverrideError> {
        let mut forced = BTreeMap::new();
        let mut known = Vec::new();
        for decl in catalog.flags() {
            let var = format!("{PREFIX}{}", screaming_snake(&decl.name));
            // An empty value is "not set": a template parameter can carry the override and be
            // cleared without removing the variable.
            let value = vars
                .iter()
                .find(|(name, _)| *name == var)
                .map(|(_, value)| value)
                .filter(|value| !value.trim().is_empty());
            if let Some(value) = value {
                let parsed = match value.trim().to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(OverrideError {
                            var,
                            value: value.clone(),
                        })
                    }
                };
                tracing::warn!(flag = %decl.name, variable = %var, value = parsed, "flag forced by environment override");
                forced.insert(decl.name.clone(), parsed);
            }
            known.push(var);
        }
        for (name, _) in vars {
            if name.starts_with(PREFIX) && !known.contains(name) {
                tracing::warn!(variable = %name, "FORCE_ variable matches no declared flag and is ignored");
            }
        }
        Ok(Self { forced })
    }

    /// Forces `flag` to `value` (tests and the local runner).
    pub fn force(mut self, flag: &str, value: bool) -> Self {
        self.forced.insert(flag.to_owned(), value);
        self
    }

    /// The forced value of `flag`, if any.
    pub fn get(&self, flag: &str) -> Option<bool> {
        self.forced.get(flag).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::FlagDecl;

    fn catalog() -> FlagCatalog {
        FlagCatalog::new(vec![
            FlagDecl::public("isFeatureXEnabled"),
            FlagDecl::internal("useSubmissionsGsi"),
        ])
        .unwrap()
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn force_variables_are_read_for_declared_flags() {
        let o = Overrides::from_vars(
            &catalog(),
            &vars(&[
                ("FORCE_IS_FEATURE_X_ENABLED", "false"),
                ("FORCE_USE_SUBMISSIONS_GSI", "TRUE"),
                ("FORCE_SOMETHING_ELSE", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(o.get("isFeatureXEnabled"), Some(false));
        assert_eq!(o.get("useSubmissionsGsi"), Some(true));
        assert_eq!(o.get("somethingElse"), None);
    }

    #[test]
    fn a_force_value_that_is_not_a_boolean_is_an_error() {
        let err = Overrides::from_vars(&catalog(), &vars(&[("FORCE_IS_FEATURE_X_ENABLED", "off")]))
            .unwrap_err();
        assert_eq!(err.var, "FORCE_IS_FEATURE_X_ENABLED");
    }

    #[test]
    fn an_empty_force_value_is_not_set() {
        let o =
            Overrides::from_vars(&catalog(), &vars(&[("FORCE_USE_SUBMISSIONS_GSI", " ")])).unwrap();
        assert_eq!(o.get("useSubmissionsGsi"), None);
    }
}
