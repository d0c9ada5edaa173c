//! The static files the runner serves: the SPA (`web/`, the same files a static deployment puts
//! on S3), its OpenFeature edition (`web/openfeature.html`, with the OpenFeature web SDK and OFREP
//! provider vendored in `web/vendor/` by `scripts/vendor-openfeature`), the journey module both
//! import (`web/journey.js`) and the local-only fleet view (`local/fleet/`, its charts drawn with
//! uPlot, vendored in `web/vendor/` by `scripts/vendor-uplot`).
//!
//! They are compiled in, and only the paths listed here exist: a request can never name a file
//! on disk, so there is no path to traverse.

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, StatusCode};
use lambda_http::{Body, Response};
use lockstep_http::problem::ApiError;

/// One served file.
pub struct Asset {
    /// The URL path.
    pub path: &'static str,
    /// Its media type.
    pub content_type: &'static str,
    /// Its content.
    pub body: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Scripts and styles come from files only (no inline code); the page talks to its own origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const INDEX: &str = include_str!("../../web/index.html");

/// Every file served, by path.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: HTML,
        body: INDEX,
    },
    Asset {
        path: "/index.html",
        content_type: HTML,
        body: INDEX,
    },
    Asset {
        path: "/app.js",
        content_type: JS,
        body: include_str!("../../web/app.js"),
    },
    Asset {
        path: "/journey.js",
        content_type: JS,
        body: include_str!("../../web/journey.js"),
    },
    Asset {
        path: "/config.js",
        content_type: JS,
        body: include_str!("../../web/config.js"),
    },
    Asset {
        path: "/style.css",
        content_type: CSS,
        body: include_str!("../../web/style.css"),
    },
    Asset {
        path: "/openfeature.html",
        content_type: HTML,
        body: include_str!("../../web/openfeature.html"),
    },
    Asset {
        path: "/openfeature.js",
        content_type: JS,
        body: include_str!("../../web/openfeature.js"),
    },
    Asset {
        path: "/vendor/openfeature.js",
        content_type: JS,
        body: include_str!("../../web/vendor/openfeature.js"),
    },
    Asset {
        path: "/vendor/uPlot.esm.js",
        content_type: JS,
        body: include_str!("../../web/vendor/uPlot.esm.js"),
    },
    Asset {
        path: "/vendor/uPlot.min.css",
        content_type: CSS,
        body: include_str!("../../web/vendor/uPlot.min.css"),
    },
    Asset {
        path: "/fleet",
        content_type: HTML,
        body: include_str!("../fleet/index.html"),
    },
    Asset {
        path: "/fleet/fleet.js",
        content_type: JS,
        body: include_str!("../fleet/fleet.js"),
    },
    Asset {
        path: "/fleet/charts.js",
        content_type: JS,
        body: include_str!("../fleet/charts.js"),
    },
    Asset {
        path: "/fleet/timeline.js",
        content_type: JS,
        body: include_str!("../fleet/timeline.js"),
    },
    Asset {
        path: "/fleet/fleet.css",
        content_type: CSS,
        body: include_str!("../fleet/fleet.css"),
    },
];

/// The file served at `path`, if any.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The file, for GET and HEAD.
pub fn respond(asset: &Asset, method: &Method) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return ApiError::MethodNotAllowed {
            allowed: &["GET", "HEAD"],
        }
        .into_response();
    }
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, asset.content_type)
        // Local development: always revalidate, so an edited file shows on reload.
        .header(CACHE_CONTROL, "no-cache")
        .header("x-content-type-options", "nosniff")
        .header("content-security-policy", CONTENT_SECURITY_POLICY)
        .body(Body::Text(asset.body.to_owned()))
        .expect("static headers are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The URLs `text` names after `prefix` up to the next `"` (a page's `src="…"`, a module's
    /// `from "…"`), resolved against `page` as a browser would (relative to its directory).
    fn references(page: &str, text: &str, prefix: &str) -> Vec<String> {
        let dir = &page[..=page.rfind('/').expect("paths start with /")];
        text.split(prefix)
            .skip(1)
            .filter_map(|rest| rest.split_once('"').map(|(url, _)| url))
            .filter(|url| !url.starts_with("data:"))
            .map(|url| match url.strip_prefix("./") {
                _ if url.starts_with('/') => url.to_owned(),
                Some(relative) => format!("{dir}{relative}"),
                None => format!("{dir}{url}"),
            })
            .collect()
    }

    #[test]
    fn every_script_style_and_module_a_served_file_names_is_served_too() {
        let mut named = Vec::new();
        for asset in ASSETS {
            if asset.content_type == HTML {
                named.extend(references(asset.path, asset.body, "src=\""));
                named.extend(references(asset.path, asset.body, "href=\""));
            } else if asset.content_type == JS {
                named.extend(references(asset.path, asset.body, "from \""));
            }
        }

        let missing: Vec<_> = named.iter().filter(|path| find(path).is_none()).collect();
        assert!(
            named.contains(&"/journey.js".to_owned()),
            "the pages import the shared journey module"
        );
        assert!(
            named.contains(&"/vendor/uPlot.esm.js".to_owned()),
            "the fleet view's charts import the vendored uPlot"
        );
        assert!(missing.is_empty(), "named but not served: {missing:?}");
    }
}
