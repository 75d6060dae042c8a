//! The runc commands the driver execs: `run -d` to start an instance,
//! `update` to give a running one new limits (a resize) and `delete
//! --force` to drop a dead or unwanted one. Nothing else execs runc:
//! observing reads files, stopping signals a pidfd.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// How long one runc command may take before the driver gives up on it.
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub(crate) struct Runc {
    pub bin: PathBuf,
    /// `runc --root`: runc's state, one directory per container.
    pub root: PathBuf,
}

impl Runc {
    /// `runc run -d`: creates and starts the container and returns once its
    /// init has exec'd the command. runc passes its stdin/stdout/stderr on to
    /// the init in detached mode, so those are the console; runc's own
    /// messages go to `log` (emptied by the caller beforehand) as JSON and
    /// the error is returned from there.
    pub async fn run_detached(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        log: &Path,
        console: File,
    ) -> Result<(), String> {
        let err = console.try_clone().map_err(|e| format!("console: {e}"))?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(log)
            .arg("--log-format")
            .arg("json")
            .arg("run")
            .arg("--detach")
            .arg("--pid-file")
            .arg(pid_file)
            .arg("--bundle")
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::from(console))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        let status = match tokio::time::timeout(TIMEOUT, cmd.status()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(format!("exec {}: {e}", self.bin.display())),
            Err(_) => return Err(format!("runc run timed out after {TIMEOUT:?}")),
        };
        if status.success() {
            return Ok(());
        }
        let text = std::fs::read_to_string(log).unwrap_or_default();
        Err(match errors_of(&text) {
            m if m.is_empty() => format!("runc run exited with {status}"),
            m => m,
        })
    }

    /// `runc delete --force`: kills what is left of the container, removes
    /// its cgroups and its state. Ok when runc no longer knows the id.
    pub async fn delete_force(&self, id: &str) -> Result<(), String> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("delete")
            .arg("--force")
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let out = match tokio::time::timeout(TIMEOUT, cmd.output()).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => return Err(format!("exec {}: {e}", self.bin.display())),
            Err(_) => return Err(format!("runc delete timed out after {TIMEOUT:?}")),
        };
        if out.status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&out.stderr);
        if text.contains("does not exist") {
            return Ok(());
        }
        Err(complaint("delete", &text, out.status))
    }

    /// `runc update --resources -`: new cgroup limits for a running
    /// container, as OCI `LinuxResources` JSON on stdin.
    pub async fn update(&self, id: &str, resources: &[u8]) -> Result<(), String> {
        use tokio::io::AsyncWriteExt;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("update")
            .arg("--resources")
            .arg("-")
            .arg(id)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("exec {}: {e}", self.bin.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(resources)
                .await
                .map_err(|e| format!("writing to runc update: {e}"))?;
        }
        let out = match tokio::time::timeout(TIMEOUT, child.wait_with_output()).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => return Err(format!("runc update: {e}")),
            Err(_) => return Err(format!("runc update timed out after {TIMEOUT:?}")),
        };
        if out.status.success() {
            return Ok(());
        }
        Err(complaint(
            "update",
            &String::from_utf8_lossy(&out.stderr),
            out.status,
        ))
    }

    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }
}

/// What a failed runc command said: the last line of its stderr, or its
/// exit status when it said nothing.
fn complaint(command: &str, stderr: &str, status: std::process::ExitStatus) -> String {
    match stderr.trim() {
        "" => format!("runc {command} exited with {status}"),
        t => t.lines().last().unwrap_or(t).to_string(),
    }
}

/// The `msg` of every error-level line of a runc JSON log, joined.
fn errors_of(log: &str) -> String {
    let msgs: Vec<String> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| matches!(v["level"].as_str(), Some("error" | "fatal" | "panic")))
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .collect();
    msgs.join("; ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_errors_from_json_log() {
        let log = r#"{"level":"warning","msg":"meh","time":"x"}
{"level":"error","msg":"runc run failed: no such file","time":"x"}
"#;
        assert_eq!(super::errors_of(log), "runc run failed: no such file");
    }
}
