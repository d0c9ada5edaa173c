//! The GSI interlock: a listing never queries an index that is not `ACTIVE`, whatever the flag
//! says.
//!
//! A runbook says "enable the flag once the backfill is done"; people enable it early. Real
//! DynamoDB refuses a Query on a `CREATING` index (`ValidationException`); DynamoDB Local answers
//! it with nothing at all. Either way the flag would break the listing, so the store learns the
//! index's `IndexStatus` with `DescribeTable` and falls back to the base-key FilterExpression path
//! until it is `ACTIVE`.
//!
//! The status is cached and refreshed on access, like the flags (nothing runs in the background
//! of a frozen Lambda): at most one `DescribeTable` per refresh interval (the flags' P) per
//! instance, single flight. A failed `DescribeTable` counts as "not known to be active" and is
//! retried after [`ERROR_RETRY`] (or P, if shorter): falling back is always safe, it only reads
//! more.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::IndexStatus;
use aws_sdk_dynamodb::Client;
use lockstep::clock::Clock;
use std::sync::Arc;
use std::time::Duration;

/// How soon a failed `DescribeTable` is retried (capped at the refresh interval).
pub const ERROR_RETRY: Duration = Duration::from_secs(5);
/// How long one `DescribeTable` may take before the index counts as unknown.
pub const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the store knows about the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexState {
    /// `ACTIVE`: queries may use it.
    Active,
    /// Present but `CREATING`, `UPDATING` or `DELETING` (the status as DynamoDB names it), or
    /// `MISSING` when the table has no such index.
    NotActive(String),
    /// `DescribeTable` failed or timed out (the error code, or `timeout`).
    Unknown(String),
}

impl IndexState {
    /// True only for `ACTIVE`.
    pub fn is_active(&self) -> bool {
        *self == IndexState::Active
    }

    /// As logged (`index_status=`): `ACTIVE`, `CREATING`, …, `MISSING`, `UNKNOWN`.
    pub fn as_str(&self) -> &str {
        match self {
            IndexState::Active => "ACTIVE",
            IndexState::NotActive(status) => status,
            IndexState::Unknown(_) => "UNKNOWN",
        }
    }
}

struct Checked {
    state: IndexState,
    /// When the next access must describe the table again (the clock's milliseconds).
    next_check_ms: i64,
}

/// One index's status, learned by `DescribeTable`, cached for the refresh interval.
pub struct IndexGuard {
    client: Client,
    table: String,
    index: String,
    refresh: Duration,
    clock: Arc<dyn Clock>,
    checked: tokio::sync::Mutex<Option<Checked>>,
}

impl std::fmt::Debug for IndexGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexGuard")
            .field("table", &self.table)
            .field("index", &self.index)
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl IndexGuard {
    /// A guard over `index` of `table`, describing the table at most once per `refresh`.
    pub fn new(
        client: Client,
        table: impl Into<String>,
        index: impl Into<String>,
        refresh: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            table: table.into(),
            index: index.into(),
            refresh,
            clock,
            checked: tokio::sync::Mutex::new(None),
        }
    }

    /// The index's state, from the cache while it is fresh, else from `DescribeTable`.
    pub async fn state(&self) -> IndexState {
        let mut checked = self.checked.lock().await;
        let now_ms = self.clock.now_millis();
        if let Some(c) = checked.as_ref().filter(|c| now_ms < c.next_check_ms) {
            return c.state.clone();
        }
        let state = self.describe().await;
        let wait = match state {
            IndexState::Unknown(_) => ERROR_RETRY.min(self.refresh),
            _ => self.refresh,
        };
        let previous = checked.as_ref().map(|c| c.state.clone());
        if previous.as_ref() != Some(&state) {
            match &state {
                IndexState::Unknown(error) => tracing::warn!(
                    table = %self.table, index = %self.index, error = %error,
                    path = "index_status_unknown",
                    "DescribeTable failed; the index counts as not active"
                ),
                _ => tracing::info!(
                    table = %self.table, index = %self.index, index_status = state.as_str(),
                    previous = previous.as_ref().map_or("none", IndexState::as_str),
                    path = "index_status_changed",
                    "index status learned"
                ),
            }
        }
        *checked = Some(Checked {
            state: state.clone(),
            next_check_ms: self.clock.now_millis() + wait.as_millis() as i64,
        });
        state
    }

    async fn describe(&self) -> IndexState {
        let call = self.client.describe_table().table_name(&self.table).send();
        let out = match tokio::time::timeout(DESCRIBE_TIMEOUT, call).await {
            Err(_) => return IndexState::Unknown("timeout".into()),
            Ok(Err(error)) => {
                let code = error.code().unwrap_or("unreachable").to_owned();
                return IndexState::Unknown(code);
            }
            Ok(Ok(out)) => out,
        };
        let status = out
            .table()
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .find(|i| i.index_name() == Some(self.index.as_str()))
            .map(|i| i.index_status().cloned());
        match status {
            None => IndexState::NotActive("MISSING".into()),
            Some(Some(IndexStatus::Active)) => IndexState::Active,
            Some(Some(other)) => IndexState::NotActive(other.as_str().to_owned()),
            Some(None) => IndexState::Unknown("no IndexStatus".into()),
        }
    }
}
