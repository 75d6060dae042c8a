//! `--wait`: blocks until instances reach a state, with the long poll
//! `GET /instances/{id}?wait_for=STATE&timeout=S`, showing progress on
//! stderr ("3/200 running").

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use anyhow::{anyhow, Result};
use futures_util::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::client::{ApiError, Client};

/// How many long polls run at once: enough for hundreds of instances to
/// be seen promptly, few enough not to hold hundreds of connections.
const PARALLEL: usize = 32;

/// The longest single poll: below the client's 120 s request timeout.
const POLL: Duration = Duration::from_secs(60);

/// The states an instance waited for `target` cannot reach `target` from
/// without someone else's action, so waiting on is pointless. As the aws
/// CLI's waiters, plus `stopped` for `running`: here an instance whose
/// start fails stops rather than staying pending.
pub fn hopeless(target: &str, state: &str) -> bool {
    match target {
        "running" => matches!(
            state,
            "stopping" | "stopped" | "shutting-down" | "terminated"
        ),
        "stopped" => matches!(state, "pending" | "shutting-down" | "terminated"),
        "terminated" => matches!(state, "pending" | "stopping"),
        _ => false,
    }
}

/// How one instance's wait ended.
#[derive(Debug)]
enum Outcome {
    /// With the instance as last seen (`None`: gone, as terminated ones go).
    Reached(Option<Value>),
    /// In a state it cannot reach the target from; the last answer.
    Failed(Value),
    /// Not there when the time ran out; the last answer, if any.
    TimedOut(Option<Value>),
    /// The server refused to say (403, 404, ...).
    Error(anyhow::Error),
}

fn is_status(e: &anyhow::Error, status: u16) -> bool {
    e.downcast_ref::<ApiError>()
        .is_some_and(|a| a.status == status)
}

/// Whether an error may pass on its own (transport, 5xx, 429), so the poll
/// is tried again.
fn transient(e: &anyhow::Error) -> bool {
    match e.downcast_ref::<ApiError>() {
        Some(a) => a.status >= 500 || a.status == 429,
        None => true,
    }
}

fn judge(target: &str, v: &Value) -> Option<Outcome> {
    let state = v["state"].as_str().unwrap_or_default();
    if v["status"] == "ERROR" {
        return Some(Outcome::Failed(v.clone()));
    }
    if state == target {
        return Some(Outcome::Reached(Some(v.clone())));
    }
    hopeless(target, state).then(|| Outcome::Failed(v.clone()))
}

async fn wait_one(client: &Client, id: &str, target: &str, deadline: Instant) -> Outcome {
    let mut last: Option<Value> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // Past the deadline, one last look without waiting: an instance
        // queued behind slow ones still gets judged on its state.
        let query = if left.is_zero() {
            vec![]
        } else {
            let secs = left.min(POLL).as_secs().max(1);
            vec![
                ("wait_for", target.to_string()),
                ("timeout", secs.to_string()),
            ]
        };
        let started = Instant::now();
        match client.get(&["instances", id], &query).await {
            Ok(v) => {
                if let Some(o) = judge(target, &v) {
                    return o;
                }
                last = Some(v);
            }
            // Terminated instances are eventually forgotten.
            Err(e) if target == "terminated" && is_status(&e, 404) => {
                return Outcome::Reached(None)
            }
            Err(e) if transient(&e) && !left.is_zero() => {
                note_retry(id, &e);
            }
            Err(e) => return Outcome::Error(e),
        }
        if left.is_zero() {
            return Outcome::TimedOut(last);
        }
        // A server answering at once (or failing) must not be hammered.
        let took = started.elapsed();
        if took < Duration::from_secs(1) {
            let pause = Duration::from_secs(1) - took;
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }
}

/// Notes a failed poll that will be retried, without breaking a progress bar.
fn note_retry(id: &str, e: &anyhow::Error) {
    if !std::io::stderr().is_terminal() {
        eprintln!("nuage: {id}: {e:#}; retrying");
    }
}

/// Progress on stderr: a bar on a terminal, else a line per instance.
struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    target: String,
}

impl Progress {
    fn new(total: usize, target: &str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total as u64);
            if let Ok(style) =
                ProgressStyle::with_template("{pos}/{len} {msg} {wide_bar} {elapsed}")
            {
                b.set_style(style);
            }
            b.set_message(target.to_string());
            b.enable_steady_tick(Duration::from_millis(250));
            b
        });
        Progress {
            bar,
            total,
            done: 0,
            target: target.to_string(),
        }
    }

    fn reached(&mut self, id: &str) {
        self.done += 1;
        match &self.bar {
            Some(b) => b.inc(1),
            None => eprintln!("{id} {} ({}/{})", self.target, self.done, self.total),
        }
    }

    fn println(&self, line: String) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}

/// One line about an instance that did not make it.
fn describe(id: &str, target: &str, v: Option<&Value>, why: &str) -> String {
    let state = v
        .and_then(|v| v["state"].as_str())
        .unwrap_or("in an unknown state");
    let reason = v
        .and_then(|v| v["state_reason"]["message"].as_str())
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    format!("{id} is {state}{reason}, not {target} ({why})")
}

/// The instances that reached the state waited for, as last seen (`None`
/// for those gone, as terminated ones go).
pub type Reached = HashMap<String, Option<Value>>;

/// Waits until every instance in `ids` is in `target`, or fails (exit 1)
/// naming each that ended elsewhere or was not there after `timeout`;
/// either way with those that did reach it.
pub async fn wait_for(
    client: &Client,
    ids: &[String],
    target: &str,
    timeout: Duration,
) -> (Reached, Result<()>) {
    let mut reached = Reached::new();
    if ids.is_empty() {
        return (reached, Ok(()));
    }
    let deadline = Instant::now() + timeout;
    let mut progress = Progress::new(ids.len(), target);
    let mut polls = stream::iter(ids)
        .map(|id| async move { (id, wait_one(client, id, target, deadline).await) })
        .buffer_unordered(PARALLEL);
    let mut failures = Vec::new();
    while let Some((id, outcome)) = polls.next().await {
        let line = match outcome {
            Outcome::Reached(v) => {
                progress.reached(id);
                reached.insert(id.clone(), v);
                continue;
            }
            Outcome::Failed(v) => describe(id, target, Some(&v), "gave up waiting"),
            Outcome::TimedOut(v) => describe(
                id,
                target,
                v.as_ref(),
                &format!("still not after {}s", timeout.as_secs()),
            ),
            Outcome::Error(e) => format!("{id}: {e:#}"),
        };
        progress.println(format!("nuage: {line}"));
        failures.push(line);
    }
    progress.finish();
    if !failures.is_empty() {
        let e = anyhow!(
            "{} of {} instances did not reach {target}",
            failures.len(),
            ids.len()
        );
        return (reached, Err(e));
    }
    (reached, Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hopeless_states() {
        assert!(hopeless("running", "terminated"));
        assert!(hopeless("running", "stopped"));
        assert!(!hopeless("running", "pending"));
        assert!(hopeless("stopped", "terminated"));
        assert!(!hopeless("stopped", "stopping"));
        assert!(!hopeless("stopped", "running"));
        assert!(!hopeless("terminated", "shutting-down"));
        assert!(!hopeless("terminated", "running"));
    }

    #[test]
    fn answers_are_judged() {
        assert!(matches!(
            judge("running", &json!({"state": "running", "status": "ACTIVE"})),
            Some(Outcome::Reached(Some(_)))
        ));
        assert!(judge("running", &json!({"state": "pending", "status": "BUILD"})).is_none());
        assert!(matches!(
            judge("running", &json!({"state": "pending", "status": "ERROR"})),
            Some(Outcome::Failed(_))
        ));
        let v = json!({"state": "terminated", "state_reason": {"code": "Server.InternalError", "message": "no node has room"}});
        assert!(matches!(judge("running", &v), Some(Outcome::Failed(_))));
        assert_eq!(
            describe("i-1", "running", Some(&v), "gave up waiting"),
            "i-1 is terminated: no node has room, not running (gave up waiting)"
        );
    }
}
