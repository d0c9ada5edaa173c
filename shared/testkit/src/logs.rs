//! Log capture for tests that assert which decision path was logged (`path=...`).
//!
//! One global JSON subscriber writes each line to the buffer of the test running on that thread,
//! if it captures. A per-thread default subscriber (`tracing::subscriber::set_default`) would
//! race with tracing's callsite-interest cache when tests run in parallel, and miss events.
//! Tests on tokio's current-thread runtime (`#[tokio::test]`) log on their own thread.

use serde_json::Value;
use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};

/// The JSON lines one test captured.
#[derive(Debug, Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

/// Stops capturing when dropped.
#[derive(Debug)]
pub struct CaptureGuard(());

thread_local! {
    static CAPTURE: RefCell<Option<Logs>> = const { RefCell::new(None) };
}

struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(logs) = c.borrow().as_ref() {
                logs.bytes().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|c| c.borrow_mut().take());
    }
}

impl Logs {
    /// Captures this thread's logs until the guard is dropped.
    pub fn capture() -> (Self, CaptureGuard) {
        static GLOBAL: Once = Once::new();
        GLOBAL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .json()
                .with_writer(|| ThreadWriter)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("the test kit installs the one global subscriber");
        });
        let logs = Logs::default();
        CAPTURE.with(|c| *c.borrow_mut() = Some(logs.clone()));
        (logs, CaptureGuard(()))
    }

    fn bytes(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn parse(bytes: &[u8]) -> Vec<Value> {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON log line"))
            .collect()
    }

    /// Every line so far, as JSON.
    pub fn lines(&self) -> Vec<Value> {
        Self::parse(&self.bytes())
    }

    /// Takes the lines logged so far, as JSON (the next call sees only newer ones).
    pub fn take(&self) -> Vec<Value> {
        Self::parse(&std::mem::take(&mut *self.bytes()))
    }

    /// The fields of every line logged with `path`.
    pub fn path(&self, path: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .map(|l| l["fields"].clone())
            .filter(|f| f["path"] == path)
            .collect()
    }

    /// Every line's message.
    pub fn messages(&self) -> Vec<String> {
        self.lines()
            .iter()
            .map(|l| l["fields"]["message"].to_string())
            .collect()
    }
}
