//! Which AppConfig configuration to read or deploy: the application, environment and profile,
//! named once here for the AppConfigData source, the local directory source, the durable
//! snapshot's key and the deploy command.

/// The application, environment and configuration profile to read (names or ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Application identifier.
    pub application: String,
    /// Environment identifier.
    pub environment: String,
    /// Configuration profile identifier.
    pub profile: String,
}

/// A variable naming the AppConfig target is not set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not set")]
pub struct MissingTargetVar(pub &'static str);

impl Target {
    /// Reads `LOCKSTEP_APPCONFIG_APPLICATION`, `LOCKSTEP_APPCONFIG_ENVIRONMENT` and
    /// `LOCKSTEP_APPCONFIG_PROFILE`; the error names the first one missing.
    pub fn from_env() -> Result<Self, MissingTargetVar> {
        let get = |name: &'static str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or(MissingTargetVar(name))
        };
        Ok(Self {
            application: get("LOCKSTEP_APPCONFIG_APPLICATION")?,
            environment: get("LOCKSTEP_APPCONFIG_ENVIRONMENT")?,
            profile: get("LOCKSTEP_APPCONFIG_PROFILE")?,
        })
    }
}
