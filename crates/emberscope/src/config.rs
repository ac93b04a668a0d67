//! The configuration of `emberscope serve`: one table of options, each settable in a YAML file
//! (`--config.file`, nested maps spell the dotted name), as an environment variable
//! (`EMBERSCOPE_` + the name in capitals with `.` and `-` as `_`) and as a flag
//! (`--<name>`). A flag beats the environment, which beats the file, which beats the default.
//! `docs/emberscope.example.yaml` documents every option (a test keeps it complete). Defaults
//! are the components' own (their typed configurations' `Default`), read here, not restated.

use anyhow::{Context, Result, bail};
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use server::limits::Limits;
use server::{
    ClusterConfig, DistributorConfig, MetastoreConfig, QueryFrontendConfig, Role, ServerConfig,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use storage::StorageConfig;

/// One option: its dotted name, default and meaning.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    pub name: &'static str,
    pub default: DefaultValue,
    pub help: &'static str,
    pub boolean: bool,
}

/// Where an option's default comes from: the typed configuration of the component that owns
/// the setting (`ClusterConfig`, `Limits`, `SegmentWriterConfig`, ...), so that each default is
/// written once, there; or, for options that only choose (a backend, a path, a name), text here.
#[derive(Debug, Clone, Copy)]
pub enum DefaultValue {
    Text(&'static str),
    Typed(fn() -> String),
}

impl Opt {
    /// The default as the option's text.
    pub fn default_value(&self) -> String {
        match self.default {
            DefaultValue::Text(text) => text.to_owned(),
            DefaultValue::Typed(value) => value(),
        }
    }
}

const fn opt(name: &'static str, default: &'static str, help: &'static str) -> Opt {
    Opt {
        name,
        default: DefaultValue::Text(default),
        help,
        boolean: false,
    }
}

/// An option whose default its component's typed configuration gives.
const fn typed(name: &'static str, default: fn() -> String, help: &'static str) -> Opt {
    Opt {
        name,
        default: DefaultValue::Typed(default),
        help,
        boolean: false,
    }
}

const fn flag(name: &'static str, help: &'static str) -> Opt {
    Opt {
        name,
        default: DefaultValue::Text("false"),
        help,
        boolean: true,
    }
}

/// A duration as options spell it (`0` for none).
fn dur(duration: Duration) -> String {
    if duration.is_zero() {
        "0".to_owned()
    } else {
        model::format_duration(duration)
    }
}

/// Every option of `emberscope serve`.
pub const OPTIONS: &[Opt] = &[
    opt(
        "target",
        "all",
        "Roles of this process: all, or a comma-separated list of distributor, segment-writer, query-frontend, query-backend, compactor",
    ),
    typed(
        "listen",
        || ServerConfig::default().listen.to_string(),
        "Address of the one HTTP port (HTTP/1.1, h2c gRPC, Connect, gRPC-Web)",
    ),
    opt(
        "server.http-listen-address",
        "",
        "The address part of --listen, as Pyroscope names it (empty: --listen's)",
    ),
    opt(
        "server.http-listen-port",
        "",
        "The port part of --listen, as Pyroscope names it (empty: --listen's)",
    ),
    typed(
        "server.http-conn-limit",
        || ServerConfig::default().max_connections.to_string(),
        "Most HTTP connections open at once (0: no limit); more wait to be accepted (bounds RSS under load)",
    ),
    typed(
        "data",
        || ServerConfig::default().data_dir.display().to_string(),
        "Folder of the embedded defaults: objects in <data>/objects, SQLite in <data>/metastore.db",
    ),
    opt(
        "log.level",
        "info",
        "Log filter (tracing's syntax: error, warn, info, debug, or per module)",
    ),
    opt(
        "log.format",
        "logfmt",
        "Log lines as logfmt or json (Pyroscope's -log.format)",
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
    typed(
        "validation.reject-older-than",
        || dur(Limits::default().reject_older_than),
        "Refuse profiles older than this (0: no limit)",
    ),
    typed(
        "validation.reject-newer-than",
        || dur(Limits::default().reject_newer_than),
        "Refuse profiles newer than now plus this (0: no limit)",
    ),
    typed(
        "validation.max-profile-size-bytes",
        || Limits::default().max_profile_size_bytes.to_string(),
        "Largest decompressed profile (0: no limit)",
    ),
    typed(
        "validation.max-profile-stacktrace-samples",
        || Limits::default().max_profile_stacktrace_samples.to_string(),
        "Most samples per profile (0: no limit)",
    ),
    typed(
        "validation.max-profile-stacktrace-sample-labels",
        || {
            Limits::default()
                .max_profile_stacktrace_sample_labels
                .to_string()
        },
        "Most labels per sample (0: no limit)",
    ),
    typed(
        "validation.max-profile-stacktrace-depth",
        || Limits::default().max_profile_stacktrace_depth.to_string(),
        "Deepest stack; deeper ones are cut at the leaf side (0: no limit)",
    ),
    typed(
        "validation.max-profile-symbol-value-length",
        || {
            Limits::default()
                .max_profile_symbol_value_length
                .to_string()
        },
        "Longest symbol; longer ones keep their end (0: no limit)",
    ),
    typed(
        "validation.max-label-names-per-series",
        || Limits::default().max_label_names_per_series.to_string(),
        "Most labels per series",
    ),
    typed(
        "validation.max-length-label-name",
        || Limits::default().max_label_name_length.to_string(),
        "Longest label name",
    ),
    typed(
        "validation.max-length-label-value",
        || Limits::default().max_label_value_length.to_string(),
        "Longest label value",
    ),
    typed(
        "distributor.ingestion-rate-limit-mb",
        || Limits::default().ingestion_rate_mb.to_string(),
        "Per-tenant ingestion rate, MB of uncompressed profiles per second (0: no limit)",
    ),
    typed(
        "distributor.ingestion-burst-size-mb",
        || Limits::default().ingestion_burst_size_mb.to_string(),
        "Per-tenant burst of the ingestion rate limiter, MB",
    ),
    typed(
        "distributor.ingestion-body-limit-mb",
        || Limits::default().ingestion_body_limit_mb.to_string(),
        "Largest request body and uncompressed push, MiB",
    ),
    typed(
        "distributor.max-inflight-mb",
        || (DistributorConfig::default().max_inflight_bytes >> 20).to_string(),
        "Memory for pushes being decoded and stored, MiB; more pushes wait (bounds RSS under load)",
    ),
    typed(
        "distributor.max-concurrent-requests",
        || {
            DistributorConfig::default()
                .max_concurrent_ingest
                .to_string()
        },
        "Ingest requests handled at once; more wait with their bodies unread (bounds RSS under load)",
    ),
    typed(
        "distributor.writer-timeout",
        || dur(DistributorConfig::default().writer_timeout),
        "How long a distributor waits for a segment writer to store a batch before trying the next owner",
    ),
    typed(
        "distributor.writer-attempts",
        || DistributorConfig::default().writer_attempts.to_string(),
        "Segment writers a batch is offered to, in ring order, before the client gets 503",
    ),
    typed(
        "distributor.writer-batch-window",
        || dur(DistributorConfig::default().writer_batch_window),
        "How long a call to a segment writer waits for others to share its HTTP call (0: each goes alone)",
    ),
    typed(
        "query-frontend.backend-timeout",
        || dur(QueryFrontendConfig::default().backend_timeout),
        "How long a query frontend waits for a query backend to run one read task before trying another",
    ),
    typed(
        "query-frontend.backend-attempts",
        || QueryFrontendConfig::default().backend_attempts.to_string(),
        "Query backends a read task is offered to before the query fails with 503",
    ),
    opt(
        "cluster.advertise-url",
        "",
        "The URL other members reach this process at (default: http:// and the listen address; for 0.0.0.0 the outgoing interface's address)",
    ),
    typed(
        "cluster.heartbeat-interval",
        || dur(ClusterConfig::default().heartbeat_interval),
        "How often a process records its heartbeat in the metastore and reads the members",
    ),
    typed(
        "cluster.member-lease",
        || dur(ClusterConfig::default().member_lease),
        "A member not heard from for this long is taken as gone (its ring share moves)",
    ),
    typed(
        "querier.max-query-length",
        || dur(Limits::default().max_query_length),
        "Longest query range (0: no limit; Pyroscope's default is 24h)",
    ),
    typed(
        "querier.max-query-lookback",
        || dur(Limits::default().max_query_lookback),
        "How far back queries reach (0: no limit; Pyroscope's default is 7d)",
    ),
    typed(
        "querier.max-flamegraph-nodes-default",
        || Limits::default().max_flamegraph_nodes_default.to_string(),
        "Flame graph nodes when a query asks for none",
    ),
    typed(
        "querier.max-flamegraph-nodes-max",
        || Limits::default().max_flamegraph_nodes_max.to_string(),
        "Most flame graph nodes a query may ask for",
    ),
    typed(
        "querier.max-query-parallelism",
        || Limits::default().max_query_parallelism.to_string(),
        "Read tasks of one query running at once (0: two per core)",
    ),
    typed(
        "querier.query-timeout",
        || dur(Limits::default().query_timeout),
        "How long a query may run before it is answered 504 (0: no limit)",
    ),
    typed(
        "querier.max-query-nodes",
        || Limits::default().max_query_nodes.to_string(),
        "Distinct stacks one query may merge, its memory bound (answered 400 past it; 0: no limit)",
    ),
    typed(
        "query.cache-size-mb",
        || (query::QuerierConfig::default().cache_bytes >> 20).to_string(),
        "Memory for block footers, series indexes, symbols and table metadata read by queries, MiB",
    ),
    typed(
        "query.max-concurrent-tasks",
        || query::QuerierConfig::default().task_slots.to_string(),
        "Read tasks running at once in this process over all queries; more wait in a queue that serves tenants in turn",
    ),
    typed(
        "query.results-cache-size-mb",
        || (query::QuerierConfig::default().results_cache_bytes >> 20).to_string(),
        "Memory for the partial results of queries' reads of blocks (blocks never change), MiB",
    ),
    opt(
        "runtime-config.file",
        "",
        "Per-tenant overrides (YAML `overrides: {tenant: {limit: value}}`), re-read while running",
    ),
    typed(
        "runtime-config.reload-period",
        || dur(ServerConfig::default().overrides_reload),
        "How often the overrides file is re-read",
    ),
    typed(
        "segment-writer.flush-interval",
        || dur(ingest::SegmentWriterConfig::default().flush_interval),
        "How often the in-memory head is written as a segment",
    ),
    typed(
        "segment-writer.max-head-bytes",
        || {
            ingest::SegmentWriterConfig::default()
                .max_head_bytes
                .to_string()
        },
        "Head size that forces a flush; two heads' worth waiting for storage makes writes wait",
    ),
    typed(
        "compactor.interval",
        || dur(compactor::CompactorConfig::default().interval),
        "How often the compactor looks for work",
    ),
    typed(
        "compactor.blocks-retention-period",
        || dur(Limits::default().compactor_blocks_retention_period),
        "Delete data older than this (0: keep forever); a tenant override wins",
    ),
    typed(
        "compactor.grace-period",
        || dur(compactor::CompactorConfig::default().grace_period),
        "How long replaced objects stay readable before deletion",
    ),
    typed(
        "compactor.max-job-bytes",
        || {
            compactor::CompactorConfig::default()
                .max_bytes_per_job
                .to_string()
        },
        "Bytes of segments or blocks one compaction job merges, at most (bounds compaction memory; 0: no limit)",
    ),
];

/// The `serve` arguments: the config file and every option given as a flag.
#[derive(Debug, Clone, Default)]
pub struct ServeArgs {
    config_file: Option<PathBuf>,
    /// `${VAR}` in the config file is expanded (Pyroscope's `-config.expand-env`).
    expand_env: bool,
    flags: BTreeMap<&'static str, String>,
}

impl FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = ServeArgs {
            config_file: matches.get_one::<String>("config.file").map(PathBuf::from),
            expand_env: matches
                .get_one::<String>("config.expand-env")
                .is_some_and(|v| v == "true"),
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
                .help("YAML configuration file: emberscope's keys or Pyroscope's (docs/pyroscope-compatibility.md) [env: EMBERSCOPE_CONFIG_FILE]"),
        )
        .arg(
            Arg::new("config.expand-env")
                .long("config.expand-env")
                .help("Expand ${VAR} and ${VAR:-default} in the configuration file")
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .value_parser(["true", "false"])
                .value_name("BOOL"),
        );
        for option in OPTIONS {
            let default = option.default_value();
            let help = if default.is_empty() {
                format!("{} [env: {}]", option.help, env_name(option.name))
            } else {
                format!(
                    "{} [env: {}] [default: {}]",
                    option.help,
                    env_name(option.name),
                    default
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
            // A list (Pyroscope's relabeling rules, memberlist peers…) as its YAML text: only
            // settings set aside take one, and an option given one refuses it when parsed.
            Value::Sequence(_) => {
                let text = serde_yaml::to_string(value).unwrap_or_default();
                out.insert(prefix.to_owned(), text.trim_end().to_owned());
                Ok(())
            }
            other => bail!("{prefix}: expected a single value, found {other:?}"),
        }
    }
    walk("", &value, &mut out)?;
    Ok(out)
}

/// Every option's value, and the configuration file's Pyroscope settings this design does
/// not need (key, why).
pub type Resolved = (BTreeMap<&'static str, String>, Vec<(String, &'static str)>);

/// The value of every option after flags, environment, file and defaults, and the
/// configuration file's Pyroscope settings this design does not need (key, why).
pub fn resolve(args: &ServeArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<Resolved> {
    let file = args
        .config_file
        .clone()
        .or_else(|| env("EMBERSCOPE_CONFIG_FILE").map(PathBuf::from));
    let (from_file, not_needed) = match &file {
        Some(path) => {
            let mut text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            if args.expand_env {
                text = crate::pyroscope::expand_env(&text, env)
                    .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?;
            }
            let flat =
                flatten_yaml(&text).with_context(|| format!("config file {}", path.display()))?;
            let names: Vec<&'static str> = OPTIONS.iter().map(|o| o.name).collect();
            let translated = crate::pyroscope::translate_file(flat, &names)
                .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?;
            (translated.options, translated.not_needed)
        }
        None => (BTreeMap::new(), Vec::new()),
    };
    let values = OPTIONS
        .iter()
        .map(|option| {
            let value = args
                .flags
                .get(option.name)
                .cloned()
                .or_else(|| env(&env_name(option.name)))
                .or_else(|| from_file.get(option.name).cloned())
                .unwrap_or_else(|| option.default_value());
            (option.name, value)
        })
        .collect();
    Ok((values, not_needed))
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

/// What `/config` shows: every option as YAML (nested by the dots of its name), the
/// defaults, and the options that differ from their defaults; secrets as `********`.
pub fn config_pages(values: &BTreeMap<&'static str, String>) -> server::ConfigPages {
    let current: Vec<(&str, String)> = OPTIONS
        .iter()
        .map(|o| {
            let value = values.get(o.name).cloned().unwrap_or_default();
            (o.name, value)
        })
        .collect();
    let defaults: Vec<(&str, String)> = OPTIONS
        .iter()
        .map(|o| (o.name, o.default_value()))
        .collect();
    let diff: Vec<(&str, String)> = current
        .iter()
        .zip(&defaults)
        .filter(|((_, value), (_, default))| value != default)
        .map(|((name, value), _)| (*name, value.clone()))
        .collect();
    server::ConfigPages {
        current: yaml_of(&current),
        defaults: yaml_of(&defaults),
        diff: yaml_of(&diff),
    }
}

/// Options whose values are secrets, shown as `********` (as Pyroscope shows its secrets).
fn is_secret(name: &str) -> bool {
    name.ends_with("secret-access-key") || name == "storage.azure.access-key"
}

/// A connection string or URL with its password as `********`.
fn redact_password(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match word.split_once('=') {
            Some((key, _)) if key == "password" => out.push(format!("{key}=********")),
            _ => out.push(word.to_owned()),
        }
    }
    let joined = out.join(" ");
    // postgres://user:password@host/db
    if let Some((scheme, rest)) = joined.split_once("://")
        && let Some((credentials, host)) = rest.split_once('@')
        && let Some((user, _)) = credentials.split_once(':')
    {
        return format!("{scheme}://{user}:********@{host}");
    }
    joined
}

fn yaml_of(options: &[(&str, String)]) -> String {
    use serde_yaml::{Mapping, Value};
    fn scalar(text: &str) -> Value {
        if let Ok(b) = text.parse::<bool>() {
            Value::Bool(b)
        } else if let Ok(n) = text.parse::<i64>() {
            Value::Number(n.into())
        } else if let Ok(f) = text.parse::<f64>().map(serde_yaml::Number::from)
            && !text.is_empty()
            && text.chars().all(|c| c.is_ascii_digit() || c == '.')
        {
            Value::Number(f)
        } else {
            Value::String(text.to_owned())
        }
    }
    let mut root = Mapping::new();
    for (name, value) in options {
        let shown = if is_secret(name) && !value.is_empty() {
            "********".to_owned()
        } else if name.ends_with("postgres.url") {
            redact_password(value)
        } else {
            value.clone()
        };
        let parts: Vec<&str> = name.split('.').collect();
        insert(&mut root, &parts, scalar(&shown));
    }
    fn insert(node: &mut Mapping, parts: &[&str], value: Value) {
        match parts {
            [] => {}
            [last] => {
                node.insert(Value::String((*last).to_owned()), value);
            }
            [first, rest @ ..] => {
                let entry = node
                    .entry(Value::String((*first).to_owned()))
                    .or_insert_with(|| Value::Mapping(Mapping::new()));
                if !entry.is_mapping() {
                    *entry = Value::Mapping(Mapping::new());
                }
                if let Value::Mapping(next) = entry {
                    insert(next, rest, value);
                }
            }
        }
    }
    if root.is_empty() {
        return "{}\n".to_owned();
    }
    serde_yaml::to_string(&Value::Mapping(root)).unwrap_or_default()
}

/// `listen`, with Pyroscope's `server.http-listen-address` and `-port` in place of its parts.
fn listen(values: &BTreeMap<&'static str, String>) -> Result<std::net::SocketAddr> {
    let mut listen: std::net::SocketAddr = parse(values, "listen")?;
    if text(values, "server.http-listen-port").is_some() {
        listen.set_port(parse(values, "server.http-listen-port")?);
    }
    if let Some(address) = text(values, "server.http-listen-address") {
        listen.set_ip(address.parse().map_err(|e| {
            anyhow::anyhow!("server.http-listen-address: invalid value {address:?}: {e}")
        })?);
    }
    Ok(listen)
}

/// The server configuration and log filter the resolved options describe.
pub fn server_config(values: &BTreeMap<&'static str, String>) -> Result<(ServerConfig, String)> {
    let data: PathBuf = parse(values, "data")?;
    let storage = match text(values, "storage.backend").as_deref() {
        Some("filesystem") | None => text(values, "storage.filesystem.dir")
            .map(|dir| StorageConfig::Filesystem { dir: dir.into() }),
        Some("s3") => {
            let allow_http: bool = parse(values, "storage.s3.allow-http")?;
            // Pyroscope writes the endpoint as host:port, its scheme from `insecure`.
            let endpoint = text(values, "storage.s3.endpoint").map(|endpoint| {
                if endpoint.contains("://") {
                    endpoint
                } else if allow_http {
                    format!("http://{endpoint}")
                } else {
                    format!("https://{endpoint}")
                }
            });
            Some(StorageConfig::S3 {
                bucket: required(values, "storage.s3.bucket", "storage.backend=s3")?,
                endpoint,
                region: text(values, "storage.s3.region"),
                access_key_id: text(values, "storage.s3.access-key-id"),
                secret_access_key: text(values, "storage.s3.secret-access-key"),
                allow_http,
            })
        }
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
    let limits = Limits {
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
        config_pages: std::sync::Arc::new(config_pages(values)),
        listen: listen(values)?,
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
            interval: duration(values, "compactor.interval")?.max(Duration::from_secs(1)),
            ..defaults.compactor
        },
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
        distributor: DistributorConfig {
            max_inflight_bytes: parse::<usize>(values, "distributor.max-inflight-mb")?
                .saturating_mul(1 << 20),
            max_concurrent_ingest: parse::<usize>(values, "distributor.max-concurrent-requests")?,
            writer_timeout: duration(values, "distributor.writer-timeout")?
                .max(Duration::from_millis(1)),
            writer_attempts: parse::<usize>(values, "distributor.writer-attempts")?.max(1),
            writer_batch_window: duration(values, "distributor.writer-batch-window")?,
        },
        query_frontend: QueryFrontendConfig {
            backend_timeout: duration(values, "query-frontend.backend-timeout")?
                .max(Duration::from_millis(1)),
            backend_attempts: parse::<usize>(values, "query-frontend.backend-attempts")?.max(1),
        },
        max_connections: parse::<usize>(values, "server.http-conn-limit")?,
        cluster: ClusterConfig {
            advertise_url: text(values, "cluster.advertise-url"),
            heartbeat_interval: duration(values, "cluster.heartbeat-interval")?
                .max(Duration::from_millis(10)),
            member_lease: duration(values, "cluster.member-lease")?.max(Duration::from_millis(10)),
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
            assert_eq!(*value, option.default_value(), "{}", option.name);
        }
        assert_eq!(flat.len(), OPTIONS.len(), "the example has unknown options");
        // Loading it gives exactly the built-in defaults.
        let args = ServeArgs {
            config_file: Some(example()),
            expand_env: false,
            flags: BTreeMap::new(),
        };
        let from_file = resolve(&args, &|_| None).expect("resolve").0;
        let defaults = resolve(&ServeArgs::default(), &|_| None)
            .expect("resolve")
            .0;
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
            expand_env: false,
            flags: BTreeMap::new(),
        };
        args.flags.insert("listen", "127.0.0.1:3".to_owned());
        let env = |name: &str| match name {
            "EMBERSCOPE_LISTEN" => Some("127.0.0.1:2".to_owned()),
            "EMBERSCOPE_VALIDATION_REJECT_OLDER_THAN" => Some("30m".to_owned()),
            _ => None,
        };
        let values = resolve(&args, &env).expect("resolve").0;
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
            expand_env: false,
            flags: BTreeMap::new(),
        };
        let error = resolve(&args, &|_| None).expect_err("unknown option");
        assert!(format!("{error:#}").contains("unknown option \"storage.bakend\""));
        let mut values = resolve(&ServeArgs::default(), &|_| None)
            .expect("defaults")
            .0;
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
