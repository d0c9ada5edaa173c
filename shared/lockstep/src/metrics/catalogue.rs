//! The metric catalogue (design rule 11): every name a function publishes, its unit, and
//! whether it is also published per route. `docs/metrics.md` lists the same names (a test
//! checks it), and `template.yaml`'s alarms and dashboard read them.

/// A count: how many times something happened in one invocation (unit `Count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Count {
    /// A refresh accepted a new configuration version.
    RefreshNewVersion,
    /// A refresh found the configuration unchanged.
    RefreshUnchanged,
    /// A refresh failed; the last-known-good is kept.
    RefreshFailed,
    /// A refresh timed out; the last-known-good is kept.
    RefreshTimedOut,
    /// Fetched content did not validate; the last-known-good is kept.
    RefreshContentRejected,
    /// A fetch brought a flag back to an older stamp: a rollback happened no later than that
    /// fetch (design rule 7).
    RollbackSeen,
    /// An invocation was served by a degraded instance.
    Degraded,
    /// Degraded: nothing was ever fetched (bundled defaults).
    DegradedNeverFetched,
    /// Degraded: the last refresh failed.
    DegradedFetchFailed,
    /// Degraded: the last refresh timed out.
    DegradedTimeout,
    /// Degraded: the latest content did not validate.
    DegradedInvalidContent,
    /// Degraded: the service asks for a longer poll interval than P.
    DegradedPollIntervalTooLong,
    /// Degraded: serving the durable snapshot another instance wrote.
    DegradedDurableSnapshot,
    /// A journey token made this instance poll before P was up (rule 8).
    CatchUpPolled,
    /// A catch-up was served by a poll another request made.
    CatchUpShared,
    /// The gate let a request through.
    GateOpen,
    /// The gate let a request through on a draining flag (rule 9).
    GateDraining,
    /// The gate answered 503: the flag is off.
    GateDisabled,
    /// The gate answered 503: this instance is behind the caller's token and cannot catch up yet.
    GateBehind,
    /// The gate answered 503: the flag's drain is over.
    GateDrainEnded,
    /// A storage call failed and the request answered 503 with nothing written.
    StorageError,
    /// A storage write's outcome is unknown.
    StorageUnknownOutcome,
    /// The first invocation of an instance.
    ColdStart,
    /// A cold start whose init could not fetch from the configuration source.
    ColdStartWithoutAppConfig,
    /// An HTTP request was answered.
    Requests,
    /// It was answered 401.
    Http401,
    /// It was answered 403.
    Http403,
    /// It was answered with any 4xx (401 and 403 included).
    Http4xx,
    /// It was answered with any 5xx (the gate's 503 included).
    Http5xx,
    /// The stamping extension stamped a deployment's content.
    DeploymentStamped,
    /// The stamping extension blocked a deployment.
    DeploymentBlocked,
    /// AppConfig told the stamping extension it rolled a deployment back.
    DeploymentRolledBack,
}

impl Count {
    /// Every count, in the order documents list them.
    pub const ALL: [Count; 32] = [
        Count::RefreshNewVersion,
        Count::RefreshUnchanged,
        Count::RefreshFailed,
        Count::RefreshTimedOut,
        Count::RefreshContentRejected,
        Count::RollbackSeen,
        Count::Degraded,
        Count::DegradedNeverFetched,
        Count::DegradedFetchFailed,
        Count::DegradedTimeout,
        Count::DegradedInvalidContent,
        Count::DegradedPollIntervalTooLong,
        Count::DegradedDurableSnapshot,
        Count::CatchUpPolled,
        Count::CatchUpShared,
        Count::GateOpen,
        Count::GateDraining,
        Count::GateDisabled,
        Count::GateBehind,
        Count::GateDrainEnded,
        Count::StorageError,
        Count::StorageUnknownOutcome,
        Count::ColdStart,
        Count::ColdStartWithoutAppConfig,
        Count::Requests,
        Count::Http401,
        Count::Http403,
        Count::Http4xx,
        Count::Http5xx,
        Count::DeploymentStamped,
        Count::DeploymentBlocked,
        Count::DeploymentRolledBack,
    ];

    /// Its metric name.
    pub const fn name(self) -> &'static str {
        match self {
            Count::RefreshNewVersion => "RefreshNewVersion",
            Count::RefreshUnchanged => "RefreshUnchanged",
            Count::RefreshFailed => "RefreshFailed",
            Count::RefreshTimedOut => "RefreshTimedOut",
            Count::RefreshContentRejected => "RefreshContentRejected",
            Count::RollbackSeen => "RollbackSeen",
            Count::Degraded => "Degraded",
            Count::DegradedNeverFetched => "DegradedNeverFetched",
            Count::DegradedFetchFailed => "DegradedFetchFailed",
            Count::DegradedTimeout => "DegradedTimeout",
            Count::DegradedInvalidContent => "DegradedInvalidContent",
            Count::DegradedPollIntervalTooLong => "DegradedPollIntervalTooLong",
            Count::DegradedDurableSnapshot => "DegradedDurableSnapshot",
            Count::CatchUpPolled => "CatchUpPolled",
            Count::CatchUpShared => "CatchUpShared",
            Count::GateOpen => "GateOpen",
            Count::GateDraining => "GateDraining",
            Count::GateDisabled => "GateDisabled",
            Count::GateBehind => "GateBehind",
            Count::GateDrainEnded => "GateDrainEnded",
            Count::StorageError => "StorageError",
            Count::StorageUnknownOutcome => "StorageUnknownOutcome",
            Count::ColdStart => "ColdStart",
            Count::ColdStartWithoutAppConfig => "ColdStartWithoutAppConfig",
            Count::Requests => "Requests",
            Count::Http401 => "Http401",
            Count::Http403 => "Http403",
            Count::Http4xx => "Http4xx",
            Count::Http5xx => "Http5xx",
            Count::DeploymentStamped => "DeploymentStamped",
            Count::DeploymentBlocked => "DeploymentBlocked",
            Count::DeploymentRolledBack => "DeploymentRolledBack",
        }
    }

    /// Whether it describes an HTTP answer, and so is published per route too.
    pub const fn per_route(self) -> bool {
        matches!(
            self,
            Count::Requests | Count::Http401 | Count::Http403 | Count::Http4xx | Count::Http5xx
        )
    }

    /// Its index in [`Count::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// A measured value, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Millis {
    /// How long ago the configuration an invocation was served from was fetched.
    ConfigAge,
    /// For the invocation that first served a new version: from its stamp `T` to that moment.
    DeploymentLag,
}

impl Millis {
    /// Every value metric, in the order documents list them.
    pub const ALL: [Millis; 2] = [Millis::ConfigAge, Millis::DeploymentLag];

    /// Its metric name.
    pub const fn name(self) -> &'static str {
        match self {
            Millis::ConfigAge => "ConfigAge",
            Millis::DeploymentLag => "DeploymentLag",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_count_sits_at_its_own_index_in_all() {
        for (i, count) in Count::ALL.iter().enumerate() {
            assert_eq!(count.index(), i, "{count:?}");
        }
    }

    #[test]
    fn the_catalogue_is_the_one_docs_metrics_md_lists() {
        let doc = include_str!("../../../../docs/metrics.md");
        let names = Count::ALL
            .iter()
            .map(|c| c.name())
            .chain(Millis::ALL.iter().map(|m| m.name()));
        for name in names {
            assert!(
                doc.contains(&format!("`{name}`")),
                "docs/metrics.md does not list {name}"
            );
        }
        // And the page names nothing the code does not publish: every backquoted name in the
        // first column of its tables is a metric.
        let catalogue = doc
            .split("## The catalogue")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("docs/metrics.md has a catalogue section");
        let listed: Vec<&str> = catalogue
            .lines()
            .filter(|line| line.starts_with("| `"))
            .filter_map(|line| line.split('|').nth(1))
            .flat_map(|cell| cell.split('`').skip(1).step_by(2))
            .collect();
        assert!(listed.len() >= Count::ALL.len(), "{listed:?}");
        for word in listed {
            assert!(
                Count::ALL.iter().any(|c| c.name() == word)
                    || Millis::ALL.iter().any(|m| m.name() == word),
                "docs/metrics.md lists {word}, which no code publishes"
            );
        }
    }
}
