//! What a client can hold of the server: connections, idle time, and
//! request framing, against the real `nuage serve` over raw TCP. The
//! connection flood needs root, runc and busybox-static (an instance must
//! stay running through it), as CI has.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{call, Options, Server};
use serde_json::json;

fn quick(env: &[(&str, &str)]) -> Options {
    let mut e: Vec<(String, String)> = vec![("NUAGE_COMPUTE_DRIVER".into(), "none".into())];
    e.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Options {
        env: e,
        ..Options::default()
    }
}

fn connect(s: &Server) -> TcpStream {
    let c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    c
}

/// Sends raw bytes and reads the answer until the server closes.
fn exchange(s: &Server, raw: &[u8]) -> String {
    let mut c = connect(s);
    c.write_all(raw).expect("write");
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// How long until the server closes `c` (reads return 0), or `None` if it
/// is still open after `limit`.
fn closed_after(c: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    c.set_read_timeout(Some(limit)).expect("read timeout");
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(start.elapsed())
            }
            Err(_) => return None,
        }
    }
}

async fn healthz_ok(s: &Server) {
    for _ in 0..5 {
        let r = reqwest::Client::new()
            .get(format!("{}/healthz", s.url()))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap_or_else(|e| panic!("/healthz did not answer: {e}\n{}", s.logs()));
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn ambiguous_framing_and_missing_host_are_refused_and_change_nothing() {
    let s = Server::start_with(quick(&[]));
    let t = s.admin_token().await;
    let body = r#"{"name":"smuggled"}"#;
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    for (first, second) in [
        ("Content-Length: 5", "Transfer-Encoding: chunked"),
        ("Transfer-Encoding: chunked", "Content-Length: 5"),
    ] {
        let req = format!(
            "POST /nuage/v1/projects HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {t}\r\n\
             Content-Type: application/json\r\n{first}\r\n{second}\r\n\r\n{chunked}"
        );
        let answer = exchange(&s, req.as_bytes());
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{first} + {second}: {answer}"
        );
        assert!(
            answer.contains("Content-Length and Transfer-Encoding"),
            "{answer}"
        );
    }
    // The same request, chunked only, is served: the refusal was the framing.
    let (st, v) = call(&s, &t, "GET", "/nuage/v1/projects/smuggled", None).await;
    assert_eq!(st, 404, "an ambiguous request created a project: {v}");

    let answer = exchange(&s, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("Host"), "{answer}");
    let answer = exchange(&s, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert!(
        answer.starts_with("HTTP/1.0 200"),
        "HTTP/1.0 needs no Host: {answer}"
    );
    let answer = exchange(
        &s,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A chunked request with no Content-Length is fine, and pipelined
    // requests after it are followed.
    let req = format!(
        "POST /nuage/v1/projects HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {t}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{chunked}\
         GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let answer = exchange(&s, req.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.contains("ok\n"), "the pipelined request: {answer}");
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed() {
    let s = Server::start_with(quick(&[
        ("NUAGE_IDLE_TIMEOUT", "2"),
        ("NUAGE_HEADER_TIMEOUT", "2"),
    ]));
    let limit = Duration::from_secs(8);
    // Connected, silent.
    let mut silent = connect(&s);
    let took = closed_after(&mut silent, limit).expect("a silent connection stays open");
    assert!(
        took >= Duration::from_millis(1500),
        "closed too early: {took:?}"
    );
    // Half a request head, then nothing (slowloris).
    let mut slow = connect(&s);
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    assert!(
        closed_after(&mut slow, limit).is_some(),
        "a half-sent head keeps its connection"
    );
    // Kept alive after a request, then idle.
    let mut kept = connect(&s);
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut buf = [0u8; 512];
    let n = kept.read(&mut buf).expect("answer");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_after(&mut kept, limit).is_some(),
        "an idle keep-alive connection stays open"
    );
    let metrics = reqwest::get(format!("{}/metrics", s.url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics.lines().any(
            |l| l.starts_with("nuage_http_connections_idle_closed_total") && !l.ends_with(" 0")
        ),
        "{metrics}"
    );
}

/// ~21,000 idle connections once exhausted the server's descriptors: the
/// node agent then read a failed open as "the instance stopped". Under a
/// 1024-file limit, 3,000 idle connections now leave /healthz answering,
/// long-polls in flight uncut and the instance running.
#[tokio::test]
async fn a_connection_flood_leaves_healthz_and_instances_alone() {
    let s = Server::start_with(Options {
        nofile: Some(1024),
        env: vec![("NUAGE_IDLE_TIMEOUT".into(), "3".into())],
        ..Options::default()
    });
    common::build_busybox(&s);
    let t = s.admin_token().await;
    let (st, v) = call(
        &s,
        &t,
        "POST",
        "/nuage/v1/instances",
        Some(json!({"image_id": "busybox", "instance_type": "t2.nano"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let id = v["items"][0]["id"].as_str().expect("id").to_string();
    let wait = format!("/nuage/v1/instances/{id}?wait_for=running&timeout=60");
    let (st, v) = call(&s, &t, "GET", &wait, None).await;
    assert_eq!((st, v["state"].as_str()), (200, Some("running")), "{v}");

    // The test's own sockets need more than the usual 1024 files.
    let mut lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    lim.current = lim.maximum;
    rustix::process::setrlimit(rustix::process::Resource::Nofile, lim).expect("raise nofile");

    // A long-poll in flight longer than the idle timeout is not cut.
    let poll = {
        let (s_url, t) = (s.url(), t.clone());
        let path = format!("/nuage/v1/instances/{id}?wait_for=stopped&timeout=5");
        tokio::spawn(async move {
            reqwest::Client::new()
                .get(format!("{s_url}{path}"))
                .header("x-auth-token", t)
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let port = s.port;
    let flood = tokio::task::spawn_blocking(move || {
        let mut held = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        for _ in 0..3000 {
            if Instant::now() > deadline {
                break;
            }
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            if let Ok(c) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                held.push(c);
            }
        }
        held
    })
    .await
    .expect("flood");
    assert!(
        flood.len() > 1024,
        "only {} connections opened",
        flood.len()
    );

    healthz_ok(&s).await;
    assert_eq!(
        poll.await
            .expect("poll task")
            .expect("the long-poll was cut"),
        200
    );
    let (st, v) = call(&s, &t, "GET", &format!("/nuage/v1/instances/{id}"), None).await;
    assert_eq!(
        (st, v["state"].as_str()),
        (200, Some("running")),
        "{v}\n{}",
        s.logs()
    );
    assert!(
        s.logs().contains("connection limit reached"),
        "no log line at the limit:\n{}",
        s.logs()
    );
    drop(flood);
    healthz_ok(&s).await;
    let (st, v) = call(&s, &t, "GET", &format!("/nuage/v1/instances/{id}"), None).await;
    assert_eq!((st, v["state"].as_str()), (200, Some("running")), "{v}");
}
