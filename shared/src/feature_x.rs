//! Feature X's endpoints: gated by `isFeatureXEnabled` (design rule 4), decided before the body
//! is read; nothing is written when the gate is closed.
//!
//! - `POST /feature-x/submissions` — typed body; `Idempotency-Key` makes a retry return the
//!   original submission (201 first, 200 on replay) and never stores a duplicate.
//! - `GET /feature-x/submissions/{id}?userId=` — one submission (the user comes from the query
//!   string here; behind an authorizer it would come from the token).
//! - `GET /feature-x/submissions?userId=[&journeyId=][&limit=][&cursor=]` — a user's submissions,
//!   or one journey's; a journey listing reads the GSI when `useSubmissionsGsi` is on.

use crate::cache::{FlagCache, FlagView};
use crate::clock::Clock;
use crate::http::{json_response, path_segments, ApiError};
use crate::product::{FEATURE_X, USE_SUBMISSIONS_GSI};
use crate::submissions::{
    Created, Ident, ListQuery, QueryMethod, Submission, SubmissionRequest, SubmissionStore,
    DEFAULT_PAGE, MAX_PAGE,
};
use http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use std::sync::Arc;

/// What feature X's handlers need.
#[derive(Clone)]
pub struct FeatureX {
    /// The flags.
    pub flags: Arc<FlagCache>,
    /// The submissions.
    pub store: Arc<dyn SubmissionStore>,
    /// Time for `createdAt`.
    pub clock: Arc<dyn Clock>,
}

impl FeatureX {
    /// Routes a request under `/feature-x`: 404 for unknown paths, 405 for wrong methods, 503
    /// while the flag is disabled, then the handler.
    pub async fn handle(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let segments = path_segments(request);
        let route = match segments.as_slice() {
            ["feature-x", "submissions"] => match *request.method() {
                Method::POST => Route::Create,
                Method::GET => Route::List,
                _ => {
                    return Err(ApiError::MethodNotAllowed {
                        allowed: &["GET", "POST"],
                    })
                }
            },
            ["feature-x", "submissions", id] => match *request.method() {
                Method::GET => Route::Get((*id).to_owned()),
                _ => return Err(ApiError::MethodNotAllowed { allowed: &["GET"] }),
            },
            _ => return Err(ApiError::NotFound),
        };
        let flags = self.gate().await?;
        match route {
            Route::Create => self.create(request).await,
            Route::Get(id) => self.get(request, &id).await,
            Route::List => self.list(request, &flags).await,
        }
    }

    /// Rule 4: the decision comes before the body is read.
    async fn gate(&self) -> Result<FlagView, ApiError> {
        let flags = self.flags.read().await;
        if flags.is_enabled(FEATURE_X) {
            Ok(flags)
        } else {
            Err(ApiError::FeatureDisabled {
                flag: FEATURE_X.into(),
                retry_after: flags.window().poll_interval.as_secs(),
            })
        }
    }

    async fn create(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let key = match request.headers().get("idempotency-key") {
            None => None,
            Some(value) => Some(Ident::parse(
                "Idempotency-Key",
                value
                    .to_str()
                    .map_err(|_| ApiError::BadRequest("Idempotency-Key must be ASCII.".into()))?,
            )?),
        };
        let parsed = SubmissionRequest::parse(request)?;
        let fingerprint = parsed.fingerprint();
        let submission = Submission::new(parsed, self.clock.now());
        match self
            .store
            .create(&submission, key.as_ref().map(|k| (k, fingerprint)))
            .await?
        {
            Created::New(s) => {
                tracing::info!(
                    path = "submission_created",
                    idempotent = key.is_some(),
                    "submission stored"
                );
                Ok(json_response(StatusCode::CREATED, &s))
            }
            Created::Replayed(s) => Ok(json_response(StatusCode::OK, &s)),
        }
    }

    async fn get(&self, request: &Request, id: &str) -> Result<Response<Body>, ApiError> {
        let user_id = required_param(request, "userId")?;
        let id_ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !id_ok {
            return Err(ApiError::ResourceNotFound("No such submission.".into()));
        }
        match self.store.get(&user_id, id).await? {
            Some(s) => Ok(json_response(StatusCode::OK, &s)),
            None => Err(ApiError::ResourceNotFound("No such submission.".into())),
        }
    }

    async fn list(&self, request: &Request, flags: &FlagView) -> Result<Response<Body>, ApiError> {
        let params = request.query_string_parameters();
        let user_id = required_param(request, "userId")?;
        let journey_id = params
            .first("journeyId")
            .map(|j| Ident::parse("journeyId", j))
            .transpose()?;
        let limit = match params.first("limit") {
            None => DEFAULT_PAGE,
            Some(l) => l
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=MAX_PAGE).contains(l))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("limit must be between 1 and {MAX_PAGE}."))
                })?,
        };
        let query = ListQuery {
            user_id,
            journey_id,
            limit,
            cursor: params.first("cursor").map(str::to_owned),
        };
        let method = if flags.is_enabled(USE_SUBMISSIONS_GSI) {
            QueryMethod::Gsi
        } else {
            QueryMethod::FilterExpression
        };
        let page = self.store.list(&query, method).await?;
        Ok(json_response(StatusCode::OK, &page))
    }
}

enum Route {
    Create,
    Get(String),
    List,
}

fn required_param(request: &Request, name: &str) -> Result<Ident, ApiError> {
    let params = request.query_string_parameters();
    let value = params
        .first(name)
        .ok_or_else(|| ApiError::BadRequest(format!("The query parameter {name} is required.")))?;
    Ident::parse(name, value)
}
