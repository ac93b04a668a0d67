//! `emberscope query ...`: the querier API from the shell. Readable tables by default;
//! `-o FILE` writes pprof (`.pb.gz`, `.pprof`), flamebearer JSON (`.json`) or collapsed text
//! (anything else); `series --csv` writes CSV.

use super::timearg;
use super::{Client, ClientArgs};
use anyhow::{Context, Result, bail};
use api::proto::querier::v1::{
    ProfileTypesRequest, ProfileTypesResponse, SelectMergeProfileRequest, SelectSeriesRequest,
    SelectSeriesResponse,
};
use api::proto::types::v1::{
    LabelNamesRequest, LabelNamesResponse, LabelValuesRequest, LabelValuesResponse,
};
use clap::{Args, Subcommand};
use model::label_names;
use model::{MatchOp, ProfileType, Tree, parse_selector};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// The merged stacks: a top-N table of functions (self and total), or -o FILE.
    Flamegraph(Common),
    /// The merged profile as a gzip pprof (-o FILE, default profile.pb.gz).
    Pprof(Common),
    /// Time series of the selection: a table, or CSV with --csv.
    Series(SeriesArgs),
    /// Label names of the selection; --cardinality counts their values.
    Labels(LabelsArgs),
    /// Values of one label.
    LabelValues(LabelValuesArgs),
    /// Profile types with data (of the --query selection when it has matchers).
    ProfileTypes(Common),
}

#[derive(Debug, Args)]
pub struct Common {
    /// `<profile type>{matchers}`, e.g. process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="x"}
    #[arg(long, default_value = "{}")]
    pub query: String,
    /// Start: now-1h, YYYYMMDD, Unix seconds/ms, or RFC 3339.
    #[arg(long, default_value = "now-1h")]
    pub from: String,
    /// End, in the same forms.
    #[arg(long, default_value = "now")]
    pub to: String,
    /// Rows of the top table.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Flame graph nodes for -o JSON.
    #[arg(long, default_value_t = 8192)]
    pub max_nodes: usize,
    /// Write the result to this file instead of printing a table.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct SeriesArgs {
    #[command(flatten)]
    pub common: Common,
    /// Labels that name the series; repeatable.
    #[arg(long = "group-by")]
    pub group_by: Vec<String>,
    /// Bucket width in seconds (default: range / 100, at least 15 s).
    #[arg(long)]
    pub step: Option<f64>,
    /// CSV instead of a table.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct LabelsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Count each label's values.
    #[arg(long)]
    pub cardinality: bool,
}

#[derive(Debug, Args)]
pub struct LabelValuesArgs {
    #[command(flatten)]
    pub common: Common,
    /// The label whose values to list.
    #[arg(long)]
    pub name: String,
}

/// The parts of a resolved query.
struct Resolved {
    profile_type: Option<ProfileType>,
    /// The matchers as a selector string (without the profile type).
    selector: String,
    /// For label APIs: the matchers with the profile type as `__profile_type__`.
    label_matcher: String,
    start: i64,
    end: i64,
}

fn resolve(common: &Common) -> Result<Resolved> {
    let now = model::time::now_ms();
    let start = timearg::parse_ms(&common.from, now).context("--from")?;
    let end = timearg::parse_ms(&common.to, now).context("--to")?;
    if start > end {
        bail!("--from is after --to");
    }
    let selector =
        parse_selector(&common.query).with_context(|| format!("--query {:?}", common.query))?;
    let profile_type = selector
        .name
        .as_deref()
        .map(|n| n.parse::<ProfileType>())
        .transpose()
        .with_context(|| format!("--query {:?}: not a profile type", common.query))?;
    let render = |extra: Option<String>| {
        let mut parts: Vec<String> = extra.into_iter().collect();
        parts.extend(selector.matchers.iter().map(|m| {
            let op = match m.op {
                MatchOp::Equal => "=",
                MatchOp::NotEqual => "!=",
                MatchOp::Regex => "=~",
                MatchOp::NotRegex => "!~",
            };
            // JSON string quoting is PromQL's for the characters that matter here.
            format!("{}{op}{}", m.name, serde_json::Value::from(m.value.clone()))
        }));
        format!("{{{}}}", parts.join(","))
    };
    Ok(Resolved {
        selector: render(None),
        label_matcher: render(profile_type.as_ref().map(|t| {
            format!(
                "__profile_type__={}",
                serde_json::Value::from(t.to_string())
            )
        })),
        profile_type,
        start,
        end,
    })
}

fn need_type(resolved: &Resolved) -> Result<&ProfileType> {
    resolved.profile_type.as_ref().context(
        "--query needs a profile type, e.g. process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"app\"} (see `emberscope query profile-types`)",
    )
}

/// A value in the profile type's unit, for people.
fn human(value: i64, unit: &str) -> String {
    let v = value as f64;
    match unit {
        "nanoseconds" => {
            if v >= 1e9 {
                format!("{:.2}s", v / 1e9)
            } else if v >= 1e6 {
                format!("{:.2}ms", v / 1e6)
            } else if v >= 1e3 {
                format!("{:.2}µs", v / 1e3)
            } else {
                format!("{value}ns")
            }
        }
        "bytes" => {
            const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
            let mut scaled = v;
            let mut i = 0;
            while scaled.abs() >= 1024.0 && i < UNITS.len() - 1 {
                scaled /= 1024.0;
                i += 1;
            }
            if i == 0 {
                format!("{value}B")
            } else {
                format!("{scaled:.2}{}", UNITS[i])
            }
        }
        _ => value.to_string(),
    }
}

/// Self and total per function of a tree; a function's total counts each stack once even when
/// it recurses.
pub fn top_functions(tree: &Tree) -> Vec<(String, i64, i64)> {
    let mut table: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (path, value) in tree.stacks() {
        let mut seen = std::collections::HashSet::new();
        for name in &path {
            if seen.insert(*name) {
                table.entry(name).or_default().1 += value;
            }
        }
        if let Some(leaf) = path.last() {
            table.entry(leaf).or_default().0 += value;
        }
    }
    let mut rows: Vec<(String, i64, i64)> = table
        .into_iter()
        .map(|(name, (s, t))| (name.to_owned(), s, t))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
    rows
}

async fn merged_profile(
    client: &Client,
    resolved: &Resolved,
) -> Result<(formats::pprof::Profile, ProfileType)> {
    let profile_type = need_type(resolved)?.clone();
    let profile: formats::pprof::Profile = client
        .call(
            "/querier.v1.QuerierService/SelectMergeProfile",
            &SelectMergeProfileRequest {
                profile_type_id: profile_type.to_string(),
                label_selector: resolved.selector.clone(),
                start: resolved.start,
                end: resolved.end,
                ..Default::default()
            },
        )
        .await?;
    Ok((profile, profile_type))
}

fn write_output(path: &PathBuf, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
    Ok(())
}

pub async fn run(command: QueryCommand) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        QueryCommand::Flamegraph(common) => {
            let resolved = resolve(&common)?;
            let client = Client::new(&common.client)?;
            let (profile, profile_type) = merged_profile(&client, &resolved).await?;
            let tree = formats::pprof::to_tree(&profile, 0);
            if let Some(path) = &common.output {
                let name = path.to_string_lossy();
                let bytes = if name.ends_with(".json") {
                    let graph = model::FlameGraph::from_tree(&tree, common.max_nodes);
                    formats::flamebearer::FlamebearerProfile::single(graph, &profile_type, None)
                        .to_json()
                        .into_bytes()
                } else if name.ends_with(".pb.gz")
                    || name.ends_with(".pprof")
                    || name.ends_with(".pb")
                {
                    formats::pprof::encode_gzip(&profile)
                } else {
                    model::write_collapsed(&tree).into_bytes()
                };
                return write_output(path, &bytes);
            }
            let total = tree.total();
            let unit = profile_type.sample_unit.as_str();
            writeln!(out, "{}  total {}", profile_type, human(total, unit))?;
            writeln!(
                out,
                "{:>12} {:>7} {:>12} {:>7}  function",
                "self", "self%", "total", "total%"
            )?;
            let share = |v: i64| {
                if total == 0 {
                    0.0
                } else {
                    v as f64 * 100.0 / total as f64
                }
            };
            for (name, self_value, total_value) in top_functions(&tree).into_iter().take(common.top)
            {
                writeln!(
                    out,
                    "{:>12} {:>6.2}% {:>12} {:>6.2}%  {name}",
                    human(self_value, unit),
                    share(self_value),
                    human(total_value, unit),
                    share(total_value)
                )?;
            }
        }
        QueryCommand::Pprof(common) => {
            let resolved = resolve(&common)?;
            let client = Client::new(&common.client)?;
            let (profile, _) = merged_profile(&client, &resolved).await?;
            let path = common
                .output
                .clone()
                .unwrap_or_else(|| PathBuf::from("profile.pb.gz"));
            write_output(&path, &formats::pprof::encode_gzip(&profile))?;
        }
        QueryCommand::Series(args) => {
            let resolved = resolve(&args.common)?;
            let client = Client::new(&args.common.client)?;
            let profile_type = need_type(&resolved)?;
            let step = args
                .step
                .unwrap_or_else(|| ((resolved.end - resolved.start) as f64 / 100_000.0).max(15.0));
            if step <= 0.0 {
                bail!("--step must be positive");
            }
            let answer: SelectSeriesResponse = client
                .call(
                    "/querier.v1.QuerierService/SelectSeries",
                    &SelectSeriesRequest {
                        profile_type_id: profile_type.to_string(),
                        label_selector: resolved.selector.clone(),
                        start: resolved.start,
                        end: resolved.end,
                        group_by: args.group_by.clone(),
                        step,
                        ..Default::default()
                    },
                )
                .await?;
            let mut text = String::new();
            if args.csv {
                text.push_str("labels,timestamp_ms,value\n");
            } else {
                text.push_str(&format!("{:<24} {:>16}  labels\n", "time (UTC)", "value"));
            }
            for series in &answer.series {
                let labels: Vec<String> = series
                    .labels
                    .iter()
                    .map(|l| format!("{}={}", l.name, l.value))
                    .collect();
                let labels = format!("{{{}}}", labels.join(","));
                for point in &series.points {
                    if args.csv {
                        text.push_str(&format!(
                            "{},{},{}\n",
                            csv_field(&labels),
                            point.timestamp,
                            point.value
                        ));
                    } else {
                        let time = humantime::format_rfc3339_seconds(
                            std::time::UNIX_EPOCH
                                + std::time::Duration::from_millis(point.timestamp.max(0) as u64),
                        );
                        text.push_str(&format!(
                            "{:<24} {:>16}  {labels}\n",
                            time.to_string(),
                            human(point.value as i64, &profile_type.sample_unit)
                        ));
                    }
                }
            }
            match &args.common.output {
                Some(path) => write_output(path, text.as_bytes())?,
                None => out.write_all(text.as_bytes())?,
            }
        }
        QueryCommand::Labels(args) => {
            let resolved = resolve(&args.common)?;
            let client = Client::new(&args.common.client)?;
            let names: LabelNamesResponse = client
                .call(
                    "/querier.v1.QuerierService/LabelNames",
                    &LabelNamesRequest {
                        matchers: vec![resolved.label_matcher.clone()],
                        start: resolved.start,
                        end: resolved.end,
                    },
                )
                .await?;
            if !args.cardinality {
                for name in &names.names {
                    writeln!(out, "{name}")?;
                }
                return Ok(());
            }
            let mut rows = Vec::new();
            for name in &names.names {
                let values: LabelValuesResponse = client
                    .call(
                        "/querier.v1.QuerierService/LabelValues",
                        &LabelValuesRequest {
                            name: name.clone(),
                            matchers: vec![resolved.label_matcher.clone()],
                            start: resolved.start,
                            end: resolved.end,
                        },
                    )
                    .await?;
                rows.push((values.names.len(), name.clone()));
            }
            rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            writeln!(out, "{:>8}  label", "values")?;
            for (count, name) in rows {
                writeln!(out, "{count:>8}  {name}")?;
            }
        }
        QueryCommand::LabelValues(args) => {
            let resolved = resolve(&args.common)?;
            let client = Client::new(&args.common.client)?;
            let values: LabelValuesResponse = client
                .call(
                    "/querier.v1.QuerierService/LabelValues",
                    &LabelValuesRequest {
                        name: args.name.clone(),
                        matchers: vec![resolved.label_matcher.clone()],
                        start: resolved.start,
                        end: resolved.end,
                    },
                )
                .await?;
            for value in &values.names {
                writeln!(out, "{value}")?;
            }
        }
        QueryCommand::ProfileTypes(common) => {
            let resolved = resolve(&common)?;
            let client = Client::new(&common.client)?;
            if resolved.label_matcher == "{}" {
                let types: ProfileTypesResponse = client
                    .call(
                        "/querier.v1.QuerierService/ProfileTypes",
                        &ProfileTypesRequest {
                            start: resolved.start,
                            end: resolved.end,
                        },
                    )
                    .await?;
                for t in &types.profile_types {
                    writeln!(out, "{}", t.id)?;
                }
            } else {
                // A selection narrows the types to those its series have.
                let types: LabelValuesResponse = client
                    .call(
                        "/querier.v1.QuerierService/LabelValues",
                        &LabelValuesRequest {
                            name: label_names::PROFILE_TYPE.to_owned(),
                            matchers: vec![resolved.label_matcher.clone()],
                            start: resolved.start,
                            end: resolved.end,
                        },
                    )
                    .await?;
                for id in &types.names {
                    writeln!(out, "{id}")?;
                }
            }
        }
    }
    Ok(())
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_functions_count_recursion_once_in_total() {
        let mut tree = Tree::new();
        tree.insert(&["main", "f", "f", "g"], 3);
        tree.insert(&["main", "h"], 1);
        let rows = top_functions(&tree);
        let f = rows.iter().find(|r| r.0 == "f").expect("f");
        assert_eq!((f.1, f.2), (0, 3));
        assert_eq!(rows[0], ("g".to_owned(), 3, 3));
        let main = rows.iter().find(|r| r.0 == "main").expect("main");
        assert_eq!(main.2, 4);
    }

    #[test]
    fn values_read_in_their_units() {
        assert_eq!(human(470_000_000, "nanoseconds"), "470.00ms");
        assert_eq!(human(2048, "bytes"), "2.00KiB");
        assert_eq!(human(7, "count"), "7");
        assert_eq!(csv_field("{a=b,c=d}"), "\"{a=b,c=d}\"");
    }
}
