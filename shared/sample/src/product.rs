//! This product's flags: what every function of the sample declares.

use lockstep::{FlagCatalog, FlagDecl};

/// Journey X is offered and its endpoints open.
pub const FEATURE_X: &str = "isFeatureXEnabled";
/// The submissions listing queries the GSI (internal).
pub const USE_SUBMISSIONS_GSI: &str = "useSubmissionsGsi";

/// The product's declared flags: every flag disabled unless declared otherwise.
pub fn catalog() -> FlagCatalog {
    FlagCatalog::new(vec![
        FlagDecl::public(FEATURE_X),
        FlagDecl::internal(USE_SUBMISSIONS_GSI),
    ])
    .expect("the product catalog is valid")
}
