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
#[command(name = "nuage serve", about = "Run the all-in-one nuage cloud")]
struct ServeCli {
    #[command(flatten)]
    args: config::ServeArgs,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        let cli = ServeCli::parse_from(args.iter().skip(1));
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
    nuage_cli::run(args)
}
