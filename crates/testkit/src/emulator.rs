//! Real object-storage servers on loopback for tests: moto (S3, from PyPI) and Azurite (Azure's
//! blob emulator, from npm), both installed by `scripts/test.sh`, each on a free port and
//! stopped when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A test server on a free loopback port, stopped on drop.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    /// The loopback port it listens on.
    pub port: u16,
}

impl Emulator {
    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `program` with `args(port)` on a free loopback port and waits until it listens;
/// `name` and `installed_by` go into the messages when it does not.
pub fn start(
    program: &str,
    args: impl FnOnce(&str) -> Vec<String>,
    name: &str,
    installed_by: &str,
) -> Emulator {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(program)
        .args(args(&port.to_string()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {name} {program:?} ({e}); scripts/test.sh installs it ({installed_by})")
        });
    let emulator = Emulator { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{name} did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    emulator
}

/// `$EMBERSCOPE_MOTO_SERVER`, else the one `scripts/test.sh` installs, else `moto_server`.
fn moto_binary() -> String {
    if let Ok(path) = std::env::var("EMBERSCOPE_MOTO_SERVER") {
        return path;
    }
    let installed = crate::workspace_root().join("target/test-venv/bin/moto_server");
    if installed.exists() {
        return installed.display().to_string();
    }
    "moto_server".to_owned()
}

/// A real S3 server (moto) on loopback. It does not check signatures: any key works.
pub fn start_moto() -> Emulator {
    start(
        &moto_binary(),
        |port| ["-H", "127.0.0.1", "-p", port].map(String::from).to_vec(),
        "the S3 test server",
        "pip moto[server]",
    )
}

/// [`start_moto`] with `bucket` created.
pub fn start_moto_with_bucket(bucket: &str) -> Emulator {
    let moto = start_moto();
    create_bucket(moto.port, bucket);
    moto
}

/// Creates a bucket with a plain (unsigned) request: moto does not check signatures.
pub fn create_bucket(port: u16, bucket: &str) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to moto");
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "create bucket: {response}"
    );
}

/// `$EMBERSCOPE_AZURITE`, else the one `scripts/test.sh` installs (`npm ci` in
/// `crates/storage/tests/azurite`).
fn azurite_binary() -> String {
    std::env::var("EMBERSCOPE_AZURITE").unwrap_or_else(|_| {
        crate::workspace_root()
            .join("crates/storage/tests/azurite/node_modules/.bin/azurite-blob")
            .display()
            .to_string()
    })
}

/// Azure's blob emulator on loopback, in memory.
pub fn start_azurite() -> Emulator {
    start(
        &azurite_binary(),
        |port| {
            [
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                port,
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--silent",
            ]
            .map(String::from)
            .to_vec()
        },
        "Azurite",
        "npm ci in crates/storage/tests/azurite",
    )
}
