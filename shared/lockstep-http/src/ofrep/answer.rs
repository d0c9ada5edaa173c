//! The OFREP answer as data: the evaluations of one read (journey-safe values, reasons,
//! variants, metadata), built on the same body `/config` answers with.

use crate::config_endpoint::{self, ConfigBody};
use chrono::{DateTime, SecondsFormat, Utc};
use lockstep::cache::Degraded;
use lockstep::targeted::{self, Context};
use lockstep::token_policy;
use lockstep::FlagView;
use serde::Serialize;

/// The OpenFeature resolution reason of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// A `FORCE_<FLAG>` override set the value (rule 6): no source is involved.
    Static,
    /// The value of the configuration this instance polled, on a healthy instance.
    Cached,
    /// A rule of the flag's definition matched the request's context (design rule 10).
    TargetingMatch,
    /// A rule split the request's context into a weighted bucket (design rule 10).
    Split,
    /// Nothing was ever fetched: the bundled safe default (rule 5), on a degraded instance.
    Default,
    /// Last-known-good on a degraded instance (a failed or timed-out refresh, rejected content,
    /// a service interval longer than P, or the durable snapshot at a cold start): it vouches for
    /// nothing, so the value is never journey-open (rule 7).
    Stale,
}

/// Which moment opens a journey for the client that asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OpenRule {
    /// The client sent a journey token (`Lockstep-Journey`): `journeyOpensAt`, `T + Δ + Q + ε`.
    #[serde(rename = "journeyOpensAt")]
    JourneyOpensAt,
    /// No (readable) token: `consistentAt`, `T + Δ + P + ε`.
    #[serde(rename = "consistentAt")]
    ConsistentAt,
}

/// One flag's OFREP evaluation (`evaluationSuccess`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    /// The flag's key.
    pub key: String,
    /// The journey-safe value.
    pub value: bool,
    /// Why the value is what it is.
    pub reason: Reason,
    /// `on` or `off`, as `value`; for a flag defined by rules, the rule's name, the split
    /// bucket's variant or `default` (and `off` while the journey rule holds a `true` back).
    pub variant: String,
    /// What the value was decided from (strings, numbers and booleans only, per the protocol).
    pub metadata: FlagMetadata,
}

/// A flag's OFREP metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagMetadata {
    /// The value this instance serves (what `/config` shows), before the journey rule.
    pub raw_value: bool,
    /// Whether every instance serves `rawValue` now, as far as this instance can vouch.
    pub consistent: bool,
    /// `T + Δ + P + ε`; absent for an unstamped or forced flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistent_at: Option<String>,
    /// `T + Δ + Q + ε`; absent for an unstamped or forced flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journey_opens_at: Option<String>,
    /// When `value` turns true if nothing changes (re-evaluate then): present only while the
    /// flag is on, the journey not open yet and the moment known, on a healthy instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<String>,
    /// When this instance saw the flag's stamp go backwards (a rollback, rule 7: `consistentAt`
    /// is then no earlier than this + P + ε); absent when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back_at: Option<String>,
    /// When the caller's value next changes by a schedule or a ramp (re-evaluate then; a
    /// journey that would outlast it should not start); absent when none is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes_at: Option<String>,
    /// The moment that opens the journey for this client.
    pub open_rule: OpenRule,
    /// Whether a `FORCE_` variable set the value.
    pub forced: bool,
    /// The configuration version served.
    pub configuration_version: String,
    /// Why this instance cannot vouch for its configuration, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<&'static str>,
    /// The journey token naming what this instance serves (as `/config`'s `journeyToken`): send
    /// it in `Lockstep-Journey` on the journey's feature calls (and on later evaluations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journey_token: Option<String>,
    /// This instance's clock at the read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_time: Option<String>,
}

/// The flag set's metadata in a bulk answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetMetadata {
    /// The configuration version served.
    pub configuration_version: String,
    /// `/config`'s `isBackendConsistent`.
    pub is_backend_consistent: bool,
    /// `/config`'s top-level `consistentAt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistent_at: Option<String>,
    /// `/config`'s top-level `journeyOpensAt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journey_opens_at: Option<String>,
    /// P, seconds.
    pub poll_interval_seconds: u64,
    /// Q, seconds.
    pub catch_up_interval_seconds: u64,
    /// Why this instance cannot vouch for its configuration, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<&'static str>,
    /// This instance's clock at the read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_time: Option<String>,
}

/// The bulk answer (`bulkEvaluationSuccess`): every public flag, sorted by key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BulkAnswer {
    /// The flags.
    pub flags: Vec<Evaluation>,
    /// The flag set's metadata.
    pub metadata: SetMetadata,
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The OFREP answer for every public flag of one read, for a client that opens journeys by
/// `rule`. Built on [`config_endpoint::body`]: the same flags, statuses and token as `/config`.
pub fn answer(view: &FlagView, rule: OpenRule, context: &Context) -> BulkAnswer {
    let config = config_endpoint::body_for(view, context);
    let flags = config
        .flags
        .keys()
        .filter_map(|key| evaluation(&config, view, key, rule, context))
        .collect();
    BulkAnswer {
        flags,
        metadata: SetMetadata {
            configuration_version: config.configuration_version.clone(),
            is_backend_consistent: config.is_backend_consistent,
            consistent_at: config.consistent_at.map(rfc3339),
            journey_opens_at: config.journey_opens_at.map(rfc3339),
            poll_interval_seconds: config.poll_interval_seconds,
            catch_up_interval_seconds: config.catch_up_interval_seconds,
            degraded: config.degraded,
            server_time: Some(rfc3339(config.server_time)),
        },
    }
}

/// One public flag's evaluation from `/config`'s body for the caller `context` (the body must
/// be [`config_endpoint::body_for`] that context); `None` for a key that is not public.
pub(super) fn evaluation(
    config: &ConfigBody,
    view: &FlagView,
    key: &str,
    rule: OpenRule,
    context: &Context,
) -> Option<Evaluation> {
    let degraded = view.degraded();
    let status = config.flags.get(key)?;
    let targeted = view.evaluate(key, context);
    let now = config.server_time;
    // Rule 8's own answer: may a journey open on this flag now, for this client?
    let opening = token_policy::journey_opening(
        status,
        now,
        degraded.is_some(),
        rule == OpenRule::JourneyOpensAt,
    );
    let (value, opens_at) = (opening.open, opening.opens_at);
    let reason = match (degraded, &targeted) {
        _ if status.forced => Reason::Static,
        (Some(Degraded::NeverFetched { .. }), _) => Reason::Default,
        (Some(_), _) => Reason::Stale,
        (None, None) => Reason::Cached,
        (None, Some(t)) => match t.reason {
            targeted::Reason::TargetingMatch => Reason::TargetingMatch,
            targeted::Reason::Split => Reason::Split,
            targeted::Reason::Default => Reason::Default,
            targeted::Reason::Static => Reason::Static,
        },
    };
    let variant = match &targeted {
        // The variant names what the rules chose, unless the journey rule holds it back.
        Some(t) if value == status.value => t.variant.to_owned(),
        _ => if value { "on" } else { "off" }.to_owned(),
    };
    Some(Evaluation {
        key: key.to_owned(),
        value,
        reason,
        variant,
        metadata: FlagMetadata {
            raw_value: status.value,
            consistent: status.consistent,
            consistent_at: status.consistent_at.map(rfc3339),
            journey_opens_at: status.journey_opens_at.map(rfc3339),
            opens_at: opens_at.map(rfc3339),
            rolled_back_at: status.rolled_back_at.map(rfc3339),
            changes_at: status.changes_at.map(rfc3339),
            open_rule: rule,
            forced: status.forced,
            configuration_version: config.configuration_version.clone(),
            degraded: config.degraded,
            journey_token: config.journey_token.clone(),
            server_time: Some(rfc3339(now)),
        },
    })
}
