//! The container driver against real runc, real cgroups and real mounts.
//! Run as root; they fail (never skip) without runc or /bin/busybox.

mod common;

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{fixture, new_id};
use nuage_driver::{ComputeDriver, DriverError, Exit, Power};
use nuage_driver_container::{ContainerConfig, ContainerDriver};

const T: Duration = Duration::from_secs(20);

fn running_pid(p: &Power) -> u32 {
    match p {
        Power::Running { pid } => *pid,
        other => panic!("expected Running, got {other:?}"),
    }
}

fn ns_link(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap_or_else(|e| panic!("ns {ns} of {pid}: {e}"))
        .to_string_lossy()
        .into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_isolated_with_console_config_drive_and_hosts() {
    let fx = fixture();
    let id = new_id();
    let mut spec = fx.spec(
        &id,
        "echo hello-from-init $GREETING; echo hostname=$(hostname); cat /etc/hosts; \
         cat /etc/resolv.conf; \
         if echo x >> /etc/resolv.conf 2>/dev/null; then echo RESOLV-WRITABLE; else echo RESOLV-READONLY; fi; \
         cat /mnt/config/openstack/latest/user_data; \
         if echo x > /mnt/config/x 2>/dev/null; then echo CONFIG-WRITABLE; else echo CONFIG-READONLY; fi; \
         grep ' /mnt/config ' /proc/self/mountinfo; \
         grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; echo ready; exec sleep 1000",
    );
    spec.dns_domain = Some("test-1.compute.internal".into());
    let obs = fx
        .driver
        .ensure_running(&spec)
        .await
        .expect("ensure_running");
    let pid = running_pid(&obs.power);
    assert_eq!(
        obs.netns.as_deref(),
        Some(fx.driver.netns_path(&id).as_path())
    );
    let c = fx.wait_console(&id, "ready", T).await;
    assert!(c.contains("hello-from-init hello"), "{c}");
    assert!(c.contains(&format!("hostname={}", spec.hostname)), "{c}");
    assert!(c.contains("127.0.0.1\tlocalhost"), "{c}");
    assert!(c.contains(&format!("127.0.1.1\t{}", spec.hostname)), "{c}");
    assert!(c.contains("search test-1.compute.internal\n"), "{c}");
    assert!(
        c.contains("# no resolver: the instance has no gateway"),
        "{c}"
    );
    assert!(c.contains("RESOLV-READONLY"), "{c}");
    assert!(c.contains("user-data-here"), "{c}");
    assert!(c.contains("CONFIG-READONLY"), "{c}");
    let mnt_line = c
        .lines()
        .find(|l| l.contains(" /mnt/config "))
        .expect("config drive in the container's mountinfo");
    assert!(
        mnt_line
            .split(' ')
            .nth(5)
            .is_some_and(|o| o.split(',').any(|x| x == "ro")),
        "{mnt_line}"
    );
    // Docker's 14 default capabilities, nothing more; no new privileges.
    assert!(c.contains("CapEff:\t00000000a80425fb"), "{c}");
    assert!(c.contains("NoNewPrivs:\t1"), "{c}");

    // Every namespace differs from the host's, and the network one is the
    // bind-mounted netns the driver reports.
    let pid_s = pid.to_string();
    for ns in ["user", "pid", "uts", "ipc", "net", "mnt"] {
        assert_ne!(
            ns_link(&pid_s, ns),
            ns_link("self", ns),
            "{ns} namespace shared with the host"
        );
    }
    let netns_ino = std::fs::metadata(fx.driver.netns_path(&id))
        .expect("netns")
        .ino();
    let init_net_ino = std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .expect("ns/net")
        .ino();
    assert_eq!(
        netns_ino, init_net_ino,
        "init is not in the instance's netns"
    );

    // Idempotent: running again changes nothing.
    let again = fx
        .driver
        .ensure_running(&spec)
        .await
        .expect("ensure_running again");
    assert_eq!(running_pid(&again.power), pid);
    assert_eq!(fx.driver.list().await.expect("list"), vec![id.clone()]);

    fx.driver.ensure_absent(&id).await.expect("ensure_absent");
    fx.assert_nothing_left(&id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_keeps_disk_and_console_across_start() {
    let fx = fixture();
    let id = new_id();
    let mut spec = fx.spec(
        &id,
        "echo drive=$(cat /mnt/config/version); \
         if [ -f /kept ]; then echo second-boot $(cat /kept); else echo first-boot; echo data-1 > /kept; fi; exec sleep 1000",
    );
    spec.config_drive.push(nuage_driver::ConfigFile {
        path: "version".into(),
        contents: b"v1".to_vec(),
    });
    fx.driver.ensure_running(&spec).await.expect("start");
    fx.wait_console(&id, "first-boot", T).await;

    // `sleep` as pid 1 ignores SIGTERM: the grace runs out, SIGKILL follows.
    let t0 = Instant::now();
    let obs = fx
        .driver
        .ensure_stopped(&id, Duration::from_millis(300))
        .await
        .expect("stop");
    assert_eq!(obs.power, Power::Stopped);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t0.elapsed()
    );
    assert!(
        !fx.driver.runc_state_dir(&id).exists(),
        "runc state kept after stop"
    );
    for c in fx.driver.cgroup_dirs(&id) {
        assert!(!c.exists(), "cgroup {} kept after stop", c.display());
    }
    let kept = fx.driver.instance_dir(&id).join("disk/upper/kept");
    assert_eq!(
        std::fs::read_to_string(&kept).expect("upper dir kept"),
        "data-1\n"
    );
    assert!(fx.driver.netns_path(&id).exists(), "netns dropped on stop");
    // Idempotent.
    let again = fx
        .driver
        .ensure_stopped(&id, Duration::ZERO)
        .await
        .expect("stop again");
    assert_eq!(again.power, Power::Stopped);

    // The config drive is rewritten on start.
    spec.config_drive.last_mut().expect("version file").contents = b"v2".to_vec();
    fx.driver.ensure_running(&spec).await.expect("start again");
    let c = fx.wait_console(&id, "second-boot data-1", T).await;
    assert!(
        c.contains("first-boot"),
        "console lost across stop/start: {c}"
    );
    assert!(
        c.contains("drive=v1") && c.contains("drive=v2"),
        "config drive not rewritten: {c}"
    );

    fx.driver.ensure_absent(&id).await.expect("absent");
    fx.assert_nothing_left(&id);
    // Absent is idempotent, and stop of an absent instance is fine.
    fx.driver.ensure_absent(&id).await.expect("absent again");
    let obs = fx
        .driver
        .ensure_stopped(&id, Duration::ZERO)
        .await
        .expect("stop absent");
    assert_eq!(obs.power, Power::Absent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_sends_sigterm_first() {
    let fx = fixture();
    let id = new_id();
    let spec = fx.spec(
        &id,
        "trap 'echo got-term; exit 0' TERM; echo armed; while true; do sleep 0.1; done",
    );
    fx.driver.ensure_running(&spec).await.expect("start");
    fx.wait_console(&id, "armed", T).await;
    let t0 = Instant::now();
    fx.driver
        .ensure_stopped(&id, Duration::from_secs(10))
        .await
        .expect("stop");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "SIGTERM not honoured: {:?}",
        t0.elapsed()
    );
    assert!(fx.console(&id).await.contains("got-term"));
    fx.driver.ensure_absent(&id).await.expect("absent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_sink_fires_when_init_exits() {
    let fx = fixture();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    fx.driver.set_event_sink(Arc::new(move |id: &str| {
        let _ = tx.send(id.to_string());
    }));
    let id = new_id();
    let spec = fx.spec(&id, "echo bye; sleep 0.5");
    let obs = fx.driver.ensure_running(&spec).await.expect("start");
    running_pid(&obs.power);
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no exit event within 10 s")
        .expect("channel open");
    assert_eq!(got, id);
    let obs = fx.driver.observe(&id).await.expect("observe");
    assert_eq!(obs.power, Power::Stopped);

    // Starting again deletes the dead container first; a second exit is
    // reported again (one watcher per incarnation).
    let spec = fx.spec(&id, "echo again; sleep 0.3");
    fx.driver.ensure_running(&spec).await.expect("restart");
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no second exit event")
        .expect("channel open");
    assert_eq!(got, id);
    let c = fx.console(&id).await;
    assert!(c.contains("bye") && c.contains("again"), "{c}");

    // A stop the driver makes itself is not reported.
    let spec = fx.spec(&id, "exec sleep 1000");
    fx.driver.ensure_running(&spec).await.expect("start 3");
    fx.driver
        .ensure_stopped(&id, Duration::ZERO)
        .await
        .expect("stop");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "driver-initiated stop was reported as an event"
    );
    fx.driver.ensure_absent(&id).await.expect("absent");
}

/// The node agent is the instances' subreaper: an init that exits is
/// reaped (no zombie stays) and its status is observed, until the next
/// start forgets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_exit_status_is_observed_and_reaped() {
    let fx = fixture();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    fx.driver.set_event_sink(Arc::new(move |id: &str| {
        let _ = tx.send(id.to_string());
    }));
    let id = new_id();
    let obs = fx
        .driver
        .ensure_running(&fx.spec(&id, "sleep 0.3; exit 3"))
        .await
        .expect("start");
    let pid = running_pid(&obs.power);
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no exit event within 10 s")
        .expect("channel open");
    let obs = fx.driver.observe(&id).await.expect("observe");
    assert_eq!(obs.power, Power::Stopped);
    assert_eq!(obs.exit, Some(Exit::Code(3)));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the exited init {pid} was left a zombie"
    );
    // Observing again keeps the status.
    let again = fx.driver.observe(&id).await.expect("observe again");
    assert_eq!(again.exit, Some(Exit::Code(3)));

    // A new incarnation has no exit status while it runs; a SIGKILL is
    // reported as such. The init ignores SIGTERM for certain (an ignored
    // signal stays ignored across exec), and is stopped only once it runs
    // `sleep`, not while the shell starts.
    let obs = fx
        .driver
        .ensure_running(&fx.spec(&id, "trap '' TERM; echo term-ignored; exec sleep 1000"))
        .await
        .expect("restart");
    let pid = running_pid(&obs.power);
    assert_eq!(obs.exit, None);
    fx.wait_console(&id, "term-ignored", Duration::from_secs(10))
        .await;
    let obs = fx
        .driver
        .ensure_stopped(&id, Duration::from_millis(100))
        .await
        .expect("stop");
    assert_eq!(obs.exit, Some(Exit::Signal(9)));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the stopped init {pid} was left a zombie"
    );
    fx.driver.ensure_absent(&id).await.expect("absent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_is_rearmed_by_observe_after_restart() {
    let fx = fixture();
    let id = new_id();
    let spec = fx.spec(&id, "sleep 1; echo done");
    fx.driver.ensure_running(&spec).await.expect("start");
    // A new driver on the same state dir: a server restart.
    let restarted = ContainerDriver::new(fx.driver.config().clone()).expect("restart driver");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    restarted.set_event_sink(Arc::new(move |id: &str| {
        let _ = tx.send(id.to_string());
    }));
    let obs = restarted.observe(&id).await.expect("observe");
    running_pid(&obs.power);
    // Observing again does not add a second watcher (one event only).
    restarted.observe(&id).await.expect("observe");
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no exit event after re-arm")
        .expect("open");
    assert_eq!(got, id);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "two watchers for one instance"
    );
    restarted.ensure_absent(&id).await.expect("absent");
    fx.assert_nothing_left(&id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_finds_leftovers_and_absent_removes_them() {
    let fx = fixture();
    let d = &fx.driver;

    // 1. Half-created: directory and overlay mount, nothing else.
    let half = new_id();
    let dir = d.instance_dir(&half);
    let run = d.run_dir(&half);
    for sub in ["disk/upper", "disk/work"] {
        std::fs::create_dir_all(dir.join(sub)).expect("dirs");
    }
    std::fs::create_dir_all(run.join("rootfs")).expect("dirs");
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        fx.rootfs.display(),
        dir.join("disk/upper").display(),
        dir.join("disk/work").display()
    );
    let st = std::process::Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(run.join("rootfs"))
        .status()
        .expect("mount(8)");
    assert!(st.success(), "test setup: overlay mount failed");

    // 2. Only a cgroup (a crash after runc made it, state lost).
    let cg_only = new_id();
    let mem = fx.cgroup_dir(&cg_only, "memory");
    std::fs::create_dir_all(&mem).expect("cgroup dir");

    // 3. Running, then its instance dir lost (a crash mid-delete): runc
    // state, cgroups, netns and a live process remain.
    let orphan = new_id();
    let obs = d
        .ensure_running(&fx.spec(&orphan, "exec sleep 1000"))
        .await
        .expect("start");
    let orphan_pid = running_pid(&obs.power);
    // Its mounts inside the directories go first (the netns one stays).
    for m in [
        d.run_dir(&orphan).join("rootfs"),
        d.run_dir(&orphan).join("lower"),
        d.instance_dir(&orphan).join("disk"),
        d.run_dir(&orphan).join("userns"),
    ] {
        assert!(std::process::Command::new("umount")
            .arg("-l")
            .arg(m)
            .status()
            .expect("umount")
            .success());
    }
    std::fs::remove_dir_all(d.instance_dir(&orphan)).expect("rm instance dir");
    std::fs::remove_dir_all(d.run_dir(&orphan)).expect("rm run dir");

    // 4. Only a network namespace file.
    let ns_only = new_id();
    std::fs::write(d.netns_path(&ns_only), b"").expect("netns file");

    let listed: HashSet<String> = d.list().await.expect("list").into_iter().collect();
    for id in [&half, &cg_only, &orphan, &ns_only] {
        assert!(listed.contains(id), "list() missed {id}: {listed:?}");
    }
    assert_eq!(
        d.observe(&half).await.expect("observe").power,
        Power::Stopped
    );

    for id in [&half, &cg_only, &orphan, &ns_only] {
        d.ensure_absent(id)
            .await
            .unwrap_or_else(|e| panic!("ensure_absent {id}: {e}"));
        fx.assert_nothing_left(id);
        assert_eq!(d.observe(id).await.expect("observe").power, Power::Absent);
    }
    assert!(d.list().await.expect("list").is_empty());
    assert!(
        !Path::new(&format!("/proc/{orphan_pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{orphan_pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "orphan's process survived ensure_absent"
    );
    assert!(
        fx.mounts_under_state().is_empty(),
        "{:?}",
        fx.mounts_under_state()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_created_instance_can_be_started() {
    let fx = fixture();
    let id = new_id();
    // Directories but no mount, no netns, no spec: ensure_running completes it.
    std::fs::create_dir_all(fx.driver.instance_dir(&id).join("disk/upper")).expect("dirs");
    let obs = fx
        .driver
        .ensure_running(&fx.spec(&id, "echo completed; exec sleep 1000"))
        .await
        .expect("start half-created");
    running_pid(&obs.power);
    fx.wait_console(&id, "completed", T).await;
    fx.driver.ensure_absent(&id).await.expect("absent");
    fx.assert_nothing_left(&id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_oom_kills_and_count_survives_restart() {
    let fx = fixture();
    let id = new_id();
    let mut spec = fx.spec(
        &id,
        "head -c 100000000 /dev/zero | tail > /dev/null; echo tail-exit=$?; exec sleep 1000",
    );
    spec.resources.memory_mib = 32;
    fx.driver.ensure_running(&spec).await.expect("start");
    let c = fx.wait_console(&id, "tail-exit=", T).await;
    assert!(c.contains("tail-exit=137"), "tail was not SIGKILLed: {c}");
    let obs = fx
        .wait_observed(&id, "OOM-killed", T, |o| o.oom_kills >= 1)
        .await;
    running_pid(&obs.power);
    let limit =
        std::fs::read_to_string(fx.cgroup_dir(&id, "memory").join(if fx.driver.cgroup_v2() {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        }))
        .expect("memory limit");
    assert_eq!(limit.trim(), (32u64 << 20).to_string());

    let n = obs.oom_kills;
    let stopped = fx
        .driver
        .ensure_stopped(&id, Duration::ZERO)
        .await
        .expect("stop");
    assert_eq!(stopped.oom_kills, n, "OOM count lost when the cgroup went");
    spec.command = vec!["/bin/sh".into(), "-c".into(), "exec sleep 1000".into()];
    let restarted = fx.driver.ensure_running(&spec).await.expect("restart");
    assert_eq!(restarted.oom_kills, n, "OOM count lost across restart");
    fx.driver.ensure_absent(&id).await.expect("absent");
    fx.assert_nothing_left(&id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pids_limit_holds_a_fork_bomb() {
    let fx = fixture();
    let id = new_id();
    let mut spec = fx.spec(&id, "bomb() { bomb | bomb & }; bomb; exec sleep 1000");
    spec.resources.pids_limit = 64;
    fx.driver.ensure_running(&spec).await.expect("start");
    let pids_dir = fx.cgroup_dir(&id, "pids");
    assert_eq!(
        std::fs::read_to_string(pids_dir.join("pids.max"))
            .expect("pids.max")
            .trim(),
        "64"
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut peak = 0u64;
    while Instant::now() < deadline {
        let cur: u64 = std::fs::read_to_string(pids_dir.join("pids.current"))
            .expect("pids.current")
            .trim()
            .parse()
            .expect("number");
        assert!(cur <= 64, "pids.current {cur} > 64");
        peak = peak.max(cur);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(peak >= 32, "the fork bomb never took off (peak {peak})");
    let t0 = Instant::now();
    let ok = tokio::process::Command::new("true")
        .status()
        .await
        .expect("spawn true");
    assert!(ok.success());
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "host unresponsive: {:?}",
        t0.elapsed()
    );

    let t0 = Instant::now();
    fx.driver.ensure_absent(&id).await.expect("absent");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "cleanup took {:?}",
        t0.elapsed()
    );
    fx.assert_nothing_left(&id);
}

fn cpu_usage_ns(fx: &common::Fixture, id: &str) -> u64 {
    if fx.driver.cgroup_v2() {
        let stat =
            std::fs::read_to_string(fx.cgroup_dir(id, "cpu").join("cpu.stat")).expect("cpu.stat");
        stat.lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .expect("usage_usec")
            * 1000
    } else {
        std::fs::read_to_string(fx.cgroup_dir(id, "cpuacct").join("cpuacct.usage"))
            .expect("cpuacct.usage")
            .trim()
            .parse()
            .expect("number")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_quota_holds_two_busy_loops_to_one_vcpu() {
    let fx = fixture();
    let id = new_id();
    let spec = fx.spec(
        &id,
        "while :; do :; done & while :; do :; done & exec sleep 1000",
    );
    fx.driver.ensure_running(&spec).await.expect("start");
    if !fx.driver.cgroup_v2() {
        let cpu = fx.cgroup_dir(&id, "cpu");
        let read = |f: &str| {
            std::fs::read_to_string(cpu.join(f))
                .expect("cpu file")
                .trim()
                .to_string()
        };
        assert_eq!(read("cpu.cfs_quota_us"), "100000");
        assert_eq!(read("cpu.cfs_period_us"), "100000");
        assert_eq!(read("cpu.shares"), "1024");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (u0, t0) = (cpu_usage_ns(&fx, &id), Instant::now());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (u1, t1) = (cpu_usage_ns(&fx, &id), Instant::now());
    let cpus = (u1 - u0) as f64 / (t1 - t0).as_nanos() as f64;
    eprintln!("instance with 1 vCPU and 2 busy loops used {cpus:.3} CPUs");
    assert!(cpus <= 1.1, "1 vCPU instance used {cpus:.3} CPUs");
    assert!(cpus >= 0.5, "busy loops did not run ({cpus:.3} CPUs)");
    fx.driver.ensure_absent(&id).await.expect("absent");
    fx.assert_nothing_left(&id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_instances_start_in_parallel() {
    let fx = fixture();
    let ids: Vec<String> = (0..20).map(|_| new_id()).collect();
    let starts = ids.iter().map(|id| {
        let d = fx.driver.clone();
        let spec = fx.spec(id, "echo up; exec sleep 1000");
        tokio::spawn(async move { d.ensure_running(&spec).await })
    });
    for (id, h) in ids.iter().zip(starts.collect::<Vec<_>>()) {
        let obs = h
            .await
            .expect("join")
            .unwrap_or_else(|e| panic!("start {id}: {e}"));
        running_pid(&obs.power);
    }
    let mut listed = fx.driver.list().await.expect("list");
    listed.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(listed, want);
    let removes: Vec<_> = ids
        .iter()
        .map(|id| {
            let d = fx.driver.clone();
            let id = id.clone();
            tokio::spawn(async move { d.ensure_absent(&id).await })
        })
        .collect();
    for h in removes {
        h.await.expect("join").expect("absent");
    }
    for id in &ids {
        fx.assert_nothing_left(id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_is_bounded_on_disk() {
    let fx = fixture();
    let id = new_id();
    let spec = fx.spec(
        &id,
        "head -c 3000000 /dev/zero | tr '\\0' 'a'; echo; echo END-MARK; exec sleep 1000",
    );
    fx.driver.ensure_running(&spec).await.expect("start");
    fx.wait_console(&id, "END-MARK", T).await;
    let tail = fx.driver.console(&id, 9).await.expect("tail");
    assert_eq!(tail, b"END-MARK\n");
    // Bounded when looked at: at most 1 MiB allocated (what was written since
    // the last punch), never less than the last 64 KiB.
    let all = fx.driver.console(&id, 10 << 20).await.expect("all");
    assert!(all.len() <= 1 << 20, "console kept {} bytes", all.len());
    assert!(
        all.len() >= 64 << 10,
        "console kept only {} bytes",
        all.len()
    );
    assert!(!all.contains(&0), "sparse head read back as NULs");
    assert!(all.ends_with(b"END-MARK\n"));
    let meta =
        std::fs::metadata(fx.driver.instance_dir(&id).join("console.log")).expect("console.log");
    assert!(meta.len() >= 3_000_000, "logical size must keep growing");
    assert!(
        meta.blocks() * 512 <= (1 << 20) + 4096,
        "console allocates {} bytes",
        meta.blocks() * 512
    );
    fx.driver.ensure_absent(&id).await.expect("absent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_bad_input_and_reports_runc_errors() {
    let fx = fixture();
    assert!(matches!(
        fx.driver.observe("../etc").await,
        Err(DriverError::Invalid(_))
    ));
    assert!(matches!(
        fx.driver.ensure_absent("").await,
        Err(DriverError::Invalid(_))
    ));
    let id = new_id();
    let mut spec = fx.spec(&id, "true");
    spec.config_drive[0].path = "../escape".into();
    assert!(matches!(
        fx.driver.ensure_running(&spec).await,
        Err(DriverError::Invalid(_))
    ));

    // A command that does not exist: runc's message comes back, the
    // console stays the instance's own.
    let spec = common::Fixture::spec(&fx, &id, "x");
    let mut spec = spec;
    spec.command = vec!["/no/such/binary".into()];
    let err = fx
        .driver
        .ensure_running(&spec)
        .await
        .expect_err("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains(&id) && msg.contains("runc run") && msg.contains("/no/such/binary"),
        "{msg}"
    );
    assert!(
        fx.console(&id).await.is_empty(),
        "runc's error leaked into the console"
    );
    fx.driver.ensure_absent(&id).await.expect("absent");
    fx.assert_nothing_left(&id);

    let missing = ContainerDriver::new(ContainerConfig {
        state_dir: fx.tmp.path().join("other"),
        runtime: "/nonexistent/runc".into(),
        cgroup_parent: fx.parent.clone(),
    });
    let err = missing.expect_err("missing runtime");
    assert!(err.to_string().contains("/nonexistent/runc"), "{err}");
}

/// Instances of a driver from before the `run/` tmpfs would read as
/// stopped while they run: the driver refuses to start beside them, and
/// removes the old directories once they are empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_state_dir_with_instances_of_the_older_layout() {
    let fx = fixture();
    let state = fx.tmp.path().join("legacy");
    std::fs::create_dir_all(state.join("runc/i-0123456789abcdef")).expect("legacy runc state");
    let config = || ContainerConfig {
        state_dir: state.clone(),
        runtime: common::runc_path(),
        cgroup_parent: fx.parent.clone(),
    };
    let err = ContainerDriver::new(config()).expect_err("legacy runc state");
    let msg = err.to_string();
    assert!(
        msg.contains("i-0123456789abcdef") && msg.contains("runc --root"),
        "{msg}"
    );
    assert!(
        !state.join("run").exists(),
        "the refused driver set up its runtime dirs"
    );
    std::fs::remove_dir(state.join("runc/i-0123456789abcdef")).expect("rm");
    std::fs::create_dir_all(state.join("netns")).expect("empty legacy netns");
    let driver = ContainerDriver::new(config()).expect("empty leftovers are no obstacle");
    assert!(!state.join("runc").exists() && !state.join("netns").exists());
    drop(driver);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_reports_the_node() {
    let fx = fixture();
    let c = fx.driver.capacity().await.expect("capacity");
    assert!(c.vcpus >= 1);
    assert!(c.ram_mib >= 64);
    assert_eq!(c.hypervisor, "container");
    assert_eq!(c.arch, std::env::consts::ARCH);
    // Disk is the filesystem's size (Nova's local_gb), as `df` reports it,
    // not its free space: placement must not shrink as unrelated files grow.
    let df = std::process::Command::new("df")
        .args(["--block-size=1G", "--output=size,avail"])
        .arg(fx.tmp.path())
        .output()
        .expect("df runs");
    let out = String::from_utf8_lossy(&df.stdout);
    let row: Vec<u64> = out
        .lines()
        .nth(1)
        .expect("df row")
        .split_whitespace()
        .map(|w| w.parse().expect("number"))
        .collect();
    // df rounds up to whole GiB; the driver rounds down.
    assert!(
        c.disk_gib + 1 >= row[0] && c.disk_gib <= row[0],
        "disk {} GiB, df size {} GiB",
        c.disk_gib,
        row[0]
    );
    if row[0] > row[1] + 1 {
        assert!(
            c.disk_gib > row[1],
            "disk {} GiB is the free space {}",
            c.disk_gib,
            row[1]
        );
    }
}

/// An observation that cannot be made is an error, never a state (ADR 14):
/// with the init record unreadable (a directory in its place: EISDIR, as
/// EMFILE or EIO would fail it), observe, ensure_running and ensure_stopped
/// fail and touch nothing; once it reads again the same init still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_init_record_is_an_error_not_a_stop() {
    let fx = fixture();
    let d = &fx.driver;
    let id = new_id();
    let spec = fx.spec(&id, "echo up; exec sleep 1000");
    let pid = running_pid(&d.ensure_running(&spec).await.expect("start").power);
    let init = d.run_dir(&id).join("init");
    let saved = d.run_dir(&id).join("init.saved");
    std::fs::rename(&init, &saved).expect("move the record away");
    std::fs::create_dir(&init).expect("a directory in its place");
    let e = d.observe(&id).await.expect_err("observe must fail");
    assert!(matches!(e, DriverError::Failed(_)), "{e}");
    d.ensure_running(&spec)
        .await
        .expect_err("ensure_running must not start over a running init");
    d.ensure_stopped(&id, Duration::ZERO)
        .await
        .expect_err("ensure_stopped must not act on a guess");
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the init was killed"
    );
    assert!(d.runc_state_dir(&id).exists(), "the container was deleted");
    std::fs::remove_dir(&init).expect("rmdir");
    std::fs::rename(&saved, &init).expect("restore the record");
    assert_eq!(
        running_pid(&d.observe(&id).await.expect("observe").power),
        pid
    );
    d.ensure_absent(&id).await.expect("absent");
    fx.assert_nothing_left(&id);
}

/// `apply` gives a running instance new limits in place (`runc update`):
/// the same init, the new memory limit in its cgroup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_resizes_a_running_instance_in_place() {
    let fx = fixture();
    let d = &fx.driver;
    let id = new_id();
    let mut spec = fx.spec(&id, "echo up; exec sleep 1000");
    let pid = running_pid(&d.ensure_running(&spec).await.expect("start").power);
    spec.resources.memory_mib *= 2;
    let obs = d.apply(&spec).await.expect("apply");
    assert_eq!(running_pid(&obs.power), pid, "apply restarted the init");
    let want = spec.resources.memory_mib << 20;
    let limit = d
        .cgroup_dirs(&id)
        .iter()
        .find_map(|dir| {
            ["memory.limit_in_bytes", "memory.max"]
                .iter()
                .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())
        })
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert_eq!(limit, Some(want));
    d.ensure_absent(&id).await.expect("absent");
    fx.assert_nothing_left(&id);
}

/// A plugger double: each plug takes `delay`, then notes whether the
/// instance's container already existed (it must not: the init starts only
/// after the plug), and fails while `fail` is set.
struct SlowPlugger {
    delay: Duration,
    runc_state: std::path::PathBuf,
    fail: std::sync::atomic::AtomicBool,
    /// Per plug: (the namespace existed when it began, runc's container
    /// existed when it returned).
    seen: std::sync::Mutex<Vec<(bool, bool)>>,
}

#[async_trait::async_trait]
impl nuage_driver::NicPlugger for SlowPlugger {
    async fn plug(
        &self,
        _instance_id: &str,
        netns: &Path,
        _nics: &[nuage_driver::Nic],
    ) -> nuage_driver::DriverResult<()> {
        let ns = netns.exists();
        tokio::time::sleep(self.delay).await;
        let started = self.runc_state.exists();
        self.seen.lock().expect("seen").push((ns, started));
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(DriverError::Failed(
                "the security groups were not in force".into(),
            ));
        }
        Ok(())
    }

    async fn unplug(
        &self,
        _instance_id: &str,
        _nics: &[nuage_driver::Nic],
    ) -> nuage_driver::DriverResult<()> {
        Ok(())
    }

    async fn wired(&self, nics: &[nuage_driver::Nic]) -> nuage_driver::DriverResult<Vec<bool>> {
        Ok(vec![true; nics.len()])
    }
}

/// The NICs are plugged while the disk and root filesystem are prepared,
/// but the init never starts before the plug has returned, and a failed
/// plug (security not in force within its bound) starts nothing; the retry
/// starts the instance from what was prepared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_init_starts_only_after_its_nics_are_plugged() {
    let fx = fixture();
    let id = new_id();
    let plugger = Arc::new(SlowPlugger {
        delay: Duration::from_millis(300),
        runc_state: fx.driver.runc_state_dir(&id),
        fail: std::sync::atomic::AtomicBool::new(true),
        seen: Default::default(),
    });
    fx.driver.set_nic_plugger(plugger.clone());
    let mut spec = fx.spec(&id, "echo plugged-first; exec sleep 1000");
    spec.nics = vec![nuage_driver::Nic {
        port_id: "eni-0123456789abcdef0".into(),
        network_id: "vpc-0123456789abcdef0".into(),
        vlan: None,
        mac: "fa:16:3e:00:00:05".into(),
        address: "10.0.0.5/24".into(),
        gateway: Some("10.0.0.1".into()),
        host_ifname: nuage_driver::nic_host_ifname("eni-0123456789abcdef0"),
    }];

    let err = fx
        .driver
        .ensure_running(&spec)
        .await
        .expect_err("a failed plug fails the start");
    assert!(matches!(err, DriverError::Failed(_)), "{err}");
    let obs = fx.driver.observe(&id).await.expect("observe");
    assert!(
        !matches!(obs.power, Power::Running { .. }),
        "no init after a failed plug: {obs:?}"
    );
    assert!(!fx.driver.runc_state_dir(&id).exists(), "no container");

    plugger
        .fail
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let obs = fx
        .driver
        .ensure_running(&spec)
        .await
        .expect("the retry starts");
    running_pid(&obs.power);
    fx.wait_console(&id, "plugged-first", T).await;
    let seen = plugger.seen.lock().expect("seen").clone();
    assert_eq!(
        seen,
        [(true, false), (true, false)],
        "each plug found the namespace made and no container started"
    );
    fx.driver.ensure_absent(&id).await.expect("absent");
    fx.assert_nothing_left(&id);
}
