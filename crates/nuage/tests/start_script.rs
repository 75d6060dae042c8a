//! `scripts/start`, the README's one command, run as a user runs it (with
//! stdin closed) but on this build's binary, a temp data dir and a free
//! port, through the knobs its header documents: it must start a server it
//! decides is up by /healthz, prove the login works, build the busybox image,
//! print where the credentials are and never the secrets, and fail with the
//! reason, quickly, when it cannot start or cannot log in.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{cleanup_node, nuage_bin, parse_env_file, Server};

/// How one run of the script ended.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} after {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.took, self.stdout, self.stderr
        )
    }
}

/// Everything one `scripts/start` installs and starts, in one temp dir: the
/// bin dir, the data dir, the log and the pid file. Dropping it kills the
/// server the script started (even when an assertion failed) and takes its
/// containers, mounts and cgroups down before the dir goes.
struct Start {
    dir: tempfile::TempDir,
    data: PathBuf,
    listen: String,
    _port: common::PortLease,
}

impl Start {
    fn new() -> Start {
        let dir = tempfile::tempdir().expect("temp dir");
        // apt-get and cargo stand-ins that refuse: the test machine has the
        // packages (scripts/test installs them) and the script must not
        // build when given NUAGE_BIN.
        let fakes = dir.path().join("fake-bin");
        std::fs::create_dir(&fakes).expect("fake bin dir");
        for (name, script) in [
            (
                "apt-get",
                "#!/bin/sh\ncase \" $* \" in *\" update \"*) exit 0;; esac\n\
                 echo \"test: scripts/start ran apt-get $* (scripts/test installs these packages)\" >&2\nexit 1\n",
            ),
            (
                "cargo",
                "#!/bin/sh\necho \"test: scripts/start ran cargo $* despite NUAGE_BIN\" >&2\nexit 1\n",
            ),
        ] {
            let p = fakes.join(name);
            std::fs::write(&p, script).expect("write a stand-in");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
                .expect("chmod a stand-in");
        }
        let data = dir.path().join("data");
        let port = common::lease_port();
        Start {
            data,
            listen: format!("127.0.0.1:{}", port.port),
            _port: port,
            dir,
        }
    }

    fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("nuage.pid")
    }

    fn admin_env(&self) -> PathBuf {
        self.data.join("admin.env")
    }

    /// Runs `bash scripts/start` with only the knobs and a plain
    /// environment: nothing of the caller's NUAGE_* or OS_* leaks in.
    fn run(&self) -> Run {
        std::fs::create_dir_all(self.bin_dir()).expect("bin dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/start");
        let path = format!(
            "{}:{}",
            self.dir.path().join("fake-bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(script)
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.dir.path())
            .env("LANG", "C.UTF-8")
            .env("NUAGE_BIN", nuage_bin())
            .env("NUAGE_BIN_DIR", self.bin_dir())
            .env("NUAGE_DATA_DIR", &self.data)
            .env("NUAGE_LISTEN", &self.listen)
            .env("NUAGE_LOG_FILE", self.dir.path().join("nuage.log"))
            .env("NUAGE_PID_FILE", self.pid_file())
            .stdin(Stdio::null())
            .output()
            .expect("run bash scripts/start");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: started.elapsed(),
        }
    }

    /// Every live `nuage serve` on this data dir.
    fn servers(&self) -> Vec<u32> {
        let want = format!("--data-dir\0{}\0", self.data.display());
        std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd);
                cmd.contains("\0serve\0") && cmd.contains(&want) && !is_zombie(*pid)
            })
            .collect()
    }

    /// The pid in the pid file, when it names a live server of ours.
    fn pid(&self) -> Option<u32> {
        let pid = std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        self.servers().contains(&pid).then_some(pid)
    }
}

impl Drop for Start {
    fn drop(&mut self) {
        // Not our child (nohup'd by the script, reaped by init): kill every
        // server on this data dir and wait until it is gone.
        let pids = self.servers();
        for pid in &pids {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.servers().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        cleanup_node(&self.data);
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
        .unwrap_or(true)
}

/// The status line of `GET /healthz` on `listen`, or why there is none.
fn healthz(listen: &str) -> String {
    let mut s = match std::net::TcpStream::connect(listen) {
        Ok(s) => s,
        Err(e) => return format!("cannot connect: {e}"),
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(s, "GET /healthz HTTP/1.0\r\nHost: {listen}\r\n\r\n");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_string()
}

#[test]
fn start_serves_logs_in_builds_busybox_and_starts_once() {
    let st = Start::new();
    let run = st.run();
    assert_eq!(run.code, 0, "{run}");
    let out = format!("{}\n{}", run.stdout, run.stderr);

    // The endpoint and where the credentials are; never the secrets.
    let env = parse_env_file(&st.admin_env());
    let url = env.get("NUAGE_URL").expect("NUAGE_URL in admin.env");
    assert_eq!(url, &format!("http://{}", st.listen));
    assert!(
        run.stdout.contains(&format!("nuage is serving at {url}")),
        "{run}"
    );
    assert!(
        run.stdout
            .contains(&format!("source {}", st.admin_env().display())),
        "{run}"
    );
    for secret in ["OS_PASSWORD", "AWS_SECRET_ACCESS_KEY"] {
        let v = env.get(secret).expect("a secret in admin.env");
        assert!(v.len() >= 16, "{secret} is too short to search for");
        assert!(!out.contains(v.as_str()), "{secret} was printed:\n{run}");
    }
    let mode = std::fs::metadata(st.admin_env())
        .expect("admin.env")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "admin.env mode {mode:o}");
    assert!(
        run.stdout.contains("Built the public image busybox."),
        "{run}"
    );

    // Installed where asked, and that is what runs.
    let installed = st.bin_dir().join("nuage");
    let pid = st
        .pid()
        .unwrap_or_else(|| panic!("no live server in the pid file\n{run}"));
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/exe")).expect("server exe"),
        installed
    );
    assert!(
        healthz(&st.listen).contains(" 200"),
        "{}",
        healthz(&st.listen)
    );

    // The credentials it vouched for work with the real CLI.
    let mut whoami = Command::new(&installed);
    whoami
        .arg("whoami")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", st.dir.path())
        .envs(&env)
        .stdin(Stdio::null());
    let (ok, who, err) = common::run(&mut whoami);
    assert!(ok && who.contains("admin"), "nuage whoami: {who}\n{err}");

    // Again: already serving, nothing new started, nothing rebuilt.
    let again = st.run();
    assert_eq!(again.code, 0, "{again}");
    assert!(
        again
            .stdout
            .contains(&format!("nuage is already serving at {url}")),
        "{again}"
    );
    assert!(!again.stdout.contains("Built the public image"), "{again}");
    assert_eq!(st.servers(), vec![pid], "a second server started");
    assert_eq!(st.pid(), Some(pid));
}

#[test]
fn start_fails_with_the_reason_when_it_cannot_log_in() {
    // A server that is up, and a data dir whose admin.env points at it with
    // a password that is not the admin's.
    let srv = Server::start();
    let mut st = Start::new();
    st.listen = format!("127.0.0.1:{}", srv.port);
    std::fs::create_dir_all(&st.data).expect("data dir");
    let real = std::fs::read_to_string(srv.data_dir().join("admin.env")).expect("admin.env");
    let pw = srv.env().get("OS_PASSWORD").cloned().expect("OS_PASSWORD");
    let wrong = real.replace(&pw, "not-the-admin-password");
    assert_ne!(wrong, real);
    std::fs::write(st.admin_env(), wrong).expect("write admin.env");

    let run = st.run();
    assert_ne!(run.code, 0, "{run}");
    assert!(run.stdout.contains("nuage is already serving"), "{run}");
    assert!(
        run.stderr.contains(&format!(
            "scripts/start: cannot log in with {}",
            st.admin_env().display()
        )),
        "{run}"
    );
    assert!(st.servers().is_empty(), "it started a server: {run}");
    assert!(!run.stdout.contains("Built the public image"), "{run}");
}

#[test]
fn start_fails_early_with_the_reason_when_the_server_cannot_start() {
    // The port is taken by a listener that accepts connections (into its
    // backlog) and never answers: not nuage, not healthy.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut st = Start::new();
    st.listen = squatter.local_addr().expect("addr").to_string();
    let run = st.run();
    assert_ne!(run.code, 0, "{run}");
    assert!(
        run.stderr.contains("scripts/start: nuage serve exited"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains(&format!("cannot listen on {}", st.listen)),
        "the server's reason is not shown: {run}"
    );
    assert!(
        run.took < Duration::from_secs(20),
        "noticed the exit only after {:?}",
        run.took
    );
    assert!(st.servers().is_empty());

    // A data dir that cannot be created (under a regular file).
    let mut st = Start::new();
    let file = st.dir.path().join("a-file");
    std::fs::write(&file, "").expect("write a file");
    st.data = file.join("data");
    let run = st.run();
    assert_ne!(run.code, 0, "{run}");
    assert!(
        run.stderr.contains("scripts/start: nuage serve exited"),
        "{run}"
    );
    assert!(
        run.took < Duration::from_secs(20),
        "noticed the exit only after {:?}",
        run.took
    );
    drop(squatter);
}
