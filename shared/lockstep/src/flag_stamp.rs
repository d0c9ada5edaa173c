//! The text form of stamps in the metadata, where attributes cannot be objects: one flag's
//! stamp in the AppConfig feature-flag format (`name=T/Δseconds`, or `name=T/Δseconds/drainSeconds`
//! for a flag switched off with a drain time), and `journeyKeyStamp` (`T/Δseconds`, both formats). Written by the stamping code ([`crate::stamp`]), read by the document
//! parser ([`crate::document`]).

use crate::consistency::{Stamp, MAX_DEPLOYMENT_DURATION};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Formats a per-flag stamp for the feature-flag format: `name=T/Δseconds`, or
/// `name=T/Δseconds/drainSeconds` for a flag switched off with a drain time.
pub fn format_flag_stamp(name: &str, stamp: &Stamp, drain: Option<Duration>) -> String {
    let mut text = format!("{name}={}", format_stamp_text(stamp));
    if let Some(drain) = drain {
        text.push_str(&format!("/{}", drain.as_secs()));
    }
    text
}

pub(crate) fn parse_flag_stamp(text: &str) -> Result<(String, Stamp, Option<Duration>), String> {
    let malformed = || format!("{text:?} is not name=T/seconds[/drainSeconds]");
    let (name, rest) = text.split_once('=').ok_or_else(malformed)?;
    let mut parts = rest.split('/');
    let (Some(at), Some(seconds), drain, None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let in_text = |why: String| format!("{text:?}: {why}");
    let deployment_duration = whole_seconds(seconds, "duration").map_err(in_text)?;
    let drain = drain
        .map(|d| whole_seconds(d, "drain").map_err(in_text))
        .transpose()?;
    Ok((
        name.to_owned(),
        Stamp {
            at: parse_time(at)?,
            deployment_duration,
        },
        drain,
    ))
}

/// Formats a stamp as `T/Δseconds` (`journeyKeyStamp`, and the stamp part of `flagStamps`).
pub fn format_stamp_text(stamp: &Stamp) -> String {
    format!(
        "{}/{}",
        stamp
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        stamp.deployment_duration.as_secs()
    )
}

/// Reads `T/Δseconds`.
pub(crate) fn parse_stamp_text(text: &str) -> Result<Stamp, String> {
    let (at, seconds) = text
        .split_once('/')
        .filter(|(_, s)| !s.contains('/'))
        .ok_or_else(|| format!("{text:?} is not T/seconds"))?;
    Ok(Stamp {
        at: parse_time(at)?,
        deployment_duration: whole_seconds(seconds, "duration")?,
    })
}

fn whole_seconds(s: &str, what: &str) -> Result<Duration, String> {
    let d = s
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("the {what} is not whole seconds"))?;
    if d > MAX_DEPLOYMENT_DURATION {
        return Err(format!("the {what} is over 24 hours"));
    }
    Ok(d)
}

/// An RFC 3339 time, as the metadata writes stamps; the error says what is wrong.
pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_flag_stamp_round_trips_through_its_string_form() {
        let stamp = Stamp {
            at: t("2026-11-20T08:00:00.250Z"),
            deployment_duration: Duration::from_secs(60),
        };
        let text = format_flag_stamp("isFeatureXEnabled", &stamp, None);
        assert_eq!(
            parse_flag_stamp(&text).unwrap(),
            ("isFeatureXEnabled".to_string(), stamp, None)
        );
    }
}
