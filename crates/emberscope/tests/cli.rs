//! The command line, run as a real process: outputs on real files and every error path.

use std::process::{Command, Output};

fn testdata(relative: &str) -> String {
    testkit::testdata(relative).display().to_string()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emberscope"))
        .args(args)
        .output()
        .expect("run emberscope")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn collapse_prints_sorted_stacks() {
    let cpu = testdata("pprof/cpu.pprof");
    let out = run(&["collapse", &cpu, "--sample-type", "cpu"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("runtime.main;main.main;main.slowFunction;main.work 10000000\n"));
    let lines: Vec<&str> = text.lines().collect();
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted);
    // Two copies double every value.
    let twice = stdout(&run(&["collapse", &cpu, &cpu, "--sample-type", "1"]));
    assert!(twice.contains("runtime.main;main.main;main.slowFunction;main.work 20000000\n"));
}

#[test]
fn merge_writes_a_profile_that_reads_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("merged.pb.gz");
    let out_str = out_path.display().to_string();
    let heap = testdata("pprof/heap");
    let out = run(&[
        "merge",
        &heap,
        &testdata("pprof/heap.pb.gz"),
        "-o",
        &out_str,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let merged = stdout(&run(&[
        "collapse",
        &out_str,
        "--sample-type",
        "inuse_space",
    ]));
    let separate = stdout(&run(&[
        "collapse",
        &heap,
        &testdata("pprof/heap.pb.gz"),
        "--sample-type",
        "inuse_space",
    ]));
    assert!(!merged.is_empty());
    assert_eq!(merged, separate);
}

#[test]
fn flamegraph_is_flamebearer_json() {
    let out = run(&["flamegraph", &testdata("pprof/heap"), "--max-nodes", "16"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json = stdout(&out);
    assert!(
        json.starts_with("{\"version\":1,\"flamebearer\":{\"names\":[\"total\","),
        "{json}"
    );
    assert!(json.contains("\"metadata\":{\"format\":\"single\",\"spyName\":\"\",\"sampleRate\":100,\"units\":\"bytes\",\"name\":\"alloc_space\"}"), "{json}");
    assert!(json.contains("\"other\""));
}

#[test]
fn errors_name_the_file_and_exit_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let garbage = dir.path().join("garbage.pb");
    std::fs::write(&garbage, b"\x0a\xff\xff\xff\xff\xff not a profile").expect("write");
    let garbage = garbage.display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["collapse".into(), "/no/such/file".into()],
            "cannot read /no/such/file",
        ),
        (
            vec!["collapse".into(), garbage],
            "not a valid pprof profile",
        ),
        (
            vec!["collapse".into(), testdata("pprof/invalid_utf8.pb.gz")],
            "invalid utf8 string hex",
        ),
        (
            vec![
                "collapse".into(),
                testdata("pprof/cpu.pprof"),
                "--sample-type".into(),
                "bogus".into(),
            ],
            "no sample type \"bogus\"",
        ),
        (
            vec![
                "collapse".into(),
                testdata("pprof/cpu.pprof"),
                "--sample-type".into(),
                "9".into(),
            ],
            "out of range",
        ),
        (
            vec![
                "merge".into(),
                testdata("pprof/cpu.pprof"),
                testdata("pprof/heap"),
                "-o".into(),
                dir.path().join("x").display().to_string(),
            ],
            // One thread (a small input): the merger refuses the file; several: descriptions differ.
            "heap: cannot merge: cannot merge profiles with different sample types",
        ),
        (
            vec![
                "flamegraph".into(),
                testdata("pprof/cpu.pprof"),
                testdata("pprof/heap"),
            ],
            "differ from",
        ),
    ];
    for (args, message) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).starts_with("emberscope: "), "{}", stderr(&out));
    }
    // Usage errors are clap's: exit 2.
    assert_eq!(run(&["collapse"]).status.code(), Some(2));
}

/// The file tools' command line is parsed on its own (without the server's options) when the
/// first argument names one: it must read as the whole tree reads it.
#[test]
fn file_tools_parse_alone_as_in_the_whole_command_line() {
    for tool in ["collapse", "merge", "flamegraph"] {
        // `help TOOL` goes through the whole tree, `TOOL --help` through the file tools' own.
        let whole = run(&["help", tool]);
        let alone = run(&[tool, "--help"]);
        assert_eq!(whole.status.code(), Some(0), "{tool}");
        assert_eq!(alone.status.code(), Some(0), "{tool}");
        assert_eq!(stdout(&whole), stdout(&alone), "{tool}");
        assert!(
            stdout(&alone).contains(&format!("Usage: emberscope {tool} ")),
            "{}",
            stdout(&alone)
        );
    }
    let top = stdout(&run(&["--help"]));
    for command in [
        "collapse",
        "merge",
        "flamegraph",
        "serve",
        "upload",
        "query",
    ] {
        assert!(top.contains(&format!("\n  {command} ")), "{command}: {top}");
    }
    let version = run(&["--version"]);
    assert_eq!(
        stdout(&version).trim(),
        format!("emberscope {}", env!("CARGO_PKG_VERSION"))
    );
}

/// Four copies of `heap` (1 MB of input) are decoded on several threads (one per core, the
/// calling thread among them; one thread on a one-core machine) and their parts merged: the
/// merged file and the merged stacks must hold four times one copy's values.
#[test]
fn a_large_input_merges_on_several_threads_to_the_same_result() {
    let dir = tempfile::tempdir().expect("temp dir");
    let heap = testdata("pprof/heap");
    let merged = dir.path().join("merged.pb.gz").display().to_string();
    let out = run(&["merge", &heap, &heap, &heap, &heap, "-o", &merged]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let one = stdout(&run(&["collapse", &heap]));
    let four = stdout(&run(&["collapse", &heap, &heap, &heap, &heap]));
    let from_merged = stdout(&run(&["collapse", &merged]));
    assert!(one.lines().count() > 100, "{one}");
    let scaled: Vec<String> = one
        .lines()
        .map(|line| {
            let (stack, value) = line.rsplit_once(' ').expect("`stack value` lines");
            let value: i64 = value.parse().expect("a number");
            format!("{stack} {}", value * 4)
        })
        .collect();
    assert_eq!(four.lines().collect::<Vec<_>>(), scaled);
    assert_eq!(from_merged, four);
}
