//! A real `nuage serve` for integration tests: a temp data dir, a free port
//! on loopback, the admin.env it writes, and ways to stop it (SIGTERM or
//! SIGKILL) and start it again on the same data.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test: this build's, or `NUAGE_TEST_BIN` (to show that
/// a test fails on an older build).
pub fn nuage_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("NUAGE_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_nuage").to_string())
    })
}

/// A loopback port held for one test server's whole life, respawns
/// included. A port from `bind(0)` is free only until the next `bind(0)`:
/// two tests could get the same one, and a killed server's port could go to
/// another test before the respawn, which then talks to the wrong server.
/// Leases come from below the kernel's ephemeral range (so no outgoing
/// connection takes one) and are held by an exclusive lock on a file per
/// port, which every test process honours and which dies with the process.
#[derive(Debug)]
pub struct PortLease {
    pub port: u16,
    _lock: std::fs::File,
}

pub fn lease_port() -> PortLease {
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    let dir = std::env::temp_dir().join("nuage-test-ports");
    std::fs::create_dir_all(&dir).expect("port lock dir");
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919);
    for _ in 0..COUNT {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = (FIRST + (seed.wrapping_add(n) % COUNT)) as u16;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
            .expect("port lock file");
        if file.try_lock().is_err() {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return PortLease { port, _lock: file };
        }
    }
    panic!(
        "no free loopback port between {FIRST} and {}",
        FIRST + COUNT
    );
}

/// Options for [`Server::start_with`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub database: Option<String>,
    pub tls: bool,
    pub env: Vec<(String, String)>,
    /// Start the server under this open-file limit (soft and hard).
    pub nofile: Option<u64>,
    /// For a second controller on a database another server bootstrapped:
    /// the admin.env to copy into the data directory first, as an operator
    /// would (the server writes one only when it bootstraps).
    pub admin_env: Option<PathBuf>,
}

pub struct Server {
    pub dir: tempfile::TempDir,
    pub port: u16,
    lease: PortLease,
    pub opts: Options,
    child: Option<Child>,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Server {
    /// A server on SQLite in a fresh data directory.
    pub fn start() -> Server {
        Self::start_with(Options::default())
    }

    /// A server on a fresh PostgreSQL database (NUAGE_TEST_POSTGRES).
    pub async fn start_postgres() -> Server {
        let url = nuage_store::testing::fresh_postgres_url()
            .await
            .expect("a fresh PostgreSQL database");
        Self::start_with(Options {
            database: Some(url),
            ..Options::default()
        })
    }

    pub fn start_with(opts: Options) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let lease = lease_port();
        let mut s = Server {
            port: lease.port,
            lease,
            stdout_path: dir.path().join("stdout.log"),
            stderr_path: dir.path().join("stderr.log"),
            dir,
            opts,
            child: None,
        };
        if let Some(env) = &s.opts.admin_env {
            std::fs::create_dir_all(s.data_dir()).expect("data dir");
            std::fs::copy(env, s.data_dir().join("admin.env")).expect("copy admin.env");
        }
        s.spawn();
        s
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn command(&self) -> Command {
        let mut c = match self.opts.nofile {
            // prlimit execs the server: the pid stays the server's.
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}"))
                    .arg("--")
                    .arg(nuage_bin());
                c
            }
            None => Command::new(nuage_bin()),
        };
        c.arg("serve")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port));
        if let Some(db) = &self.opts.database {
            c.arg("--database").arg(db);
        }
        if self.opts.tls {
            c.arg("--tls").arg("true");
        }
        c.env_remove("NUAGE_DATA_DIR")
            .env_remove("NUAGE_LISTEN")
            .env_remove("NUAGE_DATABASE");
        for (k, v) in &self.opts.env {
            c.env(k, v);
        }
        c
    }

    /// Starts the process and waits until /healthz answers.
    pub fn spawn(&mut self) {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stdout_path)
            .expect("stdout log");
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .expect("stderr log");
        let child = self
            .command()
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start nuage serve");
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(30));
    }

    pub fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!(
                        "nuage serve exited with {status} before serving:\n{}",
                        self.logs()
                    );
                }
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self.data_dir().join("admin.env").exists()
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "nuage serve did not start within {timeout:?}:\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn logs(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            std::fs::read_to_string(&self.stdout_path).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
        )
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn signal(&mut self, sig: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(pid.to_string())
                .status();
        }
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill9(&mut self) {
        self.signal("KILL");
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let mut c = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("nuage serve ignored SIGTERM for 15 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn scheme(&self) -> &'static str {
        if self.opts.tls {
            "https"
        } else {
            "http"
        }
    }

    /// The URL the server advertises in admin.env.
    pub fn url(&self) -> String {
        self.env()
            .get("NUAGE_URL")
            .cloned()
            .unwrap_or_else(|| format!("{}://127.0.0.1:{}", self.scheme(), self.port))
    }

    /// The variables admin.env exports.
    pub fn env(&self) -> HashMap<String, String> {
        parse_env_file(&self.data_dir().join("admin.env"))
    }

    /// An HTTP client that trusts the server's CA when TLS is on.
    pub fn http(&self) -> reqwest::Client {
        let mut b = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if self.opts.tls {
            let ca = std::fs::read(self.data_dir().join("tls/ca.pem")).expect("ca.pem");
            b = b.add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA"));
        }
        b.build().expect("client")
    }

    /// A token for `user` with `password`, optionally scoped to `project`.
    pub async fn token_for(&self, user: &str, password: &str, project: Option<&str>) -> String {
        let mut body = serde_json::json!({"user": user, "password": password});
        if let Some(p) = project {
            body["project"] = serde_json::json!(p);
        }
        let r = self
            .http()
            .post(format!("{}/nuage/v1/tokens", self.url()))
            .json(&body)
            .send()
            .await
            // The server's own account of what happened, if it failed.
            .unwrap_or_else(|e| panic!("token request: {e}\n{}", self.logs()));
        assert_eq!(
            r.status(),
            201,
            "token for {user}: {}",
            r.text().await.unwrap_or_default()
        );
        let v: serde_json::Value = r.json().await.expect("token json");
        v["token"].as_str().expect("token").to_string()
    }

    /// The admin's token.
    pub async fn admin_token(&self) -> String {
        let pw = self
            .env()
            .get("OS_PASSWORD")
            .cloned()
            .expect("OS_PASSWORD in admin.env");
        self.token_for("admin", &pw, None).await
    }

    /// Runs a client command (`nuage`, `openstack`, `aws`, ...) with the
    /// admin.env environment and `HOME` in the temp dir.
    pub fn client(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null());
        for (k, v) in self.env() {
            c.env(k, v);
        }
        c
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        cleanup_node(&self.data_dir());
    }
}

/// The cgroup parent `nuage serve` derives from its data dir (FNV-1a).
pub fn cgroup_parent(data_dir: &Path) -> String {
    let h = data_dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0x811c_9dc5u32, |h, b| {
            (h ^ *b as u32).wrapping_mul(0x0100_0193)
        });
    format!("nuage-{h:08x}")
}

/// Instances outlive a killed server (runc runs them detached, as a real
/// node keeps running its instances); a test's server takes its own down
/// with it so nothing leaks into the next test: containers, mounts under
/// the data dir, cgroups.
pub fn cleanup_node(data_dir: &Path) {
    let root = data_dir.join("compute/run/runc");
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            let _ = Command::new("runc")
                .arg("--root")
                .arg(&root)
                .args(["delete", "--force"])
                .arg(e.file_name())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    let parent = cgroup_parent(data_dir);
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = hierarchy.path().join(&parent);
        if let Ok(children) = std::fs::read_dir(&dir) {
            for c in children.flatten() {
                if c.path().is_dir() {
                    kill_cgroup(&c.path());
                    let _ = std::fs::remove_dir(c.path());
                }
            }
            let _ = std::fs::remove_dir(&dir);
        }
    }
    for m in mounts_under(data_dir) {
        let _ = Command::new("umount").arg("-l").arg(&m).status();
    }
}

fn kill_cgroup(dir: &Path) {
    for f in ["cgroup.procs", "tasks"] {
        if let Ok(pids) = std::fs::read_to_string(dir.join(f)) {
            for pid in pids.split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
    }
}

/// Mount points under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let prefix = dir.to_string_lossy().to_string();
    let mut v: Vec<PathBuf> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(PathBuf::from)
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    v
}

pub fn parse_env_file(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .map(|v| v.replace(r"'\''", "'"))
                .unwrap_or_else(|| v.to_string());
            (k.to_string(), v)
        })
        .collect()
}

/// Builds and uploads the public busybox image with the real CLI, as a
/// user would.
pub fn build_busybox(s: &Server) {
    let (ok, out, err) = run(s
        .client(nuage_bin())
        .args(["image", "build", "busybox", "--public"]));
    assert!(
        ok,
        "nuage image build busybox failed:\n{out}\n{err}\n{}",
        s.logs()
    );
}

/// Sends a request with `token` and an optional JSON body; returns the
/// status and the JSON answer (`null` when the body is not JSON).
pub async fn call(
    s: &Server,
    token: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut rb = s
        .http()
        .request(m, format!("{}{path}", s.url()))
        .header("x-auth-token", token)
        .timeout(Duration::from_secs(120));
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Runs `cmd`, returning (success, stdout, stderr).
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run client command");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One aws CLI (`bin`: awscli 1.x on PATH, or /usr/bin/aws 2.x) pointed at
/// `srv` with the admin's credentials, run in `cwd`.
pub struct Aws<'a> {
    pub srv: &'a Server,
    pub bin: &'a str,
    pub cwd: &'a Path,
}

impl Aws<'_> {
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        let mut c = self.srv.client(self.bin);
        c.current_dir(self.cwd)
            .args(args)
            .args(["--endpoint-url", &self.srv.url(), "--output", "json"])
            .env("AWS_MAX_ATTEMPTS", "2");
        run(&mut c)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "{} {}: {err}\n{out}", self.bin, args.join(" "));
        out
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ok(args);
        if out.trim().is_empty() {
            // awscli 2 prints nothing for an empty paginated listing.
            return serde_json::json!({});
        }
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{} {}: not JSON ({e}): {out}", self.bin, args.join(" ")))
    }

    /// Runs a command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(!ok, "{} {} succeeded: {out}", self.bin, args.join(" "));
        err
    }
}

/// A new project `name` with a member `<name>-user` holding `password`:
/// (project id, user id).
pub async fn project_with_member(s: &Server, name: &str, password: &str) -> (String, String) {
    let admin = s.admin_token().await;
    let (st, p) = call(
        s,
        &admin,
        "POST",
        "/v3/projects",
        Some(serde_json::json!({"project": {"name": name, "domain_id": "default"}})),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    let pid = p["project"]["id"].as_str().expect("project id").to_string();
    let uid = user_with_role(s, &pid, &format!("{name}-user"), password, "member").await;
    (pid, uid)
}

/// A new user `name` holding `role` on project `pid`: its id.
pub async fn user_with_role(
    s: &Server,
    pid: &str,
    name: &str,
    password: &str,
    role: &str,
) -> String {
    let admin = s.admin_token().await;
    let (st, u) = call(
        s,
        &admin,
        "POST",
        "/v3/users",
        Some(serde_json::json!({"user": {"name": name, "password": password, "default_project_id": pid}})),
    )
    .await;
    assert_eq!(st, 201, "{u}");
    let uid = u["user"]["id"].as_str().expect("user id").to_string();
    let (st, roles) = call(s, &admin, "GET", &format!("/v3/roles?name={role}"), None).await;
    assert_eq!(st, 200, "{roles}");
    let rid = roles["roles"][0]["id"].as_str().expect("role id");
    let (st, _) = call(
        s,
        &admin,
        "PUT",
        &format!("/v3/projects/{pid}/users/{uid}/roles/{rid}"),
        None,
    )
    .await;
    assert_eq!(st, 204);
    uid
}

/// EC2 credentials (access key, secret) that `user` (id `uid`) makes for
/// itself on `project` (id `pid`).
pub async fn ec2_credentials(
    s: &Server,
    user: &str,
    password: &str,
    project: &str,
    pid: &str,
    uid: &str,
) -> (String, String) {
    let token = s.token_for(user, password, Some(project)).await;
    let (st, k) = call(
        s,
        &token,
        "POST",
        &format!("/v3/users/{uid}/credentials/OS-EC2"),
        Some(serde_json::json!({"tenant_id": pid})),
    )
    .await;
    assert_eq!(st, 201, "{k}");
    (
        k["credential"]["access"].as_str().expect("access").into(),
        k["credential"]["secret"].as_str().expect("secret").into(),
    )
}

/// A server without a compute node, for the calls that need none.
pub fn start_without_compute() -> Server {
    Server::start_with(Options {
        env: vec![("NUAGE_COMPUTE_DRIVER".into(), "none".into())],
        ..Options::default()
    })
}

/// `openstack ARGS` (with `-f json` when `json_out`) on admin.env plus
/// `env`: the parsed output (its text when not JSON), or stderr.
pub fn osc(
    s: &Server,
    env: &[(&str, &str)],
    args: &[&str],
    json_out: bool,
) -> Result<serde_json::Value, String> {
    let mut c = s.client("openstack");
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(args);
    if json_out {
        c.args(["-f", "json"]);
    }
    let (ok, out, err) = run(&mut c);
    if !ok {
        return Err(err);
    }
    if !json_out {
        return Ok(serde_json::Value::String(out));
    }
    serde_json::from_str(&out).map_err(|e| format!("output is not JSON ({e}): {out}\n{err}"))
}

/// A root filesystem tar in `dir` with busybox and its shell.
pub fn rootfs_tar(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("bin")).expect("mkdir");
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static");
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).expect("symlink");
    let tar = dir.join("rootfs.tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(ok.success());
    tar
}

/// A Keystone token for `user` scoped to `project`, and that project's
/// Swift account URL.
pub async fn swift_login(
    s: &Server,
    user: &str,
    password: &str,
    project: &str,
) -> (String, String) {
    let r = s
        .http()
        .post(format!("{}/v3/auth/tokens", s.url()))
        .json(&serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": "Default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}
        }}))
        .send()
        .await
        .expect("keystone login");
    assert_eq!(r.status(), 201);
    let token = r.headers()["x-subject-token"]
        .to_str()
        .expect("token")
        .to_string();
    let body: serde_json::Value = r.json().await.expect("token body");
    let pid = body["token"]["project"]["id"].as_str().expect("project id");
    (token, format!("{}/v1/AUTH_{pid}", s.url()))
}

/// User data as the native API takes it (base64).
pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Launches one busybox instance (t2.nano) running `user_data`; returns
/// it as the launch answered.
pub async fn launch_busybox(s: &Server, t: &str, user_data: &str) -> serde_json::Value {
    let (st, v) = call(
        s,
        t,
        "POST",
        "/nuage/v1/instances",
        Some(serde_json::json!({
            "image_id": "busybox", "instance_type": "t2.nano", "user_data": b64(user_data)
        })),
    )
    .await;
    assert_eq!(st, 201, "run: {v}\n{}", s.logs());
    v["items"][0].clone()
}

/// Waits (60 s at most) for the instance to be in `state`; returns it.
pub async fn wait_state(s: &Server, t: &str, id: &str, state: &str) -> serde_json::Value {
    let (st, v) = call(
        s,
        t,
        "GET",
        &format!("/nuage/v1/instances/{id}?wait_for={state}&timeout=60"),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], state, "{id}: {v}\n{}", s.logs());
    v
}

/// The container driver's network namespace of an instance.
pub fn instance_netns(s: &Server, id: &str) -> PathBuf {
    s.data_dir().join("compute/run/netns").join(id)
}

/// One aws CLI (`bin`) against `s`, with the admin's credentials or,
/// in `creds`, another caller's (access key, secret).
pub struct Cli<'a> {
    pub s: &'a Server,
    pub bin: &'a str,
    pub cwd: &'a Path,
    pub creds: Option<(String, String)>,
}
impl Cli<'_> {
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        let mut c = self.s.client(self.bin);
        c.current_dir(self.cwd)
            .args(args)
            .args(["--endpoint-url", &self.s.url(), "--output", "json"])
            .env("AWS_MAX_ATTEMPTS", "1");
        if let Some((k, secret)) = &self.creds {
            c.env("AWS_ACCESS_KEY_ID", k)
                .env("AWS_SECRET_ACCESS_KEY", secret);
        }
        run(&mut c)
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let (ok, out, err) = self.run(args);
        assert!(
            ok,
            "{} {}: {err}\n{out}\n{}",
            self.bin,
            args.join(" "),
            self.s.logs()
        );
        if out.trim().is_empty() {
            return serde_json::json!({});
        }
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{} {}: not JSON ({e}): {out}", self.bin, args.join(" ")))
    }

    /// Runs a call that must fail with the EC2 error `code`.
    pub fn fails(&self, code: &str, args: &[&str]) {
        let (ok, out, err) = self.run(args);
        assert!(!ok, "{} {} succeeded: {out}", self.bin, args.join(" "));
        assert!(
            err.contains(&format!("({code})")),
            "{} {}: wanted {code}, got: {err}",
            self.bin,
            args.join(" ")
        );
    }
}

/// Retries `f` until it gives `Some` or `timeout` passes; fails with
/// `what` and the server's logs.
pub fn eventually<T>(
    what: &str,
    s: &Server,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}\n{}", s.logs());
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The first line a TCP server at `to` sends, read from inside `ns` (a
/// test's own namespace), if it connects.
pub fn banner_from(
    ns: &nuage_netdriver::testing::NetNs,
    to: std::net::SocketAddr,
) -> Option<String> {
    use std::io::Read;
    ns.run(|| {
        let mut c = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(1)).ok()?;
        c.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut buf = [0u8; 128];
        let n = c.read(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).trim().to_string())
    })
    .expect("thread in the namespace")
}

/// Whether `ip` answers one ping from inside `ns`.
pub fn ping_from(ns: &nuage_netdriver::testing::NetNs, ip: &str) -> bool {
    ns.exec("/bin/busybox", &["ping", "-c", "1", "-W", "1", ip])
        .expect("ping")
        .status
        .success()
}

/// `openstack ARGS -f json` on admin.env: its parsed output; fails the
/// test with the server's logs otherwise.
pub fn osc_ok(s: &Server, args: &[&str]) -> serde_json::Value {
    osc(s, &[], args, true)
        .unwrap_or_else(|e| panic!("openstack {}: {e}\n{}", args.join(" "), s.logs()))
}

/// `openstack ARGS` without output formatting: its stdout.
pub fn osc_text(s: &Server, args: &[&str]) -> String {
    match osc(s, &[], args, false) {
        Ok(serde_json::Value::String(out)) => out,
        Ok(other) => other.to_string(),
        Err(e) => panic!("openstack {}: {e}\n{}", args.join(" "), s.logs()),
    }
}

/// `openstack ARGS`, which must fail: its error text.
pub fn osc_fails(s: &Server, args: &[&str]) -> String {
    match osc(s, &[], args, false) {
        Ok(out) => panic!("openstack {} succeeded: {out}", args.join(" ")),
        Err(e) => e,
    }
}

/// A raw Image API request (`/image` + `path`): status and JSON (or Null).
pub async fn glance(
    s: &Server,
    token: Option<&str>,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut rb = s.http().request(m, format!("{}/image{path}", s.url()));
    if let Some(t) = token {
        rb = rb.header("x-auth-token", t);
    }
    if let Some(ct) = content_type {
        rb = rb.header("content-type", ct);
    }
    if let Some(b) = body {
        rb = rb.body(b.to_string());
    }
    let r = rb.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// The string at `key` of a JSON object; fails the test otherwise.
pub fn str_of<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
}
