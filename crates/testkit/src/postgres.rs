//! The test PostgreSQL that `scripts/postgres.sh` starts (via `scripts/test.sh`).

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// `$EMBERSCOPE_POSTGRES` (what `scripts/test.sh` exports), else the server
/// `scripts/postgres.sh` starts by default.
pub fn url() -> String {
    std::env::var("EMBERSCOPE_POSTGRES").unwrap_or_else(|_| {
        "host=127.0.0.1 port=5432 user=postgres password=emberscope dbname=emberscope_test"
            .to_owned()
    })
}

/// A connection string to a fresh schema of its own in the test PostgreSQL, so tests that run
/// at once never see each other's tables.
pub fn fresh_schema() -> String {
    let base = url();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let schema = format!("run_{}_{nanos}", std::process::id());
    let status = Command::new("psql")
        .arg(&base)
        .args(["-qc", &format!("CREATE SCHEMA {schema}")])
        .status()
        .expect("psql (scripts/test.sh installs PostgreSQL)");
    assert!(status.success(), "cannot create schema in {base}");
    format!("{base} options='-csearch_path={schema}'")
}
