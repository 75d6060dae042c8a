//! The `nuage` client, run as a real process against a real `nuage serve`.

mod common;

use std::process::{Command, Stdio};

use common::{nuage_bin, Options, Server};
use serde_json::Value;

/// What one client run printed, and how it exited.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(self) -> Out {
        assert_eq!(
            self.code, 0,
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    fn fails(self, code: i32) -> Out {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }

    /// The table row (a `| ... |` line) holding every one of `cells`.
    fn row(&self, cells: &[&str]) -> Option<&str> {
        self.stdout.lines().find(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            cells.iter().all(|c| cols.contains(c))
        })
    }
}

fn exec(cmd: &mut Command) -> Out {
    let o = cmd.stdin(Stdio::null()).output().expect("run nuage");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `nuage ARGS` with the server's admin.env in the environment.
fn nuage(s: &Server, args: &[&str]) -> Out {
    exec(s.client(nuage_bin()).args(args))
}

fn names(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|x| x["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn projects_in_table_and_json() {
    let s = Server::start();

    let out = nuage(
        &s,
        &["project", "create", "demo", "--description", "a demo"],
    )
    .ok();
    assert!(out.row(&["name", "demo"]).is_some(), "{}", out.stdout);
    assert!(
        out.row(&["description", "a demo"]).is_some(),
        "{}",
        out.stdout
    );
    assert!(out.row(&["enabled", "true"]).is_some(), "{}", out.stdout);

    let out = nuage(&s, &["project", "list"]).ok();
    assert!(out.stdout.starts_with("| ID"), "{}", out.stdout);
    assert!(
        out.row(&["demo", "default", "true", "a demo"]).is_some(),
        "{}",
        out.stdout
    );
    assert!(out.row(&["admin"]).is_some(), "{}", out.stdout);

    let out = nuage(&s, &["-o", "json", "project", "list", "--name", "demo"]).ok();
    assert_eq!(names(&out.json()), ["demo"]);
    let id = out.json()["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();

    // show by name and by id, either side of the noun for -o.
    let by_name = nuage(&s, &["project", "show", "demo", "-o", "json"])
        .ok()
        .json();
    assert_eq!(by_name["id"], id.as_str());
    let out = nuage(&s, &["project", "show", &id]).ok();
    assert!(out.row(&["id", &id]).is_some(), "{}", out.stdout);

    let out = nuage(
        &s,
        &[
            "-o",
            "json",
            "project",
            "set",
            "demo",
            "--description",
            "changed",
            "--disable",
        ],
    )
    .ok();
    let v = out.json();
    assert_eq!(v["description"], "changed");
    assert_eq!(v["enabled"], false);
    let out = nuage(&s, &["project", "show", "demo"]).ok();
    assert!(out.row(&["enabled", "false"]).is_some(), "{}", out.stdout);
    let v = nuage(
        &s,
        &[
            "-o", "json", "project", "set", "demo", "--enable", "--name", "demo2",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        (v["name"].as_str(), v["enabled"].as_bool()),
        (Some("demo2"), Some(true))
    );

    // Nothing to change is a usage error.
    let out = nuage(&s, &["project", "set", "demo2"]).fails(2);
    assert!(out.stderr.contains("--description"), "{}", out.stderr);

    let out = nuage(&s, &["project", "delete", "demo2"]).ok();
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let v = nuage(&s, &["project", "list", "-o", "json"]).ok().json();
    assert_eq!(names(&v), ["admin"]);

    let out = nuage(&s, &["project", "show", "demo2"]).fails(1);
    assert!(out.stderr.starts_with("nuage: "), "{}", out.stderr);
    assert!(out.stderr.contains("not found"), "{}", out.stderr);
    assert!(
        out.stderr.contains("(HTTP 404, request id req-"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    // Deleting several reports each failure and fails as a whole.
    nuage(&s, &["project", "create", "p1"]).ok();
    let out = nuage(&s, &["project", "delete", "p1", "nosuch"]).fails(1);
    assert!(out.stderr.contains("project nosuch"), "{}", out.stderr);
    assert!(out.stderr.contains("1 of 2 projects"), "{}", out.stderr);
    assert_eq!(
        names(&nuage(&s, &["project", "list", "-o", "json"]).ok().json()),
        ["admin"]
    );
}

#[test]
fn users_roles_groups_and_a_member_logging_in() {
    let s = Server::start();
    nuage(&s, &["project", "create", "team"]).ok();
    let out = nuage(
        &s,
        &[
            "user",
            "create",
            "bob",
            "--password",
            "bob-pw-123",
            "--project",
            "team",
            "--email",
            "bob@example.com",
        ],
    )
    .ok();
    assert!(
        out.row(&["email", "bob@example.com"]).is_some(),
        "{}",
        out.stdout
    );
    nuage(
        &s,
        &[
            "role",
            "add",
            "--project",
            "team",
            "--user",
            "bob",
            "member",
        ],
    )
    .ok();

    let out = nuage(&s, &["user", "list"]).ok();
    assert!(
        out.row(&["bob", "bob@example.com", "true"]).is_some(),
        "{}",
        out.stdout
    );
    let v = nuage(
        &s,
        &[
            "user",
            "set",
            "bob",
            "--email",
            "b@example.com",
            "-o",
            "json",
        ],
    )
    .ok()
    .json();
    assert_eq!(v["email"], "b@example.com");

    // Assignments show names, not ids.
    let out = nuage(&s, &["role", "assignment", "list"]).ok();
    assert!(
        out.row(&["member", "bob", "team"]).is_some(),
        "{}",
        out.stdout
    );
    assert!(
        out.row(&["admin", "admin", "admin"]).is_some(),
        "{}",
        out.stdout
    );
    let out = nuage(&s, &["role", "assignment", "list", "--user", "bob"]).ok();
    assert!(out.row(&["admin"]).is_none(), "{}", out.stdout);
    let v = nuage(
        &s,
        &[
            "-o",
            "json",
            "role",
            "assignment",
            "list",
            "--project",
            "team",
        ],
    )
    .ok()
    .json();
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["items"][0]["role"]["name"], "member");

    // Groups.
    nuage(&s, &["group", "create", "devs"]).ok();
    nuage(&s, &["group", "add-user", "devs", "bob"]).ok();
    let out = nuage(&s, &["group", "users", "devs"]).ok();
    assert!(out.row(&["bob"]).is_some(), "{}", out.stdout);
    nuage(
        &s,
        &[
            "role",
            "add",
            "--project",
            "admin",
            "--group",
            "devs",
            "reader",
        ],
    )
    .ok();
    let out = nuage(&s, &["role", "assignment", "list", "--project", "admin"]).ok();
    assert!(
        out.row(&["reader", "devs", "admin"]).is_some(),
        "{}",
        out.stdout
    );
    nuage(
        &s,
        &[
            "role",
            "remove",
            "--project",
            "admin",
            "--group",
            "devs",
            "reader",
        ],
    )
    .ok();
    nuage(&s, &["group", "remove-user", "devs", "bob"]).ok();
    let out = nuage(&s, &["group", "users", "devs"]).ok();
    assert!(out.row(&["bob"]).is_none(), "{}", out.stdout);

    // bob, by flags (admin.env's project and password must not leak in),
    // sees only his project.
    let bob = ["--user", "bob", "--password", "bob-pw-123"];
    let v = nuage(&s, &[&bob[..], &["project", "list", "-o", "json"]].concat())
        .ok()
        .json();
    assert_eq!(names(&v), ["team"]);
    let out = nuage(&s, &[&bob[..], &["whoami"]].concat()).ok();
    assert!(out.row(&["user", "bob"]).is_some(), "{}", out.stdout);
    assert!(out.row(&["project", "team"]).is_some(), "{}", out.stdout);

    // A member may not create projects.
    let out = nuage(&s, &[&bob[..], &["project", "create", "mine"]].concat()).fails(1);
    assert!(out.stderr.contains("HTTP 403"), "{}", out.stderr);
    assert!(out.stderr.contains("admin role"), "{}", out.stderr);

    // A wrong password.
    let out = nuage(
        &s,
        &["--user", "bob", "--password", "nope", "project", "list"],
    )
    .fails(1);
    assert!(
        out.stderr.contains("cannot log in as bob"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("HTTP 401"), "{}", out.stderr);

    // bob changes his own password only with the one he has.
    let out = nuage(
        &s,
        &[
            &bob[..],
            &["user", "set", "bob", "--password", "bob-new-456"],
        ]
        .concat(),
    )
    .fails(1);
    assert!(out.stderr.contains("HTTP 403"), "{}", out.stderr);
    for (old, new) in [("bob-pw-123", "bob-new-456"), ("bob-new-456", "bob-pw-123")] {
        let who = ["--user", "bob", "--password", old];
        nuage(
            &s,
            &[
                &who[..],
                &[
                    "user",
                    "set",
                    "bob",
                    "--password",
                    new,
                    "--original-password",
                    old,
                ],
            ]
            .concat(),
        )
        .ok();
    }
    nuage(&s, &[&bob[..], &["whoami"]].concat()).ok();

    // The same user from a config file, with nothing in the environment.
    let home = tempfile::tempdir().expect("home");
    let cfg_dir = home.path().join("xdg/nuage");
    std::fs::create_dir_all(&cfg_dir).expect("config dir");
    std::fs::write(
        cfg_dir.join("config.toml"),
        format!(
            "url = \"{}\"\nuser = \"bob\"\npassword = \"bob-pw-123\"\n",
            s.url()
        ),
    )
    .expect("config.toml");
    let out = exec(
        Command::new(nuage_bin())
            .env_clear()
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("xdg"))
            .args(["whoami"]),
    )
    .ok();
    assert!(out.row(&["user", "bob"]).is_some(), "{}", out.stdout);

    // A token from `token issue` works alone, and `token revoke` ends it.
    let token = nuage(&s, &["-o", "json", "token", "issue"]).ok().json()["token"]
        .as_str()
        .expect("token")
        .to_string();
    let by_token = |args: &[&str]| {
        exec(
            Command::new(nuage_bin())
                .env_clear()
                .env("HOME", home.path())
                .env("NUAGE_URL", s.url())
                .env("NUAGE_TOKEN", &token)
                .args(args),
        )
    };
    let out = by_token(&["whoami"]).ok();
    assert!(out.row(&["user", "admin"]).is_some(), "{}", out.stdout);
    by_token(&["token", "revoke"]).ok();
    let out = by_token(&["whoami"]).fails(1);
    assert!(out.stderr.contains("HTTP 401"), "{}", out.stderr);

    nuage(&s, &["user", "delete", "bob"]).ok();
    let out = nuage(&s, &["user", "show", "bob"]).fails(1);
    assert!(out.stderr.contains("not found"), "{}", out.stderr);
}

#[test]
fn login_lockouts_described_and_cleared() {
    let s = Server::start();
    nuage(&s, &["project", "create", "locked"]).ok();
    let v = nuage(
        &s,
        &[
            "-o",
            "json",
            "user",
            "create",
            "carol",
            "--password",
            "carol-pw-123",
            "--project",
            "locked",
        ],
    )
    .ok()
    .json();
    let carol_id = v["id"].as_str().expect("id").to_string();
    nuage(
        &s,
        &[
            "role",
            "add",
            "--project",
            "locked",
            "--user",
            "carol",
            "member",
        ],
    )
    .ok();
    let carol = ["--user", "carol", "--password", "carol-pw-123", "whoami"];

    // Nothing failed yet: an empty table, an empty list.
    let out = nuage(&s, &["describe-login-lockouts"]).ok();
    assert!(out.stdout.starts_with("| Kind"), "{}", out.stdout);
    assert!(out.row(&[&carol_id]).is_none(), "{}", out.stdout);

    // Five wrong passwords lock carol (and count against 127.0.0.1).
    for _ in 0..5 {
        nuage(&s, &["--user", "carol", "--password", "nope", "whoami"]).fails(1);
    }
    let out = nuage(&s, &carol).fails(1);
    assert!(out.stderr.contains("HTTP 429"), "{}", out.stderr);

    let out = nuage(&s, &["describe-login-lockouts"]).ok();
    let row = out
        .row(&["user", &carol_id, "5"])
        .unwrap_or_else(|| panic!("carol is not listed:\n{}", out.stdout));
    assert!(
        row.contains('T') && row.contains('Z'),
        "locked until: {row}"
    );
    let v = nuage(&s, &["-o", "json", "describe-login-lockouts", "--locked"])
        .ok()
        .json();
    let items = v["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "only carol is locked: {v}");
    assert_eq!(items[0]["subject"], carol_id.as_str());
    assert_eq!(items[0]["failures"], 5);
    assert!(items[0]["locked_until"].is_string(), "{v}");
    let v = nuage(
        &s,
        &["-o", "json", "describe-login-lockouts", "--kind", "source"],
    )
    .ok()
    .json();
    let items = v["items"].as_array().expect("items");
    assert!(items.iter().all(|i| i["kind"] == "source"), "{v}");
    assert_eq!(items[0]["failures"], 5, "{v}");

    // Saying whose is required; an address must be one.
    let out = nuage(&s, &["clear-login-lockout"]).fails(2);
    assert!(out.stderr.contains("--user"), "{}", out.stderr);
    nuage(&s, &["clear-login-lockout", "--source", "nowhere"]).fails(2);

    // Cleared by name: carol logs in; a second clear finds nothing.
    let out = nuage(&s, &["clear-login-lockout", "--user", "carol"]).ok();
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    nuage(&s, &carol).ok();
    let out = nuage(&s, &["clear-login-lockout", "--user", "carol"]).fails(1);
    assert!(out.stderr.contains("HTTP 404"), "{}", out.stderr);
    // The address keeps its count until cleared too.
    nuage(&s, &["clear-login-lockout", "--source", "127.0.0.1"]).ok();
    let v = nuage(&s, &["-o", "json", "describe-login-lockouts"])
        .ok()
        .json();
    assert!(
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["kind"] != "source"),
        "{v}"
    );
}

#[test]
fn access_keys_and_quotas() {
    let s = Server::start();

    let created = nuage(&s, &["-o", "json", "access-key", "create"])
        .ok()
        .json();
    let key = created["access_key_id"]
        .as_str()
        .expect("key id")
        .to_string();
    let secret = created["secret"]
        .as_str()
        .expect("secret at creation")
        .to_string();
    assert!(secret.len() >= 20, "{created}");

    let out = nuage(&s, &["access-key", "create"]).ok();
    assert!(out.row(&["secret"]).is_some(), "{}", out.stdout);
    assert!(out.stderr.contains("not show it again"), "{}", out.stderr);

    let out = nuage(&s, &["access-key", "list"]).ok();
    assert!(out.row(&[&key]).is_some(), "{}", out.stdout);
    assert!(!out.stdout.contains(&secret), "{}", out.stdout);
    // admin.env's key plus the two made here.
    let v = nuage(
        &s,
        &[
            "-o",
            "json",
            "ec2",
            "credentials",
            "list",
            "--user",
            "admin",
        ],
    )
    .ok()
    .json();
    let items = v["items"].as_array().expect("items");
    assert_eq!(items.len(), 3, "{v}");
    assert!(items.iter().all(|k| k.get("secret").is_none()), "{v}");

    nuage(&s, &["ec2", "credentials", "delete", &key]).ok();
    let out = nuage(&s, &["access-key", "list"]).ok();
    assert!(out.row(&[&key]).is_none(), "{}", out.stdout);
    let out = nuage(&s, &["access-key", "delete", &key]).fails(1);
    assert!(out.stderr.contains("not found"), "{}", out.stderr);

    // Quotas: defaults, then a subset changed.
    let out = nuage(&s, &["quota", "show"]).ok();
    assert!(out.row(&["instances", "20"]).is_some(), "{}", out.stdout);
    nuage(&s, &["project", "create", "small"]).ok();
    let out = nuage(
        &s,
        &[
            "quota",
            "set",
            "small",
            "--instances",
            "3",
            "--bytes",
            "1G",
            "--floating-ips",
            "-1",
        ],
    )
    .ok();
    assert!(out.row(&["instances", "3"]).is_some(), "{}", out.stdout);
    assert!(
        out.row(&["floating_ips", "unlimited"]).is_some(),
        "{}",
        out.stdout
    );
    let v = nuage(&s, &["-o", "json", "quota", "show", "small"])
        .ok()
        .json();
    assert_eq!(v["quotas"]["instances"], 3);
    assert_eq!(v["quotas"]["bytes"], 1 << 30);
    assert_eq!(v["quotas"]["floating_ips"], -1);
    assert_eq!(v["quotas"]["cores"], 40);
    let out = nuage(&s, &["quota", "set", "small"]).fails(2);
    assert!(out.stderr.contains("--instances"), "{}", out.stderr);
}

#[test]
fn no_configuration_and_usage_errors() {
    let home = tempfile::tempdir().expect("home");
    let bare = || {
        let mut c = Command::new(nuage_bin());
        // An empty data dir: no admin.env to fall back on, whatever this
        // machine has in /var/lib/nuage.
        c.env_clear()
            .env("HOME", home.path())
            .env("NUAGE_DATA_DIR", home.path().join("data"));
        c
    };
    {
        let out = exec(bare().args(["project", "list"])).fails(1);
        assert!(
            out.stderr
                .starts_with("nuage: no nuage endpoint is configured"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr
                .contains(&format!("source {}/data/admin.env", home.path().display())),
            "{}",
            out.stderr
        );
        assert!(out.stdout.is_empty());
    }
    let out = exec(bare().args(["--url", "http://127.0.0.1:9", "whoami"])).fails(1);
    assert!(out.stderr.contains("no credentials"), "{}", out.stderr);

    let out = exec(bare().args(["project", "frobnicate"])).fails(2);
    assert!(out.stderr.contains("frobnicate"), "{}", out.stderr);
    let out = exec(bare().args(["role", "add", "--user", "u", "member"])).fails(2);
    assert!(out.stderr.contains("--project"), "{}", out.stderr);
    let out = exec(bare().args(["project", "list", "--user", "u"])).fails(2);
    assert!(
        out.stderr
            .contains("connection flags go before the command"),
        "{}",
        out.stderr
    );
    let out = exec(bare().args(["--help"])).ok();
    assert!(out.stdout.contains("project"), "{}", out.stdout);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("serve ")),
        "--help does not list serve: {}",
        out.stdout
    );
    for args in [
        &["--version"][..],
        &["project", "--version"],
        &["serve", "--version"],
    ] {
        let out = exec(bare().args(args)).ok();
        assert!(
            out.stdout.contains(env!("CARGO_PKG_VERSION")),
            "{args:?}: {}",
            out.stdout
        );
    }
    let out = exec(bare().args(["serve", "--help"])).ok();
    assert!(out.stdout.contains("Usage: nuage serve"), "{}", out.stdout);
    assert!(
        !out.stdout.contains("=]"),
        "an env name with a stray '=': {}",
        out.stdout
    );
    for flag in [
        "--data-dir",
        "--listen",
        "--max-connections",
        "--idle-timeout",
    ] {
        let line = out.stdout.lines().skip_while(|l| !l.contains(flag)).nth(1);
        assert!(
            line.is_some_and(|l| l.contains("default")),
            "{flag} shows no default: {}",
            out.stdout
        );
    }
}

/// `nuage describe-instances | head -1`: a reader that goes away ends the
/// client quietly (SIGPIPE, or 0), with no panic and no backtrace.
#[test]
fn a_closed_output_pipe_ends_the_client_quietly() {
    let s = Server::start_with(Options {
        env: vec![("NUAGE_COMPUTE_DRIVER".into(), "none".into())],
        ..Options::default()
    });
    for args in [
        &["describe-instance-types"][..],
        &["-o", "json", "project", "list"],
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader); // the reader is gone before anything is written
        let o = s
            .client(nuage_bin())
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("run nuage");
        let stderr = String::from_utf8_lossy(&o.stderr);
        use std::os::unix::process::ExitStatusExt;
        assert!(
            o.status.signal() == Some(13) || o.status.code() == Some(0),
            "{args:?}: {:?}\n{stderr}",
            o.status
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn tls_needs_the_servers_ca() {
    let s = Server::start_with(Options {
        tls: true,
        ..Options::default()
    });
    assert!(s.url().starts_with("https://"), "{}", s.url());
    let out = nuage(&s, &["whoami"]).ok();
    assert!(out.row(&["user", "admin"]).is_some(), "{}", out.stdout);

    let out = exec(
        s.client(nuage_bin())
            .env_remove("NUAGE_CACERT")
            .env_remove("OS_CACERT")
            .args(["whoami"]),
    )
    .fails(1);
    assert!(
        out.stderr.contains("no CA certificate is configured"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--cacert"), "{}", out.stderr);

    // Some other CA is not trusted.
    let other = tempfile::tempdir().expect("dir");
    let wrong = other.path().join("other-ca.pem");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("a self-signed cert");
    std::fs::write(&wrong, ck.cert.pem()).expect("write other CA");
    let out = exec(
        s.client(nuage_bin())
            .arg("--cacert")
            .arg(&wrong)
            .args(["whoami"]),
    )
    .fails(1);
    assert!(out.stderr.contains("cannot reach nuage"), "{}", out.stderr);
    assert!(out.stderr.contains("UnknownIssuer"), "{}", out.stderr);
}
