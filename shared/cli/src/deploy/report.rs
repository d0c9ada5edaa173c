//! What a started deployment reports: each flag's change, stamp and the times computed from it
//! (`consistentAt`, `journeyOpensAt`, `drainEndsAt`), bounded by when `StartDeployment` returned
//! when an AppConfig extension may have stamped the content again.

use super::retrieval;
use super::{Resolved, Strategy};
use chrono::{DateTime, Utc};
use lockstep::consistency::{consistent_at, drain_ends_at, journey_opens_at, Window};
use lockstep::stamp::{Change, KeyChange, Stamped};
use lockstep::Stamp;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One flag after a deployment was started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagReport {
    /// Its value in the new content.
    pub value: bool,
    /// `new`, `changed` or `kept`.
    pub change: Change,
    /// T: its stamp.
    pub last_modified_timestamp: DateTime<Utc>,
    /// Δ of the deployment that introduced its value, seconds.
    pub deployment_duration_seconds: u64,
    /// `T + Δ + P + ε` for the reported P and ε.
    pub consistent_at: Option<DateTime<Utc>>,
    /// `T + Δ + Q + ε`: when a journey may open for clients that send the journey token.
    pub journey_opens_at: Option<DateTime<Utc>>,
    /// The drain time a switched-off flag carries, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_seconds: Option<u64>,
    /// `T + Δ + P + ε + drain`: when journeys in flight meet the closed gate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_ends_at: Option<DateTime<Utc>>,
    /// Whether it is defined by rules: then `consistentAt` and `journeyOpensAt` are those of
    /// the users whose value this deployment changed (the newly included, for a widening);
    /// everyone else keeps theirs (design rule 10).
    pub per_user: bool,
    /// Its ramp, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp: Option<RampReport>,
}

/// A flag's ramp, as a deployment reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RampReport {
    /// When it starts letting users in.
    pub starts_at: DateTime<Utc>,
    /// When the last user is in.
    pub ends_at: DateTime<Utc>,
    /// When the last user's journey opens: ε after their instant, and no earlier than the
    /// deployment's `consistentAt`.
    pub last_user_opens_at: DateTime<Utc>,
}

/// A started deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    /// Application, environment and profile ids.
    #[serde(skip)]
    pub resolved: Resolved,
    /// The deployment's number in its environment.
    pub deployment_number: i32,
    /// The hosted configuration version deployed.
    pub configuration_version: i32,
    /// Its label: what instances report as `configurationVersion`.
    pub version_label: String,
    /// The strategy, with Δ.
    pub strategy: Strategy,
    /// T: this deployment's stamp; with [`Started::restamped`], an upper bound of it.
    pub last_modified_timestamp: DateTime<Utc>,
    /// Whether an AppConfig extension ran on the deployment (and may have stamped it again with
    /// a later T than this command's): T, and every time computed from it for the flags this
    /// deployment changed, then count from the moment `StartDeployment` returned, the latest T
    /// the extension can have written.
    pub restamped: bool,
    /// Every flag of the new content.
    pub flags: BTreeMap<String, FlagReport>,
    /// When every flag this deployment changed is consistent (the latest `consistentAt` of the
    /// new and changed flags; none when it changed nothing).
    pub consistent_at: Option<DateTime<Utc>>,
    /// The same for token-carrying clients (the latest `journeyOpensAt`).
    pub journey_opens_at: Option<DateTime<Utc>>,
    /// What happened to the journey key (kept, created, rotated; never the key).
    pub journey_key: KeyChange,
}

impl Started {
    /// One line per flag, then the deployment.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for (name, flag) in &self.flags {
            out.push_str(&format!(
                "{name}={}: {} (lastModifiedTimestamp {}, deploymentDurationSeconds {}, consistentAt {}, journeyOpensAt {}",
                flag.value,
                flag.change,
                at(flag.last_modified_timestamp),
                flag.deployment_duration_seconds,
                flag.consistent_at.map(at).unwrap_or_else(|| "-".into()),
                flag.journey_opens_at.map(at).unwrap_or_else(|| "-".into()),
            ));
            if let (Some(drain), Some(ends)) = (flag.drain_seconds, flag.drain_ends_at) {
                out.push_str(&format!(", drain {drain} s until {}", at(ends)));
            }
            if flag.per_user && flag.change == Change::Changed {
                out.push_str(", for the users whose value changed; everyone else keeps theirs");
            }
            if let Some(ramp) = &flag.ramp {
                out.push_str(&format!(
                    "; ramp from {} to {}, the last user's journey opens at {}",
                    at(ramp.starts_at),
                    at(ramp.ends_at),
                    at(ramp.last_user_opens_at)
                ));
            }
            out.push_str(")\n");
        }
        out.push_str(&format!(
            "deployment {} of version {} with {} (Δ = {} s) started at {}",
            self.deployment_number,
            self.configuration_version,
            self.strategy.name,
            self.strategy.duration.as_secs(),
            at(self.last_modified_timestamp)
        ));
        if self.restamped {
            out.push_str(" (stamped again by an AppConfig extension: T is at most this, and the times above count from it)");
        }
        out
    }
}

impl Started {
    /// What `--wait` says once the deployment is consistent, one line per flag defined by
    /// rules that it changed: when the newly included users' journeys open (with journey
    /// tokens, and without), and for a ramp when the last user's does.
    pub fn journeys_report(&self) -> Vec<String> {
        let or_dash = |t: Option<DateTime<Utc>>| t.map(at).unwrap_or_else(|| "-".into());
        self.flags
            .iter()
            .filter(|(_, f)| f.per_user && f.change != Change::Kept)
            .map(|(name, f)| {
                let mut line = format!(
                    "{name}: newly included users' journeys open at {} (with journey tokens; {} without); users already in were never paused",
                    or_dash(f.journey_opens_at),
                    or_dash(f.consistent_at)
                );
                if let Some(ramp) = &f.ramp {
                    line.push_str(&format!(
                        "; the ramp lets users in from {} to {}, and the last user's journey opens at {}",
                        at(ramp.starts_at),
                        at(ramp.ends_at),
                        at(ramp.last_user_opens_at)
                    ));
                }
                line
            })
            .collect()
    }
}

/// A moment as the report prints it: RFC 3339, milliseconds, `Z`.
fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What a started deployment reports about its flags.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Report {
    /// T as reported (see [`Started::last_modified_timestamp`]).
    pub(super) at: DateTime<Utc>,
    pub(super) flags: BTreeMap<String, FlagReport>,
    pub(super) consistent_at: Option<DateTime<Utc>>,
    pub(super) journey_opens_at: Option<DateTime<Utc>>,
}

impl Report {
    /// The report of `stamped` (stamped at `at` with Δ `delta`) for instances with `window`;
    /// when an extension may have stamped it again, `restamped_by` is the latest T it can have
    /// written, and the flags this deployment changed count from it.
    pub(super) fn of(
        stamped: &Stamped,
        at: DateTime<Utc>,
        delta: Duration,
        window: Window,
        restamped_by: Option<DateTime<Utc>>,
    ) -> Self {
        let document = lockstep::document::parse(&retrieval(&stamped.content)).ok();
        let definitions = document
            .as_ref()
            .map(|doc| doc.definitions.clone())
            .unwrap_or_default();
        let values = document.map(|doc| doc.flags).unwrap_or_default();
        let bound = restamped_by.map(|at| Stamp {
            at: DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at),
            deployment_duration: delta,
        });
        let flags: BTreeMap<String, FlagReport> = stamped
            .flags
            .iter()
            .map(|(name, (change, s))| {
                let s = match bound {
                    Some(bound) if *change != Change::Kept && bound.at > s.at => bound,
                    _ => *s,
                };
                let drain = stamped.drains.get(name).copied();
                let consistent = consistent_at(Some(s), false, window);
                let epsilon = chrono::TimeDelta::from_std(window.epsilon).unwrap_or_default();
                let ramp = definitions
                    .get(name)
                    .and_then(|d| ramp_of(d))
                    .map(|(start, end)| {
                        let last = end + epsilon;
                        RampReport {
                            starts_at: start,
                            ends_at: end,
                            last_user_opens_at: consistent.map_or(last, |c| c.max(last)),
                        }
                    });
                let report = FlagReport {
                    value: values.get(name).is_some_and(|f| f.enabled),
                    change: *change,
                    last_modified_timestamp: s.at,
                    deployment_duration_seconds: s.deployment_duration.as_secs(),
                    consistent_at: consistent_at(Some(s), false, window),
                    journey_opens_at: journey_opens_at(Some(s), false, window),
                    drain_seconds: drain.map(|d| d.as_secs()),
                    drain_ends_at: drain_ends_at(Some(s), false, drain, window),
                    per_user: definitions.contains_key(name),
                    ramp,
                };
                (name.clone(), report)
            })
            .collect();
        let changed = || flags.values().filter(|f| f.change != Change::Kept);
        let consistent_at = changed().filter_map(|f| f.consistent_at).max();
        let journey_opens_at = changed().filter_map(|f| f.journey_opens_at).max();
        let at = DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at);
        let at = bound.map_or(at, |bound| bound.at.max(at));
        Self {
            at,
            flags,
            consistent_at,
            journey_opens_at,
        }
    }
}

/// The start and end of a definition's ramp, if it has one.
fn ramp_of(definition: &lockstep_targeting::Definition) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    definition
        .rules
        .iter()
        .find_map(|rule| match &rule.outcome {
            lockstep_targeting::Outcome::Split(split) => split.ramp.as_ref().and_then(|r| {
                Some((
                    DateTime::from_timestamp_millis(r.start_ms)?,
                    DateTime::from_timestamp_millis(r.end_ms)?,
                ))
            }),
            lockstep_targeting::Outcome::Value(_) => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    const WINDOW: Window = Window {
        poll_interval: Duration::from_secs(45),
        epsilon: Duration::from_secs(5),
    };

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn after_an_extension_ran_the_changed_flags_count_from_when_start_deployment_returned() {
        let delta = Duration::from_secs(60);
        let deployed = lockstep::stamp::stamp(
            br#"{"a": false, "b": false}"#,
            None,
            t("2026-11-21T09:00:00Z"),
            delta,
        )
        .unwrap();
        let cli_t = t("2026-11-21T10:00:00Z");
        let stamped = lockstep::stamp::stamp(
            br#"{"a": true, "b": false}"#,
            Some(&deployed.content),
            cli_t,
            delta,
        )
        .unwrap();
        let returned = cli_t + TimeDelta::milliseconds(1500);

        let own = Report::of(&stamped, cli_t, delta, WINDOW, None);
        let restamped = Report::of(&stamped, cli_t, delta, WINDOW, Some(returned));

        // Without an extension, what this command stamped is what instances read.
        assert_eq!(own.at, cli_t);
        assert_eq!(
            own.consistent_at,
            Some(cli_t + TimeDelta::seconds(60 + 45 + 5))
        );
        // With one, the extension's T is somewhere up to `returned`: never report earlier.
        assert_eq!(restamped.at, returned);
        assert_eq!(
            restamped.consistent_at,
            Some(returned + TimeDelta::seconds(60 + 45 + 5))
        );
        assert_eq!(
            restamped.flags["a"].journey_opens_at,
            Some(returned + TimeDelta::seconds(60 + 15 + 5))
        );
        assert_eq!(restamped.flags["a"].last_modified_timestamp, returned);
        // A flag it did not change keeps its stamp (the extension keeps it too).
        assert_eq!(restamped.flags["b"], own.flags["b"]);
        assert_eq!(
            restamped.flags["b"].last_modified_timestamp,
            t("2026-11-21T09:00:00Z")
        );
    }
}
