//! Lockstep's sample product, feature X: the example every adopter copies.
//!
//! - [`auth`]: the caller, from the verified token's `sub` claim (the JWT authorizer's).
//! - [`cursor`]: listing cursors signed with the fleet's journey keys (tamper-evident).
//! - [`product`]: the flags it declares (`isFeatureXEnabled`, public; `useSubmissionsGsi`,
//!   internal).
//! - [`submissions`]: its domain, parsed once into typed values, and the storage port.
//! - [`dynamo`]: the DynamoDB adapter (one conditional transaction per idempotent create).
//! - [`index_status`]: the GSI interlock (never query an index that is not `ACTIVE`).
//! - [`feature_x`]: its routes, behind the gate of `lockstep-http` (called directly, not as a layer).
#![warn(missing_docs)]

pub mod auth;
pub mod cursor;
pub mod dynamo;
pub mod feature_x;
pub mod index_status;
pub mod product;
pub mod submissions;

pub use feature_x::FeatureX;
