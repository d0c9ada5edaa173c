//! The last-resort layer: a panic, in a handler's future or in its call, answers 500
//! problem+json that echoes nothing from the request; a handler that does not panic is untouched.

use lambda_http::{Body, Request, Response};
use lockstep_http::CatchPanicLayer;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::{service_fn, Layer, Service, ServiceExt};

const SECRET: &str = "card-4111-1111-1111-1111";

fn request() -> Request {
    http::Request::builder()
        .method("POST")
        .uri(format!("/checkout?note={SECRET}"))
        .body(Body::Text(format!(r#"{{"card": "{SECRET}"}}"#)))
        .unwrap()
}

fn text(response: &Response<Body>) -> String {
    match response.body() {
        Body::Text(text) => text.clone(),
        other => panic!("unexpected body {other:?}"),
    }
}

fn assert_internal_without_input(response: &Response<Body>) {
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body = text(response);
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["status"], 500);
    assert!(
        !body.contains(SECRET),
        "the answer echoes the request: {body}"
    );
}

#[tokio::test]
async fn a_handler_that_panics_answers_500_problem_json_echoing_nothing() {
    let handler = service_fn(|request: Request| async move {
        let body = format!("{:?}", request.body());
        if body.contains("card") {
            panic!("cannot charge {body}");
        }
        Ok::<_, Infallible>(Response::new(Body::from("charged")))
    });

    let response = CatchPanicLayer
        .layer(handler)
        .oneshot(request())
        .await
        .unwrap();

    assert_internal_without_input(&response);
}

/// A service whose `call` itself panics, before any future exists.
#[derive(Clone)]
struct PanicsInCall;

impl Service<Request> for PanicsInCall {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        panic!("bad request {:?}", request.uri());
    }
}

#[tokio::test]
async fn a_panic_in_the_call_itself_is_caught_too() {
    let response = CatchPanicLayer
        .layer(PanicsInCall)
        .oneshot(request())
        .await
        .unwrap();

    assert_internal_without_input(&response);
}

#[tokio::test]
async fn a_handler_that_does_not_panic_is_answered_as_it_is() {
    let handler = service_fn(|_request: Request| async {
        Ok::<_, Infallible>(Response::new(Body::from("charged")))
    });

    let response = CatchPanicLayer
        .layer(handler)
        .oneshot(request())
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(text(&response), "charged");
}

#[tokio::test]
async fn the_layer_works_on_an_axum_router() {
    async fn boom() -> &'static str {
        panic!("boom");
    }
    let app = axum::Router::new()
        .route("/boom", axum::routing::get(boom))
        .layer(CatchPanicLayer);

    let response = app
        .oneshot(
            http::Request::builder()
                .uri("/boom")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();

    assert_eq!(response.status(), 500);
}
