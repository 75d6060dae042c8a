//! Requests per second and latency of the metadata service from inside an
//! instance namespace, beside a baseline in the same run: busybox `httpd`
//! serving the same answer as a static file in the same router namespace,
//! at the same address (port 8080: port 80 there is the service's).
//!
//! `cargo run -p nuage-metadata --example metadata_bench [-- SECONDS CLIENTS]`
//! (root; add `--release` where a release build is allowed). Namespaces as
//! the tests make them; nothing touches the machine's network.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use common::*;
use nuage_compute::HttpTokens;
use nuage_netdriver::services::METADATA_ADDR;
use nuage_netdriver::testing::NetNs;

const PATH: &str = "/latest/meta-data/instance-id";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// A new connection per request, as curl-based tools do.
    Fresh,
    /// One connection per client, requests one after another.
    KeepAlive,
}

/// Reads one response on a kept-alive connection (Content-Length framed).
fn read_response(s: &mut std::net::TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk)?;
                if n == 0 {
                    return Err(std::io::Error::other("closed mid-body"));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            return Ok(status);
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("closed before the headers"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One client's loop for `secs`, inside the calling thread's namespace;
/// returns each request's latency.
fn client(port: u16, mode: Mode, secs: f64, expect: &str) -> Vec<Duration> {
    let dst = SocketAddrV4::new(METADATA_ADDR, port);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut out = Vec::new();
    let mut conn = None;
    let mut buf = Vec::new();
    while Instant::now() < deadline {
        let t = Instant::now();
        match mode {
            Mode::Fresh => {
                let mut s = connect(None, dst).expect("connect");
                s.write_all(
                    format!("GET {PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .expect("write");
                let mut raw = Vec::new();
                s.read_to_end(&mut raw).expect("read");
                let a = parse(&raw).expect("parse");
                assert_eq!((a.status, a.text().trim()), (200, expect));
            }
            Mode::KeepAlive => {
                let s = conn.get_or_insert_with(|| connect(None, dst).expect("connect"));
                s.write_all(format!("GET {PATH} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                    .expect("write");
                let status = read_response(s, &mut buf).expect("read");
                assert_eq!(status, 200);
            }
        }
        out.push(t.elapsed());
    }
    out
}

struct Figures {
    rps: f64,
    p50: Duration,
    p99: Duration,
    n: usize,
}

fn run(ns: &NetNs, port: u16, mode: Mode, secs: f64, clients: usize, expect: &str) -> Figures {
    let t = Instant::now();
    let mut all: Vec<Duration> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..clients)
            .map(|_| s.spawn(|| ns.run(|| client(port, mode, secs, expect)).expect("ns")))
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("client"))
            .collect()
    });
    let elapsed = t.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Figures {
        rps: all.len() as f64 / elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        n: all.len(),
    }
}

fn show(what: &str, f: &Figures) {
    println!(
        "{what:<44} {:>8.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  ({} requests)",
        f.rps,
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3,
        f.n
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let clients: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4);
    require_host();
    let cloud = Cloud::new("sqlite").await;
    let inst = cloud
        .launch(&cloud.alpha, None, None, HttpTokens::Optional)
        .await;
    let mut ns = Namespaces::new();
    ns.add(&network_of(&inst), "r-alpha", address(&inst));
    let running = start(&cloud, ns.domains());
    tokio::task::block_in_place(|| wait_for_service(&ns.instances[0]));

    // The baseline: the same answer as a static file.
    let www = tempfile::tempdir().expect("tmp");
    let dir = www.path().join("latest/meta-data");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("instance-id"), &inst.id).expect("write");
    let root = www.path().display().to_string();
    let mut httpd = ns
        .router
        .run(|| {
            std::process::Command::new("busybox")
                .args(["httpd", "-f", "-p", "169.254.169.254:8080", "-h", &root])
                .spawn()
        })
        .expect("ns")
        .expect("busybox httpd (apt-get install busybox-static)");
    let ins = &ns.instances[0];
    tokio::task::block_in_place(|| {
        for _ in 0..200 {
            if ins
                .run(|| connect(None, SocketAddrV4::new(METADATA_ADDR, 8080)).is_ok())
                .unwrap_or(false)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        println!(
            "metadata service benchmark: {clients} clients inside an instance namespace, {secs} s per line, GET {PATH}"
        );
        let id = inst.id.as_str();
        // Warm-up (caches, connection paths).
        run(ins, 80, Mode::Fresh, 0.5, clients, id);
        show(
            "nuage metadata, fresh connection",
            &run(ins, 80, Mode::Fresh, secs, clients, id),
        );
        show(
            "busybox httpd static file, fresh connection",
            &run(ins, 8080, Mode::Fresh, secs, clients, id),
        );
        show(
            "nuage metadata, keep-alive",
            &run(ins, 80, Mode::KeepAlive, secs, clients, id),
        );
        println!("(busybox httpd closes every connection: no keep-alive baseline)");
    });
    let _ = httpd.kill();
    let _ = httpd.wait();
    let _ = running.shutdown.send(true);
}
