//! No API answers one tenant with another's data: tenant `a` ingests through Push, `/ingest`
//! and OTLP and writes a setting; tenant `b` then asks every read API and finds nothing of it,
//! while `a` finds its own. Requests without a tenant are refused.

mod common;

use common::{Server, request, start, url_encode};

const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

fn as_tenant(
    server: &Server,
    tenant: &str,
    method: &str,
    target: &str,
    body: &str,
) -> (u16, String) {
    let headers = [
        ("X-Scope-OrgID", tenant),
        ("Content-Type", "application/json"),
    ];
    let headers: &[(&str, &str)] = if tenant.is_empty() {
        &headers[1..]
    } else {
        &headers
    };
    request(server, method, target, headers, body.as_bytes())
}

#[test]
fn every_read_api_keeps_tenants_apart() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &["--auth.multitenancy-enabled"]);
    let cpu = std::fs::read(testkit::testdata("pprof/cpu.pprof")).expect("pprof");
    // Tenant a writes through every ingest path.
    let push = serde_json::json!({"series": [{
        "labels": [{"name": "__name__", "value": "process_cpu"}, {"name": "service_name", "value": "secret-a"}],
        "samples": [{"rawProfile": base64::engine::general_purpose::STANDARD.encode(&cpu)}]
    }]});
    assert_eq!(
        as_tenant(
            &server,
            "a",
            "POST",
            "/push.v1.PusherService/Push",
            &push.to_string()
        )
        .0,
        200
    );
    let (status, _) = request(
        &server,
        "POST",
        "/ingest?name=secret-a-ingest&format=pprof",
        &[("X-Scope-OrgID", "a")],
        &cpu,
    );
    assert_eq!(status, 200);
    let otlp = std::fs::read(testkit::testdata("otlp/otel-ebpf-profile.pb.bin")).expect("otlp");
    let (status, _) = request(
        &server,
        "POST",
        "/v1development/profiles",
        &[
            ("X-Scope-OrgID", "a"),
            ("Content-Type", "application/x-protobuf"),
        ],
        &otlp,
    );
    assert_eq!(status, 200);
    assert_eq!(
        as_tenant(
            &server,
            "a",
            "POST",
            "/settings.v1.SettingsService/Set",
            r#"{"setting":{"name":"secret","value":"a-only"}}"#
        )
        .0,
        200
    );

    let range = r#""start":946656000000,"end":4102444800000"#;
    let select_with = |extra: &str| {
        format!(r#"{{"profileTypeID":"{CPU}","labelSelector":"{{}}",{range}{extra}}}"#)
    };
    let select = select_with("");
    let query = url_encode(&format!("{CPU}{{}}"));
    let calls: Vec<(&str, String, String)> = vec![
        (
            "POST",
            "/querier.v1.QuerierService/ProfileTypes".into(),
            "{}".into(),
        ),
        (
            "POST",
            "/querier.v1.QuerierService/LabelNames".into(),
            "{}".into(),
        ),
        (
            "POST",
            "/querier.v1.QuerierService/LabelValues".into(),
            r#"{"name":"service_name"}"#.into(),
        ),
        (
            "POST",
            "/querier.v1.QuerierService/Series".into(),
            "{}".into(),
        ),
        (
            "POST",
            "/querier.v1.QuerierService/SelectMergeStacktraces".into(),
            select.clone(),
        ),
        (
            "POST",
            "/querier.v1.QuerierService/SelectMergeProfile".into(),
            select.clone(),
        ),
        (
            "POST",
            "/querier.v1.QuerierService/SelectSeries".into(),
            select_with(r#","step":60"#),
        ),
        (
            "POST",
            "/querier.v1.QuerierService/SelectMergeSpanProfile".into(),
            select_with(r#","spanSelector":["0000000000000001"]"#),
        ),
        (
            "POST",
            "/querier.v1.QuerierService/Diff".into(),
            format!(r#"{{"left":{select},"right":{select}}}"#),
        ),
        (
            "POST",
            "/querier.v1.QuerierService/GetProfileStats".into(),
            "{}".into(),
        ),
        (
            "POST",
            "/querier.v1.QuerierService/AnalyzeQuery".into(),
            format!(r#"{{{range},"query":"{{}}"}}"#),
        ),
        (
            "POST",
            "/settings.v1.SettingsService/Get".into(),
            "{}".into(),
        ),
        (
            "GET",
            format!("/pyroscope/render?query={query}&from=946656000&until=now"),
            String::new(),
        ),
        (
            "GET",
            format!(
                "/pyroscope/render-diff?leftQuery={query}&leftFrom=946656000&leftUntil=now&rightQuery={query}&rightFrom=946656000&rightUntil=now"
            ),
            String::new(),
        ),
        (
            "GET",
            "/pyroscope/label-values?label=service_name".into(),
            String::new(),
        ),
        (
            "GET",
            "/pyroscope/label-values?label=__name__".into(),
            String::new(),
        ),
    ];
    let secrets = [
        "secret-a",
        "a-only",
        "runtime.mcall",
        CPU,
        "unknown_service",
    ];
    for (method, target, body) in &calls {
        let (status, own) = as_tenant(&server, "a", method, target, body);
        assert_eq!(status, 200, "tenant a {target}: {own}");
        let (status, other) = as_tenant(&server, "b", method, target, body);
        assert_eq!(status, 200, "tenant b {target}: {other}");
        for secret in secrets {
            assert!(
                !other.contains(secret),
                "tenant b sees {secret:?} in {target}: {other}"
            );
        }
        let (status, _) = as_tenant(&server, "", method, target, body);
        assert_eq!(status, 401, "no tenant {target}");
    }
    // Tenant a does see its own data (so the checks above could have failed).
    let (_, names) = as_tenant(
        &server,
        "a",
        "POST",
        "/querier.v1.QuerierService/LabelValues",
        r#"{"name":"service_name"}"#,
    );
    assert!(
        names.contains("secret-a") && names.contains("unknown_service"),
        "{names}"
    );
    let (_, stats) = as_tenant(
        &server,
        "a",
        "POST",
        "/querier.v1.QuerierService/GetProfileStats",
        "{}",
    );
    assert!(stats.contains("\"dataIngested\":true"), "{stats}");
    let (_, stats) = as_tenant(
        &server,
        "b",
        "POST",
        "/querier.v1.QuerierService/GetProfileStats",
        "{}",
    );
    assert_eq!(stats, "{}");
}
