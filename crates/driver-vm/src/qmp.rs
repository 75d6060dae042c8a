//! A QMP client: the QEMU Machine Protocol, JSON lines over the unix
//! socket each VM's QEMU listens on. The greeting is read, capabilities
//! negotiated, then each command is sent with an `id` and its answer read;
//! asynchronous events seen on the way are kept for the caller. Written
//! here (some hundred lines) rather than through `qapi`, whose generated
//! schema pins a QEMU version (ADR 34).

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use crate::{DriverError, DriverResult};

/// How long one command may take before the VM is taken as unresponsive.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// An asynchronous event QEMU sent (`SHUTDOWN`, `RESET`, `STOP`, ...).
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub data: Value,
}

/// One negotiated QMP connection.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
    /// Events read while waiting for answers, oldest first.
    pub events: Vec<Event>,
    /// The QEMU version from the greeting, e.g. `7.2.0`.
    pub version: String,
}

fn failed(what: &str, e: impl std::fmt::Display) -> DriverError {
    DriverError::failed(format!("QMP {what}"), e)
}

impl Qmp {
    /// Connects to `socket` and negotiates capabilities.
    pub async fn connect(socket: &Path) -> DriverResult<Qmp> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|e| failed(&format!("connect to {}", socket.display()), e))?;
        let (r, w) = stream.into_split();
        let mut qmp = Qmp {
            reader: BufReader::new(r),
            writer: w,
            next_id: 1,
            events: Vec::new(),
            version: String::new(),
        };
        let greeting = tokio::time::timeout(COMMAND_TIMEOUT, qmp.read_message())
            .await
            .map_err(|_| failed("greeting", "timed out"))??;
        let v = &greeting["QMP"]["version"]["qemu"];
        if v.is_null() {
            return Err(failed("greeting", format!("unexpected {greeting}")));
        }
        qmp.version = format!("{}.{}.{}", v["major"], v["minor"], v["micro"]);
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    async fn read_message(&mut self) -> DriverResult<Value> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .reader
                .read_line(&mut line)
                .await
                .map_err(|e| failed("read", e))?;
            if n == 0 {
                return Err(failed("read", "QEMU closed the socket"));
            }
            if line.trim().is_empty() {
                continue;
            }
            return serde_json::from_str(&line).map_err(|e| failed("answer", e));
        }
    }

    /// Runs `command` with `arguments`; its `return` value, or QEMU's error
    /// (class and description) as a failure.
    pub async fn execute(
        &mut self,
        command: &str,
        arguments: Option<Value>,
    ) -> DriverResult<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"execute": command, "id": id});
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let mut bytes = serde_json::to_vec(&msg).map_err(|e| failed("encode", e))?;
        bytes.push(b'\n');
        self.writer
            .write_all(&bytes)
            .await
            .map_err(|e| failed("write", e))?;
        let answer = tokio::time::timeout(COMMAND_TIMEOUT, async {
            loop {
                let m = self.read_message().await?;
                if let Some(name) = m["event"].as_str() {
                    self.events.push(Event {
                        name: name.to_string(),
                        data: m["data"].clone(),
                    });
                    continue;
                }
                if m["id"] != json!(id) {
                    continue;
                }
                return Ok::<Value, DriverError>(m);
            }
        })
        .await
        .map_err(|_| failed(command, "timed out"))??;
        if let Some(err) = answer.get("error") {
            return Err(DriverError::Failed(format!(
                "QMP {command}: {} ({})",
                err["desc"].as_str().unwrap_or("error"),
                err["class"].as_str().unwrap_or("GenericError")
            )));
        }
        Ok(answer["return"].clone())
    }

    /// `query-status`: the run state (`running`, `paused`, `shutdown`, ...).
    pub async fn status(&mut self) -> DriverResult<String> {
        let r = self.execute("query-status", None).await?;
        r["status"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| failed("query-status", format!("unexpected {r}")))
    }

    /// Waits up to `timeout` for an event named `name` (already seen or
    /// arriving); the socket closing counts as `SHUTDOWN` having happened
    /// when that is the one asked for.
    pub async fn wait_event(&mut self, name: &str, timeout: Duration) -> DriverResult<Event> {
        if let Some(i) = self.events.iter().position(|e| e.name == name) {
            return Ok(self.events.remove(i));
        }
        tokio::time::timeout(timeout, async {
            loop {
                let m = match self.read_message().await {
                    Ok(m) => m,
                    Err(e) if name == "SHUTDOWN" => {
                        return Ok(Event {
                            name: name.into(),
                            data: json!({"closed": e.to_string()}),
                        })
                    }
                    Err(e) => return Err(e),
                };
                if m["event"] == name {
                    return Ok(Event {
                        name: name.into(),
                        data: m["data"].clone(),
                    });
                }
                if let Some(other) = m["event"].as_str() {
                    self.events.push(Event {
                        name: other.into(),
                        data: m["data"].clone(),
                    });
                }
            }
        })
        .await
        .map_err(|_| failed(&format!("waiting for {name}"), "timed out"))?
    }
}
