//! Helpers shared by the tests that run `emberscope serve` as a process: starting the server
//! on a free port, and plain HTTP/1.1 requests to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct Server {
    child: Option<Child>,
    pub address: String,
}

impl Server {
    /// A server this test did not start (it is not stopped on drop), by `host:port`.
    pub fn at(address: &str) -> Server {
        Server {
            child: None,
            address: address.trim_start_matches("http://").to_owned(),
        }
    }
}

impl Server {
    /// The server's stderr, when the command that started it piped it.
    pub fn take_stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.child.as_mut().and_then(|c| c.stderr.take())
    }

    /// Stops the server (as dropping it does) and waits for it.
    pub fn stop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `emberscope serve` on a free loopback port with `data` as its folder, accepting old
/// profile timestamps (the test files are years old).
pub fn start(data: &Path, extra: &[&str]) -> Server {
    start_with_env(data, extra, &[])
}

/// [`start`] with extra environment variables.
pub fn start_with_env(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
    spawn(
        Command::new(env!("CARGO_BIN_EXE_emberscope"))
            .envs(env.iter().copied())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--validation.reject-older-than",
                "0",
            ])
            .arg("--data")
            .arg(data)
            .args(extra)
            .stderr(Stdio::null()),
    )
}

/// Starts a server `command` describes (stdout is taken here; stderr is the caller's) and
/// waits for its first line, `emberscope listening on ADDRESS`. Stopped when dropped.
pub fn spawn(command: &mut Command) -> Server {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .expect("start emberscope serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the address");
    let address = line
        .trim()
        .strip_prefix("emberscope listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Server {
        child: Some(child),
        address,
    }
}

/// Sends one HTTP/1.1 request on a fresh connection; returns the raw response.
fn exchange(
    server: &Server,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    try_exchange(server, method, target, headers, body).expect("exchange")
}

/// [`exchange`], with connection errors returned.
fn try_exchange(
    server: &Server,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(&server.address)?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        server.address,
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    Ok(response)
}

/// A GET's body as bytes (a 200 answer's, chunked or not), for answers that are not text.
pub fn get_bytes(server: &Server, target: &str) -> Vec<u8> {
    let answer = exchange(server, "GET", target, &[], b"");
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{target}: {head}");
    let body = &answer[split + 4..];
    if !head.contains("transfer-encoding: chunked") {
        return body.to_vec();
    }
    let (mut out, mut rest) = (Vec::new(), body);
    loop {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size = std::str::from_utf8(&rest[..end])
            .ok()
            .and_then(|hex| usize::from_str_radix(hex, 16).ok())
            .expect("a chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&rest[end + 2..end + 2 + size]);
        rest = &rest[end + 2 + size + 2..];
    }
}

/// One HTTP/1.1 request; returns (status, body).
pub fn request(
    server: &Server,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    try_request(server, method, target, headers, body).expect("exchange")
}

/// [`request`], with connection errors returned (a server that is down).
pub fn try_request(
    server: &Server,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let response = try_exchange(server, method, target, headers, body)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    // Chunked bodies: keep the JSON object between the first '{' and the last '}'.
    let body = match (body.find('{'), body.rfind('}')) {
        (Some(start), Some(end)) if body.contains("\r\n") => body[start..=end].to_owned(),
        _ => body,
    };
    Ok((status, body))
}

/// A `multipart/form-data` body with one file field per (name, bytes), as the SDKs and agents
/// send uploads; returns (content type, body).
pub fn multipart(fields: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "emberscope-test-boundary";
    let mut body = Vec::new();
    for (name, bytes) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// `query` percent-encoded for a URL.
pub fn url_encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.:".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A GET answered 200 with JSON, parsed.
pub fn get_json(server: &Server, target: &str, headers: &[(&str, &str)]) -> serde_json::Value {
    let (status, body) = request(server, "GET", target, headers, b"");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// A POST with a binary body; returns (status, lower-cased head, body bytes, de-chunked).
pub fn post_bytes(
    server: &Server,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let response = exchange(server, "POST", path, headers, body);
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head")
        + 4;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut body = response[split..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk size");
            let size = usize::from_str_radix(
                std::str::from_utf8(&rest[..line_end]).expect("hex").trim(),
                16,
            )
            .expect("chunk size");
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    (status, head, body)
}

/// Polls `done` every 100 ms; fails the test after `timeout`.
pub fn wait_for(what: &str, timeout: std::time::Duration, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// How many of the members a process lists on `/cluster` run `role`.
pub fn members_with(server: &Server, role: &str) -> usize {
    get_json(server, "/cluster?format=json", &[])["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter(|m| {
            m["roles"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r == role))
        })
        .count()
}
