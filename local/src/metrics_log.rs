//! The runner's CloudWatch Logs: the one EMF document each instance writes per invocation
//! (design rule 11), kept in memory for the local alarms and the fleet view, and served at
//! `GET /local/metrics` (documents after a given timestamp).
//!
//! Bounded: the oldest documents go first past [`CAPACITY`], so a long local run does not grow
//! without end; alarms look back minutes, not hours.

use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// Documents kept.
pub const CAPACITY: usize = 20_000;

/// The documents the instances wrote, oldest first.
#[derive(Debug, Default)]
pub struct MetricsLog {
    documents: Mutex<VecDeque<(i64, Value)>>,
}

impl MetricsLog {
    /// Keeps one document (a line an instance wrote); a line that is not a JSON object with
    /// `_aws.Timestamp` is a bug of ours, logged and dropped.
    pub fn push(&self, line: &str) {
        let parsed: Option<(i64, Value)> = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|doc| Some((doc["_aws"]["Timestamp"].as_i64()?, doc)));
        let Some(entry) = parsed else {
            tracing::error!(
                path = "metrics_document_invalid",
                "an instance wrote a metrics document without a timestamp"
            );
            return;
        };
        let mut documents = self
            .documents
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if documents.len() == CAPACITY {
            documents.pop_front();
        }
        documents.push_back(entry);
    }

    /// The documents with a timestamp after `after_ms`, oldest first.
    pub fn since(&self, after_ms: i64) -> Vec<Value> {
        self.documents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(at, _)| *at > after_ms)
            .map(|(_, doc)| doc.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at: i64) -> String {
        format!(r#"{{"_aws":{{"Timestamp":{at},"CloudWatchMetrics":[]}}}}"#)
    }

    #[test]
    fn documents_are_read_back_after_a_timestamp_oldest_first() {
        let log = MetricsLog::default();
        for at in [10, 20, 30] {
            log.push(&line(at));
        }
        let after: Vec<i64> = log
            .since(10)
            .iter()
            .map(|d| d["_aws"]["Timestamp"].as_i64().unwrap())
            .collect();
        assert_eq!(after, [20, 30]);
    }

    #[test]
    fn past_capacity_the_oldest_go_first_and_a_line_without_a_timestamp_is_dropped() {
        let log = MetricsLog::default();
        for at in 0..(CAPACITY as i64 + 5) {
            log.push(&line(at));
        }
        log.push("not json");
        let kept = log.since(i64::MIN);
        assert_eq!(kept.len(), CAPACITY);
        assert_eq!(kept[0]["_aws"]["Timestamp"], 5);
    }
}
