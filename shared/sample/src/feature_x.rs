//! Feature X's endpoints, behind the gate on `isFeatureXEnabled` (design rule 4, called directly:
//! [`lockstep_http::GateLayer::check_request`], with the verified caller): the route is matched first (404, 405), then the
//! gate decides before the body is read; nothing is written when it is closed.
//!
//! - `POST /feature-x/submissions` — typed body; `Idempotency-Key` makes a retry return the
//!   original submission (201 first, 200 on replay) and never stores a duplicate.
//! - `GET /feature-x/submissions/{id}` — one of the caller's submissions; another user's id
//!   answers 404 like an unknown one (no existence oracle).
//! - `GET /feature-x/submissions[?journeyId=][&limit=][&cursor=]` — the caller's submissions,
//!   or one journey's; a journey listing reads the GSI when `useSubmissionsGsi` is on (and the
//!   store finds the index `ACTIVE`), decided with the same read as the gate.
//!
//! The user is always the caller: the verified token's `sub` ([`crate::auth::caller`], 401
//! without one, checked before the gate as API Gateway's authorizer runs before the function).
//! A `userId` still sent (query string or body) must be the caller's (403).

use crate::auth;
use crate::cursor::CursorSeal;
use crate::product::{FEATURE_X, USE_SUBMISSIONS_GSI};
use crate::submissions::{
    Created, Ident, InvalidInput, ListQuery, QueryMethod, StoreError, Submission, SubmissionBody,
    SubmissionRequest, SubmissionStore, UserId, DEFAULT_PAGE, MAX_PAGE,
};
use http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use lockstep::metrics::Count;
use lockstep::{Clock, FlagCache, FlagHandle, FlagView};
use lockstep_http::gate::{GateLayer, UndeclaredFlag};
use lockstep_http::problem::{
    json_response, parse_json_body, path_segments, respond, ApiError, STORAGE_RETRY_AFTER_SECONDS,
};
use std::sync::Arc;

/// What feature X's handlers need.
#[derive(Clone)]
pub struct FeatureX {
    flags: Arc<FlagCache>,
    gate: GateLayer,
    use_gsi: FlagHandle,
    store: Arc<dyn SubmissionStore>,
    clock: Arc<dyn Clock>,
    cursors: CursorSeal,
}

impl FeatureX {
    /// Feature X over `flags` (whose catalog must declare the product's flags), `store`, and
    /// `clock` for `createdAt`.
    pub fn new(
        flags: Arc<FlagCache>,
        store: Arc<dyn SubmissionStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, UndeclaredFlag> {
        let use_gsi = flags
            .handle(USE_SUBMISSIONS_GSI)
            .ok_or_else(|| UndeclaredFlag(USE_SUBMISSIONS_GSI.into()))?;
        Ok(Self {
            gate: GateLayer::new(flags.clone(), FEATURE_X)?,
            flags,
            use_gsi,
            store,
            clock,
            cursors: CursorSeal::new().expect("the operating system's random source"),
        })
    }

    /// The flag cache.
    pub fn flags(&self) -> &Arc<FlagCache> {
        &self.flags
    }

    /// The feature-x function: every outcome, errors included, becomes a response.
    ///
    /// The checks run in API Gateway's order: the route (404, 405), then the caller (401: the
    /// authorizer runs before the function), then the gate on [`FEATURE_X`] (503), all before
    /// the body is read; the route's other flag decisions use the read the gate decided with.
    pub async fn serve(&self, request: Request) -> Response<Body> {
        let (route, caller) = match route(&request).and_then(|r| Ok((r, auth::caller(&request)?))) {
            Ok(found) => found,
            Err(error) => return error.into_response(),
        };
        let view = match self.gate.check_request(&request).await {
            Ok(view) => view,
            Err(closed) => return closed.into_response(),
        };
        let result = self.dispatch(route, &caller, &request, &view).await;
        if let Err(error) = &result {
            if let Some(count) = storage_count(error) {
                self.flags.metrics().count(count);
            }
        }
        respond(result)
    }

    async fn dispatch(
        &self,
        route: Route,
        caller: &UserId,
        request: &Request,
        view: &FlagView,
    ) -> Result<Response<Body>, ApiError> {
        match route {
            Route::Create => self.create(caller, request).await,
            Route::Get(id) => self.get(caller, request, &id).await,
            Route::List => self.list(caller, request, view).await,
        }
    }

    async fn create(&self, caller: &UserId, request: &Request) -> Result<Response<Body>, ApiError> {
        let key = match request.headers().get("idempotency-key") {
            None => None,
            Some(value) => Some(
                Ident::parse(
                    "Idempotency-Key",
                    value.to_str().map_err(|_| {
                        ApiError::BadRequest("Idempotency-Key must be ASCII.".into())
                    })?,
                )
                .map_err(bad_request)?,
            ),
        };
        let body: SubmissionBody = parse_json_body(request)?;
        auth::same_user(caller, body.user_id())?;
        let parsed = SubmissionRequest::parse(body, caller).map_err(bad_request)?;
        let fingerprint = parsed.fingerprint();
        let submission = Submission::new(parsed, self.clock.now());
        let created = match self
            .store
            .create(&submission, key.as_ref().map(|k| (k, fingerprint)))
            .await
        {
            Ok(created) => created,
            Err(error) => return create_failed(error, key.is_some()),
        };
        match created {
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

    async fn get(
        &self,
        caller: &UserId,
        request: &Request,
        id: &str,
    ) -> Result<Response<Body>, ApiError> {
        let user_id = user_param(caller, request)?;
        let id_ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !id_ok {
            return Err(ApiError::ResourceNotFound("No such submission.".into()));
        }
        match self.store.get(&user_id, id).await.map_err(store_error)? {
            Some(s) => Ok(json_response(StatusCode::OK, &s)),
            None => Err(ApiError::ResourceNotFound("No such submission.".into())),
        }
    }

    async fn list(
        &self,
        caller: &UserId,
        request: &Request,
        view: &FlagView,
    ) -> Result<Response<Body>, ApiError> {
        let params = request.query_string_parameters();
        let user_id = user_param(caller, request)?;
        let journey_id = params
            .first("journeyId")
            .map(|j| Ident::parse("journeyId", j))
            .transpose()
            .map_err(bad_request)?;
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
        let keys = view.snapshot().journey_keys();
        let signing_key = view.snapshot().signing_key(view.now().timestamp_millis());
        let cursor = match params.first("cursor") {
            None => None,
            Some(cursor) => Some(
                self.cursors
                    .open(keys, &user_id, journey_id.as_ref(), cursor)
                    .ok_or_else(|| {
                        tracing::info!(
                            path = "cursor_refused",
                            "listing refused: the cursor is not one we signed for this listing"
                        );
                        ApiError::BadRequest(
                            "cursor is not valid for this listing: list again from the start."
                                .into(),
                        )
                    })?
                    .to_owned(),
            ),
        };
        let use_gsi = view.enabled(self.use_gsi);
        let query = ListQuery {
            user_id,
            journey_id,
            limit,
            cursor,
        };
        let method = if use_gsi {
            QueryMethod::Gsi
        } else {
            QueryMethod::FilterExpression
        };
        let mut page = self.store.list(&query, method).await.map_err(store_error)?;
        page.next_cursor = page.next_cursor.map(|inner| {
            self.cursors.seal(
                signing_key,
                &query.user_id,
                query.journey_id.as_ref(),
                &inner,
            )
        });
        Ok(json_response(StatusCode::OK, &page))
    }
}

enum Route {
    Create,
    Get(String),
    List,
}

/// Which handler a path and method resolve to: 404 for unknown paths, 405 for wrong methods.
fn route(request: &Request) -> Result<Route, ApiError> {
    match path_segments(request).as_slice() {
        ["feature-x", "submissions"] => match *request.method() {
            Method::POST => Ok(Route::Create),
            Method::GET => Ok(Route::List),
            _ => Err(ApiError::MethodNotAllowed {
                allowed: &["GET", "POST"],
            }),
        },
        ["feature-x", "submissions", id] => match *request.method() {
            Method::GET => Ok(Route::Get((*id).to_owned())),
            _ => Err(ApiError::MethodNotAllowed { allowed: &["GET"] }),
        },
        _ => Err(ApiError::NotFound),
    }
}

/// Whose submissions: the caller's. A `?userId=` still sent must name the caller (403).
fn user_param(caller: &UserId, request: &Request) -> Result<UserId, ApiError> {
    let params = request.query_string_parameters();
    auth::same_user(caller, params.first("userId"))?;
    Ok(caller.clone())
}

fn bad_request(invalid: InvalidInput) -> ApiError {
    ApiError::BadRequest(invalid.0)
}

/// What a failed create tells the client: a write whose outcome is unknown says so and how to
/// retry safely; concurrent requests with one key that kept conflicting answer 409 with
/// Retry-After.
fn create_failed(error: StoreError, with_key: bool) -> Result<Response<Body>, ApiError> {
    match error {
        StoreError::OutcomeUnknown(cause) => {
            let detail = if with_key {
                "Storage did not confirm the write in time: the submission may have been stored. \
                 Retry with the same Idempotency-Key: the retry returns it if it was stored, and \
                 never stores it twice."
            } else {
                "Storage did not confirm the write in time: the submission may have been stored. \
                 A retry without an Idempotency-Key may store it twice: list your submissions \
                 first, and send an Idempotency-Key so a retry is safe."
            };
            tracing::warn!(
                path = "create_outcome_unknown",
                idempotent = with_key,
                "answering 503: the submission may have been stored"
            );
            Err(ApiError::StorageOutcomeUnknown {
                detail: detail.into(),
                cause,
            })
        }
        StoreError::Contended => {
            tracing::info!(
                path = "idempotency_contended",
                "answering 409: another request with this Idempotency-Key is in progress"
            );
            Err(ApiError::ConflictRetry {
                detail: "Another request with this Idempotency-Key is being processed. Retry with \
                         the same key after the time given: it returns the stored submission."
                    .into(),
                retry_after: STORAGE_RETRY_AFTER_SECONDS,
            })
        }
        other => Err(store_error(other)),
    }
}

/// The metric a storage failure counts (design rule 11): the alarms on feature X watch them.
fn storage_count(error: &ApiError) -> Option<Count> {
    match error {
        ApiError::StorageUnavailable(_) => Some(Count::StorageError),
        ApiError::StorageOutcomeUnknown { .. } => Some(Count::StorageUnknownOutcome),
        _ => None,
    }
}

/// What a storage failure tells the client.
fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Unavailable(cause) | StoreError::OutcomeUnknown(cause) => {
            ApiError::StorageUnavailable(cause)
        }
        StoreError::Contended => ApiError::Conflict(
            "Another request with this Idempotency-Key is being processed; retry shortly.".into(),
        ),
        StoreError::KeyReused => ApiError::Conflict(
            "This Idempotency-Key was already used with a different request.".into(),
        ),
        StoreError::BadCursor => ApiError::BadRequest("cursor is not valid.".into()),
        StoreError::Internal(cause) => ApiError::Internal(cause),
    }
}
