//! Runtime settings, read from the environment once at init.
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS` | P: `45`, `45s`, `5m`, `1h` (the extension's forms); at least 15 s, AppConfigData's floor | 45 s |
//! | `AWS_APPCONFIG_EXTENSION_POLL_TIMEOUT_MILLIS` | timeout of one refresh, milliseconds | 3000 |
//! | `LOCKSTEP_EPSILON_SECONDS` | ε: clock skew plus propagation margin, whole or fractional seconds | 5 |
//! | `LOCKSTEP_PUBLIC_FLAGS` | comma-separated flag names `/config` may expose; replaces the catalog's choice | the catalog's public flags |
//!
//! Values that do not parse are errors, never silently replaced by a default: a typo in P would
//! otherwise quietly weaken the consistency promise.

use crate::consistency::Window;
use std::time::Duration;
use thiserror::Error;

/// Name of the poll-interval variable, shared with the AppConfig Lambda extension.
pub const POLL_INTERVAL_VAR: &str = "AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS";
/// Name of the fetch-timeout variable, shared with the AppConfig Lambda extension.
pub const POLL_TIMEOUT_VAR: &str = "AWS_APPCONFIG_EXTENSION_POLL_TIMEOUT_MILLIS";
/// Name of the ε variable.
pub const EPSILON_VAR: &str = "LOCKSTEP_EPSILON_SECONDS";
/// Name of the public-flags variable.
pub const PUBLIC_FLAGS_VAR: &str = "LOCKSTEP_PUBLIC_FLAGS";

/// The smallest poll interval AppConfigData accepts.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(15);
/// P when the environment says nothing (the extension's default).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(45);
/// Refresh timeout when the environment says nothing (the extension's default).
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_millis(3000);
/// ε when the environment says nothing: 2 s of skew either way between the stamping clock and a
/// Lambda clock (both NTP-disciplined in AWS, normally well under 100 ms apart) plus 1 s of
/// propagation inside AppConfig.
pub const DEFAULT_EPSILON: Duration = Duration::from_secs(5);

/// A setting that could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SettingsError {
    /// The value is not one of the accepted forms.
    #[error("{var}={value:?} is not valid: {why}")]
    Invalid {
        /// The variable's name.
        var: &'static str,
        /// What it held.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// P, ε, the fetch timeout and the public-flag list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// P: how old configuration may be when a request is decided.
    pub poll_interval: Duration,
    /// ε: the margin for clock skew and propagation.
    pub epsilon: Duration,
    /// The timeout of one refresh.
    pub fetch_timeout: Duration,
    /// Flags `/config` may expose, when the environment names them.
    pub public_flags: Option<Vec<String>>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            poll_interval: DEFAULT_POLL_INTERVAL,
            epsilon: DEFAULT_EPSILON,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            public_flags: None,
        }
    }
}

impl Settings {
    /// P and ε: what the consistency rule needs of these settings.
    pub fn window(&self) -> Window {
        Window {
            poll_interval: self.poll_interval,
            epsilon: self.epsilon,
        }
    }

    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let mut settings = Self::default();
        if let Some(value) = lookup(POLL_INTERVAL_VAR) {
            settings.poll_interval = parse_poll_interval(&value)?;
        }
        if let Some(value) = lookup(POLL_TIMEOUT_VAR) {
            let millis: u64 = value.trim().parse().map_err(|_| SettingsError::Invalid {
                var: POLL_TIMEOUT_VAR,
                value: value.clone(),
                why: "expected a whole number of milliseconds",
            })?;
            if millis == 0 {
                return Err(SettingsError::Invalid {
                    var: POLL_TIMEOUT_VAR,
                    value,
                    why: "a refresh needs a timeout above zero",
                });
            }
            settings.fetch_timeout = Duration::from_millis(millis);
        }
        if let Some(value) = lookup(EPSILON_VAR) {
            settings.epsilon = parse_epsilon(&value)?;
        }
        if let Some(value) = lookup(PUBLIC_FLAGS_VAR) {
            let names: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect();
            settings.public_flags = Some(names);
        }
        Ok(settings)
    }
}

/// Parses P the way the AppConfig Lambda extension does: a whole number of seconds, optionally
/// followed by `s`, `m` or `h`. Refuses anything below AppConfigData's 15-second floor.
pub fn parse_poll_interval(value: &str) -> Result<Duration, SettingsError> {
    let invalid = |why| SettingsError::Invalid {
        var: POLL_INTERVAL_VAR,
        value: value.to_owned(),
        why,
    };
    let interval = parse_duration_text(value).map_err(invalid)?;
    if interval < MIN_POLL_INTERVAL {
        return Err(invalid(
            "AppConfigData refuses poll intervals below 15 seconds",
        ));
    }
    Ok(interval)
}

/// Parses a duration in the extension's forms (`45`, `45s`, `5m`, `1h`: a whole number,
/// optionally followed by `s`, `m` or `h`), at most 24 hours; the error says why not.
pub fn parse_duration_text(value: &str) -> Result<Duration, &'static str> {
    let trimmed = value.trim();
    let (digits, unit_seconds) = match trimmed.char_indices().last() {
        Some((i, 's')) => (&trimmed[..i], 1),
        Some((i, 'm')) => (&trimmed[..i], 60),
        Some((i, 'h')) => (&trimmed[..i], 3600),
        _ => (trimmed, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a whole number optionally followed by s, m or h (45, 45s, 5m, 1h)");
    }
    let count: u64 = digits.parse().map_err(|_| "the number is too large")?;
    let seconds = count
        .checked_mul(unit_seconds)
        .filter(|s| *s <= 24 * 3600)
        .ok_or("must be at most 24 hours")?;
    Ok(Duration::from_secs(seconds))
}

fn parse_epsilon(value: &str) -> Result<Duration, SettingsError> {
    let seconds: f64 = value.trim().parse().map_err(|_| SettingsError::Invalid {
        var: EPSILON_VAR,
        value: value.to_owned(),
        why: "expected a number of seconds",
    })?;
    if !seconds.is_finite() || !(0.0..=3600.0).contains(&seconds) {
        return Err(SettingsError::Invalid {
            var: EPSILON_VAR,
            value: value.to_owned(),
            why: "expected between 0 and 3600 seconds",
        });
    }
    Ok(Duration::from_millis((seconds * 1000.0).round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn the_extension_forms_of_the_poll_interval_are_accepted() {
        assert_eq!(parse_poll_interval("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_poll_interval("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_poll_interval("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_poll_interval("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_poll_interval(" 15 "), Ok(Duration::from_secs(15)));
    }

    #[test]
    fn a_poll_interval_below_fifteen_seconds_or_malformed_is_refused() {
        for bad in ["14", "14s", "0m", "", "s", "4.5", "-45", "45x", "1d", "25h"] {
            assert!(parse_poll_interval(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn defaults_apply_when_the_environment_is_silent() {
        let s = settings(&[]).unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.poll_interval, Duration::from_secs(45));
        assert_eq!(s.fetch_timeout, Duration::from_millis(3000));
        assert_eq!(s.epsilon, Duration::from_secs(5));
    }

    #[test]
    fn every_variable_is_read() {
        let s = settings(&[
            (POLL_INTERVAL_VAR, "1m"),
            (POLL_TIMEOUT_VAR, "1500"),
            (EPSILON_VAR, "2.5"),
            (PUBLIC_FLAGS_VAR, "isFeatureXEnabled, isFeatureYEnabled,"),
        ])
        .unwrap();
        assert_eq!(s.poll_interval, Duration::from_secs(60));
        assert_eq!(s.fetch_timeout, Duration::from_millis(1500));
        assert_eq!(s.epsilon, Duration::from_millis(2500));
        assert_eq!(
            s.public_flags,
            Some(vec!["isFeatureXEnabled".into(), "isFeatureYEnabled".into()])
        );
    }

    #[test]
    fn a_bad_value_names_the_variable() {
        let err = settings(&[(EPSILON_VAR, "lots")]).unwrap_err();
        assert!(err.to_string().contains(EPSILON_VAR), "{err}");
        let err = settings(&[(POLL_TIMEOUT_VAR, "0")]).unwrap_err();
        assert!(err.to_string().contains(POLL_TIMEOUT_VAR), "{err}");
    }

    proptest! {
        #[test]
        fn any_whole_interval_from_15s_to_24h_round_trips(seconds in 15u64..=86_400) {
            prop_assert_eq!(parse_poll_interval(&seconds.to_string()), Ok(Duration::from_secs(seconds)));
            prop_assert_eq!(parse_poll_interval(&format!("{seconds}s")), Ok(Duration::from_secs(seconds)));
            if seconds % 60 == 0 {
                prop_assert_eq!(parse_poll_interval(&format!("{}m", seconds / 60)), Ok(Duration::from_secs(seconds)));
            }
        }

        #[test]
        fn the_parser_never_panics(input in ".{0,12}") {
            let _ = parse_poll_interval(&input);
        }
    }
}
