//! A local directory source, named like the AppConfig Agent's local development mode: the file
//! `<dir>/<application>:<environment>:<profile>` (optionally with `.json`) holds the content.
//!
//! It follows the same P rules as AppConfig because the cache drives it the same way. Like an
//! AppConfig session it answers "unchanged" (no content) when the file's bytes are the same as
//! the last content it delivered, so the cache parses each version once.

use crate::source::{fnv1a, BoxFuture, ConfigSource, Content, Fetched, SourceError};
use crate::target::Target;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

/// Reads a configuration profile from a local directory.
#[derive(Debug, Clone)]
pub struct LocalDirSource {
    dir: PathBuf,
    target: Target,
    last_delivered: Option<u64>,
}

impl LocalDirSource {
    /// A source for `target` under `dir`.
    pub fn new(dir: impl Into<PathBuf>, target: Target) -> Self {
        Self {
            dir: dir.into(),
            target,
            last_delivered: None,
        }
    }

    /// The file name the agent's local development mode uses for `target`.
    pub fn file_name(target: &Target) -> String {
        format!(
            "{}:{}:{}",
            target.application, target.environment, target.profile
        )
    }

    /// The file this source reads: `<name>.json` when it exists, else `<name>`.
    pub fn path(&self) -> PathBuf {
        let name = Self::file_name(&self.target);
        let json = self.dir.join(format!("{name}.json"));
        if json.exists() {
            json
        } else {
            self.dir.join(name)
        }
    }

    async fn read(&mut self) -> Result<Fetched, SourceError> {
        let path = self.path();
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|source| SourceError::Io {
                path: display(&path),
                source,
            })?;
        let hash = fnv1a(&bytes);
        if self.last_delivered == Some(hash) {
            return Ok(Fetched {
                content: None,
                next_poll_interval: None,
            });
        }
        self.last_delivered = Some(hash);
        Ok(Fetched {
            content: Some(Content {
                bytes,
                version: format!("local-{hash:016x}"),
            }),
            next_poll_interval: None,
        })
    }
}

impl ConfigSource for LocalDirSource {
    fn fetch(&mut self, _now: DateTime<Utc>) -> BoxFuture<'_, Result<Fetched, SourceError>> {
        Box::pin(self.read())
    }

    fn describe(&self) -> String {
        format!("local:{}", display(&self.path()))
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            application: "lockstep".into(),
            environment: "local".into(),
            profile: "flags".into(),
        }
    }

    #[tokio::test]
    async fn the_same_bytes_are_reported_unchanged_and_new_bytes_as_a_new_version() {
        let dir = std::env::temp_dir().join(format!("lockstep-local-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("lockstep:local:flags.json");
        std::fs::write(&file, br#"{"isFeatureXEnabled": false}"#).unwrap();
        let mut source = LocalDirSource::new(&dir, target());
        let now = Utc::now();

        let first = source.fetch(now).await.unwrap();
        let again = source.fetch(now).await.unwrap();
        std::fs::write(&file, br#"{"isFeatureXEnabled": true}"#).unwrap();
        let changed = source.fetch(now).await.unwrap();

        let first = first.content.expect("first read delivers content");
        assert!(again.content.is_none());
        let changed = changed.content.expect("a changed file delivers content");
        assert_ne!(first.version, changed.version);
        assert_eq!(changed.bytes, br#"{"isFeatureXEnabled": true}"#);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_missing_file_is_an_error_naming_the_path() {
        let mut source = LocalDirSource::new("/nonexistent-lockstep-dir", target());
        let err = source.fetch(Utc::now()).await.unwrap_err();
        assert_eq!(err.kind(), crate::source::FailureKind::Io);
        assert!(err.to_string().contains("lockstep:local:flags"), "{err}");
    }
}
