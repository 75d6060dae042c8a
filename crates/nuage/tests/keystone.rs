//! The Keystone v3 dialect, driven by the real `openstack` CLI
//! (python3-openstackclient) and by raw HTTP for the inputs a client would
//! never send.

mod common;

use common::Server;
use serde_json::{json, Value};

/// A response: status, `X-Subject-Token` and `WWW-Authenticate` if any, and
/// the JSON body (`Null` when there is none).
struct Resp {
    status: u16,
    subject: Option<String>,
    www: Option<String>,
    body: Value,
}

async fn call(
    s: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Resp {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut rb = s.http().request(m, format!("{}{path}", s.url()));
    if let Some(t) = token {
        rb = rb.header("x-auth-token", t);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    finish(rb).await
}

async fn finish(rb: reqwest::RequestBuilder) -> Resp {
    let r = rb.send().await.expect("request");
    let header = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let subject = header("x-subject-token");
    let www = header("www-authenticate");
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    Resp {
        status,
        subject,
        www,
        body,
    }
}

/// Keystone's error shape, with the status repeated as a number.
fn assert_error(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{}", r.body);
    let e = &r.body["error"];
    assert_eq!(e["code"], json!(status), "{}", r.body);
    assert!(
        e["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{}",
        r.body
    );
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        r.body
    );
    if status == 401 {
        let www = r.www.as_deref().unwrap_or_default();
        assert!(
            www.starts_with("Keystone uri=") && www.contains("/v3"),
            "{www:?}"
        );
    }
}

fn password_auth(user: &str, password: &str, project: Option<&str>) -> Value {
    let mut auth = json!({
        "identity": {
            "methods": ["password"],
            "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": password}},
        }
    });
    if let Some(p) = project {
        auth["scope"] = json!({"project": {"name": p, "domain": {"id": "default"}}});
    }
    json!({ "auth": auth })
}

/// A token for `user` in the Default domain, or the failed response.
async fn login(
    s: &Server,
    user: &str,
    password: &str,
    project: Option<&str>,
) -> Result<String, Resp> {
    let r = call(
        s,
        "POST",
        "/v3/auth/tokens",
        None,
        Some(password_auth(user, password, project)),
    )
    .await;
    match (r.status, &r.subject) {
        (201, Some(t)) => Ok(t.clone()),
        _ => Err(r),
    }
}

async fn admin_token(s: &Server) -> String {
    let pw = s.env().get("OS_PASSWORD").cloned().expect("OS_PASSWORD");
    match login(s, "admin", &pw, Some("admin")).await {
        Ok(t) => t,
        Err(r) => panic!("admin login: {} {}", r.status, r.body),
    }
}

/// Names of the projects `token` can list.
async fn project_names(s: &Server, token: &str) -> Vec<String> {
    let r = call(s, "GET", "/v3/projects", Some(token), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut names: Vec<String> = r.body["projects"]
        .as_array()
        .expect("projects")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

async fn create(s: &Server, token: &str, path: &str, key: &str, body: Value) -> Value {
    let r = call(s, "POST", path, Some(token), Some(json!({ key: body }))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body[key].clone()
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

async fn role_id(s: &Server, token: &str, name: &str) -> String {
    let r = call(
        s,
        "GET",
        &format!("/v3/roles?name={name}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    id(&r.body["roles"][0])
}

/// A project, a user with `password` and `member` on it; returns their ids.
async fn member_setup(s: &Server, admin: &str, name: &str, password: &str) -> (String, String) {
    let p = create(
        s,
        admin,
        "/v3/projects",
        "project",
        json!({"name": name, "domain_id": "default"}),
    )
    .await;
    let u = create(
        s,
        admin,
        "/v3/users",
        "user",
        json!({"name": format!("{name}-user"), "password": password, "default_project_id": id(&p)}),
    )
    .await;
    let member = role_id(s, admin, "member").await;
    let r = call(
        s,
        "PUT",
        &format!("/v3/projects/{}/users/{}/roles/{member}", id(&p), id(&u)),
        Some(admin),
        None,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    (id(&p), id(&u))
}

// ------------------------------------------------------------------ openstack CLI

/// Runs `openstack ARGS -f json` with admin.env plus `env`; returns the
/// parsed output, or the stderr on failure.
fn osc(s: &Server, env: &[(&str, &str)], args: &[&str]) -> Result<Value, String> {
    let mut c = s.client("openstack");
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(args);
    let json_out = !matches!(args.first(), Some(&"role") if args.get(1) == Some(&"add"))
        && !args.contains(&"delete");
    if json_out {
        c.args(["-f", "json"]);
    }
    let (ok, out, err) = common::run(&mut c);
    if !ok {
        return Err(err);
    }
    if !json_out {
        return Ok(Value::Null);
    }
    serde_json::from_str(&out).map_err(|e| format!("output is not JSON ({e}): {out}\n{err}"))
}

fn osc_ok(s: &Server, env: &[(&str, &str)], args: &[&str]) -> Value {
    osc(s, env, args).unwrap_or_else(|e| panic!("openstack {}: {e}", args.join(" ")))
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .expect("list")
        .iter()
        .map(|x| x[key].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn openstack_cli_manages_identity() {
    let s = Server::start();
    let env = s.env();
    let none: &[(&str, &str)] = &[];

    let tok = osc_ok(&s, none, &["token", "issue"]);
    assert!(tok["id"].as_str().is_some_and(|t| !t.is_empty()), "{tok}");
    let admin_project = tok["project_id"].as_str().expect("project_id").to_string();
    let admin_user = tok["user_id"].as_str().expect("user_id").to_string();
    assert!(tok["expires"].as_str().is_some(), "{tok}");

    let p = osc_ok(
        &s,
        none,
        &[
            "project",
            "create",
            "--description",
            "from the CLI",
            "cli-proj",
        ],
    );
    assert_eq!(p["name"], "cli-proj", "{p}");
    assert_eq!(p["domain_id"], "default", "{p}");
    assert_eq!(p["enabled"], true, "{p}");
    let proj = id(&p);
    let list = osc_ok(&s, none, &["project", "list"]);
    let mut listed = names(&list, "Name");
    listed.sort();
    assert_eq!(listed, ["admin", "cli-proj"], "{list}");
    let shown = osc_ok(&s, none, &["project", "show", "cli-proj"]);
    assert_eq!(shown["id"], json!(proj), "{shown}");
    assert_eq!(shown["description"], "from the CLI", "{shown}");

    let pw = "Cli-user-pass-1234";
    let u = osc_ok(
        &s,
        none,
        &[
            "user",
            "create",
            "--password",
            pw,
            "--project",
            "cli-proj",
            "cli-user",
        ],
    );
    assert_eq!(u["name"], "cli-user", "{u}");
    assert_eq!(u["default_project_id"], json!(proj), "{u}");
    let user = id(&u);
    assert!(names(&osc_ok(&s, none, &["user", "list"]), "Name").contains(&"cli-user".to_string()));

    osc_ok(
        &s,
        none,
        &[
            "role",
            "add",
            "--project",
            "cli-proj",
            "--user",
            "cli-user",
            "member",
        ],
    );
    let assignments = osc_ok(&s, none, &["role", "assignment", "list", "--names"]);
    let rows = assignments.as_array().expect("assignments");
    assert!(
        rows.iter().any(|a| a["Role"] == "member"
            && a["User"] == "cli-user@Default"
            && a["Project"] == "cli-proj@Default"),
        "{assignments}"
    );
    assert!(
        rows.iter().any(|a| a["Role"] == "admin"
            && a["User"] == "admin@Default"
            && a["Project"] == "admin@Default"),
        "{assignments}"
    );

    // EC2 credentials: the admin's own, on its project.
    let c = osc_ok(&s, none, &["ec2", "credentials", "create"]);
    let access = c["access"].as_str().expect("access").to_string();
    assert_eq!(c["secret"].as_str().map(str::len), Some(40), "{c}");
    assert_eq!(c["project_id"], json!(admin_project), "{c}");
    assert_eq!(c["user_id"], json!(admin_user), "{c}");
    let creds = osc_ok(&s, none, &["ec2", "credentials", "list"]);
    let accesses = names(&creds, "Access");
    assert!(accesses.contains(&access), "{creds}");
    assert!(
        accesses.contains(&env["AWS_ACCESS_KEY_ID"]),
        "the bootstrap key is listed: {creds}"
    );
    osc_ok(&s, none, &["ec2", "credentials", "delete", &access]);
    let creds = osc_ok(&s, none, &["ec2", "credentials", "list"]);
    assert!(!names(&creds, "Access").contains(&access), "{creds}");

    // The new user logs in with its own password.
    let as_user = [
        ("OS_USERNAME", "cli-user"),
        ("OS_PASSWORD", pw),
        ("OS_PROJECT_NAME", "cli-proj"),
    ];
    let t = osc_ok(&s, &as_user, &["token", "issue"]);
    assert_eq!(t["project_id"], json!(proj), "{t}");
    assert_eq!(t["user_id"], json!(user), "{t}");
    // A member cannot create projects...
    let err = osc(&s, &as_user, &["project", "create", "not-allowed"])
        .expect_err("member created a project");
    assert!(err.contains("HTTP 403"), "{err}");
    // ... sees only its own project, and cannot see another one.
    let theirs = osc_ok(&s, &as_user, &["project", "list"]);
    assert_eq!(names(&theirs, "Name"), ["cli-proj"], "{theirs}");
    let err =
        osc(&s, &as_user, &["project", "show", "admin"]).expect_err("member saw the admin project");
    assert!(err.contains("No project"), "{err}");
    // It makes EC2 credentials for itself, on its project.
    let c = osc_ok(&s, &as_user, &["ec2", "credentials", "create"]);
    assert_eq!(c["project_id"], json!(proj), "{c}");
    assert_eq!(c["user_id"], json!(user), "{c}");

    let admin = admin_token(&s).await;
    assert_eq!(
        project_names(&s, &admin).await,
        ["admin", "cli-proj"],
        "the refused create changed nothing"
    );

    osc_ok(&s, none, &["user", "delete", "cli-user"]);
    osc_ok(&s, none, &["project", "delete", "cli-proj"]);
    assert_eq!(
        names(&osc_ok(&s, none, &["project", "list"]), "Name"),
        ["admin"]
    );
    let users = osc_ok(&s, none, &["user", "list"]);
    assert_eq!(names(&users, "Name"), ["admin"], "{users}");
}

// ------------------------------------------------------------------ raw HTTP

#[tokio::test]
async fn version_document_for_discovery() {
    let s = Server::start();
    for path in ["/v3", "/v3/"] {
        let r = call(&s, "GET", path, None, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let v = &r.body["version"];
        assert_eq!(v["id"], "v3.14", "{v}");
        assert_eq!(v["status"], "stable", "{v}");
        assert!(v["updated"].as_str().is_some(), "{v}");
        assert_eq!(v["links"][0]["rel"], "self", "{v}");
        assert_eq!(
            v["links"][0]["href"],
            json!(format!("{}/v3/", s.url())),
            "{v}"
        );
        assert_eq!(
            v["media-types"][0]["type"], "application/vnd.openstack.identity-v3+json",
            "{v}"
        );
    }
    // Anything else needs a token, and says where to get one.
    let r = call(&s, "GET", "/v3/projects", None, None).await;
    assert_error(&r, 401);
    let r = call(
        &s,
        "GET",
        "/v3/no-such-thing",
        Some(&admin_token(&s).await),
        None,
    )
    .await;
    assert_error(&r, 404);
}

#[tokio::test]
async fn token_lifecycle() {
    let s = Server::start();
    let env = s.env();
    let pw = env["OS_PASSWORD"].clone();

    // Password, by user and project name.
    let r = call(
        &s,
        "POST",
        "/v3/auth/tokens",
        None,
        Some(password_auth("admin", &pw, Some("admin"))),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let token = r.subject.clone().expect("X-Subject-Token");
    let t = &r.body["token"];
    assert_eq!(t["methods"], json!(["password"]), "{t}");
    assert_eq!(t["user"]["name"], "admin");
    assert_eq!(
        t["user"]["domain"],
        json!({"id": "default", "name": "Default"})
    );
    assert_eq!(t["user"]["password_expires_at"], Value::Null);
    assert_eq!(t["project"]["name"], "admin");
    assert_eq!(
        t["project"]["domain"],
        json!({"id": "default", "name": "Default"})
    );
    assert_eq!(t["is_domain"], false);
    let role_names: Vec<&str> = t["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        role_names.contains(&"admin") && role_names.contains(&"member"),
        "{t}"
    );
    assert!(
        t["roles"][0]["id"].as_str().is_some_and(|i| i.len() == 32),
        "{t}"
    );
    for k in ["expires_at", "issued_at"] {
        let ts = t[k].as_str().expect(k);
        assert!(
            ts.len() == 27 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.',
            "{k}: {ts}"
        );
    }
    // A password token names only its own audit id.
    let audit_id = t["audit_ids"][0].as_str().expect("audit id").to_string();
    assert_eq!(t["audit_ids"], json!([audit_id]), "{t}");
    assert_eq!(audit_id.len(), 32, "{t}");
    let identity = t["catalog"]
        .as_array()
        .expect("catalog")
        .iter()
        .find(|c| c["type"] == "identity")
        .expect("identity in the catalog");
    assert_eq!(identity["name"], "keystone");
    let eps = identity["endpoints"].as_array().expect("endpoints");
    let mut interfaces: Vec<&str> = eps.iter().filter_map(|e| e["interface"].as_str()).collect();
    interfaces.sort();
    assert_eq!(interfaces, ["admin", "internal", "public"]);
    for e in eps {
        assert_eq!(e["url"], json!(format!("{}/v3", s.url())), "{e}");
        assert_eq!(e["region_id"], json!(env["OS_REGION_NAME"]), "{e}");
        assert_eq!(e["region"], json!(env["OS_REGION_NAME"]), "{e}");
    }
    let user_id = t["user"]["id"].as_str().expect("user id").to_string();
    let project_id = t["project"]["id"].as_str().expect("project id").to_string();

    // Password by user id and project id, without the catalog.
    let by_id = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"id": user_id, "password": pw}}},
        "scope": {"project": {"id": project_id}},
    }});
    let r = call(&s, "POST", "/v3/auth/tokens?nocatalog", None, Some(by_id)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body["token"].get("catalog").is_none(), "{}", r.body);
    assert_eq!(r.body["token"]["project"]["id"], json!(project_id));

    // Unscoped: the user's default project.
    let r = call(
        &s,
        "POST",
        "/v3/auth/tokens",
        None,
        Some(password_auth("admin", &pw, None)),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["token"]["project"]["id"], json!(project_id));

    // Token method, as keystoneauth rescopes.
    let rescope = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": token}}, "scope": "unscoped"}});
    let r = call(&s, "POST", "/v3/auth/tokens", None, Some(rescope)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["token"]["methods"], json!(["token"]));
    let second = r.subject.clone().expect("X-Subject-Token");
    // As Keystone: its own audit id, then the original's (the chain's).
    let ids = r.body["token"]["audit_ids"].clone();
    assert_eq!(ids.as_array().map(Vec::len), Some(2), "{ids}");
    assert_eq!(ids[1], json!(audit_id), "{ids}");
    assert_ne!(ids[0], json!(audit_id), "{ids}");

    // Validation: GET gives the same body, HEAD the status.
    let check = |method: &'static str, subject: String| {
        let rb = s
            .http()
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}/v3/auth/tokens", s.url()),
            )
            .header("x-auth-token", &token)
            .header("x-subject-token", subject);
        finish(rb)
    };
    let r = check("GET", second.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.subject.as_deref(), Some(second.as_str()));
    assert_eq!(r.body["token"]["user"]["id"], json!(user_id));
    assert!(r.body["token"]["catalog"].is_array());
    assert_eq!(
        r.body["token"]["audit_ids"], ids,
        "validation shows the chain"
    );
    assert_eq!(check("HEAD", second.clone()).await.status, 200);
    assert_error(&check("GET", "nu1_not-a-token".into()).await, 404);
    assert_eq!(check("HEAD", "garbage".into()).await.status, 404);

    // Catalog and projects for the token.
    let r = call(&s, "GET", "/v3/auth/catalog", Some(&token), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["catalog"][0]["type"], "identity");
    let r = call(&s, "GET", "/v3/auth/projects", Some(&token), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["projects"][0]["id"], json!(project_id));
    assert_eq!(r.body["links"]["next"], Value::Null);

    // Revocation: 204, then the token is refused as a caller (401) and as a
    // subject (404).
    assert_eq!(check("DELETE", second.clone()).await.status, 204);
    let r = call(&s, "GET", "/v3/projects", Some(&second), None).await;
    assert_error(&r, 401);
    assert_error(&check("GET", second.clone()).await, 404);
    assert_error(&check("DELETE", second).await, 404);
    // The other token still works.
    assert_eq!(project_names(&s, &token).await, ["admin"]);

    // A tampered token is no token.
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    assert_error(
        &call(&s, "GET", "/v3/projects", Some(&tampered), None).await,
        401,
    );
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let cfg = tempfile::tempdir().expect("temp dir");
    let path = cfg.path().join("nuage.toml");
    std::fs::write(&path, "token_ttl_secs = 3\n").expect("config");
    let s = Server::start_with(common::Options {
        env: vec![("NUAGE_CONFIG".into(), path.display().to_string())],
        ..common::Options::default()
    });
    let token = admin_token(&s).await;
    let r = call(&s, "GET", "/v3/projects", Some(&token), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    assert_error(
        &call(&s, "GET", "/v3/projects", Some(&token), None).await,
        401,
    );
    // As the subject of a check, by a fresh token: not found.
    let fresh = admin_token(&s).await;
    let rb = s
        .http()
        .get(format!("{}/v3/auth/tokens", s.url()))
        .header("x-auth-token", &fresh)
        .header("x-subject-token", &token);
    assert_error(&finish(rb).await, 404);
}

#[tokio::test]
async fn bad_authentication_changes_nothing() {
    let s = Server::start();
    let pw = s.env()["OS_PASSWORD"].clone();
    let admin = admin_token(&s).await;
    let before = project_names(&s, &admin).await;

    // Unknown user, wrong password, unknown project: 401, no token.
    for body in [
        password_auth("nobody", "whatever-password", None),
        password_auth("admin", "wrong-password", Some("admin")),
        password_auth("admin", &pw, Some("no-such-project")),
    ] {
        let r = call(&s, "POST", "/v3/auth/tokens", None, Some(body)).await;
        assert_error(&r, 401);
        assert!(r.subject.is_none());
    }
    // A token that is not one.
    let bogus = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "nu1_bogus"}}}});
    assert_error(
        &call(&s, "POST", "/v3/auth/tokens", None, Some(bogus)).await,
        401,
    );
    // Unsupported method and scope.
    let totp = json!({"auth": {"identity": {"methods": ["totp"]}}});
    assert_error(
        &call(&s, "POST", "/v3/auth/tokens", None, Some(totp)).await,
        401,
    );
    let mut domain_scope = password_auth("admin", &pw, None);
    domain_scope["auth"]["scope"] = json!({"domain": {"id": "default"}});
    assert_error(
        &call(&s, "POST", "/v3/auth/tokens", None, Some(domain_scope)).await,
        401,
    );
    // Malformed requests: 400.
    for body in [
        json!({"auth": {"identity": {"methods": []}}}),
        json!({"auth": {"identity": {"methods": ["password"]}}}),
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": pw}}}}}),
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": pw, "extra": 1}}}}}),
        json!({"nonsense": true}),
    ] {
        assert_error(
            &call(&s, "POST", "/v3/auth/tokens", None, Some(body)).await,
            400,
        );
    }
    let r = finish(
        s.http()
            .post(format!("{}/v3/auth/tokens", s.url()))
            .header("content-type", "application/json")
            .body("{\"auth\": {"),
    )
    .await;
    assert_error(&r, 400);
    let r = finish(
        s.http()
            .post(format!("{}/v3/auth/tokens", s.url()))
            .body("auth=admin"),
    )
    .await;
    assert_error(&r, 415);

    assert_eq!(project_names(&s, &admin).await, before);
    // The admin's password still works.
    login(&s, "admin", &pw, Some("admin"))
        .await
        .map_err(|r| r.body)
        .expect("admin login");
}

#[tokio::test]
async fn bad_requests_change_nothing() {
    let s = Server::start();
    let admin = admin_token(&s).await;
    let p = create(
        &s,
        &admin,
        "/v3/projects",
        "project",
        json!({"name": "existing"}),
    )
    .await;
    assert_eq!(p["domain_id"], "default");
    assert_eq!(p["parent_id"], "default");
    assert_eq!(
        p["links"]["self"],
        json!(format!("{}/v3/projects/{}", s.url(), id(&p)))
    );
    let before = project_names(&s, &admin).await;
    let url = format!("{}/v3/projects", s.url());

    // Malformed JSON, wrong content type, oversized body.
    let raw = |ct: &str, body: Vec<u8>| {
        s.http()
            .post(&url)
            .header("x-auth-token", &admin)
            .header("content-type", ct)
            .body(body)
    };
    assert_error(
        &finish(raw(
            "application/json",
            b"{\"project\": {\"name\": ".to_vec(),
        ))
        .await,
        400,
    );
    assert_error(
        &finish(raw(
            "text/plain",
            b"{\"project\": {\"name\": \"x\"}}".to_vec(),
        ))
        .await,
        415,
    );
    let mut big = b"{\"project\": {\"name\": \"big\", \"description\": \"".to_vec();
    big.extend(std::iter::repeat_n(b'a', (1 << 20) + 1024));
    big.extend(b"\"}}");
    assert_error(&finish(raw("application/json", big)).await, 413);
    // Unknown or missing fields, unsupported attributes, bad names.
    for body in [
        json!({"project": {"name": "x", "colour": "blue"}}),
        json!({"project": {"description": "no name"}}),
        json!({"name": "not wrapped"}),
        json!({"project": {"name": "x", "tags": ["a"]}}),
        json!({"project": {"name": ""}}),
        json!({"project": {"name": 42}}),
    ] {
        assert_error(
            &call(&s, "POST", "/v3/projects", Some(&admin), Some(body)).await,
            400,
        );
    }
    // A duplicate name.
    let dup = call(
        &s,
        "POST",
        "/v3/projects",
        Some(&admin),
        Some(json!({"project": {"name": "existing"}})),
    )
    .await;
    assert_error(&dup, 409);

    // Invalid ids: 404 everywhere, names are not ids.
    let member = role_id(&s, &admin, "member").await;
    let users = call(&s, "GET", "/v3/users?name=admin", Some(&admin), None).await;
    let admin_id = id(&users.body["users"][0]);
    for path in [
        "/v3/projects/0123456789abcdef0123456789abcdef".to_string(),
        "/v3/projects/existing".to_string(),
        "/v3/users/0123456789abcdef0123456789abcdef".to_string(),
        "/v3/users/admin".to_string(),
        "/v3/roles/member".to_string(),
        "/v3/groups/nope".to_string(),
        "/v3/domains/Default".to_string(),
        format!("/v3/projects/{}/users/{admin_id}/roles/{member}", id(&p)),
        format!("/v3/users/{admin_id}/credentials/OS-EC2/AKIANOTAKEY"),
    ] {
        assert_error(&call(&s, "GET", &path, Some(&admin), None).await, 404);
    }
    for (method, path) in [
        (
            "DELETE",
            "/v3/projects/0123456789abcdef0123456789abcdef".to_string(),
        ),
        (
            "DELETE",
            "/v3/users/0123456789abcdef0123456789abcdef".to_string(),
        ),
        (
            "PUT",
            format!(
                "/v3/projects/{}/users/{admin_id}/roles/0123456789abcdef0123456789abcdef",
                id(&p)
            ),
        ),
        (
            "PUT",
            format!(
                "/v3/projects/{}/users/0123456789abcdef0123456789abcdef/roles/{member}",
                id(&p)
            ),
        ),
        (
            "PUT",
            format!(
                "/v3/projects/0123456789abcdef0123456789abcdef/users/{admin_id}/roles/{member}"
            ),
        ),
        (
            "DELETE",
            format!("/v3/projects/{}/users/{admin_id}/roles/{member}", id(&p)),
        ),
    ] {
        assert_error(&call(&s, method, &path, Some(&admin), None).await, 404);
    }
    let patch = call(
        &s,
        "PATCH",
        "/v3/projects/0123456789abcdef0123456789abcdef",
        Some(&admin),
        Some(json!({"project": {"name": "x"}})),
    )
    .await;
    assert_error(&patch, 404);
    assert_error(
        &call(&s, "PUT", "/v3/projects", Some(&admin), None).await,
        405,
    );

    assert_eq!(project_names(&s, &admin).await, before);
    let r = call(
        &s,
        "GET",
        &format!("/v3/projects/{}/users/{admin_id}/roles", id(&p)),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(r.body["roles"], json!([]), "no grant was made: {}", r.body);
}

#[tokio::test]
async fn members_stay_in_their_project() {
    let s = Server::start();
    let admin = admin_token(&s).await;
    let pw = "Member-pass-12345";
    let (mine, me) = member_setup(&s, &admin, "mine", pw).await;
    let other = create(
        &s,
        &admin,
        "/v3/projects",
        "project",
        json!({"name": "other"}),
    )
    .await;
    let other = id(&other);
    let member = role_id(&s, &admin, "member").await;
    let before = project_names(&s, &admin).await;

    let t = login(&s, "mine-user", pw, Some("mine"))
        .await
        .map_err(|r| r.body)
        .expect("member login");
    let r = call(&s, "GET", "/v3/auth/tokens", Some(&t), None).await;
    assert_error(&r, 400); // no X-Subject-Token
    assert_eq!(project_names(&s, &t).await, ["mine"]);
    let r = call(&s, "GET", &format!("/v3/projects/{mine}"), Some(&t), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Another project is invisible, and acting on it is forbidden.
    assert_error(
        &call(&s, "GET", &format!("/v3/projects/{other}"), Some(&t), None).await,
        404,
    );
    let forbidden = [
        (
            "POST",
            "/v3/projects".to_string(),
            Some(json!({"project": {"name": "mine2"}})),
        ),
        (
            "PATCH",
            format!("/v3/projects/{other}"),
            Some(json!({"project": {"name": "taken"}})),
        ),
        ("DELETE", format!("/v3/projects/{other}"), None),
        (
            "PUT",
            format!("/v3/projects/{other}/users/{me}/roles/{member}"),
            None,
        ),
        (
            "PUT",
            format!("/v3/projects/{mine}/users/{me}/roles/{member}"),
            None,
        ),
        (
            "POST",
            format!("/v3/users/{me}/credentials/OS-EC2"),
            Some(json!({"tenant_id": other})),
        ),
        (
            "POST",
            "/v3/users".to_string(),
            Some(json!({"user": {"name": "sneaky"}})),
        ),
        ("GET", "/v3/groups".to_string(), None),
    ];
    for (method, path, body) in forbidden {
        let r = call(&s, method, &path, Some(&t), body).await;
        assert_error(&r, 403);
    }
    // Its own assignments only; the admin's are not listed.
    let r = call(
        &s,
        "GET",
        "/v3/role_assignments?include_names",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let list = r.body["role_assignments"].as_array().expect("list");
    assert_eq!(list.len(), 1, "{}", r.body);
    assert_eq!(list[0]["user"]["name"], "mine-user");
    assert_eq!(list[0]["scope"]["project"]["name"], "mine");
    let admin_assignments = call(
        &s,
        "GET",
        "/v3/role_assignments?scope.project.id=x&user.id=y",
        Some(&t),
        None,
    )
    .await;
    assert_error(&admin_assignments, 403);

    // Its own EC2 credential, on its project, visible only to itself.
    let r = call(
        &s,
        "POST",
        &format!("/v3/users/{me}/credentials/OS-EC2"),
        Some(&t),
        Some(json!({"tenant_id": mine})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let c = &r.body["credential"];
    assert_eq!(c["tenant_id"], json!(mine));
    assert_eq!(c["trust_id"], Value::Null);
    let access = c["access"].as_str().expect("access").to_string();
    let r = call(
        &s,
        "GET",
        &format!("/v3/users/{me}/credentials/OS-EC2/{access}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["credential"]["secret"], c["secret"]);
    let admin_keys = call(&s, "GET", "/v3/users?name=admin", Some(&admin), None).await;
    let admin_id = id(&admin_keys.body["users"][0]);
    assert_error(
        &call(
            &s,
            "GET",
            &format!("/v3/users/{admin_id}/credentials/OS-EC2"),
            Some(&t),
            None,
        )
        .await,
        403,
    );
    let env_key = s.env()["AWS_ACCESS_KEY_ID"].clone();
    let r = call(
        &s,
        "DELETE",
        &format!("/v3/users/{me}/credentials/OS-EC2/{env_key}"),
        Some(&t),
        None,
    )
    .await;
    assert_error(&r, 404);

    assert_eq!(project_names(&s, &admin).await, before);
    let r = call(
        &s,
        "GET",
        &format!("/v3/users/{admin_id}/credentials/OS-EC2"),
        Some(&admin),
        None,
    )
    .await;
    assert!(r.body["credentials"]
        .as_array()
        .expect("creds")
        .iter()
        .any(|k| k["access"] == json!(env_key)));
}

#[tokio::test]
async fn password_change_needs_the_original() {
    let s = Server::start();
    let admin = admin_token(&s).await;
    let old = "Old-password-1234";
    let new = "New-password-5678";
    let (_, me) = member_setup(&s, &admin, "pw", old).await;
    let t = login(&s, "pw-user", old, None)
        .await
        .map_err(|r| r.body)
        .expect("login");
    let path = format!("/v3/users/{me}/password");

    let wrong = json!({"user": {"password": new, "original_password": "not-it-at-all"}});
    assert_error(&call(&s, "POST", &path, Some(&t), Some(wrong)).await, 401);
    login(&s, "pw-user", old, None)
        .await
        .map_err(|r| r.body)
        .expect("old password still works");
    assert_error(
        &call(
            &s,
            "POST",
            &path,
            Some(&t),
            Some(json!({"user": {"password": new}})),
        )
        .await,
        400,
    );

    let right = json!({"user": {"password": new, "original_password": old}});
    let r = call(&s, "POST", &path, Some(&t), Some(right)).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_error(
        &login(&s, "pw-user", old, None)
            .await
            .expect_err("old password refused"),
        401,
    );
    login(&s, "pw-user", new, None)
        .await
        .map_err(|r| r.body)
        .expect("new password");
    // The change revoked the tokens made with the old password.
    assert_error(&call(&s, "GET", "/v3/projects", Some(&t), None).await, 401);
}

#[tokio::test]
async fn groups_and_effective_assignments() {
    let s = Server::start();
    let admin = admin_token(&s).await;
    let (proj, user) = member_setup(&s, &admin, "grp", "Group-pass-12345").await;
    let g = create(
        &s,
        &admin,
        "/v3/groups",
        "group",
        json!({"name": "ops", "description": "on call"}),
    )
    .await;
    assert_eq!(g["domain_id"], "default");
    let g = id(&g);
    let reader = role_id(&s, &admin, "reader").await;

    let member_path = format!("/v3/groups/{g}/users/{user}");
    assert_eq!(
        call(&s, "HEAD", &member_path, Some(&admin), None)
            .await
            .status,
        404
    );
    assert_eq!(
        call(&s, "PUT", &member_path, Some(&admin), None)
            .await
            .status,
        204
    );
    assert_eq!(
        call(&s, "HEAD", &member_path, Some(&admin), None)
            .await
            .status,
        204
    );
    let r = call(
        &s,
        "GET",
        &format!("/v3/groups/{g}/users"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(names(&r.body["users"], "name"), ["grp-user"]);
    let r = call(
        &s,
        "GET",
        &format!("/v3/users/{user}/groups"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(names(&r.body["groups"], "name"), ["ops"]);

    let grant = format!("/v3/projects/{proj}/groups/{g}/roles/{reader}");
    assert_eq!(
        call(&s, "PUT", &grant, Some(&admin), None).await.status,
        204
    );
    assert_eq!(
        call(&s, "HEAD", &grant, Some(&admin), None).await.status,
        204
    );

    let q = format!("/v3/role_assignments?scope.project.id={proj}");
    let r = call(&s, "GET", &q, Some(&admin), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let direct = r.body["role_assignments"].as_array().expect("list").clone();
    assert_eq!(direct.len(), 2, "{}", r.body);
    let by_group = direct
        .iter()
        .find(|a| a.get("group").is_some())
        .expect("group grant");
    assert_eq!(by_group["group"], json!({"id": g}));
    assert_eq!(by_group["role"], json!({"id": reader}));
    assert_eq!(by_group["scope"], json!({"project": {"id": proj}}));
    assert_eq!(
        by_group["links"]["assignment"],
        json!(format!(
            "{}/v3/projects/{proj}/groups/{g}/roles/{reader}",
            s.url()
        ))
    );
    assert_eq!(r.body["links"]["previous"], Value::Null);

    let r = call(
        &s,
        "GET",
        &format!("{q}&effective&include_names=True"),
        Some(&admin),
        None,
    )
    .await;
    let effective = r.body["role_assignments"].as_array().expect("list");
    assert_eq!(effective.len(), 2, "{}", r.body);
    for a in effective {
        assert_eq!(a["user"]["name"], "grp-user", "{a}");
        assert_eq!(
            a["user"]["domain"],
            json!({"id": "default", "name": "Default"}),
            "{a}"
        );
        assert_eq!(a["scope"]["project"]["name"], "grp", "{a}");
    }
    let mut roles: Vec<&str> = effective
        .iter()
        .filter_map(|a| a["role"]["name"].as_str())
        .collect();
    roles.sort();
    assert_eq!(roles, ["member", "reader"]);

    assert_eq!(
        call(&s, "DELETE", &grant, Some(&admin), None).await.status,
        204
    );
    assert_eq!(
        call(&s, "HEAD", &grant, Some(&admin), None).await.status,
        404
    );
    assert_eq!(
        call(&s, "DELETE", &member_path, Some(&admin), None)
            .await
            .status,
        204
    );
    assert_eq!(
        call(&s, "DELETE", &format!("/v3/groups/{g}"), Some(&admin), None)
            .await
            .status,
        204
    );
    assert_error(
        &call(&s, "GET", &format!("/v3/groups/{g}"), Some(&admin), None).await,
        404,
    );
}

#[tokio::test]
async fn postgres_serves_keystone() {
    let s = Server::start_postgres().await;
    let admin = admin_token(&s).await;
    let (proj, _) = member_setup(&s, &admin, "pg", "Postgres-pass-1234").await;
    let t = login(&s, "pg-user", "Postgres-pass-1234", Some("pg"))
        .await
        .map_err(|r| r.body)
        .expect("login");
    let r = call(&s, "GET", "/v3/auth/projects", Some(&t), None).await;
    assert_eq!(r.body["projects"][0]["id"], json!(proj), "{}", r.body);
    let dup = call(
        &s,
        "POST",
        "/v3/projects",
        Some(&admin),
        Some(json!({"project": {"name": "pg"}})),
    )
    .await;
    assert_error(&dup, 409);
}

// ------------------------------------------------------- logins under attack

/// A password token request sent from `from` (any 127.0.0.0/8 address is
/// this host): status, `Retry-After` and body.
async fn login_from(s: &Server, from: &str, body: Value) -> (u16, Option<u64>, Value) {
    let client = reqwest::Client::builder()
        .local_address(from.parse::<std::net::IpAddr>().expect("address"))
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .expect("client");
    let r = client
        .post(format!("{}/v3/auth/tokens?nocatalog", s.url()))
        .json(&body)
        .send()
        .await
        .expect("request");
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (
        r.status().as_u16(),
        retry,
        r.json().await.unwrap_or(Value::Null),
    )
}

/// The lockout list the native API shows admins.
async fn lockouts(s: &Server, admin: &str) -> Vec<Value> {
    let (st, v) = common::call(s, admin, "GET", "/nuage/v1/login-lockouts", None).await;
    assert_eq!(st, 200, "{v}");
    v["items"].as_array().cloned().unwrap_or_default()
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("rss field")
}

#[tokio::test]
async fn failed_logins_lock_the_user_until_success_or_an_admin_clears_it() {
    let s = Server::start();
    let admin = admin_token(&s).await;
    let pw = "Lock-password-1234";
    let (_, uid) = member_setup(&s, &admin, "lk", pw).await;
    let member = login(&s, "lk-user", pw, None)
        .await
        .map_err(|r| r.body)
        .expect("login");

    // Four failures, then a success: the count starts again.
    for _ in 0..4 {
        assert_error(
            &login(&s, "lk-user", "wrong-wrong-1", None)
                .await
                .expect_err("wrong"),
            401,
        );
    }
    login(&s, "lk-user", pw, None)
        .await
        .map_err(|r| r.body)
        .expect("success");
    assert!(lockouts(&s, &admin)
        .await
        .iter()
        .all(|l| l["subject"] != json!(uid)));

    // Five failures in a row lock the user: the right password is refused
    // too, at once, with Retry-After, in Keystone's error shape.
    for _ in 0..5 {
        assert_error(
            &login(&s, "lk-user", "wrong-wrong-2", None)
                .await
                .expect_err("wrong"),
            401,
        );
    }
    let (st, retry, body) = login_from(&s, "127.0.0.1", password_auth("lk-user", pw, None)).await;
    assert_eq!(st, 429, "{body}");
    assert_eq!(body["error"]["code"], 429, "{body}");
    assert_eq!(body["error"]["title"], "Too Many Requests", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("too many failed logins"),
        "{body}"
    );
    let retry = retry.expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    // The openstack CLI says so too.
    let err = osc(
        &s,
        &[
            ("OS_USERNAME", "lk-user"),
            ("OS_PASSWORD", pw),
            ("OS_PROJECT_NAME", "lk"),
        ],
        &["token", "issue"],
    )
    .expect_err("locked");
    assert!(
        err.contains("429") || err.contains("too many failed logins"),
        "{err}"
    );
    // Tokens already issued keep working: the lock is on logins only.
    assert_eq!(
        call(&s, "GET", "/v3/auth/projects", Some(&member), None)
            .await
            .status,
        200
    );

    // Admins see the lock; members may not look.
    let list = lockouts(&s, &admin).await;
    let entry = list
        .iter()
        .find(|l| l["subject"] == json!(uid))
        .expect("listed");
    assert_eq!(entry["kind"], "user");
    assert_eq!(entry["failures"], 5);
    assert!(entry["locked_until"].is_string(), "{entry}");
    let (st, _) = common::call(&s, &member, "GET", "/nuage/v1/login-lockouts", None).await;
    assert_eq!(st, 403);
    let (st, _) = common::call(
        &s,
        &member,
        "DELETE",
        "/nuage/v1/login-lockouts?user=lk-user",
        None,
    )
    .await;
    assert_eq!(st, 403);
    assert_eq!(
        login_from(&s, "127.0.0.1", password_auth("lk-user", pw, None))
            .await
            .0,
        429
    );

    // An admin clears it by name; the user logs in again.
    let (st, v) = common::call(
        &s,
        &admin,
        "DELETE",
        "/nuage/v1/login-lockouts?user=lk-user",
        None,
    )
    .await;
    assert_eq!(st, 204, "{v}");
    let (st, _) = common::call(
        &s,
        &admin,
        "DELETE",
        "/nuage/v1/login-lockouts?user=lk-user",
        None,
    )
    .await;
    assert_eq!(st, 404, "nothing left to clear");
    osc_ok(
        &s,
        &[
            ("OS_USERNAME", "lk-user"),
            ("OS_PASSWORD", pw),
            ("OS_PROJECT_NAME", "lk"),
        ],
        &["token", "issue"],
    );
}

#[tokio::test]
async fn failed_logins_lock_the_source_address() {
    let s = Server::start();
    let admin = admin_token(&s).await;
    let pw = s.env()["OS_PASSWORD"].clone();
    // 30 failures from one address, each on another (unknown) name, so no
    // user lock is involved; eight at a time.
    let attacker = "127.0.0.7";
    for round in 0..4 {
        let mut tasks = Vec::new();
        for i in 0..8usize {
            let n = round * 8 + i;
            if n >= 30 {
                break;
            }
            let body = password_auth(&format!("ghost-{n}"), "wrong-wrong-3", None);
            tasks.push(login_from(&s, attacker, body));
        }
        for (st, _, body) in futures_util::future::join_all(tasks).await {
            assert_eq!(st, 401, "{body}");
        }
    }
    // Now even the admin's right password is refused from there, not from
    // another address.
    let (st, retry, body) = login_from(&s, attacker, password_auth("admin", &pw, None)).await;
    assert_eq!(st, 429, "{body}");
    assert!(retry.is_some_and(|r| r >= 1));
    let (st, _, body) = login_from(&s, "127.0.0.8", password_auth("admin", &pw, None)).await;
    assert_eq!(st, 201, "{body}");
    let list = lockouts(&s, &admin).await;
    let entry = list
        .iter()
        .find(|l| l["kind"] == "source" && l["subject"] == attacker)
        .expect("the address is listed");
    assert_eq!(entry["failures"], 30);
    // Unknown names are throttled as users are (listed under domain/name).
    assert!(
        list.iter().any(|l| l["subject"] == "Default/ghost-0"),
        "{list:?}"
    );
    let (st, _) = common::call(
        &s,
        &admin,
        "DELETE",
        &format!("/nuage/v1/login-lockouts?source={attacker}"),
        None,
    )
    .await;
    assert_eq!(st, 204);
    let (st, _, body) = login_from(&s, attacker, password_auth("admin", &pw, None)).await;
    assert_eq!(st, 201, "{body}");
}

/// Two `nuage serve` on one PostgreSQL count a user's failures together and
/// lock it on both; a restart forgives nothing; an admin's clear on one
/// server reaches the other.
#[tokio::test]
async fn servers_sharing_postgres_share_one_lockout() {
    let no_compute = vec![("NUAGE_COMPUTE_DRIVER".to_string(), "none".to_string())];
    let a = Server::start_with(common::Options {
        database: Some(
            nuage_store::testing::fresh_postgres_url()
                .await
                .expect("a fresh PostgreSQL database"),
        ),
        env: no_compute.clone(),
        ..common::Options::default()
    });
    let mut b = Server::start_with(common::Options {
        database: a.opts.database.clone(),
        env: no_compute,
        admin_env: Some(a.data_dir().join("admin.env")),
        ..common::Options::default()
    });
    let admin = admin_token(&a).await;
    let pw = "Shared-lock-1234";
    let (_, uid) = member_setup(&a, &admin, "shared", pw).await;
    for i in 0..5 {
        let s = if i % 2 == 0 { &a } else { &b };
        assert_error(
            &login(s, "shared-user", "wrong-wrong-9", None)
                .await
                .expect_err("wrong"),
            401,
        );
    }
    for s in [&a, &b] {
        let (st, retry, body) =
            login_from(s, "127.0.0.1", password_auth("shared-user", pw, None)).await;
        assert_eq!(st, 429, "{body}");
        assert!(retry.is_some_and(|r| r >= 1), "{retry:?}");
    }

    b.terminate();
    b.spawn();
    let (st, _, body) = login_from(&b, "127.0.0.1", password_auth("shared-user", pw, None)).await;
    assert_eq!(st, 429, "a restart forgives nothing: {body}");
    let listed = lockouts(&b, &admin).await;
    assert!(
        listed
            .iter()
            .any(|l| l["subject"] == json!(uid) && l["failures"] == 5),
        "{listed:?}"
    );

    let (st, v) = common::call(
        &b,
        &admin,
        "DELETE",
        "/nuage/v1/login-lockouts?user=shared-user",
        None,
    )
    .await;
    assert_eq!(st, 204, "{v}");
    login(&a, "shared-user", pw, None)
        .await
        .map_err(|r| r.body)
        .expect("cleared on b, accepted on a");
}

#[tokio::test]
async fn unknown_user_and_wrong_password_look_alike() {
    let s = Server::start();
    let admin = admin_token(&s).await;
    let pw = "Alike-password-1234";
    member_setup(&s, &admin, "alike", pw).await;
    member_setup(&s, &admin, "elsewhere", pw).await;

    // Same status and body, and about the same time: the unknown user's
    // password is checked against a dummy hash.
    let mut times = [Vec::new(), Vec::new()];
    let mut bodies = Vec::new();
    for i in 0..4 {
        for (k, user) in [(0, "alike-user".to_string()), (1, format!("nobody-{i}"))] {
            let started = std::time::Instant::now();
            let r = login(&s, &user, "wrong-wrong-4", None)
                .await
                .expect_err("refused");
            times[k].push(started.elapsed().as_secs_f64());
            assert_error(&r, 401);
            bodies.push(r.body);
        }
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[1] + v[2]) / 2.0
    };
    let (known, unknown) = (median(&mut times[0]), median(&mut times[1]));
    assert!(
        unknown > known * 0.5 && unknown < known * 2.0,
        "wrong password {known:.4} s, unknown user {unknown:.4} s"
    );

    // A project that does not exist answers exactly as one the user has no
    // role on, with the right password; nothing is issued.
    let missing = login(&s, "alike-user", pw, Some("no-such-project"))
        .await
        .expect_err("refused");
    let foreign = login(&s, "alike-user", pw, Some("elsewhere"))
        .await
        .expect_err("refused");
    assert_error(&missing, 401);
    assert_eq!(missing.body, foreign.body);
    assert!(missing.subject.is_none() && foreign.subject.is_none());
    let by_id = |id: &str| {
        json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {"name": "alike-user", "domain": {"id": "default"}, "password": pw}}},
            "scope": {"project": {"id": id}},
        }})
    };
    let elsewhere = project_ids(&s, &admin, "elsewhere").await;
    let a = call(
        &s,
        "POST",
        "/v3/auth/tokens",
        None,
        Some(by_id("0123456789abcdef0123456789abcdef")),
    )
    .await;
    let b = call(&s, "POST", "/v3/auth/tokens", None, Some(by_id(&elsewhere))).await;
    assert_error(&a, 401);
    assert_eq!(a.body, b.body);
    assert_eq!(a.body, missing.body);
}

async fn project_ids(s: &Server, admin: &str, name: &str) -> String {
    let r = call(
        s,
        "GET",
        &format!("/v3/projects?name={name}"),
        Some(admin),
        None,
    )
    .await;
    id(&r.body["projects"][0])
}

#[tokio::test]
async fn concurrent_wrong_logins_hash_a_few_at_a_time_in_bounded_memory() {
    let s = Server::start();
    let pid = s.pid().expect("pid");
    // Warm up: one login, so the idle figure includes what any login needs.
    admin_token(&s).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let idle = rss_kib(pid, "VmRSS:");

    // 96 concurrent wrong logins, from 96 addresses and names (so neither
    // throttle steps in): each is refused with 401, or with 503 and
    // Retry-After when no hashing worker became free in time.
    let tasks = (0..96).map(|i| {
        let body = password_auth(&format!("flood-{i}"), "wrong-wrong-5", None);
        let from = format!("127.0.1.{}", i + 1);
        let s = &s;
        async move { login_from(s, &from, body).await }
    });
    let answers = futures_util::future::join_all(tasks).await;
    for (st, retry, body) in &answers {
        match st {
            401 => assert!(body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("password is wrong")),
            503 => assert!(retry.is_some(), "503 without Retry-After: {body}"),
            _ => panic!("{st}: {body}"),
        }
    }
    assert!(answers.iter().any(|a| a.0 == 401));

    // Never more hashes at once than cores.
    let metrics = s
        .http()
        .get(format!("{}/metrics", s.url()))
        .send()
        .await
        .expect("metrics");
    let text = metrics.text().await.expect("text");
    let gauge = |name: &str| -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics:\n{text}"))
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    let peak = gauge("nuage_password_hashes_peak");
    assert!(peak >= 1 && peak <= cores, "peak {peak}, cores {cores}");
    assert_eq!(gauge("nuage_password_hashes_running"), 0);

    // Memory: the peak stayed within a few hashes' worth (unbounded, this
    // was 96 x 19 MiB), and what is held after a short idle is far less.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (hwm, after) = (rss_kib(pid, "VmHWM:"), rss_kib(pid, "VmRSS:"));
    let mib = |k: u64| k / 1024;
    assert!(
        hwm < idle + 200 * 1024,
        "peak RSS {} MiB, idle {} MiB",
        mib(hwm),
        mib(idle)
    );
    assert!(
        after < idle + 64 * 1024,
        "RSS after {} MiB, idle {} MiB",
        mib(after),
        mib(idle)
    );
    // And the server still serves logins.
    admin_token(&s).await;
}

#[tokio::test]
async fn a_traded_token_keeps_the_expiry_and_dies_with_the_original() {
    let s = Server::start();
    let admin = admin_token(&s).await;
    let pw = "Trade-password-1234";
    let (_, _) = member_setup(&s, &admin, "trade", pw).await;
    let first = call(
        &s,
        "POST",
        "/v3/auth/tokens",
        None,
        Some(password_auth("trade-user", pw, None)),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let original = first.subject.clone().expect("token");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let trade = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": original}}}});
    let second = call(&s, "POST", "/v3/auth/tokens", None, Some(trade)).await;
    assert_eq!(second.status, 201, "{}", second.body);
    let traded = second.subject.clone().expect("token");
    assert_ne!(traded, original);
    assert_eq!(second.body["token"]["methods"], json!(["token"]));
    assert_eq!(
        second.body["token"]["expires_at"], first.body["token"]["expires_at"],
        "a traded token expires with its original"
    );
    // A token traded from the traded one is in the same chain.
    let again = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": traded}}}});
    let third = call(&s, "POST", "/v3/auth/tokens", None, Some(again)).await;
    assert_eq!(third.status, 201);
    let third = third.subject.expect("token");
    for t in [&original, &traded, &third] {
        assert_eq!(
            call(&s, "GET", "/v3/auth/projects", Some(t), None)
                .await
                .status,
            200
        );
    }
    // Revoking the original kills every token traded from it.
    let r = s
        .http()
        .delete(format!("{}/v3/auth/tokens", s.url()))
        .header("x-auth-token", &admin)
        .header("x-subject-token", &original)
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status(), 204);
    for t in [&original, &traded, &third] {
        assert_error(
            &call(&s, "GET", "/v3/auth/projects", Some(t), None).await,
            401,
        );
    }
    assert_eq!(
        call(&s, "GET", "/v3/auth/projects", Some(&admin), None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn patching_ones_own_password_is_refused_admins_set_others() {
    let s = Server::start();
    let admin = admin_token(&s).await;
    let old = "Patch-password-1234";
    let new = "Patch-password-5678";
    let (_, me) = member_setup(&s, &admin, "patch", old).await;
    let t = login(&s, "patch-user", old, None)
        .await
        .map_err(|r| r.body)
        .expect("login");
    let path = format!("/v3/users/{me}");

    // A stolen token cannot set the password without the original.
    let r = call(
        &s,
        "PATCH",
        &path,
        Some(&t),
        Some(json!({"user": {"password": new}})),
    )
    .await;
    assert_error(&r, 403);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("original password"),
        "{}",
        r.body
    );
    login(&s, "patch-user", old, None)
        .await
        .map_err(|r| r.body)
        .expect("old password still works");
    assert_error(
        &login(&s, "patch-user", new, None)
            .await
            .expect_err("not changed"),
        401,
    );
    assert_eq!(
        call(&s, "GET", "/v3/auth/projects", Some(&t), None)
            .await
            .status,
        200,
        "tokens kept"
    );

    // An admin sets another user's password, no original needed.
    let r = call(
        &s,
        "PATCH",
        &path,
        Some(&admin),
        Some(json!({"user": {"password": new}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    login(&s, "patch-user", new, None)
        .await
        .map_err(|r| r.body)
        .expect("new password");
    assert_error(
        &login(&s, "patch-user", old, None)
            .await
            .expect_err("old refused"),
        401,
    );
}

/// keystoneauth given the bare endpoint as its auth URL discovers the
/// Identity API at `/` (Keystone's 300 versions document) and logs in;
/// an anonymous S3 `GET /` still answers in S3's XML.
#[tokio::test]
async fn clients_discover_the_identity_api_at_the_root() {
    let s = Server::start();
    let root = s.url();
    let token = osc_ok(&s, &[("OS_AUTH_URL", root.as_str())], &["token", "issue"]);
    assert!(
        token["id"].as_str().is_some_and(|t| !t.is_empty()),
        "{token}"
    );

    let http = reqwest::Client::new();
    let r = http
        .get(format!("{root}/"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("GET /");
    assert_eq!(r.status().as_u16(), 300);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["versions"]["values"][0]["id"], "v3.14", "{v}");
    let r = http.get(format!("{root}/")).send().await.expect("GET /");
    assert_eq!(r.status().as_u16(), 403);
    let text = r.text().await.expect("body");
    assert!(text.contains("<Code>AccessDenied</Code>"), "{text}");
}

/// `openstack catalog/service/endpoint/region list|show` read the catalog
/// nuage computes; writes are refused with 501 and change nothing; a
/// member may read regions and its token's catalog, not the admin views.
#[tokio::test]
async fn openstack_cli_reads_the_catalog_services_endpoints_and_regions() {
    let s = Server::start();
    let none: &[(&str, &str)] = &[];
    let region = s.env()["OS_REGION_NAME"].clone();

    let catalog = osc_ok(&s, none, &["catalog", "list"]);
    let mut kinds = names(&catalog, "Type");
    kinds.sort();
    assert_eq!(
        kinds,
        ["compute", "identity", "image", "network", "object-store"],
        "{catalog}"
    );

    let services = osc_ok(&s, none, &["service", "list", "--long"]);
    let mut svc = names(&services, "Name");
    svc.sort();
    assert_eq!(
        svc,
        ["glance", "keystone", "neutron", "nova", "swift"],
        "{services}"
    );
    let swift = osc_ok(&s, none, &["service", "show", "object-store"]);
    assert_eq!(swift["name"], "swift", "{swift}");
    assert_eq!(swift["enabled"], true, "{swift}");

    let endpoints = osc_ok(&s, none, &["endpoint", "list"]);
    assert_eq!(endpoints.as_array().map(Vec::len), Some(15), "{endpoints}");
    let public = osc_ok(
        &s,
        none,
        &[
            "endpoint",
            "list",
            "--service",
            "object-store",
            "--interface",
            "public",
        ],
    );
    let rows = public.as_array().expect("endpoints");
    assert_eq!(rows.len(), 1, "{public}");
    assert_eq!(rows[0]["Region"], region.as_str(), "{public}");
    let url = rows[0]["URL"].as_str().expect("URL");
    assert!(url.ends_with("/v1/AUTH_$(project_id)s"), "{url}");
    let id = rows[0]["ID"].as_str().expect("ID");
    let shown = osc_ok(&s, none, &["endpoint", "show", id]);
    assert_eq!(shown["interface"], "public", "{shown}");

    let regions = osc_ok(&s, none, &["region", "list"]);
    assert_eq!(names(&regions, "Region"), vec![region], "{regions}");

    // Writes are recognised and refused; the catalog is unchanged.
    let err = osc(
        &s,
        none,
        &["service", "create", "--name", "nova", "compute"],
    )
    .expect_err("service create must fail");
    assert!(err.contains("501") || err.contains("catalog"), "{err}");
    let err = osc(&s, none, &["region", "create", "elsewhere"]).expect_err("region create");
    assert!(err.contains("501") || err.contains("catalog"), "{err}");
    let after = osc_ok(&s, none, &["service", "list"]);
    assert_eq!(after.as_array().map(Vec::len), Some(5), "{after}");

    // A member reads its catalog and the regions, not the admin views.
    let admin = admin_token(&s).await;
    member_setup(&s, &admin, "cat", "cat-pass-123").await;
    let member = [
        ("OS_USERNAME", "cat-user"),
        ("OS_PASSWORD", "cat-pass-123"),
        ("OS_PROJECT_NAME", "cat"),
    ];
    let theirs = osc_ok(&s, &member, &["catalog", "list"]);
    assert_eq!(theirs.as_array().map(Vec::len), Some(5), "{theirs}");
    osc_ok(&s, &member, &["region", "list"]);
    let err = osc(&s, &member, &["endpoint", "list"]).expect_err("member endpoint list");
    assert!(err.contains("403") || err.contains("admin"), "{err}");
}
