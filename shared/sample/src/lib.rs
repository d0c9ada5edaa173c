//! Lockstep's sample product, feature X: the example every adopter copies.
//!
//! - [`product`]: the flags it declares (`isFeatureXEnabled`, public; `useSubmissionsGsi`,
//!   internal).
//! - [`submissions`]: its domain, parsed once into typed values, and the storage port.
//! - [`dynamo`]: the DynamoDB adapter (one conditional transaction per idempotent create).
//! - [`index_status`]: the GSI interlock (never query an index that is not `ACTIVE`).
//! - [`feature_x`]: its routes, behind the gate layer of `lockstep-http`.
#![warn(missing_docs)]

pub mod dynamo;
pub mod feature_x;
pub mod index_status;
pub mod product;
pub mod submissions;

pub use feature_x::FeatureX;
