//! The native API and `nuage serve` itself, driven over real HTTP.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{call as send, Options, Server};
use serde_json::{json, Value};

async fn get(s: &Server, token: &str, path: &str) -> (u16, Value) {
    let r = s
        .http()
        .get(format!("{}{path}", s.url()))
        .header("x-auth-token", token)
        .send()
        .await
        .expect("GET");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn assert_error(v: &Value, code: &str) {
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    assert!(
        v["error"]["request_id"]
            .as_str()
            .is_some_and(|m| m.starts_with("req-")),
        "{v}"
    );
}

async fn project_names(s: &Server, token: &str) -> Vec<String> {
    let (st, v) = get(s, token, "/nuage/v1/projects").await;
    assert_eq!(st, 200, "{v}");
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Creates a user with `role` on a new project; returns (project id, token).
async fn member_of_new_project(
    s: &Server,
    admin: &str,
    name: &str,
    role: &str,
) -> (String, String) {
    let (st, p) = send(
        s,
        admin,
        "POST",
        "/nuage/v1/projects",
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    let user = format!("{name}-user");
    let (st, u) = send(
        s,
        admin,
        "POST",
        "/nuage/v1/users",
        Some(json!({"name": user, "password": "password-123", "default_project": name})),
    )
    .await;
    assert_eq!(st, 201, "{u}");
    let (st, v) = send(
        s,
        admin,
        "PUT",
        &format!("/nuage/v1/projects/{name}/users/{user}/roles/{role}"),
        None,
    )
    .await;
    assert_eq!(st, 204, "{v}");
    let token = s.token_for(&user, "password-123", None).await;
    (p["id"].as_str().expect("id").to_string(), token)
}

#[tokio::test]
async fn first_start_bootstraps_and_writes_a_private_admin_env() {
    let s = Server::start();
    let env_path = s.data_dir().join("admin.env");
    let mode = std::fs::metadata(&env_path)
        .expect("admin.env")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "admin.env must be 0600");
    let db_mode = std::fs::metadata(s.data_dir().join("nuage.db"))
        .expect("db")
        .permissions()
        .mode();
    assert_eq!(db_mode & 0o777, 0o600, "the database holds secrets");
    let env = s.env();
    for k in [
        "NUAGE_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "OS_AUTH_URL",
        "OS_USERNAME",
        "OS_PASSWORD",
        "OS_PROJECT_NAME",
        "OS_USER_DOMAIN_NAME",
        "OS_PROJECT_DOMAIN_NAME",
        "OS_IDENTITY_API_VERSION",
    ] {
        assert!(
            env.get(k).is_some_and(|v| !v.is_empty()),
            "admin.env lacks {k}"
        );
    }
    assert_eq!(env["OS_AUTH_URL"], format!("{}/v3", env["NUAGE_URL"]));
    let banner = std::fs::read_to_string(&s.stdout_path).expect("stdout");
    assert!(banner.contains(&env["NUAGE_URL"]), "{banner}");
    // Secrets are in admin.env only: never on stdout, never in the log;
    // the banner says where they are.
    let admin_env = s.data_dir().join("admin.env");
    assert!(
        banner.contains(&admin_env.display().to_string()),
        "the banner does not say where the credentials are: {banner}"
    );
    let log = std::fs::read_to_string(&s.stderr_path).expect("stderr");
    for (what, text) in [("stdout", &banner), ("the log", &log)] {
        assert!(
            !text.contains(&env["OS_PASSWORD"]) && !text.contains(&env["AWS_SECRET_ACCESS_KEY"]),
            "a secret reached {what}: {text}"
        );
    }
    // Logs written to a file carry no colour codes.
    assert!(
        !log.contains('\u{1b}'),
        "ANSI codes in the log file: {log:?}"
    );

    let token = s.admin_token().await;
    let (st, who) = get(&s, &token, "/nuage/v1/tokens/self").await;
    assert_eq!(st, 200);
    assert_eq!(who["user"]["name"], "admin");
    assert_eq!(who["project"]["name"], "admin");
    assert_eq!(who["roles"], json!(["admin", "member", "reader"]));
    let (_, roles) = get(&s, &token, "/nuage/v1/roles").await;
    let names: Vec<_> = roles["items"]
        .as_array()
        .expect("roles")
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(
        names,
        vec![json!("admin"), json!("member"), json!("reader")]
    );
    let (_, d) = get(&s, &token, "/nuage/v1/domains/default").await;
    assert_eq!(d["name"], "Default");
}

#[tokio::test]
async fn restart_keeps_credentials_and_does_not_bootstrap_again() {
    let mut s = Server::start();
    let before = s.env();
    assert!(
        s.terminate().success(),
        "SIGTERM must end nuage cleanly:\n{}",
        s.logs()
    );
    s.spawn();
    let after = s.env();
    assert_eq!(before, after);
    let banner = std::fs::read_to_string(&s.stdout_path).expect("stdout");
    assert_eq!(banner.matches("First start").count(), 1, "{banner}");
    s.admin_token().await;
}

#[tokio::test]
async fn a_crash_between_bootstrap_and_admin_env_loses_no_credentials() {
    let mut s = Server::start();
    let before = s.env();
    s.kill9();
    // As if the process died after the bootstrap committed but before the
    // renamed admin.env reached the disk.
    std::fs::rename(
        s.data_dir().join("admin.env"),
        s.data_dir().join("admin.env.new"),
    )
    .expect("rename");
    s.spawn();
    assert_eq!(s.env(), before);
    s.admin_token().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_ops_endpoints_answer() {
    let s = Server::start();
    let c = s.http();
    for path in [
        "/healthz",
        "/metrics",
        "/nuage/v1",
        "/nuage/v1/projects",
        "/nuage/v1/nope",
    ] {
        let r = c
            .get(format!("{}{path}", s.url()))
            .send()
            .await
            .expect("GET");
        for h in ["x-request-id", "x-openstack-request-id", "x-amz-request-id"] {
            assert!(r.headers().get(h).is_some(), "{path} lacks {h}");
        }
    }
    let m = c
        .get(format!("{}/metrics", s.url()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(m.contains("nuage_http_requests_total"), "{m}");
    assert!(m.contains("nuage_http_request_duration_seconds"), "{m}");
    let api: Value = c
        .get(format!("{}/nuage/v1/openapi.json", s.url()))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    assert!(
        api["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{api}"
    );
}

#[tokio::test]
async fn project_and_user_lifecycle_with_quotas() {
    let s = Server::start();
    let admin = s.admin_token().await;
    let (st, p) = send(
        &s,
        &admin,
        "POST",
        "/nuage/v1/projects",
        Some(json!({"name": "web", "description": "d"})),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    assert_eq!(p["version"], 1);
    let (st, p2) = send(
        &s,
        &admin,
        "PATCH",
        "/nuage/v1/projects/web",
        Some(json!({"description": "e", "version": 1})),
    )
    .await;
    assert_eq!(st, 200, "{p2}");
    assert_eq!(p2["version"], 2);
    // A stale version is refused: no silent overwrite.
    let (st, e) = send(
        &s,
        &admin,
        "PATCH",
        "/nuage/v1/projects/web",
        Some(json!({"description": "f", "version": 1})),
    )
    .await;
    assert_eq!(st, 409, "{e}");
    assert_error(&e, "conflict");
    let (_, p3) = get(&s, &admin, "/nuage/v1/projects/web").await;
    assert_eq!(p3["description"], "e");

    let (st, q) = send(
        &s,
        &admin,
        "PUT",
        "/nuage/v1/projects/web/quotas",
        Some(json!({"instances": 3, "bytes": -1})),
    )
    .await;
    assert_eq!(st, 200, "{q}");
    assert_eq!(q["quotas"]["instances"], 3);
    assert_eq!(q["quotas"]["bytes"], -1);
    assert_eq!(q["quotas"]["cores"], 40, "defaults fill the rest");
    let (st, e) = send(
        &s,
        &admin,
        "PUT",
        "/nuage/v1/projects/web/quotas",
        Some(json!({"instances": 5, "nonsense": 1})),
    )
    .await;
    assert_eq!(st, 400, "{e}");
    let (_, q2) = get(&s, &admin, "/nuage/v1/projects/web/quotas").await;
    assert_eq!(
        q2["quotas"]["instances"], 3,
        "a refused quota update changes nothing"
    );

    let (st, _) = send(&s, &admin, "DELETE", "/nuage/v1/projects/web", None).await;
    assert_eq!(st, 204);
    let (st, e) = get(&s, &admin, "/nuage/v1/projects/web").await;
    assert_eq!(st, 404);
    assert_error(&e, "not_found");
}

#[tokio::test]
async fn members_readers_and_other_projects() {
    let s = Server::start();
    let admin = s.admin_token().await;
    let (p1, member) = member_of_new_project(&s, &admin, "alpha", "member").await;
    let (p2, reader) = member_of_new_project(&s, &admin, "beta", "reader").await;

    // A member reads its own project and quotas, not another's.
    let (st, _) = get(&s, &member, &format!("/nuage/v1/projects/{p1}/quotas")).await;
    assert_eq!(st, 200);
    let (st, e) = get(&s, &member, &format!("/nuage/v1/projects/{p2}/quotas")).await;
    assert_eq!(st, 403, "{e}");
    assert_error(&e, "forbidden");
    let (st, _) = get(&s, &member, &format!("/nuage/v1/projects/{p2}")).await;
    assert_eq!(st, 404, "another project is invisible");
    assert_eq!(project_names(&s, &member).await, vec!["alpha"]);
    let (st, users) = get(&s, &member, "/nuage/v1/users").await;
    assert_eq!(st, 200);
    assert_eq!(
        users["items"].as_array().map(Vec::len),
        Some(1),
        "a member sees only itself"
    );

    // Identity administration needs admin.
    let before = project_names(&s, &admin).await;
    let (st, e) = send(
        &s,
        &member,
        "POST",
        "/nuage/v1/projects",
        Some(json!({"name": "evil"})),
    )
    .await;
    assert_eq!(st, 403, "{e}");
    let (st, _) = send(
        &s,
        &member,
        "PUT",
        &format!("/nuage/v1/projects/{p2}/users/alpha-user/roles/member"),
        None,
    )
    .await;
    assert_eq!(st, 403);
    let (st, _) = send(
        &s,
        &reader,
        "PUT",
        "/nuage/v1/projects/beta/quotas",
        Some(json!({"instances": 100})),
    )
    .await;
    assert_eq!(st, 403);
    assert_eq!(
        project_names(&s, &admin).await,
        before,
        "refused calls changed nothing"
    );

    // A member may make access keys for itself, on its own project only.
    let (st, k) = send(
        &s,
        &member,
        "POST",
        "/nuage/v1/users/alpha-user/access-keys",
        None,
    )
    .await;
    assert_eq!(st, 201, "{k}");
    assert!(k["secret"].as_str().is_some_and(|x| x.len() == 40));
    let (st, _) = send(
        &s,
        &member,
        "POST",
        "/nuage/v1/users/alpha-user/access-keys",
        Some(json!({"project": "beta"})),
    )
    .await;
    assert_eq!(st, 403);
    let (st, _) = send(
        &s,
        &member,
        "POST",
        "/nuage/v1/users/beta-user/access-keys",
        None,
    )
    .await;
    assert_eq!(st, 403);
    let (_, list) = get(&s, &member, "/nuage/v1/users/alpha-user/access-keys").await;
    assert!(
        list["items"][0].get("secret").is_none(),
        "listing never shows secrets: {list}"
    );

    // Removing the role takes effect at once for existing tokens.
    let (st, _) = send(
        &s,
        &admin,
        "DELETE",
        "/nuage/v1/projects/alpha/users/alpha-user/roles/member",
        None,
    )
    .await;
    assert_eq!(st, 204);
    let (st, e) = get(&s, &member, "/nuage/v1/tokens/self").await;
    assert_eq!(st, 401, "{e}");
}

#[tokio::test]
async fn tokens_revoked_expired_or_forged_are_refused() {
    let s = Server::start_with(Options::default());
    let admin = s.admin_token().await;
    let other = s.admin_token().await;
    let (st, _) = send(&s, &admin, "DELETE", "/nuage/v1/tokens/self", None).await;
    assert_eq!(st, 204);
    let (st, e) = get(&s, &admin, "/nuage/v1/projects").await;
    assert_eq!(st, 401, "{e}");
    assert_error(&e, "unauthenticated");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("revoked"),
        "{e}"
    );
    let (st, _) = get(&s, &other, "/nuage/v1/projects").await;
    assert_eq!(st, 200, "revoking one token leaves the others");

    let mut forged = other.clone();
    forged.pop();
    forged.push(if other.ends_with('A') { 'B' } else { 'A' });
    let (st, _) = get(&s, &forged, "/nuage/v1/projects").await;
    assert_eq!(st, 401);
    let (st, _) = get(&s, "garbage", "/nuage/v1/projects").await;
    assert_eq!(st, 401);

    // Wrong password and unknown user get the same answer.
    for (u, p) in [("admin", "wrong-password"), ("nobody", "whatever-pw")] {
        let r = s
            .http()
            .post(format!("{}/nuage/v1/tokens", s.url()))
            .json(&json!({"user": u, "password": p}))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 401);
        let v: Value = r.json().await.expect("json");
        assert_eq!(
            v["error"]["message"],
            "the request could not be authenticated: the user name or password is wrong"
        );
    }
}

#[tokio::test]
async fn tokens_expire() {
    let dir_cfg = tempfile::NamedTempFile::new().expect("cfg");
    std::fs::write(dir_cfg.path(), "token_ttl_secs = 1\n").expect("write cfg");
    let s = Server::start_with(Options {
        env: vec![("NUAGE_CONFIG".into(), dir_cfg.path().display().to_string())],
        ..Options::default()
    });
    let t = s.admin_token().await;
    let (st, _) = get(&s, &t, "/nuage/v1/projects").await;
    assert_eq!(st, 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (st, e) = get(&s, &t, "/nuage/v1/projects").await;
    assert_eq!(st, 401);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("expired"),
        "{e}"
    );
}

#[tokio::test]
async fn bad_input_is_refused_in_the_native_dialect_and_changes_nothing() {
    let s = Server::start();
    let admin = s.admin_token().await;
    let url = format!("{}/nuage/v1/projects", s.url());
    let before = project_names(&s, &admin).await;
    let c = s.http();

    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "malformed json",
            c.post(&url)
                .header("content-type", "application/json")
                .body("{\"name\": "),
            400,
            "invalid_request",
        ),
        (
            "wrong content type",
            c.post(&url)
                .header("content-type", "text/plain")
                .body("{\"name\":\"x\"}"),
            415,
            "unsupported_media_type",
        ),
        (
            "unknown field",
            c.post(&url).json(&json!({"name": "x", "colour": "red"})),
            400,
            "invalid_request",
        ),
        (
            "missing field",
            c.post(&url).json(&json!({"description": "x"})),
            400,
            "invalid_request",
        ),
        (
            "wrong type",
            c.post(&url).json(&json!({"name": 7})),
            400,
            "invalid_request",
        ),
        (
            "empty name",
            c.post(&url).json(&json!({"name": "  "})),
            400,
            "invalid_request",
        ),
        (
            "control chars",
            c.post(&url).json(&json!({"name": "a\u{7}b"})),
            400,
            "invalid_request",
        ),
        (
            "too long name",
            c.post(&url).json(&json!({"name": "x".repeat(65)})),
            400,
            "invalid_request",
        ),
        (
            "duplicate name",
            c.post(&url).json(&json!({"name": "admin"})),
            409,
            "already_exists",
        ),
        (
            "oversized body",
            // Just over the limit, on a connection of its own: the server
            // answers 413 and closes without reading the rest.
            s.http()
                .post(&url)
                .header("content-type", "application/json")
                .body(format!("{{\"name\":\"{}\"}}", "x".repeat((1 << 20) + 1024))),
            413,
            "too_large",
        ),
        (
            "unknown domain",
            c.post(&url).json(&json!({"name": "x", "domain": "nope"})),
            400,
            "invalid_request",
        ),
    ];
    for (what, rb, status, code) in cases {
        let r = rb.header("x-auth-token", &admin).send().await.expect(what);
        assert_eq!(r.status().as_u16(), status, "{what}");
        let v: Value = r.json().await.expect(what);
        assert_error(&v, code);
    }
    for (what, method, path) in [
        ("invalid project id", "GET", "/nuage/v1/projects/not-an-id"),
        (
            "invalid user id",
            "DELETE",
            "/nuage/v1/users/0123456789abcdef0123456789abcdef",
        ),
        (
            "invalid role",
            "PUT",
            "/nuage/v1/projects/admin/users/admin/roles/nope",
        ),
        ("unknown route", "GET", "/nuage/v1/frobnicators"),
    ] {
        let (st, v) = send(&s, &admin, method, path, None).await;
        assert_eq!(st, 404, "{what}: {v}");
        assert_error(&v, "not_found");
    }
    let (st, v) = send(
        &s,
        &admin,
        "POST",
        "/nuage/v1/users",
        Some(json!({"name": "weak", "password": "short"})),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = send(&s, &admin, "DELETE", "/nuage/v1/roles/admin", None).await;
    assert_eq!(st, 409, "built-in roles stay: {v}");
    let (st, _) = send(&s, &admin, "DELETE", "/nuage/v1/projects/admin", None).await;
    assert_eq!(st, 409, "the token's own project can't be deleted under it");
    assert_eq!(project_names(&s, &admin).await, before);
    let (_, users) = get(&s, &admin, "/nuage/v1/users").await;
    assert_eq!(users["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn sigv4_signed_requests_authenticate_on_the_native_api() {
    let s = Server::start();
    let env = s.env();
    // botocore signs; nuage verifies with the shared SigV4 component.
    let script = r#"
import os, sys, botocore.auth, botocore.credentials, botocore.awsrequest, urllib.request
creds = botocore.credentials.Credentials(os.environ['AWS_ACCESS_KEY_ID'], os.environ[sys.argv[2]])
req = botocore.awsrequest.AWSRequest(method='GET', url=os.environ['NUAGE_URL'] + '/nuage/v1/tokens/self')
botocore.auth.SigV4Auth(creds, 'nuage', os.environ['AWS_DEFAULT_REGION']).add_auth(req)
r = urllib.request.Request(req.url, headers=dict(req.headers.items()), method='GET')
try:
    print(urllib.request.urlopen(r).status)
except urllib.error.HTTPError as e:
    print(e.code)
"#;
    let (ok, out, err) =
        common::run(
            s.client("python3")
                .args(["-c", script, "x", "AWS_SECRET_ACCESS_KEY"]),
        );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "200", "{err}");
    let (ok, out, err) = common::run(
        s.client("python3")
            .env("WRONG", "x".repeat(40))
            .args(["-c", script, "x", "WRONG"]),
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "403", "a wrong secret is refused");
    assert!(env.contains_key("AWS_SECRET_ACCESS_KEY"));
}

/// kill -9 while clients create projects: everything acknowledged is there
/// after the restart.
#[tokio::test]
async fn kill_9_loses_nothing_acknowledged() {
    let mut s = Server::start();
    let admin = s.admin_token().await;
    let url = format!("{}/nuage/v1/projects", s.url());
    let http = s.http();
    let writer = {
        let (url, admin, http) = (url.clone(), admin.clone(), http.clone());
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..10_000 {
                let name = format!("p{i}");
                match http
                    .post(&url)
                    .header("x-auth-token", &admin)
                    .json(&json!({"name": name}))
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 201 => acked.push(name),
                    _ => break,
                }
            }
            acked
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    s.kill9();
    let acked = writer.await.expect("writer");
    assert!(
        acked.len() > 5,
        "the writer made progress ({} projects)",
        acked.len()
    );
    s.spawn();
    let admin = s.admin_token().await;
    let names = project_names(&s, &admin).await;
    for n in &acked {
        assert!(
            names.contains(n),
            "acknowledged project {n} lost after kill -9"
        );
    }
}

#[tokio::test]
async fn tls_serves_https_with_nuages_own_ca() {
    let s = Server::start_with(Options {
        tls: true,
        ..Options::default()
    });
    let env = s.env();
    assert!(
        env["NUAGE_URL"].starts_with("https://localhost:"),
        "{env:?}"
    );
    for k in ["AWS_CA_BUNDLE", "OS_CACERT", "NUAGE_CACERT"] {
        assert_eq!(
            env[k],
            s.data_dir().join("tls/ca.pem").display().to_string()
        );
    }
    let key_mode = std::fs::metadata(s.data_dir().join("tls/ca-key.pem"))
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    s.admin_token().await;
    // A client that doesn't trust the CA is refused by TLS itself.
    let plain = reqwest::Client::builder().build().expect("client");
    assert!(plain
        .get(format!("{}/healthz", s.url()))
        .send()
        .await
        .is_err());
    // curl verifies with the exported bundle.
    let (ok, out, err) = common::run(s.client("curl").args([
        "-sS",
        "--cacert",
        &env["NUAGE_CACERT"],
        &format!("{}/healthz", env["NUAGE_URL"]),
    ]));
    assert!(ok, "{err}");
    assert_eq!(out, "ok\n");
}

#[tokio::test]
async fn postgres_serves_the_same_api() {
    let mut s = Server::start_postgres().await;
    let admin = s.admin_token().await;
    let (st, p) = send(
        &s,
        &admin,
        "POST",
        "/nuage/v1/projects",
        Some(json!({"name": "on-pg"})),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    let (st, e) = send(
        &s,
        &admin,
        "POST",
        "/nuage/v1/projects",
        Some(json!({"name": "on-pg"})),
    )
    .await;
    assert_eq!(st, 409, "{e}");
    s.kill9();
    s.spawn();
    let admin = s.admin_token().await;
    assert!(project_names(&s, &admin)
        .await
        .contains(&"on-pg".to_string()));
}

#[tokio::test]
async fn json_logs_are_json_and_hold_no_secrets() {
    let s = Server::start_with(Options {
        env: vec![("NUAGE_LOG_FORMAT".into(), "json".into())],
        ..Options::default()
    });
    let admin = s.admin_token().await;
    let (st, _) = get(&s, "nu1_bogus", "/nuage/v1/projects").await;
    assert_eq!(st, 401);
    let (st, _) = get(&s, &admin, "/nuage/v1/projects/nope").await;
    assert_eq!(st, 404);
    let log = std::fs::read_to_string(&s.stderr_path).expect("log");
    let mut refused = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["fields"]["message"] == "request refused" {
            refused += 1;
        }
    }
    assert!(refused >= 2, "refused requests are logged:\n{log}");
    let env = s.env();
    assert!(
        !log.contains(&env["OS_PASSWORD"])
            && !log.contains(&admin)
            && !log.contains(&env["AWS_SECRET_ACCESS_KEY"])
    );
}

/// A native token request: status, `Retry-After`, body.
async fn native_login(s: &Server, user: &str, password: &str) -> (u16, Option<String>, Value) {
    let r = s
        .http()
        .post(format!("{}/nuage/v1/tokens", s.url()))
        .json(&json!({"user": user, "password": password}))
        .send()
        .await
        .expect("post");
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (
        r.status().as_u16(),
        retry,
        r.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn own_password_changes_need_the_original_admins_set_others() {
    let s = Server::start();
    let admin = s.admin_token().await;
    let (_, me) = member_of_new_project(&s, &admin, "pwn", "member").await;
    let path = "/nuage/v1/users/pwn-user";
    let new = "password-456";

    // Without the original, or with a wrong one: refused, nothing changed.
    let (st, e) = send(&s, &me, "PATCH", path, Some(json!({"password": new}))).await;
    assert_eq!(st, 403, "{e}");
    assert_error(&e, "forbidden");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("original password"),
        "{e}"
    );
    let (st, e) = send(
        &s,
        &me,
        "PATCH",
        path,
        Some(json!({"password": new, "original_password": "not-the-one"})),
    )
    .await;
    assert_eq!(st, 401, "{e}");
    assert_error(&e, "unauthenticated");
    assert_eq!(native_login(&s, "pwn-user", new).await.0, 401);
    assert_eq!(
        get(&s, &me, "/nuage/v1/tokens/self").await.0,
        200,
        "tokens kept"
    );
    let (st, e) = send(
        &s,
        &me,
        "PATCH",
        path,
        Some(json!({"original_password": "password-123"})),
    )
    .await;
    assert_eq!(st, 400, "{e}");

    // With it: changed, and the old tokens are revoked.
    let (st, u) = send(
        &s,
        &me,
        "PATCH",
        path,
        Some(json!({"password": new, "original_password": "password-123"})),
    )
    .await;
    assert_eq!(st, 200, "{u}");
    assert_eq!(u["name"], "pwn-user");
    assert_eq!(get(&s, &me, "/nuage/v1/tokens/self").await.0, 401);
    assert_eq!(native_login(&s, "pwn-user", "password-123").await.0, 401);
    assert_eq!(native_login(&s, "pwn-user", new).await.0, 201);

    // An admin sets another user's password without it.
    let (st, u) = send(
        &s,
        &admin,
        "PATCH",
        path,
        Some(json!({"password": "password-789"})),
    )
    .await;
    assert_eq!(st, 200, "{u}");
    assert_eq!(native_login(&s, "pwn-user", "password-789").await.0, 201);
}

#[tokio::test]
async fn native_logins_are_throttled_with_retry_after() {
    let s = Server::start();
    let admin = s.admin_token().await;
    member_of_new_project(&s, &admin, "thr", "member").await;
    for _ in 0..5 {
        let (st, _, e) = native_login(&s, "thr-user", "wrong-password").await;
        assert_eq!(st, 401, "{e}");
    }
    let (st, retry, e) = native_login(&s, "thr-user", "password-123").await;
    assert_eq!(st, 429, "{e}");
    assert_error(&e, "too_many_requests");
    assert!(retry
        .and_then(|r| r.parse::<u64>().ok())
        .is_some_and(|r| r >= 1));
    // The same answer for a name nobody has, once it failed as often.
    for _ in 0..5 {
        assert_eq!(
            native_login(&s, "thr-nobody", "wrong-password").await.0,
            401
        );
    }
    let (st, _, e2) = native_login(&s, "thr-nobody", "password-123").await;
    assert_eq!(st, 429);
    assert_eq!(
        e2["error"]["message"].as_str().map(|m| m.split(';').next()),
        e["error"]["message"].as_str().map(|m| m.split(';').next())
    );
    let (st, _) = send(
        &s,
        &admin,
        "DELETE",
        "/nuage/v1/login-lockouts?user=thr-user",
        None,
    )
    .await;
    assert_eq!(st, 204);
    assert_eq!(native_login(&s, "thr-user", "password-123").await.0, 201);
}
