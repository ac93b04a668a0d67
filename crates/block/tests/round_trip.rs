//! Blocks round-trip the real test profiles: what the push path makes of each file, written to
//! a block and read back whole (`read_dataset`) by profile type, has the same stacks; a
//! committed golden block of format version 1 stays readable. (Reading only part of a block is
//! the query engine's, and tested there.)

use block::{BlockError, BlockReader, BlockWriter};
use bytes::Bytes;
use formats::pprof::{self, LabelLimits, ProfileLimits, SeriesProfile};
use model::{Labels, MatchOp, Matcher, TenantId, Tree, write_collapsed};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use testkit::read_testdata;

/// The push path's limits with the ingestion window off: the test files are old.
fn window_off() -> ProfileLimits {
    ProfileLimits {
        reject_older_than_nanos: 0,
        reject_newer_than_nanos: 0,
        ..ProfileLimits::default()
    }
}

/// The series the push path makes of a test file.
fn pushed(relative: &str, service: &str) -> Vec<SeriesProfile> {
    let body = read_testdata(relative);
    let profile = pprof::decode(&body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES).expect("valid pprof");
    let labels = Labels::from_pairs([("__name__", "test"), ("service_name", service)]);
    pprof::prepare_push(
        profile,
        &labels,
        &window_off(),
        &LabelLimits::default(),
        body.len(),
        1_700_000_000_000_000_000,
    )
    .expect("valid profile")
}

/// Expected collapsed stacks per profile type of a set of series.
fn expected(series: &[SeriesProfile]) -> BTreeMap<String, String> {
    let mut trees: BTreeMap<String, Tree> = BTreeMap::new();
    for one in series {
        for (index, (profile_type, _)) in one.profile_types().into_iter().enumerate() {
            trees
                .entry(profile_type.to_string())
                .or_default()
                .merge(&pprof::to_tree(&one.profile, index));
        }
    }
    trees
        .into_iter()
        .map(|(k, v)| (k, write_collapsed(&v)))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// What a test reads back.
struct SelectQuery {
    tenant: TenantId,
    profile_type: String,
    matchers: Vec<Matcher>,
    start_nanos: i64,
    end_nanos: i64,
    span_ids: Option<Vec<u64>>,
}

/// Every dataset read whole, keeping the rows of `query`'s tenant, profile type, matching
/// series, time range and spans, as one tree (`None`: nothing matched).
async fn select(reader: &BlockReader, query: &SelectQuery) -> Result<Option<Tree>, BlockError> {
    let mut matchers = query.matchers.clone();
    matchers.push(
        Matcher::new(
            "__profile_type__",
            MatchOp::Equal,
            query.profile_type.clone(),
        )
        .expect("valid"),
    );
    let mut tree = Tree::new();
    let mut found = false;
    for (index, info) in reader.datasets().iter().enumerate() {
        if info.tenant != query.tenant.as_str() {
            continue;
        }
        let dataset = reader.read_dataset(index).await?;
        let series = dataset.series.select(&matchers);
        let mut sums: BTreeMap<u32, i64> = BTreeMap::new();
        for row in dataset.rows() {
            if series.binary_search(&row.series_id).is_err()
                || row.time_nanos < query.start_nanos
                || row.time_nanos > query.end_nanos
            {
                continue;
            }
            for (i, (&stack, &value)) in row.stack_ids.iter().zip(&row.values).enumerate() {
                if let Some(spans) = &query.span_ids
                    && !spans.contains(&row.span_ids[i])
                {
                    continue;
                }
                found = true;
                *sums.entry(stack).or_default() += value;
            }
        }
        let samples: Vec<(u32, i64)> = sums.into_iter().collect();
        dataset.symbols.add_to_tree(&samples, &mut tree);
    }
    Ok(found.then_some(tree))
}

async fn read_back(
    reader: &BlockReader,
    tenant: &TenantId,
    service: &str,
    profile_type: &str,
) -> String {
    let query = SelectQuery {
        tenant: tenant.clone(),
        profile_type: profile_type.to_owned(),
        matchers: vec![Matcher::new("service_name", MatchOp::Equal, service).expect("valid")],
        start_nanos: i64::MIN,
        end_nanos: i64::MAX,
        span_ids: None,
    };
    let tree = select(reader, &query)
        .await
        .expect("select")
        .unwrap_or_default();
    write_collapsed(&tree)
}

const FILES: &[&str] = &[
    "pprof/cpu.pprof",
    "pprof/go.cpu.labels.pprof",
    "pprof/heap",
    "pprof/heap_delta",
    "pprof/profile_java",
    "pprof/profile_python",
    "pprof/profile_nodejs",
    "pprof/nodejs-wall.pb.gz",
    "pprof/dotnet-pprof-211.pb.gz",
    "pprof/req_3.pprof",
    "pprof/no_addr_no_line.pb.gz",
    "clients/datadog-pprof-5.14.4_node_wall_cpu.pprof.gz",
    "clients/pyroscope-io-1.4.0_cpu.pprof",
];

#[tokio::test]
async fn real_profiles_round_trip_through_a_block() {
    let tenant = TenantId::new("tenant-a").expect("valid");
    let other = TenantId::new("tenant-b").expect("valid");
    let mut writer = BlockWriter::new();
    let mut wanted = Vec::new();
    for (i, file) in FILES.iter().enumerate() {
        let service = format!("svc-{i}");
        let series = pushed(file, &service);
        for one in &series {
            writer.add(&tenant, one, [1; 16]);
        }
        wanted.push((service, expected(&series)));
    }
    // Another tenant's data in the same object must never leak into tenant-a's answers.
    for one in &pushed("pprof/cpu.pprof", "svc-0") {
        writer.add(&other, one, [2; 16]);
    }
    let encoded = writer.finish().expect("encode");
    assert_eq!(encoded.datasets.len(), FILES.len() + 1);

    // Through object storage, with ranged reads.
    let dir = tempfile::tempdir().expect("temp dir");
    let store = storage::StorageConfig::Filesystem {
        dir: dir.path().to_path_buf(),
    }
    .open()
    .expect("store");
    let key = storage::paths::segment(0, ulid::Ulid::new());
    storage::ObjectStoreExt::put(&*store, &key, encoded.bytes.clone().into())
        .await
        .expect("put");
    let reader = BlockReader::open(Arc::clone(&store), key)
        .await
        .expect("open");

    let mut compared = 0;
    for (service, by_type) in &wanted {
        assert!(!by_type.is_empty(), "{service} has data");
        for (profile_type, collapsed) in by_type {
            let got = read_back(&reader, &tenant, service, profile_type).await;
            assert_eq!(&got, collapsed, "{service} {profile_type}");
            compared += 1;
        }
    }
    assert!(compared >= 25, "{compared} profile types compared");
    // Tenant b sees only its own cpu.pprof, not tenant a's.
    let cpu = "test:cpu:nanoseconds:cpu:nanoseconds";
    let b = read_back(&reader, &other, "svc-0", cpu).await;
    assert_eq!(b, wanted[0].1[cpu]);
    let nobody = TenantId::new("tenant-c").expect("valid");
    assert!(read_back(&reader, &nobody, "svc-0", cpu).await.is_empty());
}

#[tokio::test]
async fn label_matchers_select_series() {
    let tenant = TenantId::new("t").expect("valid");
    let mut writer = BlockWriter::new();
    let series = pushed("pprof/go.cpu.labels.pprof", "api");
    assert!(series.len() > 1);
    for one in &series {
        writer.add(&tenant, one, [1; 16]);
    }
    let encoded = writer.finish().expect("encode");
    let reader = BlockReader::from_bytes(Bytes::from(encoded.bytes))
        .await
        .expect("open");
    // Pick one series by its pprof-label-derived labels.
    let target = &series[0];
    let cpu = "test:cpu:nanoseconds:cpu:nanoseconds";
    let matchers: Vec<Matcher> = target
        .labels
        .iter()
        .map(|p| Matcher::new(p.name.clone(), MatchOp::Equal, p.value.clone()).expect("valid"))
        .collect();
    let query = SelectQuery {
        tenant: tenant.clone(),
        profile_type: cpu.to_owned(),
        matchers,
        start_nanos: i64::MIN,
        end_nanos: i64::MAX,
        span_ids: None,
    };
    let tree = select(&reader, &query)
        .await
        .expect("select")
        .expect("found");
    let index = target
        .profile_types()
        .iter()
        .position(|(t, _)| t.to_string() == cpu)
        .expect("cpu type");
    assert_eq!(
        write_collapsed(&tree),
        write_collapsed(&pprof::to_tree(&target.profile, index))
    );
    // A time range before the profile selects nothing.
    let before = SelectQuery {
        end_nanos: 0,
        start_nanos: -10,
        ..query
    };
    assert!(select(&reader, &before).await.expect("select").is_none());
}

#[tokio::test]
async fn corrupt_blocks_are_errors() {
    let tenant = TenantId::new("t").expect("valid");
    let mut writer = BlockWriter::new();
    for one in &pushed("pprof/cpu.pprof", "api") {
        writer.add(&tenant, one, [1; 16]);
    }
    let good = writer.finish().expect("encode").bytes;
    let mut bad_magic = good.clone();
    let last = bad_magic.len() - 1;
    bad_magic[last] ^= 0xff;
    assert!(
        BlockReader::from_bytes(Bytes::from(bad_magic))
            .await
            .is_err()
    );
    let mut bad_footer = good.clone();
    let footer_byte = bad_footer.len() - 20;
    bad_footer[footer_byte] ^= 0xff;
    assert!(
        BlockReader::from_bytes(Bytes::from(bad_footer))
            .await
            .is_err()
    );
    // A flipped byte inside a section fails its checksum when read.
    let mut bad_section = good.clone();
    bad_section[10] ^= 0xff;
    let reader = BlockReader::from_bytes(Bytes::from(bad_section))
        .await
        .expect("footer intact");
    let query = SelectQuery {
        tenant,
        profile_type: "test:cpu:nanoseconds:cpu:nanoseconds".to_owned(),
        matchers: Vec::new(),
        start_nanos: i64::MIN,
        end_nanos: i64::MAX,
        span_ids: None,
    };
    assert!(select(&reader, &query).await.is_err());
    assert!(
        BlockReader::from_bytes(Bytes::from_static(b"short"))
            .await
            .is_err()
    );
    for cut in [1usize, 100, good.len() / 2] {
        let truncated = Bytes::copy_from_slice(&good[..good.len() - cut]);
        assert!(
            BlockReader::from_bytes(truncated).await.is_err(),
            "cut {cut}"
        );
    }
}

/// The committed block of format version 1 (written once, by that version, from cpu.pprof and
/// heap for tenant `golden`; this build cannot write it again) must stay readable with the
/// same stacks, whatever later versions change.
#[tokio::test]
async fn golden_block_v1_stays_readable() {
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/golden-v1.blk");
    let tenant = TenantId::new("golden").expect("valid");
    let sources = [
        ("pprof/cpu.pprof", "cpu-service"),
        ("pprof/heap", "heap-service"),
    ];
    let bytes = std::fs::read(&golden).expect("committed golden block");
    let reader = BlockReader::from_bytes(Bytes::from(bytes))
        .await
        .expect("open golden block");
    assert_eq!(reader.version(), 1);
    let mut compared = 0;
    for (file, service) in sources {
        for (profile_type, collapsed) in expected(&pushed(file, service)) {
            assert_eq!(
                read_back(&reader, &tenant, service, &profile_type).await,
                collapsed,
                "{service} {profile_type}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 6);
}

/// The committed block of format version 2 (a compacted block: cpu.pprof pushed by three pods
/// every minute for two hours, with its hour rollup) must stay readable: the same stacks from
/// its profiles, and rollups that sum to them.
#[tokio::test]
async fn golden_block_v2_stays_readable() {
    use block::{Columns, TableKind, TableMeta};
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/golden-v2.blk");
    let tenant = TenantId::new("golden").expect("valid");
    let series = pushed("pprof/cpu.pprof", "cpu-service");
    let hour_ns = 3_600_000_000_000i64;
    let start = 1_700_002_800_000_000_000i64; // an hour boundary
    let mut copies = Vec::new();
    for minute in 0..120 {
        for pod in ["a", "b", "c"] {
            for one in &series {
                let mut copy = one.clone();
                copy.labels.set("pod", pod);
                copy.profile.time_nanos = start + minute * 60_000_000_000;
                copies.push(copy);
            }
        }
    }
    if std::env::var("EMBERSCOPE_WRITE_GOLDEN").is_ok() {
        let mut writer = BlockWriter::for_compaction();
        for (n, one) in copies.iter().enumerate() {
            let mut id = [0xee; 16];
            id[..8].copy_from_slice(&(n as u64).to_le_bytes());
            writer.add(&tenant, one, id);
        }
        std::fs::write(&golden, writer.finish().expect("encode").bytes).expect("write golden");
    }
    let bytes = std::fs::read(&golden).expect("committed golden block");
    let reader = BlockReader::from_bytes(Bytes::from(bytes))
        .await
        .expect("open golden block");
    assert_eq!(reader.version(), 2);
    for (profile_type, collapsed) in expected(&copies) {
        assert_eq!(
            read_back(&reader, &tenant, "cpu-service", &profile_type).await,
            collapsed,
            "{profile_type}"
        );
    }
    // The hour rollup: 3 pods × 2 hours × 2 sample types rows, each standing for 60 profiles,
    // whose values sum to the profiles' own.
    let info = &reader.datasets()[0];
    assert_eq!(info.rollups.len(), 1, "{info:?}");
    assert_eq!(info.rollups[0].resolution_ms, 3_600_000);
    let table = TableKind::Rollup(3_600_000);
    let meta = TableMeta::decode(
        &reader.fetch_table_footer(0, table).await.expect("footer"),
        true,
        0,
    )
    .expect("rollup footer");
    let columns = Columns {
        stacks: true,
        ..Columns::default()
    };
    let groups: Vec<usize> = (0..meta.row_groups().len()).collect();
    let ranges = meta.chunk_ranges(&groups, columns);
    let chunks = reader
        .fetch_chunks(0, table, &ranges)
        .await
        .expect("chunks");
    let batches = meta
        .decode_rows(chunks, &groups, columns, 0, None)
        .expect("rows");
    let rows: usize = batches.iter().map(|b| b.len()).sum();
    assert_eq!(rows, 3 * 2 * 2);
    let contents = reader.read_dataset(0).await.expect("dataset");
    let raw_total: i64 = contents.rows().iter().map(|r| r.total).sum();
    let mut rolled_total = 0;
    for batch in &batches {
        for row in 0..batch.len() {
            assert_eq!(batch.profiles(row), 60);
            assert_eq!(batch.time_nanos(row).rem_euclid(hour_ns), 0);
            assert_eq!(batch.values(row).iter().sum::<i64>(), batch.total(row));
            rolled_total += batch.total(row);
        }
    }
    assert_eq!(rolled_total, raw_total);
    assert!(contents.rows().iter().all(|r| r.profile_id != [0; 16]));
}

/// Collapsed stacks of one series (every label matched) and profile type, optionally only the
/// samples of some spans.
async fn select_series(
    reader: &BlockReader,
    tenant: &TenantId,
    labels: &Labels,
    profile_type: &str,
    span_ids: Option<Vec<u64>>,
) -> String {
    let query = SelectQuery {
        tenant: tenant.clone(),
        profile_type: profile_type.to_owned(),
        matchers: labels
            .iter()
            .map(|p| Matcher::new(p.name.clone(), MatchOp::Equal, p.value.clone()).expect("valid"))
            .collect(),
        start_nanos: i64::MIN,
        end_nanos: i64::MAX,
        span_ids,
    };
    let tree = select(reader, &query)
        .await
        .expect("select")
        .unwrap_or_default();
    write_collapsed(&tree)
}

async fn reader_of(writer: BlockWriter) -> BlockReader {
    let encoded = writer.finish().expect("encode");
    BlockReader::from_bytes(Bytes::from(encoded.bytes))
        .await
        .expect("open")
}

/// The server stores a push as its prepared view (`add_profile`: locations interned once, a
/// row per series and sample type), not as owned series: for every file, each series and
/// profile type reads back the stacks that the owned series give.
#[tokio::test]
async fn prepared_views_store_what_owned_series_store() {
    let tenant = TenantId::new("t").expect("valid");
    let files = FILES.iter().chain(&[
        "pprof/gotruncatefix/heap_go_truncated_1.pb.gz",
        "pprof/heap.pb.gz",
    ]);
    for file in files {
        let body = read_testdata(file);
        let raw = formats::compression::decompress(&body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES)
            .expect("decompress");
        let view = pprof::ProfileView::decode(&raw).expect("valid pprof");
        let labels = Labels::from_pairs([("__name__", "test"), ("service_name", "svc")]);
        let mut rewrites = None;
        let prepared = pprof::prepare_view(
            view,
            &mut rewrites,
            &labels,
            &window_off(),
            &LabelLimits::default(),
            body.len(),
            1_700_000_000_000_000_000,
        )
        .expect("valid profile");
        let mut by_view = BlockWriter::new();
        by_view.add_profile(&tenant, &prepared, [1; 16]);
        let series = pushed(file, "svc");
        let mut by_series = BlockWriter::new();
        for one in &series {
            by_series.add(&tenant, one, [1; 16]);
        }
        assert_eq!(by_view.profiles(), by_series.profiles(), "{file}");
        let (by_view, by_series) = (reader_of(by_view).await, reader_of(by_series).await);
        let mut with_stacks = 0;
        for one in &series {
            for (profile_type, _) in one.profile_types() {
                let profile_type = profile_type.to_string();
                let want =
                    select_series(&by_series, &tenant, &one.labels, &profile_type, None).await;
                let got = select_series(&by_view, &tenant, &one.labels, &profile_type, None).await;
                assert_eq!(got, want, "{file} {:?} {profile_type}", one.labels);
                with_stacks += usize::from(!want.is_empty());
            }
        }
        assert!(with_stacks > 0, "{file}: nothing was compared");
    }
}

/// Sample labels through the view path: an empty value is dropped, `profile_id` becomes the
/// sample's span, and the other labels split the series; each stack keeps its span.
#[tokio::test]
async fn spans_and_sample_labels_survive_the_view_path() {
    use pprof::proto::{Function, Label, Line, Location, Profile, Sample, ValueType};
    let strings = [
        "",
        "cpu",
        "nanoseconds",
        "main",
        "f",
        "profile_id",
        "0100000000000000",
        "endpoint",
        "a",
        "b",
        "empty",
        "0200000000000000",
    ];
    let label = |key: i64, str: i64| Label {
        key,
        str,
        ..Label::default()
    };
    let sample = |location_id: Vec<u64>, value: i64, label: Vec<Label>| Sample {
        location_id,
        value: vec![value],
        label,
    };
    let profile = Profile {
        sample_type: vec![ValueType { r#type: 1, unit: 2 }],
        string_table: strings.iter().map(|s| (*s).to_owned()).collect(),
        function: vec![
            Function {
                id: 1,
                name: 3,
                ..Function::default()
            },
            Function {
                id: 2,
                name: 4,
                ..Function::default()
            },
        ],
        location: (1..=2)
            .map(|id| Location {
                id,
                line: vec![Line {
                    function_id: id,
                    ..Line::default()
                }],
                ..Location::default()
            })
            .collect(),
        sample: vec![
            sample(vec![2, 1], 10, vec![label(5, 6), label(7, 8), label(10, 0)]),
            sample(vec![2, 1], 5, vec![label(7, 9)]),
            sample(vec![1], 7, vec![label(7, 8), label(5, 11)]),
        ],
        time_nanos: 1,
        ..Profile::default()
    };
    let labels = Labels::from_pairs([("__name__", "process_cpu"), ("service_name", "svc")]);
    let mut rewrites = None;
    let prepared = pprof::prepare_view(
        pprof::ProfileView::from_profile(&profile),
        &mut rewrites,
        &labels,
        &window_off(),
        &LabelLimits::default(),
        0,
        1,
    )
    .expect("valid");
    let pprof::Prepared::View(view) = &prepared else {
        panic!("prepare_view gives a view");
    };
    assert_eq!(view.series.len(), 2);
    let tenant = TenantId::new("t").expect("valid");
    let mut writer = BlockWriter::new();
    writer.add_profile(&tenant, &prepared, [1; 16]);
    let reader = reader_of(writer).await;
    let cpu = "process_cpu:cpu:nanoseconds::";
    let mut a = labels.clone();
    a.set("endpoint", "a");
    let mut b = labels.clone();
    b.set("endpoint", "b");
    let span = |s: &str| Some(vec![block::span_id(s)]);
    assert_eq!(
        select_series(&reader, &tenant, &a, cpu, None).await,
        "main 7\nmain;f 10\n"
    );
    let first = select_series(&reader, &tenant, &a, cpu, span("0100000000000000")).await;
    assert_eq!(first, "main;f 10\n");
    let second = select_series(&reader, &tenant, &a, cpu, span("0200000000000000")).await;
    assert_eq!(second, "main 7\n");
    assert_eq!(
        select_series(&reader, &tenant, &b, cpu, None).await,
        "main;f 5\n"
    );
    assert_eq!(
        select_series(&reader, &tenant, &b, cpu, Some(vec![0])).await,
        "main;f 5\n"
    );
}

/// Reads one of dataset 0's tables as the query engine does (its footer, then every column
/// chunk of every row group) and decodes every row: how many there are.
async fn read_table_in_parts(bytes: Vec<u8>, table: block::TableKind) -> Result<usize, BlockError> {
    use block::{Columns, TableMeta};
    let reader = BlockReader::from_bytes(Bytes::from(bytes)).await?;
    let rollup = matches!(table, block::TableKind::Rollup(_));
    let meta = TableMeta::decode(&reader.fetch_table_footer(0, table).await?, rollup, 0)?;
    let groups: Vec<usize> = (0..meta.row_groups().len()).collect();
    let columns = Columns {
        stacks: true,
        spans: true,
        profile_ids: true,
    };
    let chunks = reader
        .fetch_chunks(0, table, &meta.chunk_ranges(&groups, columns))
        .await?;
    let batches = meta.decode_rows(chunks, &groups, columns, 0, None)?;
    Ok(batches.iter().map(|b| b.len()).sum())
}

/// A read of part of a table (its footer, some column chunks) is checked like a whole
/// section's: a flipped byte anywhere in a column chunk or the Parquet footer is an error,
/// never a panic of the Parquet decoders nor rows silently wrong. Blocks written before the
/// per-part checksums (the golden version 2 block) are checked against the whole section's.
#[tokio::test]
async fn partial_reads_are_checked() {
    use block::TableKind;
    let tenant = TenantId::new("t").expect("valid");
    let mut writer = BlockWriter::for_compaction();
    for (n, one) in pushed("pprof/cpu.pprof", "api").iter().enumerate() {
        writer.add(&tenant, one, [n as u8 + 1; 16]);
    }
    let good = writer.finish().expect("encode").bytes;
    if std::env::var("EMBERSCOPE_WRITE_GOLDEN").is_ok() {
        // A fuzz seed with per-part checksums, so block_read starts from both kinds.
        let seed = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/seeds/block_read/part-checksums.blk");
        std::fs::write(seed, &good).expect("write seed");
    }
    let golden =
        std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/golden-v2.blk"))
            .expect("committed golden block");
    for (name, bytes) in [("new", good), ("golden v2", golden)] {
        let reader = BlockReader::from_bytes(Bytes::from(bytes.clone()))
            .await
            .expect("open");
        let info = reader.datasets()[0].clone();
        let tables = std::iter::once(TableKind::Profiles).chain(
            info.rollups
                .iter()
                .map(|r| TableKind::Rollup(r.resolution_ms)),
        );
        for table in tables {
            let rows = read_table_in_parts(bytes.clone(), table)
                .await
                .expect("intact table");
            assert!(rows > 0, "{name} {table:?}");
            let section = reader.table_section(0, table).expect("section");
            // The bytes a read uses: with per-part checksums, the column chunks and the
            // footer (not the page indexes between them, which are never read); without, the
            // whole section, checked at once.
            let checksums = match table {
                TableKind::Profiles => info.profiles_checksums.clone(),
                TableKind::Rollup(ms) => info
                    .rollups
                    .iter()
                    .find(|r| r.resolution_ms == ms)
                    .and_then(|r| r.checksums.clone()),
            };
            assert_eq!(checksums.is_some(), name == "new");
            let read: Vec<std::ops::Range<u64>> = match &checksums {
                Some(c) => c
                    .chunks
                    .iter()
                    .chain(&c.footer)
                    .map(|s| s.offset..s.offset + s.length)
                    .collect(),
                None => std::iter::once(0..section.length).collect(),
            };
            for at in (0..section.length).step_by(3) {
                let mut bad = bytes.clone();
                bad[(section.offset + at) as usize] ^= 0x5a;
                let result = read_table_in_parts(bad, table).await;
                if read.iter().any(|r| r.contains(&at)) {
                    assert!(
                        matches!(result, Err(BlockError::Corrupt { .. })),
                        "{name} {table:?}: byte {at} of {} flipped: {result:?}",
                        section.length
                    );
                } else {
                    assert_eq!(result.ok(), Some(rows), "{name} {table:?}: byte {at}");
                }
            }
            // Bytes that are not a column chunk are refused before they are read.
            if info.profiles_checksums.is_some() {
                let result = reader
                    .fetch_chunks(0, table, std::slice::from_ref(&(4..20)))
                    .await;
                assert!(
                    matches!(result, Err(BlockError::Corrupt { .. })),
                    "{result:?}"
                );
            }
        }
    }
}
