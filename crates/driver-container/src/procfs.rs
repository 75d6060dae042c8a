//! What the driver reads of processes and of the host in `/proc` and `/sys`,
//! without exec'ing anything: observe runs often and must stay cheap.

use std::io;
use std::path::Path;

/// A process as `/proc/<pid>/stat` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// Clock ticks after boot at which the process started (field 22): a pid
    /// reused by another process has another start time.
    pub start: u64,
    /// Exited but not reaped (`Z`) or being reaped (`X`): not running.
    pub dead: bool,
}

pub(crate) fn stat(pid: u32) -> io::Result<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text).ok_or_else(|| io::Error::other(format!("unparsable /proc/{pid}/stat")))
}

fn parse_stat(text: &str) -> Option<ProcStat> {
    // The command name (field 2) is in parentheses and may itself contain
    // spaces and parentheses: fields are counted after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?; // field 3
    let start = fields.nth(18)?.parse().ok()?; // field 22
    Some(ProcStat {
        start,
        dead: matches!(state, "Z" | "X" | "x"),
    })
}

/// The instance's init as recorded after `runc run`: its host pid and start
/// time. Stored as `<pid> <start>` in the instance directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InitRecord {
    pub pid: u32,
    pub start: u64,
}

impl InitRecord {
    /// The recorded init: `Ok(None)` when none is recorded (never started,
    /// or stopped by the driver, which removes the record). A record that
    /// cannot be read (EMFILE, EIO...) is an error, never "no init".
    pub fn read(path: &Path) -> io::Result<Option<InitRecord>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut it = text.split_ascii_whitespace();
        let parsed = (|| {
            Some(InitRecord {
                pid: it.next()?.parse().ok()?,
                start: it.next()?.parse().ok()?,
            })
        })();
        parsed.map(Some).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unparsable init record {}: {text:?}", path.display()),
            )
        })
    }

    /// The recorded init if this very process still runs.
    pub fn read_running(path: &Path) -> io::Result<Option<InitRecord>> {
        match Self::read(path)? {
            Some(r) if r.alive()? => Ok(Some(r)),
            _ => Ok(None),
        }
    }

    pub fn encode(&self) -> String {
        format!("{} {}\n", self.pid, self.start)
    }

    /// Whether this very process (not a reuse of its pid) still runs.
    /// `Ok(false)` only on positive evidence that it exited: no `/proc`
    /// entry, a zombie, or another process's start time. A `/proc` that
    /// could not be read is an error: the caller must not act on a guess.
    pub fn alive(&self) -> io::Result<bool> {
        if self.start == 0 {
            return Ok(false);
        }
        match stat(self.pid) {
            Ok(s) => Ok(s.start == self.start && !s.dead),
            Err(e) if gone(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Reaps the recorded init if it has exited and this process is its parent
/// (the driver makes the node agent its instances' subreaper, so an init
/// comes to it when `runc run -d` exits), and says how it ended. `Ok(None)`
/// when it still runs, was reaped already, is another process's child (an
/// init started before this process did), or the pid was reused.
pub(crate) fn reap(record: InitRecord) -> io::Result<Option<nuage_driver::Exit>> {
    use rustix::process::{pidfd_open, waitid, Pid, PidfdFlags, WaitId, WaitIdOptions};
    use std::os::fd::AsFd;
    let Some(pid) = i32::try_from(record.pid).ok().and_then(Pid::from_raw) else {
        return Ok(None);
    };
    let fd = match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    // The pidfd pins the pid: once its start time matches, waiting on it
    // can only reap this init, never a reuse of its pid.
    match stat(record.pid) {
        Ok(s) if s.start == record.start => {}
        Ok(_) => return Ok(None),
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(e),
    }
    match waitid(
        WaitId::PidFd(fd.as_fd()),
        WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
    ) {
        Ok(Some(st)) => Ok(st
            .exit_status()
            .map(nuage_driver::Exit::Code)
            .or_else(|| st.terminating_signal().map(nuage_driver::Exit::Signal))),
        Ok(None) | Err(rustix::io::Errno::CHILD) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The `exit` file's text for how an init ended.
pub(crate) fn encode_exit(exit: nuage_driver::Exit) -> String {
    match exit {
        nuage_driver::Exit::Code(c) => format!("code {c}\n"),
        nuage_driver::Exit::Signal(s) => format!("signal {s}\n"),
    }
}

/// How the last init ended, from the `exit` file: `Ok(None)` when there is
/// none; an unreadable file is an error, an unparsable one reads as unknown.
pub(crate) fn read_exit(path: &Path) -> io::Result<Option<nuage_driver::Exit>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut it = text.split_ascii_whitespace();
    Ok(match (it.next(), it.next().and_then(|n| n.parse().ok())) {
        (Some("code"), Some(n)) => Some(nuage_driver::Exit::Code(n)),
        (Some("signal"), Some(n)) => Some(nuage_driver::Exit::Signal(n)),
        _ => None,
    })
}

/// Whether reading `/proc/<pid>/...` failed because the process is gone
/// (ENOENT, or ESRCH while it was being reaped), as opposed to failing to
/// look (EMFILE, ENOMEM...).
fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || e.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error())
}

/// Online CPUs, from `/sys/devices/system/cpu/online` (`0-3,6`): unlike
/// `available_parallelism` it ignores this process's own affinity and quota.
pub(crate) fn online_cpus() -> io::Result<u32> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online")?;
    let mut n = 0u32;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (
            a.parse().map_err(io::Error::other)?,
            b.parse().map_err(io::Error::other)?,
        );
        n += b.saturating_sub(a) + 1;
    }
    Ok(n)
}

pub(crate) fn mem_total_mib() -> io::Result<u64> {
    let text = std::fs::read_to_string("/proc/meminfo")?;
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib / 1024)
        .ok_or_else(|| io::Error::other("no MemTotal in /proc/meminfo"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_file_round_trips() {
        let dir = std::env::temp_dir().join(format!("nuage-exit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("exit");
        assert_eq!(read_exit(&f).expect("read"), None);
        for e in [nuage_driver::Exit::Code(3), nuage_driver::Exit::Signal(9)] {
            std::fs::write(&f, encode_exit(e)).expect("write");
            assert_eq!(read_exit(&f).expect("read"), Some(e));
        }
        std::fs::write(&f, "garbage").expect("write");
        assert_eq!(read_exit(&f).expect("read"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn parses_stat_with_odd_names() {
        let line = "42 (a b) c)) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                start: 987654,
                dead: false
            })
        );
        let z = "7 (sh) Z 1 7 7 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 55 0 0";
        assert_eq!(parse_stat(z).map(|s| s.dead), Some(true));
    }

    #[test]
    fn init_record_read_tells_missing_from_unreadable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("init");
        assert!(matches!(InitRecord::read(&path), Ok(None)));
        std::fs::write(&path, "garbage").expect("write");
        assert!(
            InitRecord::read(&path).is_err(),
            "a corrupt record is an error"
        );
        // A directory where the record should be: the open fails with
        // something other than "not found", which must not read as "no init".
        std::fs::remove_file(&path).expect("rm");
        std::fs::create_dir(&path).expect("mkdir");
        assert!(InitRecord::read(&path).is_err());
        let me = InitRecord {
            pid: std::process::id(),
            start: stat(std::process::id()).expect("own stat").start,
        };
        assert!(matches!(me.alive(), Ok(true)));
        let reused = InitRecord {
            start: me.start + 1,
            ..me
        };
        assert!(matches!(reused.alive(), Ok(false)));
    }
}
