//! Server settings: flags, then `NUAGE_*` environment variables, then the
//! TOML config file, then built-in defaults, in that order of precedence.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

/// `nuage serve` flags; each has an environment variable of the same name.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where nuage keeps its state: database, keys, admin.env, objects,
    /// images, instances (default: /var/lib/nuage as root, else
    /// ~/.local/share/nuage).
    #[arg(long, env = "NUAGE_DATA_DIR", hide_env_values = true)]
    pub data_dir: Option<PathBuf>,
    /// Address and port of the one HTTP endpoint of every API (default
    /// 127.0.0.1:8773).
    #[arg(long, env = "NUAGE_LISTEN", hide_env_values = true)]
    pub listen: Option<SocketAddr>,
    /// State store URL: sqlite://PATH (default: DATA_DIR/nuage.db) or postgres://...
    #[arg(long, env = "NUAGE_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
    /// TOML config file (default: DATA_DIR/nuage.toml when it exists).
    #[arg(long, env = "NUAGE_CONFIG", hide_env_values = true)]
    pub config: Option<PathBuf>,
    /// Serve HTTPS with a certificate from nuage's own CA (the default when
    /// the listen address is not loopback).
    #[arg(long, env = "NUAGE_TLS", hide_env_values = true)]
    pub tls: Option<bool>,
    /// Log format: human or json (default human; colours only on a terminal).
    #[arg(long, env = "NUAGE_LOG_FORMAT", hide_env_values = true)]
    pub log_format: Option<LogFormat>,
    /// Region name clients use: AWS_DEFAULT_REGION, OS_REGION_NAME (default
    /// nuage-1).
    #[arg(long, env = "NUAGE_REGION", hide_env_values = true)]
    pub region: Option<String>,
    /// URL clients reach this server at, when it differs from the listen
    /// address (behind a proxy or NAT; default: derived from --listen).
    #[arg(long, env = "NUAGE_PUBLIC_URL", hide_env_values = true)]
    pub public_url: Option<String>,
    /// What runs instances on this node: container (runc, the default), fake
    /// (simulated nodes, for tests at scale) or none (no local compute node).
    #[arg(long, env = "NUAGE_COMPUTE_DRIVER", hide_env_values = true)]
    pub compute_driver: Option<ComputeDriverKind>,
    /// Give instances ports on virtual networks (default true); false runs
    /// them with a loopback only, as before networking.
    #[arg(long, env = "NUAGE_NETWORK", hide_env_values = true)]
    pub network: Option<bool>,
    /// This node's availability zone (default: the region's name + "a").
    #[arg(long, env = "NUAGE_AVAILABILITY_ZONE", hide_env_values = true)]
    pub availability_zone: Option<String>,
    /// vCPUs the scheduler gives out per physical core (default 16).
    #[arg(long, env = "NUAGE_CPU_ALLOCATION_RATIO", hide_env_values = true)]
    pub cpu_allocation_ratio: Option<f64>,
    /// RAM the scheduler gives out per MiB of the node (default 1.0).
    #[arg(long, env = "NUAGE_RAM_ALLOCATION_RATIO", hide_env_values = true)]
    pub ram_allocation_ratio: Option<f64>,
    /// Root disk the scheduler gives out per GiB of the node's filesystem
    /// (default 16: container root disks are thin overlay upper directories).
    #[arg(long, env = "NUAGE_DISK_ALLOCATION_RATIO", hide_env_values = true)]
    pub disk_allocation_ratio: Option<f64>,
    /// Client connections held at once; past it the longest-idle one is
    /// closed to admit a new one (default: three quarters of the file
    /// limit, at most 16384).
    #[arg(long, env = "NUAGE_MAX_CONNECTIONS", hide_env_values = true)]
    pub max_connections: Option<usize>,
    /// Seconds a connection may sit with no request and no byte moving
    /// before it is closed (default 60).
    #[arg(long, env = "NUAGE_IDLE_TIMEOUT", hide_env_values = true)]
    pub idle_timeout: Option<u64>,
    /// Seconds a client has to send a request's headers, and the longest an
    /// HTTP/1 connection waits between requests (default 30).
    #[arg(long, env = "NUAGE_HEADER_TIMEOUT", hide_env_values = true)]
    pub header_timeout: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ComputeDriverKind {
    Container,
    Fake,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// The config file's shape; every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    database: Option<String>,
    tls: Option<bool>,
    log_format: Option<LogFormat>,
    region: Option<String>,
    public_url: Option<String>,
    token_ttl_secs: Option<u64>,
    compute_driver: Option<ComputeDriverKind>,
    /// `network = false`, or a `[network]` table.
    network: Option<NetworkFile>,
    availability_zone: Option<String>,
    /// The OCI runtime binary (default: runc on PATH).
    runtime: Option<PathBuf>,
    /// The cgroup under which instances' cgroups are made.
    cgroup_parent: Option<String>,
    /// How long a stop waits for an instance's init before killing it.
    stop_grace_secs: Option<u64>,
    /// How often the reconcilers re-check everything they own, events or
    /// not (what was changed by hand is put back within this).
    resync_secs: Option<u64>,
    cpu_allocation_ratio: Option<f64>,
    ram_allocation_ratio: Option<f64>,
    disk_allocation_ratio: Option<f64>,
    max_connections: Option<usize>,
    idle_timeout: Option<u64>,
    header_timeout: Option<u64>,
}

/// `network = true|false` (as before), or a `[network]` table.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum NetworkFile {
    Enabled(bool),
    Section(NetworkSection),
}

/// ```toml
/// [network]
/// enabled = true
/// [network.external]
/// bridge = "br-ext"            # the operator's bridge
/// netns = "/run/netns/edge"    # its namespace; default: the host's
/// cidr = "203.0.113.0/24"
/// gateway = "203.0.113.1"      # default: the first usable address
/// pool_start = "203.0.113.10"  # default: every usable address
/// pool_end = "203.0.113.200"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkSection {
    enabled: Option<bool>,
    external: Option<ExternalNetwork>,
}

/// The operator's external network: routers' gateways and floating
/// addresses come from it. Without one, nothing of the host is touched.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalNetwork {
    pub bridge: String,
    pub netns: Option<PathBuf>,
    pub cidr: String,
    pub gateway: Option<String>,
    pub pool_start: Option<String>,
    pub pool_end: Option<String>,
}

/// Settings after every source has been applied.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub database: String,
    pub tls: bool,
    pub log_format: LogFormat,
    pub region: String,
    pub public_url: String,
    pub token_ttl_secs: u64,
    pub compute_driver: ComputeDriverKind,
    /// Whether instances get ports on virtual networks.
    pub network: bool,
    /// The operator's external network, if configured.
    pub external_network: Option<ExternalNetwork>,
    pub availability_zone: String,
    pub runtime: PathBuf,
    pub cgroup_parent: String,
    pub stop_grace_secs: u64,
    pub resync_secs: u64,
    pub cpu_allocation_ratio: Option<f64>,
    pub ram_allocation_ratio: Option<f64>,
    pub disk_allocation_ratio: Option<f64>,
    /// `None`: derived from the file limit at start.
    pub max_connections: Option<usize>,
    pub idle_timeout_secs: u64,
    pub header_timeout_secs: u64,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8773";
pub const DEFAULT_REGION: &str = "nuage-1";

fn default_data_dir() -> PathBuf {
    // Root gets the system location; anyone else a directory of their own.
    // /proc/self is owned by the process's effective uid.
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if root {
        PathBuf::from("/var/lib/nuage")
    } else {
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".local/share/nuage"))
            .unwrap_or_else(|| PathBuf::from("nuage-data"))
    }
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    toml::from_str(&text)
        .with_context(|| format!("the config file {} is not valid", path.display()))
}

impl Config {
    pub fn resolve(args: ServeArgs) -> Result<Config> {
        let explicit = args.config.clone();
        let pre_data_dir = args.data_dir.clone();
        let file = match &explicit {
            Some(p) => read_file(p)?,
            None => {
                let dir = pre_data_dir.clone().unwrap_or_else(default_data_dir);
                let p = dir.join("nuage.toml");
                if p.exists() {
                    read_file(&p)?
                } else {
                    FileConfig::default()
                }
            }
        };
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(default_data_dir);
        let listen = match args.listen.or(file.listen) {
            Some(l) => l,
            None => DEFAULT_LISTEN
                .parse()
                .context("the default listen address")?,
        };
        let database = args
            .database
            .or(file.database)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("nuage.db").display()));
        let tls = args
            .tls
            .or(file.tls)
            .unwrap_or_else(|| !listen.ip().is_loopback());
        let scheme = if tls { "https" } else { "http" };
        let public_url = args.public_url.or(file.public_url).unwrap_or_else(|| {
            let host = if listen.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else if listen.is_ipv6() {
                format!("[{}]", listen.ip())
            } else {
                listen.ip().to_string()
            };
            let host = if tls && listen.ip().is_loopback() {
                // Certificates name localhost; clients verify the name.
                "localhost".to_string()
            } else {
                host
            };
            format!("{scheme}://{host}:{}", listen.port())
        });
        let region = args
            .region
            .or(file.region)
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        // Servers sharing a machine (tests, several data dirs) must not see
        // each other's instance cgroups as orphans.
        let cgroup_parent = file.cgroup_parent.unwrap_or_else(|| {
            if data_dir == Path::new("/var/lib/nuage") {
                "nuage".to_string()
            } else {
                // FNV-1a: stable across builds, unlike std's hasher.
                let h = data_dir
                    .as_os_str()
                    .as_encoded_bytes()
                    .iter()
                    .fold(0x811c_9dc5u32, |h, b| {
                        (h ^ *b as u32).wrapping_mul(0x0100_0193)
                    });
                format!("nuage-{h:08x}")
            }
        });
        let (file_network, external_network) = match file.network {
            None => (None, None),
            Some(NetworkFile::Enabled(b)) => (Some(b), None),
            Some(NetworkFile::Section(s)) => (s.enabled, s.external),
        };
        if let Some(e) = &external_network {
            if e.pool_start.is_some() != e.pool_end.is_some() {
                anyhow::bail!(
                    "[network.external]: pool_start and pool_end go together (or neither)"
                );
            }
        }
        Ok(Config {
            compute_driver: args
                .compute_driver
                .or(file.compute_driver)
                .unwrap_or(ComputeDriverKind::Container),
            network: args.network.or(file_network).unwrap_or(true),
            external_network,
            availability_zone: args
                .availability_zone
                .or(file.availability_zone)
                .unwrap_or_else(|| format!("{region}a")),
            runtime: file.runtime.unwrap_or_else(|| PathBuf::from("runc")),
            cgroup_parent,
            stop_grace_secs: file.stop_grace_secs.unwrap_or(10),
            resync_secs: file.resync_secs.unwrap_or(30).max(1),
            cpu_allocation_ratio: args.cpu_allocation_ratio.or(file.cpu_allocation_ratio),
            ram_allocation_ratio: args.ram_allocation_ratio.or(file.ram_allocation_ratio),
            disk_allocation_ratio: args.disk_allocation_ratio.or(file.disk_allocation_ratio),
            max_connections: args.max_connections.or(file.max_connections),
            idle_timeout_secs: args.idle_timeout.or(file.idle_timeout).unwrap_or(60),
            header_timeout_secs: args.header_timeout.or(file.header_timeout).unwrap_or(30),
            data_dir,
            listen,
            database,
            tls,
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Human),
            region,
            public_url: public_url.trim_end_matches('/').to_string(),
            token_ttl_secs: file.token_ttl_secs.unwrap_or(3600),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_is_a_flag_or_a_table() {
        let f: FileConfig = toml::from_str("network = false").expect("flag");
        assert!(matches!(f.network, Some(NetworkFile::Enabled(false))));
        let f: FileConfig = toml::from_str(
            "[network.external]\nbridge = \"br-ext\"\ncidr = \"203.0.113.0/24\"\n\
             pool_start = \"203.0.113.10\"\npool_end = \"203.0.113.20\"\n",
        )
        .expect("table");
        let Some(NetworkFile::Section(s)) = f.network else {
            panic!("not a section: {:?}", f.network)
        };
        let e = s.external.expect("external");
        assert_eq!(
            (e.bridge.as_str(), e.netns, e.gateway),
            ("br-ext", None, None)
        );
        assert!(toml::from_str::<FileConfig>(
            "[network.external]\nbridge = \"b\"\ncidr = \"x\"\nmystery = 1\n"
        )
        .is_err());
    }
}
