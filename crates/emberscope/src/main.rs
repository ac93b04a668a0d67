//! The `emberscope` command line: profile tools on local files today (`collapse`, `merge`,
//! `flamegraph`); the server and the API clients join it as they are built.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use formats::flamebearer::FlamebearerProfile;
use formats::pprof::{self, MergeOptions, Profile, ProfileMerger};
use model::{FlameGraph, ProfileType, Tree};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "emberscope",
    version,
    about = "A continuous-profiling database"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the merged stacks of pprof files as sorted collapsed text (`a;b;c 42`).
    Collapse {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        select: SampleTypeArg,
    },
    /// Merge pprof files into one gzip pprof (all sample types; symbols deduplicated).
    Merge {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where to write the merged profile.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Print the flame graph of pprof files as flamebearer JSON (what /pyroscope/render returns).
    Flamegraph {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Keep at most this many nodes; the rest is folded into "other" (0: no limit).
        #[arg(long, default_value_t = 8192)]
        max_nodes: usize,
        #[command(flatten)]
        select: SampleTypeArg,
    },
}

#[derive(Debug, clap::Args)]
struct SampleTypeArg {
    /// Sample type by name (`cpu`, `inuse_space`) or index; default: the profile's default
    /// sample type, else the last one (as Google's pprof chooses).
    #[arg(long)]
    sample_type: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("emberscope: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Collapse { files, select } => {
            let (tree, _) = merged_tree(&files, select.sample_type.as_deref())?;
            write_stdout(model::write_collapsed(&tree).as_bytes())
        }
        Command::Merge { files, output } => {
            let mut merger = ProfileMerger::new(MergeOptions::default());
            for file in &files {
                let profile = read_profile(file)?;
                merger
                    .merge(&profile)
                    .with_context(|| format!("{}: cannot merge", file.display()))?;
            }
            let merged = merger.finish();
            std::fs::write(&output, pprof::encode_gzip(&merged))
                .with_context(|| format!("cannot write {}", output.display()))
        }
        Command::Flamegraph {
            files,
            max_nodes,
            select,
        } => {
            let (tree, profile_type) = merged_tree(&files, select.sample_type.as_deref())?;
            let graph = FlameGraph::from_tree(&tree, max_nodes);
            let json = FlamebearerProfile::single(graph, &profile_type, None).to_json();
            write_stdout(format!("{json}\n").as_bytes())
        }
    }
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to standard output"),
    }
}

fn read_profile(path: &Path) -> Result<Profile> {
    let body = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    pprof::decode(&body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES)
        .with_context(|| format!("{}: not a valid pprof profile", path.display()))
}

/// Which value column of `profile` the user asked for.
fn select_sample_type(profile: &Profile, wanted: Option<&str>) -> Result<usize> {
    let types = &profile.sample_type;
    if types.is_empty() {
        bail!("the profile has no sample types");
    }
    let Some(wanted) = wanted else {
        if profile.default_sample_type != 0 {
            let name = string(profile, profile.default_sample_type);
            if let Some(index) = pprof::sample_type_index(profile, name) {
                return Ok(index);
            }
        }
        return Ok(types.len() - 1);
    };
    if let Ok(index) = wanted.parse::<usize>() {
        if index < types.len() {
            return Ok(index);
        }
        bail!(
            "sample type index {index} is out of range ({} sample types)",
            types.len()
        );
    }
    pprof::sample_type_index(profile, wanted).with_context(|| {
        let names: Vec<&str> = types.iter().map(|t| string(profile, t.r#type)).collect();
        format!("no sample type {wanted:?}; the profile has {names:?}")
    })
}

fn string(profile: &Profile, index: i64) -> &str {
    usize::try_from(index)
        .ok()
        .and_then(|i| profile.string_table.get(i))
        .map_or("", String::as_str)
}

/// The merged tree of one sample type over all files, and that sample type's id (named after
/// the sample type, as the command line has no series name).
fn merged_tree(files: &[PathBuf], wanted: Option<&str>) -> Result<(Tree, ProfileType)> {
    let mut tree = Tree::new();
    let mut profile_type: Option<ProfileType> = None;
    for file in files {
        let profile = read_profile(file)?;
        let index = select_sample_type(&profile, wanted)
            .with_context(|| format!("{}: cannot select a sample type", file.display()))?;
        let sample_type = &profile.sample_type[index];
        let period = profile.period_type.unwrap_or_default();
        let this_type = ProfileType {
            name: string(&profile, sample_type.r#type).to_owned(),
            sample_type: string(&profile, sample_type.r#type).to_owned(),
            sample_unit: string(&profile, sample_type.unit).to_owned(),
            period_type: string(&profile, period.r#type).to_owned(),
            period_unit: string(&profile, period.unit).to_owned(),
        };
        match &profile_type {
            Some(first)
                if first.sample_type != this_type.sample_type
                    || first.sample_unit != this_type.sample_unit =>
            {
                bail!(
                    "{}: sample type {}/{} differs from {}/{} of the first file",
                    file.display(),
                    this_type.sample_type,
                    this_type.sample_unit,
                    first.sample_type,
                    first.sample_unit
                );
            }
            Some(_) => {}
            None => profile_type = Some(this_type),
        }
        tree.merge(&pprof::to_tree(&profile, index));
    }
    Ok((tree, profile_type.unwrap_or_default()))
}
