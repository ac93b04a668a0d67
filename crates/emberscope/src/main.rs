//! The `emberscope` command line: the server (`serve`, configured by `config`), the API client
//! and load generator (`upload`, `query`, `ready`, `loadgen`: `client`), and profile tools on
//! local files (`collapse`, `merge`, `flamegraph`).

mod client;
mod config;
mod debug_ingest;
mod logs;
mod pyroscope;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use formats::compression::decompress_into;
use formats::flamebearer::FlamebearerProfile;
use formats::pprof::{self, MergeOptions, ProfileMerger, ProfileView, ViewBuffers};
use model::{FlameGraph, ProfileType, Tree};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// mimalloc: the write path allocates many small vectors and strings per profile, and glibc's
/// allocator spent a quarter of the server's CPU on them under load (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The program's name and one-line description, the same for both parsers below.
const NAME: &str = "emberscope";
const ABOUT: &str = "A continuous-profiling database";

#[derive(Debug, Parser)]
#[command(name = NAME, version, about = ABOUT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Files(FileCommand),
    /// Run the server: Pyroscope's HTTP API on one port, storing under --data (local files and
    /// an embedded SQLite metastore; nothing to set up). Every option is also a YAML key
    /// (--config.file) and an environment variable; see docs/emberscope.example.yaml.
    Serve(config::ServeArgs),
    /// Upload profile files (pprof, JFR, speedscope, folded; format told from the bytes).
    Upload(client::upload::UploadArgs),
    /// Query a server: flamegraph, pprof, series, labels, label-values, profile-types.
    Query {
        #[command(subcommand)]
        command: client::query::QueryCommand,
    },
    /// Exit 0 when the server at --url is ready.
    Ready(client::ClientArgs),
    /// Push real profiles as a fleet of services × pods and report throughput and latency.
    Loadgen(client::loadgen::LoadgenArgs),
    /// Push one profile file repeatedly through the write path into a data folder, printing
    /// `acked <uid>` per acknowledged write (used by the crash test).
    #[command(hide = true)]
    DebugIngest {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        file: PathBuf,
        #[arg(long, default_value = "anonymous")]
        tenant: String,
        #[arg(long)]
        prefix: String,
        #[arg(long, default_value_t = 1000)]
        count: u64,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
}

/// The profile tools on local files.
#[derive(Debug, Subcommand)]
enum FileCommand {
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

/// The command line of the profile tools alone, parsed when the first argument names one:
/// building the whole tree (the server's options above all) took about 0.25 ms of a merge of
/// 100 small files that takes about 4 in all (BENCHMARKS.md).
#[derive(Debug, Parser)]
#[command(name = NAME, version, about = ABOUT)]
struct FileCli {
    #[command(subcommand)]
    command: FileCommand,
}

fn parse_command_line() -> Command {
    let first = std::env::args_os().nth(1);
    if first
        .as_deref()
        .and_then(|arg| arg.to_str())
        .is_some_and(FileCommand::has_subcommand)
    {
        return Command::Files(FileCli::parse().command);
    }
    // Pyroscope's command line (`-config.file=F`, no subcommand) is read as `serve`'s.
    let mut args = std::env::args_os();
    let program = args.next().unwrap_or_else(|| NAME.into());
    let rest: Option<Vec<String>> = args.map(|a| a.into_string().ok()).collect();
    let Some(rest) = rest else {
        return Cli::parse().command; // not UTF-8: clap says where
    };
    match pyroscope::command_line(rest) {
        Ok(rest) => {
            Cli::parse_from(std::iter::once(program).chain(rest.into_iter().map(Into::into)))
                .command
        }
        Err(error) => {
            eprintln!("emberscope: {error}");
            std::process::exit(1);
        }
    }
}

#[derive(Debug, clap::Args)]
struct SampleTypeArg {
    /// Sample type by name (`cpu`, `inuse_space`) or index; default: the profile's default
    /// sample type, else the last one (as Google's pprof chooses).
    #[arg(long)]
    sample_type: Option<String>,
}

fn main() -> ExitCode {
    match run(parse_command_line()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("emberscope: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve(args) => serve(&args),
        Command::Upload(args) => client::block_on(client::upload::run(args)),
        Command::Query { command } => client::block_on(client::query::run(command)),
        Command::Ready(args) => client::block_on(client::ready(&args)),
        Command::Loadgen(args) => client::block_on(client::loadgen::run(args)),
        Command::DebugIngest {
            data,
            file,
            tenant,
            prefix,
            count,
            concurrency,
        } => debug_ingest::run(data, file, tenant, prefix, count, concurrency),
        Command::Files(command) => run_file_command(command),
    }
}

fn run_file_command(command: FileCommand) -> Result<()> {
    match command {
        FileCommand::Collapse { files, select } => {
            let (tree, _) = merged_tree(&files, select.sample_type.as_deref())?;
            write_stdout(model::write_collapsed(&tree).as_bytes())
        }
        FileCommand::Merge { files, output } => {
            let parts = for_each_profile(
                &files,
                || ProfileMerger::new(MergeOptions::default()),
                |merger, file, profile| {
                    merger
                        .merge_view(profile)
                        .with_context(|| format!("{}: cannot merge", file.display()))?;
                    Ok(describe_types(profile, None))
                },
            )?;
            let mut merger = ProfileMerger::new(MergeOptions::default());
            for part in parts {
                merger.merge(&part.finish()).context("cannot merge")?;
            }
            let merged = merger.finish();
            std::fs::write(&output, pprof::encode_gzip(&merged))
                .with_context(|| format!("cannot write {}", output.display()))
        }
        FileCommand::Flamegraph {
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

fn serve(args: &config::ServeArgs) -> Result<()> {
    let (values, not_needed) = config::resolve(args, &|name| std::env::var(name).ok())?;
    let (config, log) = config::server_config(&values)?;
    logs::init(&log, values.get("log.format").map_or("", String::as_str))?;
    if !not_needed.is_empty() {
        let list: Vec<String> = not_needed
            .iter()
            .map(|(key, why)| format!("{key} ({why})"))
            .collect();
        tracing::warn!(
            "configuration settings emberscope does not need, ignored: {}",
            list.join("; ")
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let shutdown = async {
            let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match terminate.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending::<()>().await } } => {}
            }
        };
        server::run(
            config,
            |address| {
                println!("emberscope listening on {address}");
            },
            shutdown,
        )
        .await
    })?;
    Ok(())
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to standard output"),
    }
}

/// What must agree between the files of one command: sample types (or the selected one) and
/// the period type, as strings.
fn describe_types(profile: &ProfileView<'_>, index: Option<usize>) -> String {
    let pair = |(t, u): (i64, i64)| format!("{}/{}", profile.string(t), profile.string(u));
    let types: Vec<String> = match index {
        Some(i) => profile
            .sample_type
            .get(i)
            .map(|&st| pair(st))
            .into_iter()
            .collect(),
        None => profile.sample_type.iter().map(|&st| pair(st)).collect(),
    };
    let period = profile.period_type.map(pair).unwrap_or_default();
    format!("[{}] (period type {period})", types.join(" "))
}

/// Compressed input (the first file's size times the number of files) below which the file
/// tools use one thread.
const PARALLEL_FROM_BYTES: u64 = 256 << 10;

/// A file's index and what [`for_each_profile`]'s visitor said of it.
type FileOutcome = (usize, Result<String>);

/// Decodes `files` on a few threads (one for a small input, else at most one per core, the
/// calling thread among them), each folding its share of the files
/// into its own accumulator with `visit`, which returns a description of what must agree across
/// files. Files are dealt round-robin so the result does not depend on timing; a file that
/// disagrees with the first one is an error that names it.
fn for_each_profile<A: Send>(
    files: &[PathBuf],
    new_accumulator: impl Fn() -> A + Sync,
    visit: impl Fn(&mut A, &Path, &ProfileView<'_>) -> Result<String> + Sync,
) -> Result<Vec<A>> {
    // More threads only for more than a few milliseconds of work (decoding and merging take
    // 15–25 ns per compressed byte): starting one, and waking a core for it, can cost a
    // millisecond on a virtual machine (BENCHMARKS.md). The first file stands for the others,
    // so that small inputs pay for one `stat`, not one per file: a small file followed by many
    // large ones is decoded on one thread (slower, with the same result).
    let estimate = files.first().map_or(0, |first| {
        std::fs::metadata(first)
            .map_or(u64::MAX, |m| m.len())
            .saturating_mul(files.len() as u64)
    });
    let workers = if estimate < PARALLEL_FROM_BYTES {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(files.len())
            .max(1)
    };
    // One worker's share: every `workers`-th file from `worker` on, into its own accumulator.
    let work = |worker: usize| {
        let mut accumulator = new_accumulator();
        let mut outcomes = Vec::new();
        let (mut body, mut raw) = (Vec::new(), Vec::new());
        let mut buffers = ViewBuffers::default();
        for (index, file) in files.iter().enumerate().skip(worker).step_by(workers) {
            let outcome = read_into(file, &mut body, &mut raw).and_then(|()| {
                let profile = ProfileView::decode_with(&raw, std::mem::take(&mut buffers))
                    .with_context(|| format!("{}: not a valid pprof profile", file.display()))?;
                let described = visit(&mut accumulator, file, &profile);
                buffers = profile.into_buffers();
                described
            });
            let failed = outcome.is_err();
            outcomes.push((index, outcome));
            if failed {
                break;
            }
        }
        (accumulator, outcomes)
    };
    // The calling thread takes the first share itself: it would only wait otherwise, and a
    // second core can take a millisecond to wake on a virtual machine.
    let results: Vec<(A, Vec<FileOutcome>)> = std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = (1..workers)
            .map(|worker| scope.spawn(move || work(worker)))
            .collect();
        let mut results = vec![work(0)];
        results.extend(handles.into_iter().map(|h| {
            h.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }));
        results
    });
    let mut outcomes: Vec<FileOutcome> = Vec::with_capacity(files.len());
    let mut accumulators = Vec::with_capacity(workers);
    for (accumulator, part) in results {
        accumulators.push(accumulator);
        outcomes.extend(part);
    }
    outcomes.sort_by_key(|(index, _)| *index);
    let mut first: Option<String> = None;
    for (index, outcome) in outcomes {
        let description = outcome?;
        match &first {
            None => first = Some(description),
            Some(expected) if *expected != description => bail!(
                "{}: sample types {description} differ from {expected} of the first file",
                files[index].display()
            ),
            Some(_) => {}
        }
    }
    Ok(accumulators)
}

/// Room in the read buffer for small files (allocated once per thread, as the buffer is kept
/// across files; it grows past this for larger files).
const READ_CHUNK: usize = 64 << 10;

/// Reads `path` into `body` and its decompressed bytes into `raw` (buffers reused across files).
fn read_into(path: &Path, body: &mut Vec<u8>, raw: &mut Vec<u8>) -> Result<()> {
    body.clear();
    // Read through `Take` rather than the `File` itself: std's `File::read_to_end` first asks
    // the file's size and position (`statx` and `lseek`), two of its six system calls for a
    // small file, where `body`, kept across files, usually has the room already. (Without that
    // size, std reads from 8 KiB up, doubling: a 255 KB file takes 7 reads instead of 2, which
    // costs little beside decoding it.)
    body.reserve(READ_CHUNK);
    std::fs::File::open(path)
        .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, u64::MAX), body))
        .with_context(|| format!("cannot read {}", path.display()))?;
    decompress_into(body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES, raw)
        .with_context(|| format!("{}: not a valid pprof profile", path.display()))
}

/// Which value column of `profile` the user asked for.
fn select_sample_type(profile: &ProfileView<'_>, wanted: Option<&str>) -> Result<usize> {
    let types = &profile.sample_type;
    if types.is_empty() {
        bail!("the profile has no sample types");
    }
    let Some(wanted) = wanted else {
        if profile.default_sample_type != 0 {
            let name = profile.string(profile.default_sample_type);
            if let Some(index) = profile.sample_type_index(name) {
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
    profile.sample_type_index(wanted).with_context(|| {
        let names: Vec<&str> = types.iter().map(|&(t, _)| profile.string(t)).collect();
        format!("no sample type {wanted:?}; the profile has {names:?}")
    })
}

/// The merged tree of one sample type over all files, and that sample type's id (named after
/// the sample type, as the command line has no series name).
fn merged_tree(files: &[PathBuf], wanted: Option<&str>) -> Result<(Tree, ProfileType)> {
    let parts = for_each_profile(
        files,
        || (Tree::new(), None::<ProfileType>),
        |(tree, profile_type), file, profile| {
            let index = select_sample_type(profile, wanted)
                .with_context(|| format!("{}: cannot select a sample type", file.display()))?;
            if profile_type.is_none() {
                let (sample_type, sample_unit) = profile.sample_type[index];
                let (period_type, period_unit) = profile.period_type.unwrap_or_default();
                *profile_type = Some(ProfileType {
                    name: profile.string(sample_type).to_owned(),
                    sample_type: profile.string(sample_type).to_owned(),
                    sample_unit: profile.string(sample_unit).to_owned(),
                    period_type: profile.string(period_type).to_owned(),
                    period_unit: profile.string(period_unit).to_owned(),
                });
            }
            pprof::add_to_tree(profile, index, tree);
            Ok(describe_types(profile, Some(index)))
        },
    )?;
    let mut merged = Tree::new();
    let mut merged_type = None;
    for (tree, profile_type) in parts {
        merged.merge(&tree);
        merged_type = merged_type.or(profile_type);
    }
    Ok((merged, merged_type.unwrap_or_default()))
}
