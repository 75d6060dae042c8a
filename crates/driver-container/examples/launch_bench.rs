//! Launch latency of the container driver next to bare `runc run -d` of the
//! same bundles, back to back and concurrently. Run as root:
//!
//! ```sh
//! cargo run --release -p nuage-driver-container --example launch_bench -- [N] [CONCURRENT] [ROUNDS]
//! ```
//!
//! N instances (default 50) are started one after the other with
//! `ensure_running`, then CONCURRENT instances (default 200) all at once;
//! each is compared with bare `runc run -d` (a second runc root) of the same
//! spec on the same overlay-mounted busybox root filesystem, runc making the
//! network namespace itself as a plain `runc run` does (it keeps the
//! driver's user namespace, made for the pool instance, and seccomp
//! profile): the difference is what the driver adds (directories, user and
//! network namespaces, root disk, idmapped image and overlay mounts, config
//! drive, spec, bookkeeping). Back to back, ours and bare alternate
//! so that both see the same machine. It also prints the node memory one
//! idle container costs (MemAvailable drop / containers; noisy).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nuage_driver::{ComputeDriver, InstanceSpec, Resources};
use nuage_driver_container::{ContainerConfig, ContainerDriver};

fn make_rootfs(dir: &Path) {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "mnt"] {
        std::fs::create_dir_all(dir.join(d)).expect("rootfs dirs");
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox"))
        .expect("copy /bin/busybox (apt-get install busybox-static)");
    for applet in ["sh", "sleep"] {
        let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
    }
}

fn spec(id: &str, rootfs: &Path) -> InstanceSpec {
    InstanceSpec {
        id: id.to_string(),
        hostname: id.to_string(),
        rootfs: rootfs.to_path_buf(),
        command: vec!["/bin/sleep".into(), "100000".into()],
        env: vec![],
        workdir: "/".into(),
        resources: Resources {
            vcpus: 1,
            memory_mib: 64,
            pids_limit: 64,
            io_weight: 100,
            disk_gib: 1,
        },
        config_drive: vec![],
        nics: vec![],
        dns_domain: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(label: &str, mut lat: Vec<Duration>, wall: Duration) {
    lat.sort();
    println!(
        "{label:<44} n={:<4} p50={:>7.1} ms  p99={:>7.1} ms  max={:>7.1} ms  {:>6.1} launches/s",
        lat.len(),
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        lat.len() as f64 / wall.as_secs_f64()
    );
}

/// `/proc/meminfo` fields that idle containers move, in KiB.
const MEM_FIELDS: [&str; 6] = [
    "MemAvailable",
    "Slab",
    "Percpu",
    "KernelStack",
    "PageTables",
    "AnonPages",
];

fn meminfo() -> Vec<i64> {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    MEM_FIELDS
        .iter()
        .map(|f| {
            text.lines()
                .find_map(|l| l.strip_prefix(f).and_then(|r| r.strip_prefix(':')))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        })
        .collect()
}

fn report_memory(before: &[i64], after: &[i64], containers: usize) {
    let per: Vec<String> = MEM_FIELDS
        .iter()
        .zip(before.iter().zip(after))
        .map(|(f, (b, a))| {
            let d = if *f == "MemAvailable" { b - a } else { a - b };
            format!("{f} {:.0}", d as f64 / containers as f64)
        })
        .collect();
    println!(
        "node memory per idle container, KiB (noisy): {}",
        per.join(", ")
    );
}

/// A bare bundle for instance `id`: the driver's config.json with the root
/// filesystem path made absolute (the same overlay mount), a cgroup parent of
/// its own and no network namespace path, so that runc creates the network
/// namespace itself as a plain `runc run` does.
fn bare_bundle(driver: &ContainerDriver, id: &str, dir: &Path) -> PathBuf {
    let inst = driver.instance_dir(id);
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(inst.join("config.json")).expect("config.json"))
            .expect("json");
    cfg["root"]["path"] = serde_json::json!(inst.join("rootfs"));
    let cg = cfg["linux"]["cgroupsPath"]
        .as_str()
        .expect("cgroupsPath")
        .replace("nuage-bench", "nuage-bare");
    cfg["linux"]["cgroupsPath"] = serde_json::json!(cg);
    for ns in cfg["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
    {
        if ns["type"] == "network" {
            *ns = serde_json::json!({ "type": "network" });
        }
    }
    let b = dir.join(id);
    std::fs::create_dir_all(&b).expect("bundle dir");
    std::fs::write(
        b.join("config.json"),
        serde_json::to_vec(&cfg).expect("json"),
    )
    .expect("write");
    b
}

/// `runc run -d` of an existing bundle, as bare as it gets. (Its stdio
/// goes to the container: a pipe would never reach EOF.)
async fn bare_run(runc: &Path, root: &Path, bundle: &Path, name: &str) -> Duration {
    let t = Instant::now();
    let status = tokio::process::Command::new(runc)
        .arg("--root")
        .arg(root)
        .args(["run", "-d", "--bundle"])
        .arg(bundle)
        .arg(name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .expect("exec runc");
    let d = t.elapsed();
    assert!(status.success(), "bare runc run {name} failed");
    d
}

async fn bare_delete(runc: &Path, root: &Path, name: &str) {
    let _ = tokio::process::Command::new(runc)
        .arg("--root")
        .arg(root)
        .args(["delete", "--force", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

/// Removes instances and bare containers alike, concurrently.
async fn cleanup(driver: &ContainerDriver, runc: &Path, bare_root: &Path, ids: Vec<String>) {
    let handles: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let (d, runc, root) = (driver.clone(), runc.to_path_buf(), bare_root.to_path_buf());
            tokio::spawn(async move {
                bare_delete(&runc, &root, &id).await;
                d.ensure_absent(&id).await.expect("absent");
            })
        })
        .collect();
    for h in handles {
        h.await.expect("join");
    }
}

#[tokio::main]
async fn main() {
    // RUST_LOG=nuage_driver_container=debug shows each start's phases.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let concurrent: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200);
    let rounds: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1);
    let base = PathBuf::from(format!(
        "/var/tmp/nuage-launch-bench-{}",
        std::process::id()
    ));
    let rootfs = base.join("image");
    make_rootfs(&rootfs);
    let driver = ContainerDriver::new(ContainerConfig {
        state_dir: base.join("state"),
        runtime: "runc".into(),
        cgroup_parent: format!("nuage-bench-{}", std::process::id()),
    })
    .expect("driver");
    let runc = driver.config().runtime.clone();
    let bare_root = base.join("bare-runc");
    std::fs::create_dir_all(&bare_root).expect("bare root");

    // Warm up caches (runc binary, busybox) so the first sample is not an outlier.
    let warm = "i-warmup";
    driver
        .ensure_running(&spec(warm, &rootfs))
        .await
        .expect("warm-up");
    driver.ensure_absent(warm).await.expect("warm-up cleanup");

    println!("{n} back to back, then {concurrent} concurrently, {rounds} rounds; ours and bare interleaved");
    let bundles = base.join("bare-bundles");
    for round in 0..rounds {
        // Bare bundles come from instances the driver prepared and stopped
        // (overlay mounted); then ours and bare alternate so both see the
        // same machine.
        let pool: Vec<String> = (0..n).map(|i| format!("i-r{round}pool{i:05}")).collect();
        for id in &pool {
            driver
                .ensure_running(&spec(id, &rootfs))
                .await
                .expect("pool");
            driver
                .ensure_stopped(id, Duration::ZERO)
                .await
                .expect("pool stop");
        }
        let bare_bundles: Vec<PathBuf> = pool
            .iter()
            .map(|id| bare_bundle(&driver, id, &bundles))
            .collect();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let ids: Vec<String> = (0..n).map(|i| format!("i-r{round}seq{i:05}")).collect();
        let mem0 = meminfo();
        let (mut ours, mut bare) = (Vec::new(), Vec::new());
        let (mut ours_wall, mut bare_wall) = (Duration::ZERO, Duration::ZERO);
        for (i, id) in ids.iter().enumerate() {
            let t = Instant::now();
            driver
                .ensure_running(&spec(id, &rootfs))
                .await
                .expect("ensure_running");
            ours.push(t.elapsed());
            ours_wall += t.elapsed();
            let d = bare_run(&runc, &bare_root, &bare_bundles[i], &pool[i]).await;
            bare.push(d);
            bare_wall += d;
        }
        report("driver ensure_running, back to back", ours, ours_wall);
        report("bare runc run -d, same spec, back to back", bare, bare_wall);
        tokio::time::sleep(Duration::from_millis(500)).await;
        report_memory(&mem0, &meminfo(), 2 * n);
        cleanup(
            &driver,
            &runc,
            &bare_root,
            ids.iter().chain(&pool).cloned().collect(),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;

        // Concurrently: the same, all at once.
        let pool: Vec<String> = (0..concurrent)
            .map(|i| format!("i-r{round}cpool{i:05}"))
            .collect();
        for id in &pool {
            driver
                .ensure_running(&spec(id, &rootfs))
                .await
                .expect("pool");
            driver
                .ensure_stopped(id, Duration::ZERO)
                .await
                .expect("pool stop");
        }
        let bare_bundles: Vec<PathBuf> = pool
            .iter()
            .map(|id| bare_bundle(&driver, id, &bundles))
            .collect();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let ids: Vec<String> = (0..concurrent)
            .map(|i| format!("i-r{round}par{i:05}"))
            .collect();
        let t0 = Instant::now();
        let handles: Vec<_> = ids
            .iter()
            .map(|id| {
                let d = driver.clone();
                let s = spec(id, &rootfs);
                tokio::spawn(async move {
                    let t = Instant::now();
                    d.ensure_running(&s).await.expect("ensure_running");
                    t.elapsed()
                })
            })
            .collect();
        let mut ours = Vec::new();
        for h in handles {
            ours.push(h.await.expect("join"));
        }
        report("driver ensure_running, concurrent", ours, t0.elapsed());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let t0 = Instant::now();
        let handles: Vec<_> = pool
            .iter()
            .zip(bare_bundles)
            .map(|(id, bundle)| {
                let (runc, root, id) = (runc.clone(), bare_root.clone(), id.clone());
                tokio::spawn(async move { bare_run(&runc, &root, &bundle, &id).await })
            })
            .collect();
        let mut bare = Vec::new();
        for h in handles {
            bare.push(h.await.expect("join"));
        }
        report(
            "bare runc run -d, same spec, concurrent",
            bare,
            t0.elapsed(),
        );
        cleanup(
            &driver,
            &runc,
            &bare_root,
            ids.iter().chain(&pool).cloned().collect(),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    for dir in driver.cgroup_dirs("x") {
        if let Some(parent) = dir.parent() {
            let _ = std::fs::remove_dir(parent);
            let bare = parent
                .to_string_lossy()
                .replace("nuage-bench", "nuage-bare");
            let _ = std::fs::remove_dir(bare);
        }
    }
    let _ = std::fs::remove_dir_all(&base);
}
