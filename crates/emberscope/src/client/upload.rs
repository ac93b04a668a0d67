//! `emberscope upload FILE...`: pprof through Push (as Alloy and profilecli send it), JFR,
//! speedscope and folded text through `/ingest`, format told from the bytes unless given.

use super::{Client, ClientArgs};
use anyhow::{Context, Result, bail};
use api::proto::push::v1::{PushRequest, RawProfileSeries, RawSample};
use api::proto::types::v1::LabelPair;
use clap::{Args, ValueEnum};
use model::label_names;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

/// Largest file read (the server's default body limit).
const MAX_FILE_BYTES: u64 = 256 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tell from the bytes.
    Auto,
    Pprof,
    Jfr,
    Speedscope,
    /// Folded stacks, `a;b;c 42` per line.
    Folded,
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Profile files (raw or gzip).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The service_name label. For folded and speedscope a suffix picks the profile type
    /// (`app.cpu`, `app.wall`, `app.alloc_space`, ...), as Pyroscope's /ingest reads it.
    #[arg(long, default_value = "emberscope-upload")]
    pub service: String,
    /// Extra labels, `name=value`; repeatable.
    #[arg(long = "label", value_name = "NAME=VALUE")]
    pub labels: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The format of `bytes` (decompressed when gzip or zstd).
pub fn detect(bytes: &[u8]) -> Format {
    let raw = formats::compression::decompress(bytes, MAX_FILE_BYTES as usize)
        .map(std::borrow::Cow::into_owned)
        .unwrap_or_else(|_| bytes.to_vec());
    match formats::detect::detect(&raw) {
        formats::detect::FileFormat::Jfr => Format::Jfr,
        formats::detect::FileFormat::Speedscope => Format::Speedscope,
        formats::detect::FileFormat::Pprof => Format::Pprof,
        formats::detect::FileFormat::Folded => Format::Folded,
    }
}

fn parse_labels(labels: &[String]) -> Result<Vec<(String, String)>> {
    labels
        .iter()
        .map(|l| {
            let (name, value) = l
                .split_once('=')
                .with_context(|| format!("--label {l:?}: expected NAME=VALUE"))?;
            if name.is_empty() {
                bail!("--label {l:?}: the name is empty");
            }
            if name == label_names::SERVICE_NAME || name == label_names::METRIC_NAME {
                bail!("--label {l:?}: {name} comes from --service and the file, not --label");
            }
            Ok((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// The `name` query parameter of /ingest: `service{a=b,c=d}`, URL-encoded.
fn ingest_name(service: &str, labels: &[(String, String)]) -> String {
    let mut name = service.to_owned();
    if !labels.is_empty() {
        let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        name.push('{');
        name.push_str(&inner.join(","));
        name.push('}');
    }
    url_encode(&name)
}

pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn upload_one(
    client: &Client,
    path: &Path,
    args: &UploadArgs,
    labels: &[(String, String)],
) -> Result<(Format, usize)> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        bail!(
            "{} is {size} bytes; the limit is {MAX_FILE_BYTES}",
            path.display()
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let format = match args.format {
        Format::Auto => detect(&bytes),
        other => other,
    };
    let len = bytes.len();
    match format {
        Format::Pprof => {
            let raw = formats::compression::decompress(&bytes, MAX_FILE_BYTES as usize)
                .with_context(|| format!("{}: cannot decompress", path.display()))?;
            // Decoded as the server decodes it (one decompression, then the view).
            let profile = formats::pprof::ProfileView::decode(&raw)
                .with_context(|| format!("{} is not a valid pprof", path.display()))?;
            let mut pairs = vec![
                (
                    label_names::METRIC_NAME.to_owned(),
                    formats::pprof::upload_profile_name(&profile),
                ),
                (label_names::SERVICE_NAME.to_owned(), args.service.clone()),
            ];
            pairs.extend(labels.iter().cloned());
            let request = PushRequest {
                series: vec![RawProfileSeries {
                    labels: pairs
                        .into_iter()
                        .map(|(name, value)| LabelPair { name, value })
                        .collect(),
                    samples: vec![RawSample {
                        raw_profile: bytes,
                        id: String::new(),
                    }],
                    annotations: Vec::new(),
                }],
            };
            client
                .call::<_, api::proto::push::v1::PushResponse>(
                    "/push.v1.PusherService/Push",
                    &request,
                )
                .await
                .with_context(|| format!("{}: upload refused", path.display()))?;
        }
        Format::Jfr | Format::Speedscope | Format::Folded => {
            let kind = match format {
                Format::Jfr => "jfr",
                Format::Speedscope => "speedscope",
                _ => "folded",
            };
            let target = format!(
                "/ingest?name={}&format={kind}&spyName=emberscope",
                ingest_name(&args.service, labels)
            );
            client
                .post(&target, "application/octet-stream", bytes)
                .await
                .with_context(|| format!("{}: upload refused", path.display()))?;
        }
        Format::Auto => bail!("internal: the format is still undecided"),
    }
    Ok((format, len))
}

pub async fn run(args: UploadArgs) -> Result<()> {
    let labels = parse_labels(&args.labels)?;
    let client = Client::new(&args.client)?;
    let total = args.files.len();
    let progress = total > 1 && std::io::stderr().is_terminal();
    let (mut done, mut bytes, mut failed) = (0usize, 0usize, 0usize);
    for (index, path) in args.files.iter().enumerate() {
        match upload_one(&client, path, &args, &labels).await {
            Ok((format, size)) => {
                done += 1;
                bytes += size;
                if !progress {
                    println!("{}: uploaded ({format:?}, {size} bytes)", path.display());
                }
            }
            Err(error) => {
                failed += 1;
                if progress {
                    eprintln!();
                }
                eprintln!("emberscope: {error:#}");
            }
        }
        if progress {
            eprint!("\r{}", progress_bar(index + 1, total));
        }
    }
    if progress {
        eprintln!();
    }
    println!("uploaded {done} of {total} files ({bytes} bytes)");
    if failed > 0 {
        bail!("{failed} of {total} uploads failed");
    }
    Ok(())
}

/// `[#####-----] 5/10`: the bar drawn over itself on a terminal while many files upload.
fn progress_bar(done: usize, total: usize) -> String {
    const WIDTH: usize = 30;
    let filled = done.min(total) * WIDTH / total.max(1);
    format!(
        "[{}{}] {done}/{total}",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_bar_fills_with_the_files() {
        assert_eq!(progress_bar(0, 3), format!("[{}] 0/3", "-".repeat(30)));
        assert_eq!(
            progress_bar(1, 3),
            format!("[{}{}] 1/3", "#".repeat(10), "-".repeat(20))
        );
        assert_eq!(progress_bar(3, 3), format!("[{}] 3/3", "#".repeat(30)));
    }

    #[test]
    fn formats_are_told_from_the_bytes() {
        let read = testkit::read_testdata;
        assert_eq!(detect(&read("pprof/cpu.pprof")), Format::Pprof);
        assert_eq!(detect(&read("pprof/heap")), Format::Pprof);
        assert_eq!(
            detect(&read("speedscope/simple.speedscope.json")),
            Format::Speedscope
        );
        assert_eq!(detect(b"a;b;c 10\na;b 5\n"), Format::Folded);
        assert_eq!(detect(b"FLR\0\x00\x02"), Format::Jfr);
    }

    #[test]
    fn labels_and_names_are_built_like_the_sdks() {
        assert_eq!(
            parse_labels(&["env=prod".to_owned()]).expect("label"),
            vec![("env".to_owned(), "prod".to_owned())]
        );
        assert!(parse_labels(&["novalue".to_owned()]).is_err());
        assert_eq!(
            ingest_name("app.cpu", &[("env".to_owned(), "prod".to_owned())]),
            "app.cpu%7Benv%3Dprod%7D"
        );
    }
}
