//! The configuration of `emberscope serve`: one table of options, each settable in a YAML file
//! (`--config.file`, nested maps spell the dotted name), as an environment variable
//! (`EMBERSCOPE_` + the name in capitals with `.` and `-` as `_`) and as a flag
//! (`--<name>`). A flag beats the environment, which beats the file, which beats the default.
//! `docs/emberscope.example.yaml` documents every option (a test keeps it complete).

use anyhow::{Context, Result, bail};
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use server::{MetastoreConfig, Role, ServerConfig};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use storage::StorageConfig;

/// One option: its dotted name, default (as text) and meaning.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
    pub boolean: bool,
}

const fn opt(name: &'static str, default: &'static str, help: &'static str) -> Opt {
    Opt {
        name,
        default,
        help,
        boolean: false,
    }
}

const fn flag(name: &'static str, help: &'static str) -> Opt {
    Opt {
        name,
        default: "false",
        help,
        boolean: true,
    }
}

/// Every option of `emberscope serve`.
pub const OPTIONS: &[Opt] = &[
    opt(
        "target",
        "all",
        "Roles of this process: all, or a comma-separated list of distributor, segment-writer, query-frontend, query-backend, compactor",
    ),
    opt(
        "listen",
        "0.0.0.0:4040",
        "Address of the one HTTP port (HTTP/1.1, h2c gRPC, Connect, gRPC-Web)",
    ),
    opt(
        "server.http-conn-limit",
        "0",
        "Most HTTP connections open at once (0: no limit); more wait to be accepted (bounds RSS under load)",
    ),
    opt(
        "data",
        "./data",
        "Folder of the embedded defaults: objects in <data>/objects, SQLite in <data>/metastore.db",
    ),
    opt(
        "log.level",
        "info",
        "Log filter (tracing's syntax: error, warn, info, debug, or per module)",
    ),
    flag(
        "auth.multitenancy-enabled",
        "Require X-Scope-OrgID on every request (otherwise the tenant is \"anonymous\")",
    ),
    opt(
        "storage.backend",
        "filesystem",
        "Object storage: filesystem, s3, gcs or azure",
    ),
    opt(
        "storage.filesystem.dir",
        "",
        "Folder of objects (empty: <data>/objects)",
    ),
    opt("storage.s3.bucket", "", "S3 bucket"),
    opt("storage.s3.endpoint", "", "S3 endpoint URL (empty: AWS)"),
    opt(
        "storage.s3.region",
        "",
        "S3 region (empty: from AWS_REGION)",
    ),
    opt(
        "storage.s3.access-key-id",
        "",
        "S3 access key id (empty: from AWS_ACCESS_KEY_ID)",
    ),
    opt(
        "storage.s3.secret-access-key",
        "",
        "S3 secret key (empty: from AWS_SECRET_ACCESS_KEY)",
    ),
    flag("storage.s3.allow-http", "Allow a plain http:// S3 endpoint"),
    opt("storage.gcs.bucket", "", "GCS bucket"),
    opt(
        "storage.gcs.service-account-path",
        "",
        "GCS service account file (empty: from GOOGLE_* variables)",
    ),
    opt("storage.azure.account", "", "Azure storage account"),
    opt("storage.azure.container", "", "Azure container"),
    opt(
        "storage.azure.access-key",
        "",
        "Azure access key (empty: from AZURE_* variables)",
    ),
    opt(
        "storage.azure.endpoint",
        "",
        "Azure blob endpoint (empty: https://<account>.blob.core.windows.net; Azurite: http://host:10000/<account>)",
    ),
    flag(
        "storage.azure.allow-http",
        "Allow a plain http:// Azure endpoint",
    ),
    opt(
        "metastore.backend",
        "sqlite",
        "Metadata database: sqlite (embedded) or postgres",
    ),
    opt(
        "metastore.sqlite.path",
        "",
        "SQLite file (empty: <data>/metastore.db)",
    ),
    opt(
        "metastore.postgres.url",
        "",
        "PostgreSQL connection string (\"host=... user=... dbname=...\" or a postgres:// URL)",
    ),
    opt(
        "validation.reject-older-than",
        "1h",
        "Refuse profiles older than this (0: no limit)",
    ),
    opt(
        "validation.reject-newer-than",
        "10m",
        "Refuse profiles newer than now plus this (0: no limit)",
    ),
    opt(
        "validation.max-profile-size-bytes",
        "4194304",
        "Largest decompressed profile (0: no limit)",
    ),
    opt(
        "validation.max-profile-stacktrace-samples",
        "16000",
        "Most samples per profile (0: no limit)",
    ),
    opt(
        "validation.max-profile-stacktrace-sample-labels",
        "100",
        "Most labels per sample (0: no limit)",
    ),
    opt(
        "validation.max-profile-stacktrace-depth",
        "1000",
        "Deepest stack; deeper ones are cut at the leaf side (0: no limit)",
    ),
    opt(
        "validation.max-profile-symbol-value-length",
        "65535",
        "Longest symbol; longer ones keep their end (0: no limit)",
    ),
    opt(
        "validation.max-label-names-per-series",
        "30",
        "Most labels per series",
    ),
    opt(
        "validation.max-length-label-name",
        "1024",
        "Longest label name",
    ),
    opt(
        "validation.max-length-label-value",
        "2048",
        "Longest label value",
    ),
    opt(
        "distributor.ingestion-rate-limit-mb",
        "4",
        "Per-tenant ingestion rate, MB of uncompressed profiles per second (0: no limit)",
    ),
    opt(
        "distributor.ingestion-burst-size-mb",
        "2",
        "Per-tenant burst of the ingestion rate limiter, MB",
    ),
    opt(
        "distributor.ingestion-body-limit-mb",
        "256",
        "Largest request body and uncompressed push, MiB",
    ),
    opt(
        "distributor.max-inflight-mb",
        "256",
        "Memory for pushes being decoded and stored, MiB; more pushes wait (bounds RSS under load)",
    ),
    opt(
        "distributor.max-concurrent-requests",
        "256",
        "Ingest requests handled at once; more wait with their bodies unread (bounds RSS under load)",
    ),
    opt(
        "distributor.writer-timeout",
        "10s",
        "How long a distributor waits for a segment writer to store a batch before trying the next owner",
    ),
    opt(
        "distributor.writer-attempts",
        "3",
        "Segment writers a batch is offered to, in ring order, before the client gets 503",
    ),
    opt(
        "query-frontend.backend-timeout",
        "30s",
        "How long a query frontend waits for a query backend to run one read task before trying another",
    ),
    opt(
        "query-frontend.backend-attempts",
        "3",
        "Query backends a read task is offered to before the query fails with 503",
    ),
    opt(
        "cluster.advertise-url",
        "",
        "The URL other members reach this process at (default: http:// and the listen address; for 0.0.0.0 the outgoing interface's address)",
    ),
    opt(
        "cluster.heartbeat-interval",
        "1s",
        "How often a process records its heartbeat in the metastore and reads the members",
    ),
    opt(
        "cluster.member-lease",
        "5s",
        "A member not heard from for this long is taken as gone (its ring share moves)",
    ),
    opt(
        "querier.max-query-length",
        "0",
        "Longest query range (0: no limit; Pyroscope's default is 24h)",
    ),
    opt(
        "querier.max-query-lookback",
        "0",
        "How far back queries reach (0: no limit; Pyroscope's default is 7d)",
    ),
    opt(
        "querier.max-flamegraph-nodes-default",
        "8192",
        "Flame graph nodes when a query asks for none",
    ),
    opt(
        "querier.max-flamegraph-nodes-max",
        "1048576",
        "Most flame graph nodes a query may ask for",
    ),
    opt(
        "querier.max-query-parallelism",
        "0",
        "Read tasks of one query running at once (0: two per core)",
    ),
    opt(
        "querier.query-timeout",
        "2m",
        "How long a query may run before it is answered 504 (0: no limit)",
    ),
    opt(
        "querier.max-query-nodes",
        "8000000",
        "Distinct stacks one query may merge, its memory bound (answered 400 past it; 0: no limit)",
    ),
    opt(
        "query.cache-size-mb",
        "128",
        "Memory for block footers, series indexes, symbols and table metadata read by queries, MiB",
    ),
    opt(
        "query.max-concurrent-tasks",
        "32",
        "Read tasks running at once in this process over all queries; more wait in a queue that serves tenants in turn",
    ),
    opt(
        "query.results-cache-size-mb",
        "64",
        "Memory for the partial results of queries' reads of blocks (blocks never change), MiB",
    ),
    opt(
        "runtime-config.file",
        "",
        "Per-tenant overrides (YAML `overrides: {tenant: {limit: value}}`), re-read while running",
    ),
    opt(
        "runtime-config.reload-period",
        "10s",
        "How often the overrides file is re-read",
    ),
    opt(
        "segment-writer.flush-interval",
        "500ms",
        "How often the in-memory head is written as a segment",
    ),
    opt(
        "segment-writer.max-head-bytes",
        "67108864",
        "Head size that forces a flush; two heads' worth waiting for storage makes writes wait",
    ),
    opt(
        "compactor.interval",
        "30s",
        "How often the compactor looks for work",
    ),
    opt(
        "compactor.blocks-retention-period",
        "0",
        "Delete data older than this (0: keep forever); a tenant override wins",
    ),
    opt(
        "compactor.grace-period",
        "1h",
        "How long replaced objects stay readable before deletion",
    ),
    opt(
        "compactor.max-job-bytes",
        "134217728",
        "Bytes of segments or blocks one compaction job merges, at most (bounds compaction memory; 0: no limit)",
    ),
];

/// The `serve` arguments: the config file and every option given as a flag.
#[derive(Debug, Clone, Default)]
pub struct ServeArgs {
    config_file: Option<PathBuf>,
    flags: BTreeMap<&'static str, String>,
}

impl FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = ServeArgs {
            config_file: matches.get_one::<String>("config.file").map(PathBuf::from),
            flags: BTreeMap::new(),
        };
        for option in OPTIONS {
            if let Some(value) = matches.get_one::<String>(option.name) {
                args.flags.insert(option.name, value.clone());
            }
        }
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = ServeArgs::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for ServeArgs {
    fn augment_args(command: Command) -> Command {
        let mut command = command.arg(
            Arg::new("config.file")
                .long("config.file")
                .value_name("FILE")
                .help("YAML configuration file [env: EMBERSCOPE_CONFIG_FILE]"),
        );
        for option in OPTIONS {
            let help = if option.default.is_empty() {
                format!("{} [env: {}]", option.help, env_name(option.name))
            } else {
                format!(
                    "{} [env: {}] [default: {}]",
                    option.help,
                    env_name(option.name),
                    option.default
                )
            };
            let mut arg = Arg::new(option.name)
                .long(option.name)
                .help(help)
                .action(ArgAction::Set);
            if option.boolean {
                arg = arg
                    .num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
                    .value_name("BOOL");
            } else {
                arg = arg.value_name("VALUE");
            }
            command = command.arg(arg);
        }
        command
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

/// `EMBERSCOPE_` + the option name in capitals, `.` and `-` as `_`.
pub fn env_name(name: &str) -> String {
    let mut out = String::from("EMBERSCOPE_");
    out.extend(name.chars().map(|c| match c {
        '.' | '-' => '_',
        c => c.to_ascii_uppercase(),
    }));
    out
}

/// The YAML file's options as dotted names and text values.
fn flatten_yaml(text: &str) -> Result<BTreeMap<String, String>> {
    let value: serde_yaml::Value = serde_yaml::from_str(text).context("not valid YAML")?;
    let mut out = BTreeMap::new();
    fn walk(
        prefix: &str,
        value: &serde_yaml::Value,
        out: &mut BTreeMap<String, String>,
    ) -> Result<()> {
        use serde_yaml::Value;
        match value {
            Value::Mapping(map) => {
                for (key, value) in map {
                    let key = match key {
                        Value::String(s) => s.clone(),
                        other => bail!("option names must be text, not {other:?}"),
                    };
                    let name = if prefix.is_empty() {
                        key
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&name, value, out)?;
                }
                Ok(())
            }
            Value::Null => Ok(()),
            Value::Bool(b) => {
                out.insert(prefix.to_owned(), b.to_string());
                Ok(())
            }
            Value::Number(n) => {
                out.insert(prefix.to_owned(), n.to_string());
                Ok(())
            }
            Value::String(s) => {
                out.insert(prefix.to_owned(), s.clone());
                Ok(())
            }
            other => bail!("{prefix}: expected a single value, found {other:?}"),
        }
    }
    walk("", &value, &mut out)?;
    Ok(out)
}

/// The value of every option after flags, environment, file and defaults.
pub fn resolve(
    args: &ServeArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<&'static str, String>> {
    let file = args
        .config_file
        .clone()
        .or_else(|| env("EMBERSCOPE_CONFIG_FILE").map(PathBuf::from));
    let from_file = match &file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            let flat =
                flatten_yaml(&text).with_context(|| format!("config file {}", path.display()))?;
            for name in flat.keys() {
                if !OPTIONS.iter().any(|o| o.name == name) {
                    bail!(
                        "config file {}: unknown option {name:?} (`emberscope serve --help` lists them)",
                        path.display()
                    );
                }
            }
            flat
        }
        None => BTreeMap::new(),
    };
    Ok(OPTIONS
        .iter()
        .map(|option| {
            let value = args
                .flags
                .get(option.name)
                .cloned()
                .or_else(|| env(&env_name(option.name)))
                .or_else(|| from_file.get(option.name).cloned())
                .unwrap_or_else(|| option.default.to_owned());
            (option.name, value)
        })
        .collect())
}

fn parse<T: std::str::FromStr>(values: &BTreeMap<&'static str, String>, name: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let text = values.get(name).map_or("", String::as_str);
    text.trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("{name}: invalid value {text:?}: {e}"))
}

fn duration(values: &BTreeMap<&'static str, String>, name: &str) -> Result<Duration> {
    model::parse_duration(values.get(name).map_or("", String::as_str))
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))
}

fn text(values: &BTreeMap<&'static str, String>, name: &str) -> Option<String> {
    values
        .get(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn required(values: &BTreeMap<&'static str, String>, name: &str, backend: &str) -> Result<String> {
    text(values, name).ok_or_else(|| anyhow::anyhow!("{name} is required with {backend}"))
}

/// The server configuration and log filter the resolved options describe.
pub fn server_config(values: &BTreeMap<&'static str, String>) -> Result<(ServerConfig, String)> {
    let data: PathBuf = parse(values, "data")?;
    let storage = match text(values, "storage.backend").as_deref() {
        Some("filesystem") | None => text(values, "storage.filesystem.dir")
            .map(|dir| StorageConfig::Filesystem { dir: dir.into() }),
        Some("s3") => Some(StorageConfig::S3 {
            bucket: required(values, "storage.s3.bucket", "storage.backend=s3")?,
            endpoint: text(values, "storage.s3.endpoint"),
            region: text(values, "storage.s3.region"),
            access_key_id: text(values, "storage.s3.access-key-id"),
            secret_access_key: text(values, "storage.s3.secret-access-key"),
            allow_http: parse(values, "storage.s3.allow-http")?,
        }),
        Some("gcs") => Some(StorageConfig::Gcs {
            bucket: required(values, "storage.gcs.bucket", "storage.backend=gcs")?,
            service_account_path: text(values, "storage.gcs.service-account-path"),
        }),
        Some("azure") => Some(StorageConfig::Azure {
            account: required(values, "storage.azure.account", "storage.backend=azure")?,
            container: required(values, "storage.azure.container", "storage.backend=azure")?,
            access_key: text(values, "storage.azure.access-key"),
            endpoint: text(values, "storage.azure.endpoint"),
            allow_http: parse(values, "storage.azure.allow-http")?,
        }),
        Some(other) => {
            bail!("storage.backend: {other:?} is not one of filesystem, s3, gcs, azure")
        }
    };
    let metastore = match text(values, "metastore.backend").as_deref() {
        Some("sqlite") | None => {
            text(values, "metastore.sqlite.path").map(|path| MetastoreConfig::Sqlite(path.into()))
        }
        Some("postgres") => Some(MetastoreConfig::Postgres(required(
            values,
            "metastore.postgres.url",
            "metastore.backend=postgres",
        )?)),
        Some(other) => bail!("metastore.backend: {other:?} is not one of sqlite, postgres"),
    };
    let roles = Role::parse_target(values.get("target").map_or("", String::as_str))
        .map_err(|e| anyhow::anyhow!("target: {e}"))?;
    let defaults = ServerConfig::default();
    let limits = server::limits::Limits {
        ingestion_rate_mb: parse(values, "distributor.ingestion-rate-limit-mb")?,
        ingestion_burst_size_mb: parse(values, "distributor.ingestion-burst-size-mb")?,
        ingestion_body_limit_mb: parse(values, "distributor.ingestion-body-limit-mb")?,
        max_profile_size_bytes: parse(values, "validation.max-profile-size-bytes")?,
        max_profile_stacktrace_samples: parse(values, "validation.max-profile-stacktrace-samples")?,
        max_profile_stacktrace_sample_labels: parse(
            values,
            "validation.max-profile-stacktrace-sample-labels",
        )?,
        max_profile_stacktrace_depth: parse(values, "validation.max-profile-stacktrace-depth")?,
        max_profile_symbol_value_length: parse(
            values,
            "validation.max-profile-symbol-value-length",
        )?,
        max_label_names_per_series: parse(values, "validation.max-label-names-per-series")?,
        max_label_name_length: parse(values, "validation.max-length-label-name")?,
        max_label_value_length: parse(values, "validation.max-length-label-value")?,
        reject_older_than: duration(values, "validation.reject-older-than")?,
        reject_newer_than: duration(values, "validation.reject-newer-than")?,
        max_query_length: duration(values, "querier.max-query-length")?,
        max_query_lookback: duration(values, "querier.max-query-lookback")?,
        max_flamegraph_nodes_default: parse(values, "querier.max-flamegraph-nodes-default")?,
        max_flamegraph_nodes_max: parse(values, "querier.max-flamegraph-nodes-max")?,
        max_query_parallelism: parse(values, "querier.max-query-parallelism")?,
        query_timeout: duration(values, "querier.query-timeout")?,
        max_query_nodes: parse(values, "querier.max-query-nodes")?,
        compactor_blocks_retention_period: duration(values, "compactor.blocks-retention-period")?,
    };
    let config = ServerConfig {
        listen: parse(values, "listen")?,
        data_dir: data,
        storage,
        metastore,
        roles,
        multitenancy: parse(values, "auth.multitenancy-enabled")?,
        segment_writer: ingest::SegmentWriterConfig {
            flush_interval: duration(values, "segment-writer.flush-interval")?
                .max(Duration::from_millis(1)),
            max_head_bytes: parse(values, "segment-writer.max-head-bytes")?,
            ..defaults.segment_writer
        },
        compactor: compactor::CompactorConfig {
            grace_period: duration(values, "compactor.grace-period")?,
            max_bytes_per_job: parse(values, "compactor.max-job-bytes")?,
            ..defaults.compactor
        },
        compaction_interval: duration(values, "compactor.interval")?.max(Duration::from_secs(1)),
        limits,
        querier: query::QuerierConfig {
            cache_bytes: parse::<usize>(values, "query.cache-size-mb")?.saturating_mul(1 << 20),
            results_cache_bytes: parse::<usize>(values, "query.results-cache-size-mb")?
                .saturating_mul(1 << 20),
            task_slots: parse::<usize>(values, "query.max-concurrent-tasks")?.max(1),
            ..defaults.querier
        },
        overrides_file: text(values, "runtime-config.file").map(PathBuf::from),
        overrides_reload: duration(values, "runtime-config.reload-period")?,
        max_inflight_bytes: parse::<usize>(values, "distributor.max-inflight-mb")?
            .saturating_mul(1 << 20),
        max_concurrent_ingest: parse::<usize>(values, "distributor.max-concurrent-requests")?,
        max_connections: parse::<usize>(values, "server.http-conn-limit")?,
        cluster: server::ClusterConfig {
            advertise_url: text(values, "cluster.advertise-url"),
            heartbeat_interval: duration(values, "cluster.heartbeat-interval")?
                .max(Duration::from_millis(10)),
            member_lease: duration(values, "cluster.member-lease")?.max(Duration::from_millis(10)),
            writer_timeout: duration(values, "distributor.writer-timeout")?
                .max(Duration::from_millis(1)),
            writer_attempts: parse::<usize>(values, "distributor.writer-attempts")?.max(1),
            backend_timeout: duration(values, "query-frontend.backend-timeout")?
                .max(Duration::from_millis(1)),
            backend_attempts: parse::<usize>(values, "query-frontend.backend-attempts")?.max(1),
        },
    };
    let log = text(values, "log.level").unwrap_or_else(|| "info".to_owned());
    Ok((config, log))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/emberscope.example.yaml")
    }

    #[test]
    fn the_example_file_documents_every_option_with_its_default() {
        let text = std::fs::read_to_string(example()).expect("example file");
        let flat = flatten_yaml(&text).expect("example parses");
        for option in OPTIONS {
            let value = flat
                .get(option.name)
                .unwrap_or_else(|| panic!("{} is missing from the example file", option.name));
            assert_eq!(value, option.default, "{}", option.name);
        }
        assert_eq!(flat.len(), OPTIONS.len(), "the example has unknown options");
        // Loading it gives exactly the built-in defaults.
        let args = ServeArgs {
            config_file: Some(example()),
            flags: BTreeMap::new(),
        };
        let from_file = resolve(&args, &|_| None).expect("resolve");
        let defaults = resolve(&ServeArgs::default(), &|_| None).expect("resolve");
        assert_eq!(from_file, defaults);
        server_config(&defaults).expect("defaults are valid");
    }

    #[test]
    fn flags_beat_environment_beat_file_beat_defaults() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("c.yaml");
        std::fs::write(
            &file,
            "listen: 127.0.0.1:1\nauth:\n  multitenancy-enabled: true\nvalidation:\n  reject-older-than: 2h\n",
        )
        .expect("write");
        let mut args = ServeArgs {
            config_file: Some(file),
            flags: BTreeMap::new(),
        };
        args.flags.insert("listen", "127.0.0.1:3".to_owned());
        let env = |name: &str| match name {
            "EMBERSCOPE_LISTEN" => Some("127.0.0.1:2".to_owned()),
            "EMBERSCOPE_VALIDATION_REJECT_OLDER_THAN" => Some("30m".to_owned()),
            _ => None,
        };
        let values = resolve(&args, &env).expect("resolve");
        assert_eq!(values["listen"], "127.0.0.1:3");
        assert_eq!(values["validation.reject-older-than"], "30m");
        assert_eq!(values["auth.multitenancy-enabled"], "true");
        assert_eq!(values["validation.reject-newer-than"], "10m");
        let (config, _) = server_config(&values).expect("config");
        assert!(config.multitenancy);
        assert_eq!(
            config.limits.reject_older_than,
            Duration::from_secs(30 * 60)
        );
    }

    #[test]
    fn bad_configuration_is_explained() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("c.yaml");
        std::fs::write(&file, "storage:\n  bakend: s3\n").expect("write");
        let args = ServeArgs {
            config_file: Some(file),
            flags: BTreeMap::new(),
        };
        let error = resolve(&args, &|_| None).expect_err("unknown option");
        assert!(format!("{error:#}").contains("unknown option \"storage.bakend\""));
        let mut values = resolve(&ServeArgs::default(), &|_| None).expect("defaults");
        values.insert("storage.backend", "s3".to_owned());
        let error = server_config(&values).expect_err("no bucket");
        assert!(format!("{error:#}").contains("storage.s3.bucket is required"));
        values.insert("storage.backend", "filesystem".to_owned());
        values.insert("target", "metastore".to_owned());
        let error = server_config(&values).expect_err("metastore role");
        assert!(format!("{error:#}").contains("the metastore is the database"));
        values.insert("target", "distributor,compactor".to_owned());
        let (config, _) = server_config(&values).expect("roles");
        assert_eq!(config.roles, vec![Role::Compactor, Role::Distributor]);
    }
}
