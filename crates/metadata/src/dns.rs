//! The network's resolver, at the gateway's address, port 53 (UDP and
//! TCP). It answers for the caller's network only (the link its query
//! arrived on), from the store: each instance's id (its hostname) and its
//! EC2-style private name `ip-a-b-c-d.<region>.compute.internal`, and the
//! PTR of those addresses. A name of `compute.internal` that does not
//! exist is NXDOMAIN; every other question is REFUSED: nothing is ever
//! resolved beyond the machine. Wire format by `hickory-proto`.

use std::net::Ipv4Addr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

use crate::Inner;

/// Seconds a client may cache an answer: short, since addresses move
/// between instances.
const TTL: u32 = 60;
/// The largest UDP answer without EDNS (RFC 1035); ours fit easily.
const UDP_PLAIN_MAX: usize = 512;

/// `<region>.compute.internal`.
pub(crate) fn domain(region: &str) -> String {
    format!("{region}.compute.internal")
}

/// `ip-10-0-0-5.<region>.compute.internal`.
pub(crate) fn private_name(a: Ipv4Addr, region: &str) -> String {
    let o = a.octets();
    format!("ip-{}-{}-{}-{}.{}", o[0], o[1], o[2], o[3], domain(region))
}

/// `ip-10-0-0-5` → 10.0.0.5.
fn ip_label(label: &str) -> Option<Ipv4Addr> {
    let rest = label.strip_prefix("ip-")?;
    let parts: Vec<&str> = rest.split('-').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut o = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 3 || (p.len() > 1 && p.starts_with('0')) {
            return None;
        }
        o[i] = p.parse().ok()?;
    }
    Some(Ipv4Addr::from(o))
}

/// `5.0.0.10.in-addr.arpa` → 10.0.0.5.
fn reverse_name(name: &str) -> Option<Ipv4Addr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let mut parts: Vec<&str> = rest.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    parts.reverse();
    parts.join(".").parse().ok()
}

/// What a question is about, before the zone is read.
#[derive(Debug, PartialEq, Eq)]
enum Question {
    /// A label of our domain (`ip-…` or an instance id); empty: the domain
    /// itself.
    Local(String),
    /// The PTR of an address.
    Reverse(Ipv4Addr),
    /// Anything else: refused.
    Foreign,
}

fn classify(name: &str, qtype: RecordType, domain: &str) -> Question {
    if let Some(a) = reverse_name(name) {
        return if qtype == RecordType::PTR || qtype == RecordType::ANY {
            Question::Reverse(a)
        } else {
            Question::Foreign
        };
    }
    if name == domain {
        return Question::Local(String::new());
    }
    if let Some(label) = name.strip_suffix(domain).and_then(|l| l.strip_suffix('.')) {
        return Question::Local(label.to_string());
    }
    // A bare name, as a client without our search domain asks.
    if !name.contains('.') && (ip_label(name).is_some() || name.starts_with("i-")) {
        return Question::Local(name.to_string());
    }
    // Another region's names included: not ours to answer.
    Question::Foreign
}

/// The address a local label names on this network, if any.
fn find(label: &str, zone: &[(String, Ipv4Addr)]) -> Option<Ipv4Addr> {
    if let Some(a) = ip_label(label) {
        return zone.iter().any(|(_, z)| *z == a).then_some(a);
    }
    // An instance id is its hostname; its first address answers.
    zone.iter().find(|(id, _)| id == label).map(|(_, a)| *a)
}

fn response_to(q: &Message, code: ResponseCode) -> Message {
    let mut r = Message::response(q.metadata.id, q.metadata.op_code);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = false;
    r.metadata.response_code = code;
    r.add_queries(q.queries.iter().cloned());
    if q.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        r.set_edns(e);
    }
    r
}

/// Answers one DNS message; `None` when it is not worth an answer (not a
/// query, or too short to carry an id).
async fn answer(inner: &Inner, network: &Arc<str>, buf: &[u8]) -> Option<Vec<u8>> {
    let q = match Message::from_vec(buf) {
        Ok(m) => m,
        Err(_) if buf.len() >= 12 => {
            let id = u16::from_be_bytes([buf[0], buf[1]]);
            let r = Message::error_msg(id, OpCode::Query, ResponseCode::FormErr);
            return r.to_vec().ok();
        }
        Err(_) => return None,
    };
    if q.metadata.message_type != MessageType::Query {
        return None;
    }
    let r = respond(inner, network, &q).await;
    r.to_vec().ok()
}

async fn respond(inner: &Inner, network: &Arc<str>, q: &Message) -> Message {
    if q.metadata.op_code != OpCode::Query {
        return response_to(q, ResponseCode::NotImp);
    }
    let [question] = q.queries.as_slice() else {
        return response_to(q, ResponseCode::FormErr);
    };
    if question.query_class() != DNSClass::IN {
        return response_to(q, ResponseCode::Refused);
    }
    let mut name = question.name().to_lowercase().to_ascii();
    if name.ends_with('.') {
        name.pop();
    }
    let qtype = question.query_type();
    let domain = domain(&inner.region);
    let kind = classify(&name, qtype, &domain);
    if kind == Question::Foreign {
        return response_to(q, ResponseCode::Refused);
    }
    let zone = match inner.directory.zone(network).await {
        Ok(z) => z,
        Err(e) => {
            tracing::warn!(error = %e, "DNS resolver");
            return response_to(q, ResponseCode::ServFail);
        }
    };
    let qname = question.name().clone();
    match kind {
        Question::Foreign => response_to(q, ResponseCode::Refused),
        Question::Local(label) if label.is_empty() => {
            // The domain exists and holds no address of its own.
            let mut r = response_to(q, ResponseCode::NoError);
            r.metadata.authoritative = true;
            r
        }
        Question::Local(label) => match find(&label, &zone) {
            None if name.ends_with(&domain) => {
                let mut r = response_to(q, ResponseCode::NXDomain);
                r.metadata.authoritative = true;
                r
            }
            None => response_to(q, ResponseCode::Refused),
            Some(a) => {
                let mut r = response_to(q, ResponseCode::NoError);
                r.metadata.authoritative = true;
                if qtype == RecordType::A || qtype == RecordType::ANY {
                    r.add_answer(Record::from_rdata(qname, TTL, RData::A(A(a))));
                }
                r
            }
        },
        Question::Reverse(a) => {
            if !zone.iter().any(|(_, z)| *z == a) {
                return response_to(q, ResponseCode::Refused);
            }
            let Ok(target) = Name::from_ascii(format!("{}.", private_name(a, &inner.region)))
            else {
                return response_to(q, ResponseCode::ServFail);
            };
            let mut r = response_to(q, ResponseCode::NoError);
            r.metadata.authoritative = true;
            r.add_answer(Record::from_rdata(qname, TTL, RData::PTR(PTR(target))));
            r
        }
    }
}

pub(crate) async fn serve_udp(inner: Arc<Inner>, network: Arc<str>, socket: UdpSocket) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "DNS resolver: receive failed");
                continue;
            }
        };
        let Some(mut out) = answer(&inner, &network, &buf[..n]).await else {
            continue;
        };
        if out.len() > UDP_PLAIN_MAX {
            // Never happens with one address per answer; truncate honestly
            // if it ever does, so the client retries over TCP.
            out.truncate(12);
            out[2] |= 0x02;
        }
        if let Err(e) = socket.send_to(&out, peer).await {
            tracing::debug!(error = %e, "DNS resolver: send failed");
        }
    }
}

pub(crate) async fn serve_tcp(inner: Arc<Inner>, network: Arc<str>, listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(inner.limits.dns_tcp_connections));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "DNS resolver: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let (inner, network) = (inner.clone(), network.clone());
        tokio::spawn(async move {
            let _ = tcp_conn(&inner, &network, stream).await;
            drop(permit);
        });
    }
}

/// Answers length-prefixed queries until the client closes or idles.
async fn tcp_conn(inner: &Inner, network: &Arc<str>, mut s: TcpStream) -> std::io::Result<()> {
    let idle = inner.limits.dns_idle_timeout;
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(idle, s.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return Ok(()),
        }
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if tokio::time::timeout(idle, s.read_exact(&mut buf))
            .await
            .is_err()
        {
            return Ok(());
        }
        let Some(out) = answer(inner, network, &buf).await else {
            return Ok(());
        };
        let n = u16::try_from(out.len()).map_err(std::io::Error::other)?;
        let mut framed = Vec::with_capacity(out.len() + 2);
        framed.extend_from_slice(&n.to_be_bytes());
        framed.extend_from_slice(&out);
        s.write_all(&framed).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(ip_label("ip-10-0-0-5"), Some(Ipv4Addr::new(10, 0, 0, 5)));
        for bad in [
            "ip-10-0-0",
            "ip-10-0-0-256",
            "ip-010-0-0-5",
            "ip--0-0-5",
            "x-1-2-3-4",
        ] {
            assert_eq!(ip_label(bad), None, "{bad}");
        }
        assert_eq!(
            reverse_name("5.0.0.10.in-addr.arpa"),
            Some(Ipv4Addr::new(10, 0, 0, 5))
        );
        let d = domain("nuage-1");
        assert_eq!(
            classify("ip-10-0-0-5.nuage-1.compute.internal", RecordType::A, &d),
            Question::Local("ip-10-0-0-5".into())
        );
        assert_eq!(
            classify("example.com", RecordType::A, &d),
            Question::Foreign
        );
        assert_eq!(
            classify("ip-10-0-0-5.other-2.compute.internal", RecordType::A, &d),
            Question::Foreign
        );
        assert_eq!(classify("localhost", RecordType::A, &d), Question::Foreign);
        assert_eq!(
            private_name(Ipv4Addr::new(10, 0, 0, 5), "nuage-1"),
            "ip-10-0-0-5.nuage-1.compute.internal"
        );
    }
}
