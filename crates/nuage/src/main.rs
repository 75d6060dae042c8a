//! The `nuage` binary: `nuage serve` runs the cloud; every other command is
//! the client (`nuage project list`, `nuage run-instances`, ...). Like k3s, it
//! dispatches on the first word before parsing, so the client's commands
//! keep their own parser.

mod adminenv;
mod config;
mod files;
mod serve;
mod tls;

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "nuage serve",
    bin_name = "nuage serve",
    version,
    about = "Run the all-in-one nuage cloud: every API on one endpoint, with a local compute node",
    after_help = "Each flag can also be set by its environment variable or in the TOML config file \
                  (the flag's name with _ for -), in that order of precedence."
)]
struct ServeCli {
    #[command(flatten)]
    args: config::ServeArgs,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        let cli = ServeCli::parse_from(args.iter().skip(1));
        raise_file_limit();
        if rustls::crypto::ring::default_provider()
            .install_default()
            .is_err()
        {
            eprintln!("nuage: cannot install the TLS crypto provider");
            return ExitCode::FAILURE;
        }
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("nuage: cannot start the runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        return match rt.block_on(serve::run(cli.args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("nuage: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    default_sigpipe();
    nuage_cli::run(args)
}

/// The client's output often goes to a pipe (`nuage describe-instances |
/// head -1`): when the reader goes away, end quietly as Unix tools do
/// (status 141) instead of panicking on the failed write. Only the client:
/// the server must take EPIPE as one socket's error, not die of it.
fn default_sigpipe() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: SIG_DFL installs no handler code, and this runs at the start
    // of main, before the client starts any other thread.
    #[allow(unsafe_code)]
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// Raises the soft limit on open files to the hard one: the server's
/// connections are bounded below it (`nuage_api::conn`), and the rest is
/// the store's, the objects' and the instances'.
fn raise_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            eprintln!("nuage: cannot raise the open-file limit: {e}");
        }
    }
}
