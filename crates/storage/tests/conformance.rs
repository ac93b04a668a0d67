//! One conformance suite for every object store backend: the local filesystem, a real S3 server
//! (moto) and Azure's blob emulator (Azurite, from npm) on loopback. Put, ranged get, list,
//! conditional put, delete, errors; plus the fault-injecting wrapper.

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, path::Path};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage::{Fault, FaultyStore, StorageConfig};

async fn suite(store: Arc<dyn ObjectStore>) {
    let prefix = Path::from(format!("conformance-{}", ulid::Ulid::new()));
    let key = |name: &str| Path::from(format!("{prefix}/{name}"));

    // Put and get, whole and by ranges.
    let data = Bytes::from((0..=255u8).cycle().take(1 << 20).collect::<Vec<u8>>());
    store
        .put(&key("a/one"), data.clone().into())
        .await
        .expect("put");
    let got = store
        .get(&key("a/one"))
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    assert_eq!(got, data);
    assert_eq!(store.head(&key("a/one")).await.expect("head").size, 1 << 20);
    assert_eq!(
        store.get_range(&key("a/one"), 10..20).await.expect("range"),
        data.slice(10..20)
    );
    let tail = (1u64 << 20) - 7..1 << 20;
    assert_eq!(
        store.get_range(&key("a/one"), tail).await.expect("tail"),
        data.slice((1 << 20) - 7..)
    );
    let ranges = store
        .get_ranges(&key("a/one"), &[0..3, 1000..1010, 500_000..500_001])
        .await
        .expect("ranges");
    assert_eq!(
        ranges,
        vec![
            data.slice(0..3),
            data.slice(1000..1010),
            data.slice(500_000..500_001)
        ]
    );

    // Overwrite replaces.
    store
        .put(&key("a/one"), PutPayload::from_static(b"small"))
        .await
        .expect("overwrite");
    let got = store
        .get(&key("a/one"))
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    assert_eq!(&got[..], b"small");

    // List by prefix, recursively and by level.
    for name in ["a/two", "a/deeper/three", "b/four"] {
        store
            .put(&key(name), PutPayload::from_static(b"x"))
            .await
            .expect("put");
    }
    let mut listed: Vec<String> = store
        .list(Some(&key("a")))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .expect("list");
    listed.sort();
    let expected: Vec<String> = ["a/deeper/three", "a/one", "a/two"]
        .iter()
        .map(|n| key(n).to_string())
        .collect();
    assert_eq!(listed, expected);
    let level = store
        .list_with_delimiter(Some(&key("a")))
        .await
        .expect("delimited");
    assert_eq!(level.objects.len(), 2);
    assert_eq!(level.common_prefixes, vec![key("a/deeper")]);

    // Conditional put: create only if absent.
    let create = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    store
        .put_opts(
            &key("c/once"),
            PutPayload::from_static(b"first"),
            create.clone(),
        )
        .await
        .expect("create a new key");
    let err = store
        .put_opts(&key("c/once"), PutPayload::from_static(b"second"), create)
        .await
        .expect_err("create an existing key");
    assert!(
        matches!(err, object_store::Error::AlreadyExists { .. }),
        "{err:?}"
    );
    let got = store
        .get(&key("c/once"))
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    assert_eq!(&got[..], b"first");

    // Missing keys and deletes.
    let err = store.get(&key("missing")).await.expect_err("missing key");
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "{err:?}"
    );
    assert!(store.get_range(&key("missing"), 0..1).await.is_err());
    store.delete(&key("a/two")).await.expect("delete");
    let err = store.head(&key("a/two")).await.expect_err("deleted key");
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "{err:?}"
    );

    // Clean up everything this run wrote.
    let all: Vec<Path> = store
        .list(Some(&prefix))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await
        .expect("list all");
    for location in all {
        store.delete(&location).await.expect("delete");
    }
    let left: Vec<_> = store.list(Some(&prefix)).try_collect().await.expect("list");
    assert!(left.is_empty());
}

#[tokio::test]
async fn local_filesystem_conforms() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = StorageConfig::Filesystem {
        dir: dir.path().join("data"),
    }
    .open()
    .expect("open");
    suite(store).await;
}

fn s3_config(port: u16, bucket: &str) -> StorageConfig {
    StorageConfig::S3 {
        bucket: bucket.to_owned(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: Some("us-east-1".to_owned()),
        access_key_id: Some("test".to_owned()),
        secret_access_key: Some("test".to_owned()),
        allow_http: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_conforms() {
    let moto = testkit::emulator::start_moto_with_bucket("emberscope-test");
    let store = s3_config(moto.port, "emberscope-test")
        .open()
        .expect("open");
    suite(store).await;
}

/// Azurite's well-known development account and key (public, in Azure's documentation).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Creates a container with a Shared Key signed request (object_store has no call for it).
fn create_container(port: u16, container: &str) {
    use base64::Engine as _;
    use hmac::{KeyInit as _, Mac as _};
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let version = "2021-08-06";
    // Verb, eleven empty standard headers, the x-ms headers, then the resource: the account
    // twice for a path-style (emulator) URL.
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{container}\nrestype:container"
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(AZURITE_KEY)
        .expect("key");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("hmac key");
    mac.update(to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to Azurite");
    write!(
        stream,
        "PUT /{AZURITE_ACCOUNT}/{container}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nx-ms-date: {date}\r\nx-ms-version: {version}\r\nAuthorization: SharedKey {AZURITE_ACCOUNT}:{signature}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "create container: {response}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_conforms() {
    let azurite = testkit::emulator::start_azurite();
    create_container(azurite.port, "emberscope-test");
    let store = StorageConfig::Azure {
        account: AZURITE_ACCOUNT.to_owned(),
        container: "emberscope-test".to_owned(),
        access_key: Some(AZURITE_KEY.to_owned()),
        endpoint: Some(format!(
            "http://127.0.0.1:{}/{AZURITE_ACCOUNT}",
            azurite.port
        )),
        allow_http: true,
    }
    .open()
    .expect("open");
    suite(store).await;
}

#[tokio::test]
async fn faults_fail_writes_without_storing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inner = StorageConfig::Filesystem {
        dir: dir.path().to_path_buf(),
    }
    .open()
    .expect("open");
    let faulty = FaultyStore::new(inner.clone());
    faulty.plan([
        Fault::Fail,
        Fault::Hang(Duration::from_millis(50)),
        Fault::StoreThenFail,
    ]);
    let key = |n: &str| Path::from(format!("f/{n}"));

    assert!(
        faulty
            .put(&key("failed"), PutPayload::from_static(b"x"))
            .await
            .is_err()
    );
    assert!(
        inner.head(&key("failed")).await.is_err(),
        "a failed write stores nothing"
    );

    let started = Instant::now();
    assert!(
        faulty
            .put(&key("hung"), PutPayload::from_static(b"x"))
            .await
            .is_err()
    );
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert!(inner.head(&key("hung")).await.is_err());

    assert!(
        faulty
            .put(&key("lost-reply"), PutPayload::from_static(b"x"))
            .await
            .is_err()
    );
    assert!(
        inner.head(&key("lost-reply")).await.is_ok(),
        "stored, but the caller was told it failed"
    );

    faulty
        .put(&key("fine"), PutPayload::from_static(b"x"))
        .await
        .expect("no fault left");
    assert_eq!(faulty.writes(), 4);
}

#[test]
fn configuration_parses_from_yaml_like_json() {
    let parsed: StorageConfig = serde_json::from_str(
        r#"{"backend":"s3","bucket":"b","endpoint":"http://127.0.0.1:9000","allow_http":true}"#,
    )
    .expect("valid");
    assert!(
        matches!(parsed, StorageConfig::S3 { ref bucket, allow_http: true, .. } if bucket == "b")
    );
    let default: StorageConfig =
        serde_json::from_str(r#"{"backend":"filesystem"}"#).expect("valid");
    assert_eq!(default, StorageConfig::default());
    assert!(serde_json::from_str::<StorageConfig>(r#"{"backend":"ftp"}"#).is_err());
}
