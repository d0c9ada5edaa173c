//! The bulk answer's entity tag and what a request's `If-None-Match` says of it.

use super::answer::BulkAnswer;
use http::header::IF_NONE_MATCH;
use http::HeaderMap;
use sha2::{Digest, Sha256};

/// The bulk answer's entity tag: a digest of everything the answer says except the server time
/// (which changes with every read and says nothing new), so it is the same on every instance
/// that would say the same, and changes whenever a value, a reason or any metadata changes,
/// including a journey-safe value turning true when the clock passes `journeyOpensAt` (or
/// `consistentAt`), the client's kind (`openRule`), and the journey token. The token is the same
/// for every read of a version within one second (`journey::issue_reused`) and changes with the
/// second: a client answered `304` keeps a token as fresh as its last poll, which a drain
/// honours, never one from the first `200` hours ago. Weak (`W/`): two answers with one tag
/// differ in the server time.
pub fn etag(answer: &BulkAnswer) -> String {
    let mut stable = answer.clone();
    stable.metadata.server_time = None;
    for flag in &mut stable.flags {
        flag.metadata.server_time = None;
    }
    let bytes = serde_json::to_vec(&stable).expect("an OFREP answer serialises");
    let digest = Sha256::digest(&bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

/// What `If-None-Match` says of the bulk answer (RFC 9110 §13.1.2, weak comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Precondition {
    /// No `If-None-Match`, or none of its tags is the answer's: answer it.
    Proceed,
    /// It names the answer's tag: `304 Not Modified`, as OFREP defines for this POST.
    NotModified,
    /// `*`: "only if you have nothing", and there is always an answer; for a method other than
    /// GET or HEAD the RFC says `412 Precondition Failed`.
    Failed,
}

/// Evaluates `If-None-Match` against `etag`.
pub(super) fn precondition(headers: &HeaderMap, etag: &str) -> Precondition {
    let ours = etag.trim_start_matches("W/");
    let tags = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .map(str::trim);
    let mut verdict = Precondition::Proceed;
    for tag in tags {
        if tag == "*" {
            return Precondition::Failed;
        }
        if tag.trim_start_matches("W/") == ours {
            verdict = Precondition::NotModified;
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn if_none_match_compares_weakly_reads_lists_and_fails_on_a_star() {
        let tag = "W/\"abc\"";
        let headers = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            h
        };
        let check = |value: &str| precondition(&headers(value), tag);
        assert_eq!(check("W/\"abc\""), Precondition::NotModified);
        assert_eq!(check("\"abc\""), Precondition::NotModified);
        assert_eq!(check("\"x\", W/\"abc\""), Precondition::NotModified);
        assert_eq!(check("*"), Precondition::Failed);
        assert_eq!(check("W/\"abc\", *"), Precondition::Failed);
        assert_eq!(check("W/\"abd\""), Precondition::Proceed);
        assert_eq!(precondition(&HeaderMap::new(), tag), Precondition::Proceed);
    }
}
