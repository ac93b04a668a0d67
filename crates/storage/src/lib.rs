//! Object storage for emberscope: the source of truth for profiles.
//!
//! This crate owns the I/O boundary to object storage and nothing above it: which backend a
//! configuration opens (local filesystem by default, S3-compatible, GCS, Azure; all through the
//! `object_store` crate), every object key the system writes ([`paths`]: no other crate builds
//! a key), and a fault-injecting wrapper for tests ([`FaultyStore`]). What the objects contain
//! is the `block` crate's business; which objects exist is the metastore's.

mod config;
mod faults;
pub mod paths;

pub use config::{StorageConfig, StorageError};
pub use faults::{Fault, FaultyStore};
pub use model::TenantId;
pub use object_store::{self, ObjectStore, ObjectStoreExt, path::Path};
