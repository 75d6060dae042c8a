//! The instances' seccomp profile: Docker's default (moby
//! `profiles/seccomp/default.json`, 2024), resolved for the capability set
//! the driver grants ([`crate::spec::CAPABILITIES`]) and the node's
//! architecture, as OCI `linux.seccomp` (ADR 16).
//!
//! Every system call not listed fails with EPERM. Resolving Docker's
//! conditional rules for our fixed capabilities leaves out everything gated
//! on CAP_SYS_ADMIN (mount, umount, unshare, setns, the new mount API, bpf,
//! perf_event_open, quotactl…), CAP_SYS_MODULE, CAP_SYS_TIME, CAP_SYS_BOOT and
//! the others we never grant, and the key management calls (add_key, keyctl,
//! request_key), which Docker never allows; `clone` is allowed only without
//! namespace flags and `clone3` answers ENOSYS so libcs fall back to it.

use serde::Serialize;

#[rustfmt::skip]
/// Allowed unconditionally (Docker's first rule). Names the node's
/// libseccomp does not know (other architectures' calls) are skipped by runc.
const ALLOWED: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset",
    "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat",
    "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
    "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
    "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
    "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown",
    "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock",
    "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs",
    "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_time64", "futex_waitv",
    "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32",
    "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
    "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
    "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid",
    "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup",
    "io_submit", "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc", "kill",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
    "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek",
    "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
    "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
    "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect",
    "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl",
    "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
    "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
    "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
    "remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall",
    "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
    "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
    "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32",
    "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
    "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
    "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list",
    "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32",
    "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
    "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat",
    "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
    "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
    "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask",
    "uname", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork",
    "vmsplice", "wait4", "waitid", "waitpid", "write", "writev",
    // Docker: allowed from kernel 4.8 on (ptrace can no longer bypass seccomp).
    "process_vm_readv", "process_vm_writev", "ptrace",
    // Docker: allowed with CAP_SYS_CHROOT, which instances hold.
    "chroot",
];

/// x86's extra calls (Docker: amd64, x32; modify_ldt also x86).
const ALLOWED_X86_64: &[&str] = &["arch_prctl", "modify_ldt"];
#[rustfmt::skip]
/// Arm's extra calls (Docker: arm, arm64).
const ALLOWED_AARCH64: &[&str] = &[
    "arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush",
    "set_tls",
];

/// `personality(2)` personas Docker allows: Linux, Linux32, UNAME26
/// (and combinations), and the query 0xffffffff.
const PERSONAS: &[u64] = &[0, 8, 0x20000, 0x20008, 0xffff_ffff];

/// `clone` flags that make namespaces (CLONE_NEWNS, NEWCGROUP, NEWUTS,
/// NEWIPC, NEWUSER, NEWPID, NEWNET): Docker's mask 2114060288.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// `AF_VSOCK`: the one socket family Docker refuses.
const AF_VSOCK: u64 = 40;

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// OCI `linux.seccomp`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Seccomp {
    default_action: &'static str,
    default_errno_ret: u32,
    architectures: Vec<&'static str>,
    syscalls: Vec<Rule>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    names: Vec<&'static str>,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errno_ret: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    args: Vec<Arg>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u32,
    value: u64,
    #[serde(skip_serializing_if = "is_zero")]
    value_two: u64,
    op: &'static str,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Rule {
    fn allow(names: &[&'static str]) -> Rule {
        Rule {
            names: names.to_vec(),
            action: "SCMP_ACT_ALLOW",
            errno_ret: None,
            args: Vec::new(),
        }
    }

    fn allow_if(name: &'static str, arg: Arg) -> Rule {
        Rule {
            args: vec![arg],
            ..Rule::allow(&[name])
        }
    }
}

/// The profile for the node's architecture (`std::env::consts::ARCH`).
pub(crate) fn profile() -> Seccomp {
    profile_for(std::env::consts::ARCH)
}

fn profile_for(arch: &str) -> Seccomp {
    // The native ABI only. Docker also lists the 32-bit compat ABIs (X86,
    // X32; ARM): each one more is another copy of every rule that runc has
    // libseccomp compile at every start, ~14 ms of a launch here (measured,
    // ADR 16). Without them a 32-bit system call kills the calling thread
    // (libseccomp's bad-architecture action): 32-bit binaries do not run in
    // instances, and the compat entry points, a classic source of kernel
    // holes, are closed.
    let (architectures, extra): (Vec<&'static str>, &[&'static str]) = match arch {
        "x86_64" => (vec!["SCMP_ARCH_X86_64"], ALLOWED_X86_64),
        "aarch64" => (vec!["SCMP_ARCH_AARCH64"], ALLOWED_AARCH64),
        // The native architecture only: libseccomp picks it when none is named.
        _ => (Vec::new(), &[]),
    };
    let mut syscalls = vec![Rule::allow(ALLOWED), Rule::allow(extra)];
    syscalls.extend(PERSONAS.iter().map(|&p| {
        Rule::allow_if(
            "personality",
            Arg {
                index: 0,
                value: p,
                value_two: 0,
                op: "SCMP_CMP_EQ",
            },
        )
    }));
    syscalls.push(Rule::allow_if(
        "socket",
        Arg {
            index: 0,
            value: AF_VSOCK,
            value_two: 0,
            op: "SCMP_CMP_NE",
        },
    ));
    // (flags & mask) == 0; s390 puts the flags second, the rest first.
    syscalls.push(Rule::allow_if(
        "clone",
        Arg {
            index: if arch.starts_with("s390") { 1 } else { 0 },
            value: CLONE_NAMESPACE_FLAGS,
            value_two: 0,
            op: "SCMP_CMP_MASKED_EQ",
        },
    ));
    syscalls.push(Rule {
        errno_ret: Some(ENOSYS),
        action: "SCMP_ACT_ERRNO",
        ..Rule::allow(&["clone3"])
    });
    syscalls.retain(|r| !r.names.is_empty());
    Seccomp {
        default_action: "SCMP_ACT_ERRNO",
        default_errno_ret: EPERM,
        architectures,
        syscalls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(p: &Seccomp, name: &str) -> bool {
        p.syscalls
            .iter()
            .any(|r| r.action == "SCMP_ACT_ALLOW" && r.args.is_empty() && r.names.contains(&name))
    }

    #[test]
    fn denies_what_escapes_and_allows_what_programs_need() {
        let p = profile_for("x86_64");
        for denied in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "keyctl",
            "add_key",
            "request_key",
            "bpf",
            "perf_event_open",
            "init_module",
            "kexec_load",
            "open_by_handle_at",
            "clone",
            "clone3",
            "reboot",
            "swapon",
            "pivot_root",
            "userfaultfd",
        ] {
            assert!(!allowed(&p, denied), "{denied} allowed unconditionally");
        }
        for needed in ["read", "execve", "chroot", "arch_prctl", "ptrace", "mknod"] {
            assert!(allowed(&p, needed), "{needed} denied");
        }
        let json = serde_json::to_value(&p).expect("serialises");
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["defaultErrnoRet"], 1);
        assert_eq!(
            json["architectures"],
            serde_json::json!(["SCMP_ARCH_X86_64"])
        );
        let clone = json["syscalls"]
            .as_array()
            .expect("rules")
            .iter()
            .find(|r| r["names"][0] == "clone")
            .expect("clone rule");
        assert_eq!(clone["args"][0]["value"], 0x7E02_0000u64);
        assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
    }
}
