//! An in-memory source: content published by a handle, with failures and hangs on demand.
//!
//! It behaves like an AppConfig session (unchanged content is answered with no content) and is
//! what tests, benchmarks and local fleet simulations use where the configuration is produced by
//! the program itself rather than a file or AWS.

use crate::source::{BoxFuture, ConfigSource, Content, Fetched, SourceError};
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Default)]
struct State {
    content: Option<Content>,
    failing: bool,
    hanging: bool,
    delay: Option<Duration>,
    calls: u64,
    /// The session interval stated with every answer, and enforced like AppConfigData does.
    interval: Option<Duration>,
    last_call: Option<DateTime<Utc>>,
    early_calls: u64,
}

/// The source half: give it to a [`crate::FlagCache`].
#[derive(Debug)]
pub struct MemorySource {
    state: Arc<Mutex<State>>,
    delivered: Option<String>,
}

/// The control half: publish versions, inject failures, count calls.
#[derive(Debug, Clone)]
pub struct MemoryHandle {
    state: Arc<Mutex<State>>,
}

impl MemorySource {
    /// A source with nothing published yet, and its handle.
    pub fn new() -> (Self, MemoryHandle) {
        let state = Arc::new(Mutex::new(State::default()));
        (
            Self {
                state: state.clone(),
                delivered: None,
            },
            MemoryHandle { state },
        )
    }
}

impl MemoryHandle {
    /// Publishes `bytes` as `version`; the next fetch delivers it.
    pub fn publish(&self, version: &str, bytes: impl Into<Vec<u8>>) {
        self.lock().content = Some(Content {
            bytes: bytes.into(),
            version: version.to_owned(),
        });
    }

    /// Makes every fetch fail (`unavailable`) until called with `false`.
    pub fn set_failing(&self, failing: bool) {
        self.lock().failing = failing;
    }

    /// Makes every fetch hang forever until called with `false`.
    pub fn set_hanging(&self, hanging: bool) {
        self.lock().hanging = hanging;
    }

    /// Makes every fetch take `delay` (tokio time) before answering.
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.lock().delay = delay;
    }

    /// How many fetches were made.
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// Behaves like an AppConfigData session with `RequiredMinimumPollIntervalInSeconds`:
    /// every answer states `interval` as the next poll interval, and a call less than
    /// `interval` after the previous one (by the `now` the cache passes) is refused as too
    /// early, and counted ([`MemoryHandle::early_calls`]).
    pub fn set_session_interval(&self, interval: Option<Duration>) {
        self.lock().interval = interval;
    }

    /// Calls refused because they came before the session interval.
    pub fn early_calls(&self) -> u64 {
        self.lock().early_calls
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ConfigSource for MemorySource {
    fn fetch(&mut self, now: DateTime<Utc>) -> BoxFuture<'_, Result<Fetched, SourceError>> {
        let (delay, hanging, interval, answer) = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.calls += 1;
            let too_early = match (state.interval, state.last_call) {
                (Some(interval), Some(last)) => {
                    now < last + chrono::TimeDelta::from_std(interval).unwrap_or_default()
                }
                _ => false,
            };
            if too_early {
                state.early_calls += 1;
            } else {
                state.last_call = Some(now);
            }
            let answer = if too_early {
                Err(SourceError::TooEarly(
                    "memory session: poll interval not satisfied".into(),
                ))
            } else if state.failing {
                Err(SourceError::Unavailable("memory source set to fail".into()))
            } else {
                match &state.content {
                    None => Err(SourceError::Unavailable("nothing published".into())),
                    Some(c) if self.delivered.as_deref() == Some(c.version.as_str()) => Ok(None),
                    Some(c) => Ok(Some(c.clone())),
                }
            };
            (state.delay, state.hanging, state.interval, answer)
        };
        Box::pin(async move {
            if hanging {
                std::future::pending::<()>().await;
            }
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            let content = answer?;
            if let Some(c) = &content {
                self.delivered = Some(c.version.clone());
            }
            Ok(Fetched {
                content,
                next_poll_interval: interval,
            })
        })
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}
