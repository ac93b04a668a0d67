//! The emberscope server: one listener speaking Grafana Pyroscope's API, wired to the storage
//! engine, in the roles the configuration asks for (`all` by default).
//!
//! Owns: routes and their wire formats — ingest (`/ingest`, Push, OTLP gRPC and OTLP/HTTP),
//! the querier service and the legacy HTTP query API, settings, feature flags, version, build
//! info, tenant limits, `/ready`, `/metrics`; the tenant rule (`X-Scope-OrgID`, `anonymous`
//! when multi-tenancy is off); per-tenant limits ([`limits`]); the mapping of errors to status
//! codes (one place, [`error`]); serving RPC methods in every protocol of `api::wire` (`rpc`); and
//! starting the roles (segment writer, compactor, querier) on the configured storage and
//! metastore (embedded defaults: local `./data`, SQLite).

mod accept;
mod adhoc;
pub mod attime;
mod cluster;
mod debug_pprof;
mod distributor;
pub mod error;
pub mod inflight;
mod labelset;
mod legacy_ingest;
pub mod limits;
mod metrics;
mod otlp;
mod push;
mod querier;
mod render;
mod rpc;
mod services;
mod status;
mod store;
mod tenant;
mod ui;

pub use cluster::ClusterConfig;
pub use cluster::backends::QueryFrontendConfig;
pub use distributor::DistributorConfig;
pub use status::ConfigPages;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use bytes::Bytes;
use compactor::{Compactor, CompactorConfig};
use ingest::{SegmentWriter, SegmentWriterConfig};
use metastore::SqliteMetastore;
use query::Querier;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use storage::StorageConfig;

/// Where block metadata lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetastoreConfig {
    /// Embedded SQLite at this path (the default: `<data>/metastore.db`).
    Sqlite(PathBuf),
    /// PostgreSQL, by libpq connection string (`host=… user=… dbname=…` or a URL).
    Postgres(String),
}

/// The roles one process can take (`-target`); `all` is every one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Receives pushes (`/ingest`, Push): validation, series split.
    Distributor,
    /// Buffers heads and flushes segments: the distributors' batches, in process or over the
    /// network (`segmentwriter.v1`).
    SegmentWriter,
    /// Answers the query API: plans queries and merges their read tasks' results.
    QueryFrontend,
    /// Runs read tasks: the frontend's in process, or other frontends' over the network
    /// (`querybackend.v1`).
    QueryBackend,
    /// Merges segments into blocks, applies retention, deletes replaced objects.
    Compactor,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Distributor,
        Role::SegmentWriter,
        Role::QueryFrontend,
        Role::QueryBackend,
        Role::Compactor,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Distributor => "distributor",
            Role::SegmentWriter => "segment-writer",
            Role::QueryFrontend => "query-frontend",
            Role::QueryBackend => "query-backend",
            Role::Compactor => "compactor",
        }
    }

    /// Parses `-target`: `all` or a comma-separated list of role names. The metastore is the
    /// database itself (SQLite or PostgreSQL), so it is not a role of this binary.
    pub fn parse_target(target: &str) -> Result<Vec<Role>, String> {
        let mut roles = Vec::new();
        for part in target.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "all" {
                roles.extend(Role::ALL);
                continue;
            }
            let role = Role::ALL
                .into_iter()
                .find(|r| r.name() == part)
                .ok_or_else(|| {
                    let names: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
                    format!(
                        "unknown target {part:?}: the roles are all, {}{}",
                        names.join(", "),
                        if part == "metastore" {
                            " (the metastore is the database: metastore.backend=postgres)"
                        } else {
                            ""
                        }
                    )
                })?;
            roles.push(role);
        }
        if roles.is_empty() {
            return Err("the target names no role".to_owned());
        }
        roles.sort_by_key(|r| r.name());
        roles.dedup();
        Ok(roles)
    }
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The default home of objects (`<data>/objects`) and the SQLite metastore.
    pub data_dir: PathBuf,
    /// Object storage; `None`: the local folder `<data>/objects`.
    pub storage: Option<StorageConfig>,
    /// Metadata; `None`: SQLite at `<data>/metastore.db`.
    pub metastore: Option<MetastoreConfig>,
    pub roles: Vec<Role>,
    pub multitenancy: bool,
    pub segment_writer: SegmentWriterConfig,
    pub compactor: CompactorConfig,
    /// Every tenant's limits, unless the overrides file says otherwise.
    pub limits: limits::Limits,
    /// Per-tenant overrides (`overrides:` YAML), re-read every `overrides_reload`.
    pub overrides_file: Option<PathBuf>,
    pub overrides_reload: Duration,
    pub distributor: DistributorConfig,
    /// Open HTTP connections at once (0: no limit); more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// The query engine (planning, caches, task slots): the query roles'.
    pub querier: query::QuerierConfig,
    pub query_frontend: QueryFrontendConfig,
    /// Membership.
    pub cluster: ClusterConfig,
    /// The effective configuration for `/config`, as the binary rendered it.
    pub config_pages: Arc<ConfigPages>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 4040)),
            data_dir: PathBuf::from("./data"),
            storage: None,
            metastore: None,
            roles: Role::ALL.to_vec(),
            multitenancy: false,
            segment_writer: SegmentWriterConfig::default(),
            compactor: CompactorConfig::default(),
            limits: limits::Limits::default(),
            querier: query::QuerierConfig::default(),
            query_frontend: QueryFrontendConfig::default(),
            overrides_file: None,
            overrides_reload: Duration::from_secs(10),
            distributor: DistributorConfig::default(),
            max_connections: 0,
            cluster: ClusterConfig::default(),
            config_pages: Arc::default(),
        }
    }
}

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct AppState {
    pub multitenancy: bool,
    /// The roles this process runs.
    pub roles: Vec<Role>,
    pub store: Arc<dyn storage::ObjectStore>,
    /// Serialises read-modify-writes of settings documents.
    pub settings_lock: tokio::sync::Mutex<()>,
    pub metrics: Arc<metrics::Metrics>,
    pub flush_stats: Arc<ingest::FlushStats>,
    /// This process's segment writer, when it runs that role.
    pub writer: Option<SegmentWriter>,
    /// Where this process's distributor sends its batches.
    pub writers: cluster::writers::Writers,
    /// The cluster as this process sees it.
    pub membership: Arc<cluster::membership::Membership>,
    /// Block metadata (and membership, and the write requests segments hold).
    pub metastore: Arc<dyn metastore::Metastore>,
    /// This process's query frontend, when it runs that role.
    pub querier: Option<Querier>,
    /// This process's query backend, when it runs that role (it serves other frontends' tasks).
    pub backend: Option<Arc<query::LocalBackend>>,
    pub limits: Arc<limits::TenantLimits>,
    /// Memory for pushes being decoded and stored.
    pub inflight: inflight::InflightBudget,
    /// Ingest requests being handled (their bodies read); more wait before reading theirs.
    pub ingest_permits: Arc<tokio::sync::Semaphore>,
    /// The wall clock: timestamps for pushes without one, query lookback, settings.
    pub clock: Arc<dyn model::Clock>,
    /// The effective configuration for `/config`.
    pub config_pages: Arc<ConfigPages>,
}

impl AppState {
    /// This process's query frontend, or why a query cannot be answered here.
    pub(crate) fn querier(&self) -> Result<&Querier, error::ApiError> {
        self.querier.as_ref().ok_or_else(|| {
            error::ApiError::new(
                error::Code::Unavailable,
                "this process does not run a query frontend (--target)",
            )
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("storage: {0}")]
    Storage(#[from] storage::StorageError),
    #[error("metastore: {0}")]
    Metastore(#[from] metastore::MetastoreError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Serve(#[source] std::io::Error),
    #[error("{0}")]
    Config(String),
}

/// A route serving one RPC method in every protocol of `rpc`.
macro_rules! rpc_route {
    ($method:path) => {
        post(
            |State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes| async move {
                rpc::unary(state, headers, body, $method).await
            },
        )
    };
}

fn router(state: Arc<AppState>, roles: &[Role]) -> Router {
    const QUERIER: &str = "/querier.v1.QuerierService";
    let has = |role: Role| roles.contains(&role);
    // Every process answers health, metrics and version.
    let mut router = Router::new()
        .route("/ready", get(cluster::ready::serve))
        .route("/metrics", get(metrics::serve))
        .route("/api/v1/tenant_limits", get(services::tenant_limits))
        .route("/api/v1/status/buildinfo", get(services::build_info))
        .route("/cluster", get(cluster::page::serve))
        .route("/config", get(status::config))
        .route("/api/v1/status/config", get(status::status_config))
        .route(
            "/api/v1/status/config/diff",
            get(status::status_config_diff),
        )
        .route(
            "/api/v1/status/config/default",
            get(status::status_config_default),
        )
        .route("/runtime_config", get(status::runtime_config))
        .route("/services", get(status::services))
        .route("/debug/pprof/profile", get(debug_pprof::profile))
        .route("/version.v1.Version/Version", rpc_route!(services::version));
    if has(Role::SegmentWriter) {
        let push = Router::new()
            .route(
                cluster::writers::PUSH_PATH,
                rpc_route!(cluster::writers::push),
            )
            .route(
                cluster::writers::PUSH_BATCH_PATH,
                rpc_route!(cluster::writers::push_batch),
            )
            .route_layer(axum::middleware::from_fn_with_state(
                Arc::clone(&state),
                admit_ingest,
            ));
        router = router.merge(push);
    }
    if has(Role::Distributor) {
        let ingest = Router::new()
            .route("/ingest", post(legacy_ingest::ingest))
            .route("/pyroscope/ingest", post(legacy_ingest::ingest))
            .route("/push.v1.PusherService/Push", rpc_route!(push::push))
            .route(
                "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
                post(otlp::export_path),
            )
            .route("/v1development/profiles", post(otlp::http))
            .route_layer(axum::middleware::from_fn_with_state(
                Arc::clone(&state),
                admit_ingest,
            ));
        router = router.merge(ingest);
    }
    if has(Role::QueryBackend) {
        router = router.route(
            cluster::backends::EXECUTE_PATH,
            rpc_route!(cluster::backends::execute),
        );
    }
    if has(Role::QueryFrontend) {
        router = router
            .route("/", get(ui::index))
            .route("/ui/{file}", get(ui::asset))
            .route("/api/adhoc/flamegraph", post(adhoc::flamegraph));
        let querier_routes: [(&str, axum::routing::MethodRouter<Arc<AppState>>); 12] = [
            ("ProfileTypes", rpc_route!(querier::profile_types)),
            ("LabelNames", rpc_route!(querier::label_names)),
            ("LabelValues", rpc_route!(querier::label_values)),
            ("Series", rpc_route!(querier::series)),
            (
                "SelectMergeStacktraces",
                rpc_route!(querier::select_merge_stacktraces),
            ),
            (
                "SelectMergeSpanProfile",
                rpc_route!(querier::select_merge_span_profile),
            ),
            (
                "SelectMergeProfile",
                rpc_route!(querier::select_merge_profile),
            ),
            ("SelectSeries", rpc_route!(querier::select_series)),
            ("SelectHeatmap", rpc_route!(querier::select_heatmap)),
            ("Diff", rpc_route!(querier::diff)),
            ("GetProfileStats", rpc_route!(querier::get_profile_stats)),
            ("AnalyzeQuery", rpc_route!(querier::analyze_query)),
        ];
        for (method, route) in querier_routes {
            router = router.route(&format!("{QUERIER}/{method}"), route);
        }
        router = router
            .route("/pyroscope/render", get(render::render))
            .route("/pyroscope/render-diff", get(render::render_diff))
            .route("/pyroscope/label-values", get(render::label_values))
            .route(
                "/settings.v1.SettingsService/Get",
                rpc_route!(services::get_settings),
            )
            .route(
                "/settings.v1.SettingsService/Set",
                rpc_route!(services::set_settings),
            )
            .route(
                "/settings.v1.SettingsService/Delete",
                rpc_route!(services::delete_settings),
            )
            .route(
                "/capabilities.v1.FeatureFlagsService/GetFeatureFlags",
                rpc_route!(services::feature_flags),
            );
    }
    let counters = Arc::clone(&state.metrics);
    router
        .layer(axum::extract::DefaultBodyLimit::max(rpc::BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            counters,
            metrics::track,
        ))
        .layer(axum::middleware::from_fn(accept::validate))
        .with_state(state)
}

/// The most of a request an HTTP/1 connection reads ahead of its handler. hyper's default
/// (about 400 KiB) grows each keep-alive connection's buffer to that size, which at thousands
/// of connections was most of the server's memory; 64 KiB still cost 130 MiB more than 16 KiB
/// at 4,096 clients, for the same throughput.
const HTTP1_MAX_BUF_BYTES: usize = 16 << 10;
/// How long a request head may take to arrive, counted from the end of the previous request.
const HTTP1_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2 flow-control windows: how much a client may send before the handler reads it.
const HTTP2_STREAM_WINDOW: u32 = 256 << 10;
const HTTP2_CONNECTION_WINDOW: u32 = 1 << 20;

/// Serves HTTP/1.1 and h2c on `listener` until `shutdown`, then waits for open connections.
/// (axum's `serve` with the read-ahead and flow-control windows bounded, and at most
/// `max_connections` connections open when it is not 0: further ones are accepted as earlier
/// ones close.)
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    max_connections: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tower::ServiceExt as _;
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // A request head must arrive within 30 s, and an idle keep-alive connection is closed after
    // as long (hyper's timeout, which needs a timer), so idle or slow clients do not keep
    // places under `max_connections`. Heads larger than the read-ahead are refused (431).
    builder
        .http1()
        .max_buf_size(HTTP1_MAX_BUF_BYTES)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HTTP1_HEADER_READ_TIMEOUT);
    builder
        .http2()
        .initial_stream_window_size(HTTP2_STREAM_WINDOW)
        .initial_connection_window_size(HTTP2_CONNECTION_WINDOW);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let connections = (max_connections > 0).then(|| {
        Arc::new(tokio::sync::Semaphore::new(
            max_connections.min(tokio::sync::Semaphore::MAX_PERMITS),
        ))
    });
    tokio::pin!(shutdown);
    loop {
        let place = match &connections {
            Some(connections) => tokio::select! {
                place = Arc::clone(connections).acquire_owned() => place.ok(),
                () = &mut shutdown => break,
            },
            None => None,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone().map_request(
            |request: axum::http::Request<hyper::body::Incoming>| {
                request.map(axum::body::Body::new)
            },
        ));
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended");
            }
            drop(place);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Lets at most `max_concurrent_ingest` ingest requests read and decode their bodies at once:
/// under overload the rest wait with their bodies unread, in the kernel's socket buffers rather
/// than in our memory. A request gives its place back once its profiles are decoded and handed
/// to the segment writer (`store::write`), or when it ends.
async fn admit_ingest(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let permit = Arc::clone(&state.ingest_permits).acquire_owned().await.ok();
    store::INGEST_PERMIT
        .scope(std::cell::RefCell::new(permit), next.run(request))
        .await
}

/// The segment writer role: a head flushed into segments, when this process runs it.
fn start_segment_writer_if_enabled(
    config: &ServerConfig,
    store: &Arc<dyn storage::ObjectStore>,
    metastore: &Arc<dyn metastore::Metastore>,
) -> Option<SegmentWriter> {
    config.roles.contains(&Role::SegmentWriter).then(|| {
        SegmentWriter::start(
            config.segment_writer.clone(),
            Arc::clone(store),
            Arc::clone(metastore),
        )
    })
}

/// The compactor role: compaction, retention and garbage collection on a timer.
fn start_compactor_if_enabled(
    config: &ServerConfig,
    store: &Arc<dyn storage::ObjectStore>,
    metastore: &Arc<dyn metastore::Metastore>,
    limits: &limits::TenantLimits,
) -> Option<tokio::task::JoinHandle<()>> {
    config.roles.contains(&Role::Compactor).then(|| {
        let retention = config.limits.compactor_blocks_retention_period;
        let compactor_config = CompactorConfig {
            default_retention: (!retention.is_zero()).then_some(retention),
            tenant_retention: limits.retention_overrides(),
            ..config.compactor.clone()
        };
        Compactor::new(Arc::clone(store), Arc::clone(metastore), compactor_config).start()
    })
}

/// The query backend role: read tasks run here, on `data`'s caches.
fn start_query_backend_if_enabled(
    config: &ServerConfig,
    data: &Option<Arc<query::DataAccess>>,
) -> Option<Arc<query::LocalBackend>> {
    let data = data.as_ref()?;
    config.roles.contains(&Role::QueryBackend).then(|| {
        Arc::new(query::LocalBackend::new(
            Arc::clone(data),
            config.querier.results_cache_bytes,
        ))
    })
}

/// The query frontend role: plans queries (reading footers through `data`) and runs their
/// tasks on `backend` (this process's, or the cluster's query backends).
fn start_query_frontend_if_enabled(
    config: &ServerConfig,
    data: &Option<Arc<query::DataAccess>>,
    metastore: &Arc<dyn metastore::Metastore>,
    backend: Arc<dyn query::QueryBackend>,
) -> Option<Querier> {
    let data = data.as_ref()?;
    config.roles.contains(&Role::QueryFrontend).then(|| {
        Querier::with_backend(
            Arc::clone(data),
            Arc::clone(metastore),
            config.querier,
            backend,
        )
    })
}

/// Runs the server until `shutdown` resolves, then flushes acknowledged-pending writes.
/// Reports the bound address through `bound` (useful with port 0).
pub async fn run(
    config: ServerConfig,
    bound: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let store = config
        .storage
        .clone()
        .unwrap_or_else(|| StorageConfig::Filesystem {
            dir: config.data_dir.join("objects"),
        })
        .open()?;
    let metastore: Arc<dyn metastore::Metastore> = match &config.metastore {
        None => {
            // The data folder holds the metastore even when objects are stored elsewhere.
            std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                ServerError::Config(format!(
                    "cannot create the data folder {}: {e}",
                    config.data_dir.display()
                ))
            })?;
            Arc::new(SqliteMetastore::open(
                &config.data_dir.join("metastore.db"),
            )?)
        }
        Some(MetastoreConfig::Sqlite(path)) => Arc::new(SqliteMetastore::open(path)?),
        Some(MetastoreConfig::Postgres(url)) => {
            Arc::new(metastore::PostgresMetastore::connect(url).await?)
        }
    };
    let limits = Arc::new(
        limits::TenantLimits::new(config.limits.clone(), config.overrides_file.clone())
            .map_err(ServerError::Config)?,
    );
    let writer = start_segment_writer_if_enabled(&config, &store, &metastore);
    let compactor = start_compactor_if_enabled(&config, &store, &metastore, &limits);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Listen {
            address: config.listen,
            source,
        })?;
    let address = listener.local_addr().map_err(ServerError::Serve)?;
    let clock: Arc<dyn model::Clock> = Arc::new(model::SystemClock);
    let (membership, heartbeat) = cluster::membership::Membership::start(
        Arc::clone(&metastore),
        Arc::clone(&clock),
        config.cluster.clone(),
        config.roles.iter().map(|r| r.name().to_owned()).collect(),
        config
            .cluster
            .advertise_url
            .clone()
            .unwrap_or_else(|| cluster::default_advertise_url(address)),
    )
    .await?;
    let writers = if writer.is_some() {
        cluster::writers::Writers::Local
    } else {
        cluster::writers::Writers::Remote(cluster::writers::RemoteWriters::new(
            Arc::clone(&membership),
            &config.distributor,
        ))
    };
    // Blocks are read (footers, series indexes, symbols, cached) by the query roles only.
    let data = [Role::QueryFrontend, Role::QueryBackend]
        .iter()
        .any(|role| config.roles.contains(role))
        .then(|| {
            Arc::new(query::DataAccess::new(
                Arc::clone(&store),
                config.querier.cache_bytes,
            ))
        });
    // Read tasks run in this process when it is a query backend, else on the cluster's.
    let local_backend = start_query_backend_if_enabled(&config, &data);
    let query_backend: Arc<dyn query::QueryBackend> = match &local_backend {
        Some(local) => Arc::clone(local) as Arc<dyn query::QueryBackend>,
        None => Arc::new(cluster::backends::RemoteBackends::new(
            Arc::clone(&membership),
            &config.query_frontend,
        )),
    };
    let querier = start_query_frontend_if_enabled(&config, &data, &metastore, query_backend);
    let state = Arc::new(AppState {
        multitenancy: config.multitenancy,
        roles: config.roles.clone(),
        store: Arc::clone(&store),
        settings_lock: tokio::sync::Mutex::new(()),
        metrics: Arc::new(metrics::Metrics::default()),
        flush_stats: writer
            .as_ref()
            .map(SegmentWriter::stats)
            .unwrap_or_default(),
        writer,
        writers,
        membership: Arc::clone(&membership),
        metastore: Arc::clone(&metastore),
        querier,
        backend: local_backend,
        limits: Arc::clone(&limits),
        inflight: inflight::InflightBudget::new(config.distributor.max_inflight_bytes),
        ingest_permits: Arc::new(tokio::sync::Semaphore::new(
            config.distributor.max_concurrent_ingest.max(1),
        )),
        clock,
        config_pages: Arc::clone(&config.config_pages),
    });
    tracing::info!(%address, data = %config.data_dir.display(), member = %membership.me().id, "emberscope listening");
    bound(address);
    // Overrides are re-read while the server runs; a bad file keeps the previous overrides.
    let reloader = config.overrides_file.is_some().then(|| {
        let limits = Arc::clone(&limits);
        let period = config.overrides_reload.max(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                if let Err(error) = limits.reload() {
                    tracing::warn!(%error, "keeping the previous per-tenant overrides");
                }
            }
        })
    });
    let roles: Vec<&str> = config.roles.iter().map(|r| r.name()).collect();
    tracing::info!(roles = %roles.join(","), "roles");
    serve(
        listener,
        router(Arc::clone(&state), &config.roles),
        config.max_connections,
        shutdown,
    )
    .await;
    // Leave first, so that distributors stop sending here while the head is flushed.
    heartbeat.abort();
    membership.leave().await;
    if let Some(compactor) = compactor {
        compactor.abort();
    }
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    // Handlers are gone: flush what they left pending.
    if let Ok(state) = Arc::try_unwrap(state)
        && let Some(writer) = state.writer
    {
        writer.shutdown().await;
    }
    Ok(())
}
