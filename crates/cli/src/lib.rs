//! The `nuage` command-line client: every `nuage ...` command except
//! `nuage serve`. Nouns follow the openstack CLI (`nuage project list`,
//! `nuage role add --project P --user U member`); each noun is a module with
//! its own clap `Cmd` enum and `run`. Compute also has the aws CLI's `ec2`
//! verbs at the top level (`nuage run-instances ...`, in compute.rs), with
//! aws's names and flags.
//!
//! Exit codes: 0 on success, 1 when the server refuses or fails (the
//! message is printed as `nuage: <message> (HTTP 404, request id ...)`) or
//! the client cannot run (configuration, connection), 2 on usage errors.

mod access_key;
mod client;
mod compute;
mod config;
mod domain;
mod group;
mod images;
mod instance_type;
mod keypairs;
mod lockout;
mod network;
mod node;
mod objects;
mod output;
mod project;
mod quota;
mod role;
mod shorthand;
mod token;
mod user;
mod wait;

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

pub use client::ApiError;
use client::Client;
use output::Format;

#[derive(Debug, Parser)]
#[command(
    name = "nuage",
    version,
    propagate_version = true,
    about = "The nuage client: manage a nuage cloud from the command line",
    after_help = "Connection settings come from flags, then the environment (source the admin.env that \
                  `nuage serve` writes, e.g. /var/lib/nuage/admin.env), then ~/.config/nuage/config.toml.\n\
                  Run the cloud itself with `nuage serve` (see `nuage serve --help`)."
)]
struct Cli {
    #[command(flatten)]
    conn: config::Flags,
    /// Output format
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the all-in-one cloud on this machine (`nuage serve --help` for its flags)
    // The binary takes `serve` before this parser sees it; listed for --help.
    #[command(disable_help_flag = true)]
    Serve {
        /// The server's flags
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Tokens: issue one, revoke the current one
    #[command(subcommand)]
    Token(token::Cmd),
    /// Show who the credentials log in as, on which project, with which roles
    Whoami,
    /// Projects
    #[command(subcommand)]
    Project(project::Cmd),
    /// Users
    #[command(subcommand)]
    User(user::Cmd),
    /// Roles and role assignments
    #[command(subcommand)]
    Role(role::Cmd),
    /// Groups of users
    #[command(subcommand)]
    Group(group::Cmd),
    /// Domains
    #[command(subcommand)]
    Domain(domain::Cmd),
    /// EC2/S3 access keys
    #[command(subcommand)]
    AccessKey(access_key::Cmd),
    /// EC2 compatibility: `nuage ec2 credentials create|list|delete`
    #[command(subcommand)]
    Ec2(Ec2Cmd),
    /// Project quotas
    #[command(subcommand)]
    Quota(quota::Cmd),
    /// Images: import, build, list, share
    #[command(subcommand)]
    Image(images::Cmd),
    /// Instance types (sizes)
    #[command(subcommand)]
    InstanceType(instance_type::Cmd),
    /// Compute nodes
    #[command(subcommand)]
    Node(node::Cmd),
    /// Object storage: buckets and objects (mb, rb, ls, put, get, cp, rm, stat)
    #[command(subcommand)]
    Object(objects::Cmd),
    /// List recent failed logins and the users and addresses locked for them (admins)
    DescribeLoginLockouts(lockout::Describe),
    /// Forget the failed logins of a user or an address, ending its lock (admins)
    ClearLoginLockout(lockout::Clear),
    /// Networks (EC2's VPCs)
    #[command(subcommand)]
    Network(network::NetworkCmd),
    /// Subnets of networks
    #[command(subcommand)]
    Subnet(network::SubnetCmd),
    /// Ports (network interfaces)
    #[command(subcommand)]
    Port(network::PortCmd),
    /// Routers: gateways to external networks, interfaces on subnets
    #[command(subcommand)]
    Router(network::RouterCmd),
    #[command(flatten)]
    Compute(compute::Verb),
    #[command(flatten)]
    Net(network::Verb),
}

#[derive(Debug, Subcommand)]
enum Ec2Cmd {
    /// Access keys, as `nuage access-key`
    #[command(subcommand)]
    Credentials(access_key::Cmd),
}

/// What a command runs with: a logged-in client and the output format.
pub(crate) struct Ctx {
    pub client: Client,
    pub format: Format,
}

/// Deletes each named item of `collection` (`projects`), reporting each
/// failure and failing at the end if any did.
pub(crate) async fn delete_all(
    ctx: &Ctx,
    collection: &str,
    what: &str,
    names: &[String],
) -> Result<()> {
    if let [one] = names {
        return ctx.client.delete(&[collection, one]).await;
    }
    let mut failed = 0;
    for n in names {
        if let Err(e) = ctx.client.delete(&[collection, n]).await {
            eprintln!("nuage: {what} {n}: {e:#}");
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} of {} {what}s could not be deleted", names.len());
    }
    Ok(())
}

async fn dispatch(cli: Cli) -> Result<()> {
    let settings = config::load(&cli.conn)?;
    let client = Client::connect(&settings).await?;
    let mut ctx = Ctx {
        client,
        format: cli.output,
    };
    let ctx = &mut ctx;
    match cli.command {
        Command::Serve { .. } => {
            bail!("`nuage serve` runs the server: call the nuage binary itself")
        }
        Command::Token(c) => token::run(c, ctx).await,
        Command::Whoami => token::whoami(ctx).await,
        Command::Project(c) => project::run(c, ctx).await,
        Command::User(c) => user::run(c, ctx).await,
        Command::Role(c) => role::run(c, ctx).await,
        Command::Group(c) => group::run(c, ctx).await,
        Command::Domain(c) => domain::run(c, ctx).await,
        Command::AccessKey(c) | Command::Ec2(Ec2Cmd::Credentials(c)) => {
            access_key::run(c, ctx).await
        }
        Command::Quota(c) => quota::run(c, ctx).await,
        Command::Image(c) => images::run(c, ctx).await,
        Command::InstanceType(c) => instance_type::run(c, ctx).await,
        Command::Node(c) => node::run(c, ctx).await,
        Command::Object(c) => objects::run(c, ctx).await,
        Command::DescribeLoginLockouts(d) => lockout::describe(d, ctx).await,
        Command::ClearLoginLockout(c) => lockout::clear(c, ctx).await,
        Command::Compute(v) => compute::run(v, ctx).await,
        Command::Network(c) => network::network(c, ctx).await,
        Command::Subnet(c) => network::subnet(c, ctx).await,
        Command::Port(c) => network::port(c, ctx).await,
        Command::Router(c) => network::router(c, ctx).await,
        Command::Net(v) => network::run(v, ctx).await,
    }
}

/// The connection flag (`--user`) a usage error is about, if it was given
/// after the command, where only the command's own flags are accepted.
fn misplaced_connection_flag(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let name = arg.split('=').next().unwrap_or_default();
    [
        "--url",
        "--user",
        "--password",
        "--project",
        "--domain",
        "--token",
        "--cacert",
    ]
    .contains(&name)
    .then(|| name.to_string())
}

/// Runs the client with the full argv (`args[0]` is the program name).
pub fn run(args: Vec<String>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = e.print();
            if let Some(flag) = misplaced_connection_flag(&e) {
                eprintln!("\nnote: connection flags go before the command, e.g. `nuage {flag} ... project list`");
            }
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nuage: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nuage: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_consistent() {
        super::Cli::command().debug_assert();
    }

    /// Every command and every flag says what it is for in `--help`.
    #[test]
    fn every_command_and_flag_has_a_description() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                let p = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(p.clone());
                }
                walk(sub, &p, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "nuage", &mut missing);
        assert!(missing.is_empty(), "without a description: {missing:#?}");
    }
}
