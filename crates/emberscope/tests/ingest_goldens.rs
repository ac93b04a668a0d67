//! Pyroscope's TestIngest and TestPush (`api.md` §8) against `emberscope serve`: every pprof of
//! `testdata/pprof` through `/ingest` (multipart, with its `sample_type_config`) and
//! through Push, with the statuses Pyroscope answers; then, per stored profile type,
//! `SelectMergeProfile` gives the stacks of the source file. Both sides are read by Google's
//! pprof (the oracle), so the comparison does not rest on our own decoder.

mod common;

use testkit::oracle;

use api::proto::push::v1::{PushRequest, RawProfileSeries, RawSample};
use api::proto::querier::v1::{
    ProfileTypesRequest, ProfileTypesResponse, SelectMergeProfileRequest,
};
use api::proto::types::v1::LabelPair;
use common::{Server, request, start};
use prost::Message as _;
use std::collections::BTreeMap;
use std::path::Path;

/// (file, Push status, /ingest status).
const FILES: &[(&str, u16, u16)] = &[
    ("cpu.pprof", 200, 200),
    ("go.cpu.labels.pprof", 200, 200),
    ("heap", 200, 200),
    ("heap_delta", 200, 200),
    ("heap.pb.gz", 200, 200),
    ("profile_java", 200, 200),
    ("profile_nodejs", 200, 200),
    ("profile_python", 200, 200),
    ("cpu-js.pb.gz", 200, 200),
    ("nodejs-wall.pb.gz", 200, 200),
    ("nodejs-heap.pb.gz", 200, 200),
    ("heap-js.pprof", 200, 200),
    ("pyspy-1.pb.gz", 200, 200),
    ("req_2.pprof", 200, 200),
    ("req_3.pprof", 200, 200),
    ("req_4.pprof", 200, 200),
    ("req_5.pprof", 200, 200),
    ("no_addr_no_line.pb.gz", 200, 200),
    // Function id 0: Push refuses it, /ingest repairs it (.NET spy detection).
    ("dotnet-pprof-3.pb.gz", 400, 200),
    ("dotnet-pprof-211.pb.gz", 200, 200),
    ("invalid_utf8.pb.gz", 400, 422),
];

fn proto_call(server: &Server, tenant: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let (status, _, body) = common::post_bytes(
        server,
        path,
        &[
            ("Content-Type", "application/proto"),
            ("X-Scope-OrgID", tenant),
        ],
        body,
    );
    (status, body)
}

/// The form pyroscope-go sends: `profile` and optional `sample_type_config` file fields.
fn multipart(profile: &[u8], config: Option<&[u8]>) -> (String, Vec<u8>) {
    let mut fields = vec![("profile", profile)];
    fields.extend(config.map(|config| ("sample_type_config", config)));
    common::multipart(&fields)
}

/// Sorted collapsed stacks of one value column of a pprof file, read by Google's pprof (each
/// distinct file content is read once).
fn oracle_collapsed(path: &Path, column: usize) -> String {
    type Cache = std::sync::Mutex<BTreeMap<Vec<u8>, BTreeMap<String, Vec<i64>>>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let bytes = std::fs::read(path).expect("read");
    let cache = CACHE.get_or_init(Default::default);
    if let Some(all) = cache.lock().expect("cache").get(&bytes) {
        return oracle::column_as_collapsed(all, column);
    }
    let raw = oracle::pprof_raw(path).unwrap_or_else(|| panic!("pprof rejects {}", path.display()));
    let all = oracle::oracle_all_values(&raw);
    let text = oracle::column_as_collapsed(&all, column);
    cache.lock().expect("cache").insert(bytes, all);
    text
}

/// The sample type names of the file's columns as the server stores them: renamed by
/// `sample_type_config`'s display names (on /ingest), `-` as `_` for .NET.
fn column_names(
    profile: &formats::pprof::Profile,
    config: Option<&serde_json::Value>,
) -> Vec<(String, String)> {
    profile
        .sample_type
        .iter()
        .map(|st| {
            let name = profile.string_table[st.r#type as usize].clone();
            let unit = profile.string_table[st.unit as usize].clone();
            let renamed = config
                .and_then(|c| c.get(&name))
                .and_then(|c| c.get("display-name"))
                .and_then(|n| n.as_str())
                .map_or(name, str::to_owned);
            (renamed.replace('-', "_"), unit)
        })
        .collect()
}

/// The source as the server must store it: Pyroscope's .NET repair (on /ingest with the .NET
/// spy) and Go repair (Go profiles) applied, written to a file for the oracle.
fn expected_source(
    profile: &formats::pprof::Profile,
    labels: &model::Labels,
    dotnet: bool,
    out: &Path,
) -> std::path::PathBuf {
    let mut fixed = profile.clone();
    if dotnet {
        formats::pprof::fix_dotnet(&mut fixed);
    }
    if formats::pprof::profile_language(&fixed, labels) == "go" {
        formats::pprof::fix_go_profile(&mut fixed);
    }
    std::fs::write(out, fixed.encode_to_vec()).expect("write expected");
    out.to_path_buf()
}

/// The first lines where two collapsed texts differ (the whole texts are too long to print).
fn first_differences(ours: &str, theirs: &str) -> String {
    let ours: std::collections::BTreeSet<&str> = ours.lines().collect();
    let theirs: std::collections::BTreeSet<&str> = theirs.lines().collect();
    let only_ours: Vec<&&str> = ours.difference(&theirs).take(3).collect();
    let only_theirs: Vec<&&str> = theirs.difference(&ours).take(3).collect();
    format!("only stored: {only_ours:?}\nonly in the source: {only_theirs:?}")
}

/// Checks that every stored profile type of `tenant` gives back its source column's stacks.
fn check_stacks(
    server: &Server,
    tenant: &str,
    file: &Path,
    columns: &[(String, String)],
    scratch: &Path,
) -> usize {
    let (status, body) = proto_call(
        server,
        tenant,
        "/querier.v1.QuerierService/ProfileTypes",
        &ProfileTypesRequest::default().encode_to_vec(),
    );
    assert_eq!(status, 200);
    let types = ProfileTypesResponse::decode(body.as_slice()).expect("types");
    assert!(
        !types.profile_types.is_empty(),
        "{}: nothing stored",
        file.display()
    );
    let now = model::time::now_ms();
    let mut checked = 0;
    for profile_type in &types.profile_types {
        let Some(column) = columns
            .iter()
            .position(|(t, u)| *t == profile_type.sample_type && *u == profile_type.sample_unit)
        else {
            panic!(
                "{}: stored type {} has no source column {columns:?}",
                file.display(),
                profile_type.id
            );
        };
        let request = SelectMergeProfileRequest {
            profile_type_id: profile_type.id.clone(),
            label_selector: "{}".to_owned(),
            start: 1000,
            end: now,
            ..Default::default()
        };
        let (status, merged) = proto_call(
            server,
            tenant,
            "/querier.v1.QuerierService/SelectMergeProfile",
            &request.encode_to_vec(),
        );
        assert_eq!(status, 200);
        let out = scratch.join(format!("{tenant}-{checked}.pb"));
        std::fs::write(&out, &merged).expect("write");
        let (stored, source) = (oracle_collapsed(&out, 0), oracle_collapsed(file, column));
        assert!(
            stored == source,
            "{}: {} differs from the source: {}",
            file.display(),
            profile_type.id,
            first_differences(&stored, &source)
        );
        checked += 1;
    }
    checked
}

#[test]
fn every_test_pprof_through_ingest_and_push_reads_back_as_its_stacks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = tempfile::tempdir().expect("scratch");
    let server = start(dir.path(), &["--auth.multitenancy-enabled"]);
    let mut compared = BTreeMap::new();
    for (index, (name, push_status, ingest_status)) in FILES.iter().enumerate() {
        let path = testkit::testdata("pprof").join(name);
        let bytes = std::fs::read(&path).expect("test file");
        let config_path = path.with_file_name(format!(
            "{}.st.json",
            name.trim_end_matches(".pb.gz").trim_end_matches(".pprof")
        ));
        let config = std::fs::read(&config_path).ok();
        let decoded = formats::compression::decompress(&bytes, 1 << 28)
            .ok()
            .and_then(|raw| formats::pprof::decode(&raw, usize::MAX).ok());

        // Push, with the labels profilecli sends.
        let tenant = format!("push-{index}");
        let push = PushRequest {
            series: vec![RawProfileSeries {
                labels: vec![
                    LabelPair {
                        name: "__name__".to_owned(),
                        value: "process_cpu".to_owned(),
                    },
                    LabelPair {
                        name: "service_name".to_owned(),
                        value: format!("push-app-{index}"),
                    },
                ],
                samples: vec![RawSample {
                    raw_profile: bytes.clone(),
                    id: String::new(),
                }],
                annotations: Vec::new(),
            }],
        };
        let (status, body) = proto_call(
            &server,
            &tenant,
            "/push.v1.PusherService/Push",
            &push.encode_to_vec(),
        );
        assert_eq!(
            status,
            *push_status,
            "Push {name}: {}",
            String::from_utf8_lossy(&body)
        );
        if status == 200 {
            let profile = decoded.as_ref().expect("a valid file decodes");
            let columns = column_names(profile, None);
            let labels = model::Labels::from_pairs([("service_name", "push")]);
            let expected = expected_source(
                profile,
                &labels,
                false,
                &scratch.path().join(format!("expected-{tenant}.pb")),
            );
            *compared.entry(*name).or_insert(0) +=
                check_stacks(&server, &tenant, &expected, &columns, scratch.path());
        }

        // /ingest, multipart with the sample type config, as the Go SDK and .NET send.
        let tenant = format!("ingest-{index}");
        let (content_type, body) = multipart(&bytes, config.as_deref());
        let spy = if name.starts_with("dotnet") {
            "dotnetspy"
        } else {
            "foo239"
        };
        let (status, text) = request(
            &server,
            "POST",
            &format!("/ingest?name=ingest-app-{index}&spyName={spy}"),
            &[
                ("Content-Type", content_type.as_str()),
                ("X-Scope-OrgID", tenant.as_str()),
            ],
            &body,
        );
        assert_eq!(status, *ingest_status, "/ingest {name}: {text}");
        if status == 200 {
            let profile = decoded.as_ref().expect("a valid file decodes");
            let config: Option<serde_json::Value> = config
                .as_deref()
                .map(|c| serde_json::from_slice(c).expect("st.json"));
            let columns = column_names(profile, config.as_ref());
            let labels = model::Labels::from_pairs([("pyroscope_spy", spy)]);
            let expected = expected_source(
                profile,
                &labels,
                spy == "dotnetspy",
                &scratch.path().join(format!("expected-{tenant}.pb")),
            );
            *compared.entry(*name).or_insert(0) +=
                check_stacks(&server, &tenant, &expected, &columns, scratch.path());
        }
    }
    // Every valid file was compared on at least one path.
    for (name, push, ingest) in FILES {
        if *push == 200 || *ingest == 200 {
            assert!(
                compared.get(name).copied().unwrap_or(0) > 0,
                "{name} was not compared"
            );
        }
    }
}
