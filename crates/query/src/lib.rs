//! The query engine: planning and executing reads of stored profiles, for every read API.
//!
//! A query ([`Query`]: which profiles, and what to make of them) is **planned** from the
//! metastore and the blocks' own metadata into a [`Plan`], a serialisable list of
//! [`ReadTask`]s: one dataset of one block, one table (the profiles, or a rollup at one
//! resolution), the row groups whose statistics say they hold the query's series and time
//! range, and the columns it needs. Tasks run on a [`QueryBackend`] (this crate's
//! [`LocalBackend`] in process; the cluster ships them to other processes), concurrently up to
//! the query's parallelism and through a queue that serves tenants in turn ([`FairQueue`]),
//! fetching only the column chunks they decode; decoding and merging
//! run on blocking threads, never on the async runtime's. Tasks and results travel between
//! processes as bytes ([`wire`]). Each task's partial result (a stack
//! tree, a pprof, time series buckets, heatmap points) merges exactly into the answer.
//!
//! Long ranges read rollups: compacted blocks keep, per series, the summed stack values of
//! every hour and every day, and the planner covers a range with the coarsest whole buckets
//! that fit and raw rows at its edges, which gives the same answer as reading every profile.
//! Footers, series indexes, symbols and table metadata go through caches bounded in bytes, and
//! so do the partial results of tasks (blocks never change), so a dashboard that refreshes
//! re-reads only what arrived since.
//!
//! Owns: planning, execution, merging, the query's limits (parallelism, time, distinct stacks)
//! and their errors. Does not own the object format (`block`), where blocks are (`metastore`)
//! or the API shapes (`server`).

mod access;
mod backend;
mod cache;
mod engine;
mod error;
mod exec;
mod fair;
mod partial;
mod plan;
mod request;
pub mod wire;

pub use access::{DEFAULT_CACHE_BYTES, DataAccess};
pub use backend::{LocalBackend, QueryBackend};
pub use engine::{Querier, QuerierConfig};
pub use error::QueryError;
pub use fair::{DEFAULT_TASK_SLOTS, FairQueue, Slot};
pub use partial::{Exemplar, HeatmapSeries, HeatmapSlot, Partial, SeriesPoint, TimeSeries};
pub use plan::{BlockRef, Plan, ReadTask, TaskTable};
pub use request::{
    Aggregation, DEFAULT_MAX_QUERY_NODES, ExemplarKind, HeatmapParams, Output, Query, QueryLimits,
    QueryStats, Selection, SeriesParams, TenantStats, default_parallelism, parse_profile_id,
    profile_id_string,
};
