//! Pyroscope's command line and configuration file as emberscope's options, so that a
//! Pyroscope deployment keeps its container arguments and its `config.yaml`:
//! - [`command_line`]: `emberscope -config.file=F -target=all` (no subcommand, Go's
//!   single-dash flags, Pyroscope's flag names) is read as `emberscope serve --config.file=F
//!   --target=all`;
//! - [`translate_file`]: a configuration file's Pyroscope keys (`server.http_listen_port`,
//!   `limits.ingestion_rate_mb`, …) become the options they set; keys this design does not need
//!   are listed with why; a misspelt key is refused with the nearest valid one;
//! - [`expand_env`]: `-config.expand-env`'s `${VAR}` and `${VAR:-default}`.
//!
//! The facts (names, forms) are Pyroscope's; the table below is ours.

use std::collections::BTreeMap;

/// A Pyroscope setting emberscope shares: its YAML path, its flag, and the option it sets.
#[derive(Debug, Clone, Copy)]
pub struct Shared {
    pub yaml: &'static str,
    pub flag: &'static str,
    pub option: &'static str,
}

const fn shared(yaml: &'static str, flag: &'static str, option: &'static str) -> Shared {
    Shared { yaml, flag, option }
}

/// Every Pyroscope setting emberscope implements (Pyroscope v2's reference configuration).
pub const SHARED: &[Shared] = &[
    shared("target", "target", "target"),
    shared(
        "multitenancy_enabled",
        "auth.multitenancy-enabled",
        "auth.multitenancy-enabled",
    ),
    shared(
        "server.http_listen_address",
        "server.http-listen-address",
        "server.http-listen-address",
    ),
    shared(
        "server.http_listen_port",
        "server.http-listen-port",
        "server.http-listen-port",
    ),
    shared(
        "server.http_listen_conn_limit",
        "server.http-conn-limit",
        "server.http-conn-limit",
    ),
    shared("server.log_level", "log.level", "log.level"),
    shared("server.log_format", "log.format", "log.format"),
    shared("storage.backend", "storage.backend", "storage.backend"),
    shared(
        "storage.filesystem.dir",
        "storage.filesystem.dir",
        "storage.filesystem.dir",
    ),
    shared(
        "storage.s3.endpoint",
        "storage.s3.endpoint",
        "storage.s3.endpoint",
    ),
    shared(
        "storage.s3.region",
        "storage.s3.region",
        "storage.s3.region",
    ),
    shared(
        "storage.s3.bucket_name",
        "storage.s3.bucket-name",
        "storage.s3.bucket",
    ),
    shared(
        "storage.s3.access_key_id",
        "storage.s3.access-key-id",
        "storage.s3.access-key-id",
    ),
    shared(
        "storage.s3.secret_access_key",
        "storage.s3.secret-access-key",
        "storage.s3.secret-access-key",
    ),
    shared(
        "storage.s3.insecure",
        "storage.s3.insecure",
        "storage.s3.allow-http",
    ),
    shared(
        "storage.gcs.bucket_name",
        "storage.gcs.bucket-name",
        "storage.gcs.bucket",
    ),
    shared(
        "storage.azure.account_name",
        "storage.azure.account-name",
        "storage.azure.account",
    ),
    shared(
        "storage.azure.account_key",
        "storage.azure.account-key",
        "storage.azure.access-key",
    ),
    shared(
        "storage.azure.container_name",
        "storage.azure.container-name",
        "storage.azure.container",
    ),
    shared(
        "limits.ingestion_rate_mb",
        "distributor.ingestion-rate-limit-mb",
        "distributor.ingestion-rate-limit-mb",
    ),
    shared(
        "limits.ingestion_burst_size_mb",
        "distributor.ingestion-burst-size-mb",
        "distributor.ingestion-burst-size-mb",
    ),
    shared(
        "limits.ingestion_body_limit_mb",
        "distributor.ingestion-body-limit-mb",
        "distributor.ingestion-body-limit-mb",
    ),
    shared(
        "limits.max_label_name_length",
        "validation.max-length-label-name",
        "validation.max-length-label-name",
    ),
    shared(
        "limits.max_label_value_length",
        "validation.max-length-label-value",
        "validation.max-length-label-value",
    ),
    shared(
        "limits.max_label_names_per_series",
        "validation.max-label-names-per-series",
        "validation.max-label-names-per-series",
    ),
    shared(
        "limits.max_profile_size_bytes",
        "validation.max-profile-size-bytes",
        "validation.max-profile-size-bytes",
    ),
    shared(
        "limits.max_profile_stacktrace_samples",
        "validation.max-profile-stacktrace-samples",
        "validation.max-profile-stacktrace-samples",
    ),
    shared(
        "limits.max_profile_stacktrace_sample_labels",
        "validation.max-profile-stacktrace-sample-labels",
        "validation.max-profile-stacktrace-sample-labels",
    ),
    shared(
        "limits.max_profile_stacktrace_depth",
        "validation.max-profile-stacktrace-depth",
        "validation.max-profile-stacktrace-depth",
    ),
    shared(
        "limits.max_profile_symbol_value_length",
        "validation.max-profile-symbol-value-length",
        "validation.max-profile-symbol-value-length",
    ),
    shared(
        "limits.reject_older_than",
        "validation.reject-older-than",
        "validation.reject-older-than",
    ),
    shared(
        "limits.reject_newer_than",
        "validation.reject-newer-than",
        "validation.reject-newer-than",
    ),
    shared(
        "limits.max_query_lookback",
        "querier.max-query-lookback",
        "querier.max-query-lookback",
    ),
    shared(
        "limits.max_query_length",
        "querier.max-query-length",
        "querier.max-query-length",
    ),
    shared(
        "limits.max_query_parallelism",
        "querier.max-query-parallelism",
        "querier.max-query-parallelism",
    ),
    shared(
        "limits.max_flamegraph_nodes_default",
        "querier.max-flamegraph-nodes-default",
        "querier.max-flamegraph-nodes-default",
    ),
    shared(
        "limits.max_flamegraph_nodes_max",
        "querier.max-flamegraph-nodes-max",
        "querier.max-flamegraph-nodes-max",
    ),
    shared(
        "limits.compactor_blocks_retention_period",
        "compactor.blocks-retention-period",
        "compactor.blocks-retention-period",
    ),
    shared(
        "limits.retention_period",
        "retention-period",
        "compactor.blocks-retention-period",
    ),
    shared(
        "runtime_config.file",
        "runtime-config.file",
        "runtime-config.file",
    ),
    shared(
        "runtime_config.period",
        "runtime-config.reload-period",
        "runtime-config.reload-period",
    ),
];

/// Pyroscope settings emberscope accepts and does not need, by YAML path prefix, with why.
/// (A longer prefix wins; the shared settings above are matched first.)
pub const NOT_NEEDED: &[(&str, &str)] = &[
    (
        "ingester",
        "no ingester in this design: segment writers store what distributors send",
    ),
    (
        "store_gateway",
        "no store gateway in this design: query backends read blocks directly",
    ),
    (
        "query_scheduler",
        "no query scheduler: the query frontend queues per tenant itself",
    ),
    (
        "querier",
        "the v1 querier's settings: queries run on the query frontend and backends",
    ),
    (
        "frontend",
        "the query frontend needs no settings beyond the limits here",
    ),
    (
        "frontend_worker",
        "no frontend workers: the query frontend calls the query backends",
    ),
    (
        "query_backend",
        "query backends need no settings beyond the query cache options",
    ),
    (
        "memberlist",
        "membership is heartbeats in the metastore, not gossip",
    ),
    (
        "metastore",
        "the metastore is PostgreSQL or SQLite here, not Raft (see metastore.backend)",
    ),
    (
        "segment_writer",
        "segment writers are set with segment-writer.* options",
    ),
    (
        "compaction_worker",
        "compaction is set with compactor.* options",
    ),
    ("compactor", "compaction is set with compactor.* options"),
    (
        "distributor",
        "distributors are set with distributor.* options and the limits",
    ),
    (
        "adaptive_placement",
        "writers are placed by consistent hashing over the live members",
    ),
    ("symbolizer", "no symbolization service"),
    (
        "overrides_exporter",
        "overrides are shown at /runtime_config",
    ),
    ("tenant_settings", "no recording rules"),
    (
        "embedded_grafana",
        "no embedded Grafana: the web UI is built in",
    ),
    ("admin_server", "one port serves every route"),
    ("analytics", "no usage reporting"),
    ("api", "the UI is served at the root"),
    (
        "pyroscopedb",
        "v1 storage: blocks are written by segment writers here",
    ),
    ("tracing", "no OpenTelemetry tracing of the server yet"),
    (
        "self_profiling",
        "the server does not push its own profiles yet",
    ),
    ("show_banner", "no banner"),
    (
        "shutdown_delay",
        "the server stops at once, after flushing acknowledged writes",
    ),
    ("architecture_storage", "one storage design"),
    (
        "server",
        "one HTTP port serves HTTP/1.1, gRPC (h2c), Connect and gRPC-Web",
    ),
    (
        "storage.prefix",
        "objects are stored from the bucket's root",
    ),
    (
        "storage.storage_prefix",
        "objects are stored from the bucket's root",
    ),
    (
        "storage.s3",
        "set with the shared S3 settings (endpoint, region, bucket, keys, insecure)",
    ),
    (
        "storage.gcs",
        "set with storage.gcs.bucket_name and storage.gcs.service-account-path",
    ),
    (
        "storage.azure",
        "set with the shared Azure settings (account, key, container)",
    ),
    ("storage.swift", "object_store has no Swift backend"),
    ("storage.cos", "object_store has no Tencent COS backend"),
    ("limits", "a per-tenant limit this design does not have"),
    (
        "runtime_config",
        "runtime overrides are read from files only",
    ),
];

/// What a configuration file sets: options by name, and the Pyroscope keys not needed here
/// with why.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Translated {
    pub options: BTreeMap<String, String>,
    pub not_needed: Vec<(String, &'static str)>,
}

/// A configuration file's flattened keys (`a.b.c`) as options: emberscope's own names as they
/// are, Pyroscope's shared ones as the options they set, Pyroscope's others set aside with
/// why. Anything else is an error naming the key and the nearest valid one.
pub fn translate_file(
    flat: BTreeMap<String, String>,
    ours: &[&'static str],
) -> Result<Translated, String> {
    let mut out = Translated::default();
    for (key, value) in flat {
        if ours.contains(&key.as_str()) {
            out.options.insert(key, value);
        } else if let Some(found) = SHARED.iter().find(|s| s.yaml == key) {
            out.options.insert(found.option.to_owned(), value);
        } else if let Some(why) = not_needed(&key).filter(|_| !near_ours(&key, ours)) {
            out.not_needed.push((key, why));
        } else {
            return Err(unknown(&key, ours));
        }
    }
    Ok(out)
}

fn not_needed(key: &str) -> Option<&'static str> {
    NOT_NEEDED
        .iter()
        .filter(|(prefix, _)| {
            key == *prefix
                || key
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, why)| *why)
}

/// Whether `key` is within two edits of an emberscope option or a shared Pyroscope setting: a
/// misspelling of it, not a Pyroscope setting of the same block (whose names differ by more).
fn near_ours(key: &str, ours: &[&'static str]) -> bool {
    ours.iter()
        .copied()
        .chain(SHARED.iter().map(|s| s.yaml))
        .any(|known| distance(key, known) <= 2)
}

/// The error for a key nobody knows: it and the nearest valid key.
fn unknown(key: &str, ours: &[&'static str]) -> String {
    let candidates = ours.iter().copied().chain(SHARED.iter().map(|s| s.yaml));
    let nearest = candidates.min_by_key(|candidate| distance(key, candidate));
    match nearest {
        Some(nearest) => format!("unknown option {key:?}; did you mean {nearest:?}?"),
        None => format!("unknown option {key:?}"),
    }
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                previous
            } else {
                1 + previous.min(row[j]).min(current)
            };
            previous = current;
        }
    }
    row[b.len()]
}

/// The command line as emberscope's parser reads it (`args` without the program's name).
/// A command line that starts with a flag is `serve`'s, as `pyroscope -config.file=F` is;
/// Go's single-dash long flags (`-target=all`, `-config.file F`, a boolean
/// `-auth.multitenancy-enabled`) become `--` ones, and Pyroscope's flag names the options they
/// set. One command line uses one style: single-dash and double-dash flags together are an
/// error naming one of each. Other commands pass through as they are.
pub fn command_line(args: Vec<String>) -> Result<Vec<String>, String> {
    let starts_with_flag = args.first().is_some_and(|first| {
        first.starts_with('-')
            && !matches!(
                first.as_str(),
                "-h" | "--help" | "-V" | "--version" | "-help" | "-version"
            )
    });
    let flags = if starts_with_flag {
        &args[..]
    } else if args.first().is_some_and(|first| first == "serve") {
        &args[1..]
    } else {
        return Ok(args);
    };
    let mut out = vec!["serve".to_owned()];
    let (mut single, mut double): (Option<&str>, Option<&str>) = (None, None);
    let mut expect_value = false;
    for arg in flags {
        if expect_value && !arg.starts_with('-') {
            out.push(arg.clone());
            expect_value = false;
            continue;
        }
        expect_value = false;
        let (long, style) = if let Some(long) = arg.strip_prefix("--") {
            (long, &mut double)
        } else if let Some(long) = arg.strip_prefix('-').filter(|l| l.len() > 1) {
            (long, &mut single)
        } else {
            out.push(arg.clone());
            continue;
        };
        if long.is_empty() {
            out.push(arg.clone());
            continue;
        }
        style.get_or_insert(arg.as_str());
        let (name, value) = match long.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (long, None),
        };
        let name = SHARED
            .iter()
            .find(|s| s.flag == name)
            .map_or(name, |s| s.option);
        match value {
            Some(value) => out.push(format!("--{name}={value}")),
            None => {
                out.push(format!("--{name}"));
                expect_value = true;
            }
        }
    }
    if let (Some(single), Some(double)) = (single, double) {
        return Err(format!(
            "the flags mix Pyroscope's single-dash style ({single}) with the double-dash style \
             ({double}); write them all one way"
        ));
    }
    Ok(out)
}

/// `-config.expand-env`: `${VAR}` is the variable's value, `${VAR:-default}` (or `:=`, `=`)
/// the default when it is unset or empty, `$$` a `$`. An unset variable without a default is
/// an error naming it (Pyroscope would expand it to nothing: a missing secret is better found
/// at start-up).
pub fn expand_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let Some(inner_and_tail) = after.strip_prefix('{') else {
            out.push('$'); // a bare `$VAR` stays as it is
            rest = after;
            continue;
        };
        let Some(close) = inner_and_tail.find('}') else {
            return Err(format!(
                "line {}: \"${{\" without a closing \"}}\"",
                line_of(text, text.len() - rest.len() + at)
            ));
        };
        let inner = &inner_and_tail[..close];
        let (name, default) = match inner.find([':', '=']) {
            Some(split) => {
                let operator = inner[split..]
                    .strip_prefix(":-")
                    .or_else(|| inner[split..].strip_prefix(":="))
                    .or_else(|| inner[split..].strip_prefix('='));
                match operator {
                    Some(default) => (&inner[..split], Some(default)),
                    None => {
                        return Err(format!(
                            "line {}: ${{{inner}}}: only ${{VAR}} and ${{VAR:-default}} are expanded",
                            line_of(text, text.len() - rest.len() + at)
                        ));
                    }
                }
            }
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "line {}: ${{{inner}}} does not name a variable",
                line_of(text, text.len() - rest.len() + at)
            ));
        }
        match (env(name).filter(|v| !v.is_empty()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(format!(
                    "line {}: ${{{name}}} is not set and has no default (write ${{{name}:-default}})",
                    line_of(text, text.len() - rest.len() + at)
                ));
            }
        }
        rest = &inner_and_tail[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn pyroscope_command_lines_are_serve_command_lines() {
        assert_eq!(
            command_line(args("-config.file=pyro.yaml -target=all")).expect("valid"),
            args("serve --config.file=pyro.yaml --target=all")
        );
        assert_eq!(
            command_line(args(
                "-config.file pyro.yaml -auth.multitenancy-enabled -storage.s3.bucket-name=b"
            ))
            .expect("valid"),
            args("serve --config.file pyro.yaml --auth.multitenancy-enabled --storage.s3.bucket=b")
        );
        assert_eq!(
            command_line(args("serve -server.http-listen-port=4041")).expect("valid"),
            args("serve --server.http-listen-port=4041")
        );
        // Today's forms and other commands are left as they are.
        assert_eq!(
            command_line(args("serve --listen 127.0.0.1:0 --data d")).expect("valid"),
            args("serve --listen 127.0.0.1:0 --data d")
        );
        assert_eq!(
            command_line(args("query flamegraph --url u")).expect("valid"),
            args("query flamegraph --url u")
        );
        assert_eq!(command_line(args("--help")).expect("valid"), args("--help"));
        let mixed = command_line(args("-target=all --listen 127.0.0.1:0")).expect_err("mixed");
        assert!(
            mixed.contains("-target=all") && mixed.contains("--listen"),
            "{mixed}"
        );
    }

    #[test]
    fn pyroscope_keys_set_our_options_and_the_rest_is_explained_or_refused() {
        let ours = [
            "listen",
            "storage.backend",
            "distributor.ingestion-rate-limit-mb",
        ];
        let flat: BTreeMap<String, String> = [
            ("server.http_listen_port", "4041"),
            ("limits.ingestion_rate_mb", "8"),
            ("storage.backend", "filesystem"),
            ("ingester.lifecycler.ring.replication_factor", "1"),
            ("limits.max_sessions_per_series", "3"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let translated = translate_file(flat, &ours).expect("valid");
        assert_eq!(
            translated
                .options
                .get("server.http-listen-port")
                .map(String::as_str),
            Some("4041")
        );
        assert_eq!(
            translated
                .options
                .get("distributor.ingestion-rate-limit-mb")
                .map(String::as_str),
            Some("8")
        );
        assert_eq!(translated.not_needed.len(), 2);
        assert!(translated.not_needed[0].1.contains("no ingester"));
        let misspelt: BTreeMap<String, String> =
            [("limits.ingestion_rate_mbb".to_owned(), "1".to_owned())].into();
        let error = translate_file(misspelt, &ours).expect_err("misspelt");
        assert!(
            error.contains("limits.ingestion_rate_mbb")
                && error.contains("limits.ingestion_rate_mb\""),
            "{error}"
        );
    }

    /// `docs/pyroscope-compatibility.md` lists every setting of the tables above.
    #[test]
    fn the_compatibility_document_lists_every_setting() {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../docs/pyroscope-compatibility.md"),
        )
        .expect("the document");
        for shared in SHARED {
            let row = format!(
                "| `{}` | `-{}` | `{}` |",
                shared.yaml, shared.flag, shared.option
            );
            assert!(doc.contains(&row), "{row} missing from the document");
        }
        for (prefix, why) in NOT_NEEDED {
            let row = format!("| `{prefix}` | {why} |");
            assert!(doc.contains(&row), "{row} missing from the document");
        }
    }

    #[test]
    fn environment_variables_expand_with_defaults() {
        let env = |name: &str| match name {
            "BUCKET" => Some("profiles".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        assert_eq!(
            expand_env(
                "a: ${BUCKET}\nb: ${MISSING:-x}\nc: ${EMPTY:-y}\nd: $$HOME $PATH",
                &env
            )
            .expect("valid"),
            "a: profiles\nb: x\nc: y\nd: $HOME $PATH"
        );
        let unset = expand_env("a: 1\nb: ${SECRET}", &env).expect_err("unset");
        assert!(
            unset.contains("line 2") && unset.contains("SECRET"),
            "{unset}"
        );
        assert!(expand_env("a: ${BUCKET", &env).is_err());
        assert!(expand_env("a: ${BUCKET:?x}", &env).is_err());
    }
}
