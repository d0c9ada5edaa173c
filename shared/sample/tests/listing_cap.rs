//! The listing's read cap against DynamoDB Local: a journey listing on the FilterExpression path
//! over a user with many submissions of other journeys issues a bounded number of Queries per
//! request, counted by an interceptor on the client, and reads a bounded number of items; a page
//! cut short by the cap carries a `nextCursor`, and paging through yields exactly the matching
//! items. Before the cap, `limit=1` issued one Query per stored item.
//!
//! A missing Java or `npm ci` fails the test loudly; it never skips.

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::{Body, Request};
use lockstep::SystemClock;
use lockstep_sample::dynamo::{
    to_item, DynamoStore, FILTER_BATCH, LISTING_MAX_EVALUATED, LISTING_MAX_QUERIES,
};
use lockstep_sample::submissions::{
    Ident, ListQuery, Plan, QueryMethod, Submission, SubmissionRequest, SubmissionStore, UserId,
};
use lockstep_sample::FeatureX;
use lockstep_testkit::dynamo_local::{client, ensure_table, DynamoLocal};
use lockstep_testkit::fixtures::cache_holding;
use lockstep_testkit::logs::Logs;
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const TABLE: &str = "submissions";
const USER: &str = "cap";
const NOISE: usize = 600;
/// Where, in creation order, the submissions of the listed journey sit.
const WANTED_AT: [usize; 6] = [0, 101, 300, 301, 550, 605];

/// Counts the Query attempts sent and the items they read (`ScannedCount`).
#[derive(Debug, Default, Clone)]
struct Reads {
    queries: Arc<AtomicUsize>,
    scanned: Arc<AtomicUsize>,
}

impl Reads {
    fn take(&self) -> (usize, usize) {
        (
            self.queries.swap(0, Ordering::SeqCst),
            self.scanned.swap(0, Ordering::SeqCst),
        )
    }
}

impl Intercept for Reads {
    fn name(&self) -> &'static str {
        "Reads"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target");
        if target.is_some_and(|t| t.ends_with(".Query")) {
            self.queries.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(output) = context.output_or_error() {
            if let Some(query) = output.downcast_ref::<QueryOutput>() {
                let scanned = usize::try_from(query.scanned_count()).unwrap_or(0);
                self.scanned.fetch_add(scanned, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}

/// Stores `NOISE` submissions of journey `noise` and, at `WANTED_AT` in creation order,
/// submissions of `wanted`; returns the wanted ones, oldest first.
async fn generate(db: &Client) -> Vec<Submission> {
    let start: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let mut all = Vec::new();
    let mut wanted = Vec::new();
    for i in 0..NOISE + WANTED_AT.len() {
        let journey = if WANTED_AT.contains(&i) {
            "wanted"
        } else {
            "noise"
        };
        let request = SubmissionRequest {
            user_id: UserId::parse("userId", USER).unwrap(),
            journey_id: Ident::parse("journeyId", journey).unwrap(),
            plan: Plan::Basic,
            quantity: 1,
            note: Some(format!("submission {i}")),
        };
        let s = Submission::new(request, start + TimeDelta::milliseconds(i as i64));
        if journey == "wanted" {
            wanted.push(s.clone());
        }
        all.push(s);
    }
    assert_eq!(wanted.len(), WANTED_AT.len());
    for chunk in all.chunks(25) {
        let writes = chunk
            .iter()
            .map(|s| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(to_item(s)))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
            .collect();
        let out = db
            .batch_write_item()
            .request_items(TABLE, writes)
            .send()
            .await
            .unwrap();
        assert!(out.unprocessed_items().is_none_or(|u| u.is_empty()));
    }
    wanted
}

fn list_request(limit: u32, cursor: Option<&str>) -> Request {
    let mut query = format!("userId={USER}&journeyId=wanted&limit={limit}");
    let mut params = std::collections::HashMap::from([
        ("userId".to_owned(), USER.to_owned()),
        ("journeyId".to_owned(), "wanted".to_owned()),
        ("limit".to_owned(), limit.to_string()),
    ]);
    if let Some(cursor) = cursor {
        query.push_str(&format!("&cursor={cursor}"));
        params.insert("cursor".to_owned(), cursor.to_owned());
    }
    let request = http::Request::builder()
        .method("GET")
        .uri(format!("/feature-x/submissions?{query}"))
        .body(Body::Empty)
        .unwrap();
    let request = lambda_http::RequestExt::with_query_string_parameters(request, params);
    lockstep_sample::auth::as_user(request, USER)
}

#[tokio::test]
async fn a_filtered_listing_issues_a_bounded_number_of_queries_and_pages_through_every_match() {
    let (logs, _guard) = Logs::capture();
    let dynamo = DynamoLocal::start_from(Path::new(env!("CARGO_MANIFEST_DIR")), &[])
        .await
        .expect("DynamoDB Local must start (Java 17 and `npm ci` in the project root)");
    let db = client(&dynamo.endpoint);
    ensure_table(&db, TABLE, true).await.unwrap();
    let wanted = generate(&db).await;

    let reads = Reads::default();
    let counted = Client::from_conf(db.config().to_builder().interceptor(reads.clone()).build());
    let store = Arc::new(DynamoStore::new(counted, TABLE));
    // The flag says FilterExpression: the listing reads the base table and filters.
    let (flags, _) = cache_holding(
        lockstep_sample::product::catalog(),
        r#"{"isFeatureXEnabled": true, "useSubmissionsGsi": false}"#,
        Arc::new(SystemClock),
    )
    .await;
    let feature_x = FeatureX::new(flags, store.clone(), Arc::new(SystemClock)).unwrap();

    // Page through with limit=1, as a client would, over HTTP.
    let mut cursor: Option<String> = None;
    let mut listed = Vec::new();
    let mut requests = 0;
    let mut cut_short = 0;
    let mut first_cut: Option<String> = None;
    let mut max_queries = 0;
    let mut max_scanned = 0;
    loop {
        requests += 1;
        assert!(requests <= 100, "paging does not end");
        reads.take();
        let response = feature_x.serve(list_request(1, cursor.as_deref())).await;
        assert_eq!(response.status(), 200, "{:?}", response.body());
        let (queries, scanned) = reads.take();
        assert!(
            (1..=LISTING_MAX_QUERIES as usize).contains(&queries),
            "request {requests}: {queries} queries"
        );
        max_queries = max_queries.max(queries);
        max_scanned = max_scanned.max(scanned);
        assert!(
            scanned <= LISTING_MAX_EVALUATED as usize,
            "request {requests}: {scanned} items read"
        );
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        let items = body["items"].as_array().unwrap().clone();
        assert!(items.len() <= 1);
        cursor = body["nextCursor"].as_str().map(str::to_owned);
        if items.is_empty() && cursor.is_some() {
            cut_short += 1;
            // The store's own cursor, inside the signed one the handler hands out.
            let inner = cursor.as_deref().and_then(|c| c.rsplit_once('.'));
            first_cut = first_cut.or(inner.map(|(inner, _tag)| inner.to_owned()));
        }
        listed.extend(items);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(
        listed,
        serde_json::to_value(&wanted)
            .unwrap()
            .as_array()
            .unwrap()
            .clone(),
        "exactly the matching items, oldest first"
    );
    assert!(cut_short >= 1, "the cap cut a page short");
    assert_eq!(
        max_queries, LISTING_MAX_QUERIES as usize,
        "the cap was reached"
    );
    // Each request reads at least FILTER_BATCH items per query: the 606 items take a few
    // requests, plus one per match and the end (before the cap: one Query per item).
    let most = (NOISE + WANTED_AT.len()).div_ceil((FILTER_BATCH * LISTING_MAX_QUERIES) as usize)
        + 2 * WANTED_AT.len()
        + 1;
    assert!(requests <= most, "{requests} requests, at most {most}");
    eprintln!("{requests} requests, {cut_short} cut short by the cap");
    let capped = logs
        .take()
        .into_iter()
        .filter(|l| l["fields"]["path"] == "listing_read_cap")
        .count();
    assert_eq!(
        capped, cut_short,
        "each page the cap cut short logged path=listing_read_cap"
    );

    // A full page size: the cap on items read ends the page first.
    let response = feature_x.serve(list_request(100, None)).await;
    let (queries, scanned) = reads.take();
    assert_eq!(scanned, LISTING_MAX_EVALUATED as usize);
    assert!(queries <= LISTING_MAX_QUERIES as usize);
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    let within: Vec<Submission> = WANTED_AT
        .iter()
        .zip(&wanted)
        .filter(|(at, _)| **at < LISTING_MAX_EVALUATED as usize)
        .map(|(_, s)| s.clone())
        .collect();
    assert_eq!(body["items"], serde_json::to_value(&within).unwrap());
    assert!(body["nextCursor"].is_string());

    // A cursor from a page the cap cut short continues on the GSI path too (same user and
    // journey), and on the FilterExpression path: the same remaining items.
    let rest = |method| {
        let store = store.clone();
        let cursor = first_cut.clone();
        async move {
            let query = ListQuery {
                user_id: UserId::parse("userId", USER).unwrap(),
                journey_id: Some(Ident::parse("journeyId", "wanted").unwrap()),
                limit: 100,
                cursor,
            };
            let mut items = Vec::new();
            let mut query = query;
            loop {
                let page = store.list(&query, method).await.unwrap();
                items.extend(page.items);
                match page.next_cursor {
                    Some(next) => query.cursor = Some(next),
                    None => return items,
                }
            }
        }
    };
    let via_gsi = rest(QueryMethod::Gsi).await;
    let via_filter = rest(QueryMethod::FilterExpression).await;
    assert!(!via_gsi.is_empty());
    assert_eq!(via_gsi, via_filter);
    assert_eq!(via_gsi[..], wanted[wanted.len() - via_gsi.len()..]);

    // The cursor stays bound to its user and journey.
    let other_journey = ListQuery {
        user_id: UserId::parse("userId", USER).unwrap(),
        journey_id: Some(Ident::parse("journeyId", "noise").unwrap()),
        limit: 1,
        cursor: first_cut.clone(),
    };
    assert!(store
        .list(&other_journey, QueryMethod::FilterExpression)
        .await
        .is_err());
    dynamo.stop().await;
}
