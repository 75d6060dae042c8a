//! `nuage serve`: the all-in-one cloud.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nuage_api::{Core, Metrics};
use nuage_identity::{Bootstrap, Identity, IdentityConfig};
use nuage_store::Db;

use crate::adminenv::{self, Credentials};
use crate::config::{ComputeDriverKind, Config, LogFormat, ServeArgs};
use crate::tls;
use nuage_compute::{Compute, ComputeConfig, LocalAgent, NodeRegistration};

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NUAGE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour only for a person at a terminal, never in a file or pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}

pub async fn run(args: ServeArgs) -> Result<()> {
    let started = Instant::now();
    let cfg = Config::resolve(args)?;
    init_logging(cfg.log_format);

    std::fs::create_dir_all(&cfg.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            cfg.data_dir.display()
        )
    })?;
    std::fs::set_permissions(&cfg.data_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", cfg.data_dir.display()))?;

    let tls_files = if cfg.tls {
        Some(tls::ensure(&cfg.data_dir, cfg.listen.ip())?)
    } else {
        None
    };

    if let Some(path) = cfg.database.strip_prefix("sqlite://") {
        protect_sqlite_file(std::path::Path::new(path.split('?').next().unwrap_or(path)))?;
    }
    let db = Db::open(&cfg.database)
        .await
        .context("cannot open the state store")?;
    let identity = Identity::open(
        db.clone(),
        IdentityConfig {
            token_ttl: Duration::from_secs(cfg.token_ttl_secs),
            ..IdentityConfig::default()
        },
    )
    .await
    .context("cannot start the identity service")?;

    let mut first_start = None;
    if identity.is_bootstrapped().await? {
        adminenv::refresh(&cfg, tls_files.as_ref())?;
    } else {
        let creds = Credentials {
            password: std::env::var("NUAGE_ADMIN_PASSWORD")
                .unwrap_or_else(|_| nuage_model::id::secret(24)),
            access_key_id: nuage_model::id::access_key_id(),
            secret_access_key: nuage_model::id::secret(40),
        };
        adminenv::write_pending(&cfg, tls_files.as_ref(), &creds)?;
        let outcome = identity
            .bootstrap(Bootstrap {
                admin_password: Some(creds.password.clone()),
                access_key: Some((creds.access_key_id.clone(), creds.secret_access_key.clone())),
            })
            .await;
        match outcome {
            Ok(o) if o.created => {
                adminenv::commit_pending(&cfg)?;
                first_start = Some(creds);
            }
            Ok(_) => adminenv::discard_pending(&cfg),
            Err(e) => {
                // Another controller may have bootstrapped at the same moment.
                if identity.is_bootstrapped().await? {
                    adminenv::discard_pending(&cfg);
                } else {
                    return Err(e).context("bootstrap failed");
                }
            }
        }
    }
    let _refresher = identity.spawn_refresher();

    let (compute, network, network_agent) = start_compute(&cfg, &db, &identity).await?;
    let (stop_controllers, controllers_stopped) = tokio::sync::watch::channel(false);
    // The instance services listen in the router namespaces the network
    // agent makes, following the domains it publishes.
    let services_task = network_agent.as_ref().map(|agent| {
        let services = nuage_metadata::InstanceServices::new(compute.clone(), network.clone());
        let domains = agent.router_domains();
        let stopped = controllers_stopped.clone();
        tokio::spawn(async move { services.run(domains, stopped).await })
    });
    let network_task = network_agent.map(|agent| {
        let stopped = controllers_stopped.clone();
        tokio::spawn(async move { agent.run(stopped).await })
    });
    let compute_task = {
        let compute = compute.clone();
        tokio::spawn(async move { compute.run(controllers_stopped).await })
    };

    let objects = nuage_object::ObjectStore::open(
        &cfg.data_dir.join("objects"),
        identity.clone(),
        nuage_object::ObjectConfig {
            region: cfg.region.clone(),
            upload_expiry: nuage_object::DEFAULT_UPLOAD_EXPIRY,
        },
    )
    .await
    .context("cannot open the object store")?;
    let core = Arc::new(Core {
        identity,
        compute,
        objects,
        network,
        region: cfg.region.clone(),
        public_url: cfg.public_url.clone(),
        metrics: Arc::new(Metrics::new()),
    });
    let app = nuage_api::router(core.clone());

    let handle = axum_server::Handle::new();
    {
        let handle = handle.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            handle.graceful_shutdown(Some(Duration::from_secs(10)));
        });
    }
    let listener = std::net::TcpListener::bind(cfg.listen)
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    listener.set_nonblocking(true)?;
    let env_path = adminenv::path(&cfg);
    tracing::info!(
        url = %cfg.public_url,
        database = %if cfg.database.starts_with("sqlite:") { "sqlite" } else { "postgres" },
        ready_ms = started.elapsed().as_millis() as u64,
        "nuage is serving"
    );
    print_banner(&cfg, &env_path, first_start.as_ref());

    let limits = connection_limits(&cfg)?;
    let conn_metrics = core.metrics.connections.clone();
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    match &tls_files {
        Some(t) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&t.cert, &t.key)
                .await
                .context("cannot load the TLS certificate")?;
            let acceptor = nuage_api::conn::Bounded::new(
                axum_server::tls_rustls::RustlsAcceptor::new(rustls),
                limits,
                conn_metrics,
            );
            let mut server = axum_server::from_tcp(listener).acceptor(acceptor);
            header_timeout(server.http_builder(), &cfg);
            server.handle(handle).serve(service).await?
        }
        None => {
            let acceptor = nuage_api::conn::Bounded::new(
                nuage_api::zerocopy::ZeroCopyAcceptor,
                limits,
                conn_metrics,
            );
            let mut server = axum_server::from_tcp(listener).acceptor(acceptor);
            header_timeout(server.http_builder(), &cfg);
            server.handle(handle).serve(service).await?
        }
    }
    let _ = stop_controllers.send(true);
    if tokio::time::timeout(Duration::from_secs(20), compute_task)
        .await
        .is_err()
    {
        tracing::warn!("reconcilers still busy after 20 s; stopping anyway");
    }
    for task in [services_task, network_task].into_iter().flatten() {
        if tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .is_err()
        {
            tracing::warn!(
                "the network agent or instance services still busy after 5 s; stopping anyway"
            );
        }
    }
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Opens the compute service and registers this machine's node agent with
/// the configured driver; with the container driver, also the node's
/// network data plane and the agent that reconciles it.
async fn start_compute(
    cfg: &Config,
    db: &Db,
    identity: &Identity,
) -> Result<(
    Compute,
    nuage_network::NetworkService,
    Option<nuage_network::agent::NetworkAgent>,
)> {
    let images = nuage_image::ImageStore::open(&cfg.data_dir.join("images"))
        .context("cannot open the image store")?;
    let network = nuage_network::NetworkService::new(
        db.clone(),
        identity.clone(),
        nuage_network::NetworkConfig::default(),
    )
    .context("cannot start the network service")?;
    if let (true, Some(ext)) = (cfg.network, &cfg.external_network) {
        ensure_external_network(&network, identity, ext).await?;
    }
    let compute = Compute::open(
        db.clone(),
        identity.clone(),
        images.clone(),
        ComputeConfig {
            region: cfg.region.clone(),
            default_zone: cfg.availability_zone.clone(),
            stop_grace: Duration::from_secs(cfg.stop_grace_secs),
            resync_every: Duration::from_secs(cfg.resync_secs),
            scheduler: scheduler_config(cfg)?,
            ..ComputeConfig::default()
        },
    )
    .await
    .context("cannot start the compute service")?;
    if cfg.network {
        compute.attach_network(network.clone());
    }
    let driver: Arc<dyn nuage_driver::ComputeDriver> = match cfg.compute_driver {
        ComputeDriverKind::None => return Ok((compute, network, None)),
        ComputeDriverKind::Fake => Arc::new(nuage_driver::fake::FakeDriver::new(
            nuage_driver::Capacity {
                vcpus: 64,
                ram_mib: 256 * 1024,
                disk_gib: 2048,
                arch: std::env::consts::ARCH.to_string(),
                hypervisor: "fake".into(),
            },
        )),
        ComputeDriverKind::Container => Arc::new(
            nuage_driver_container::ContainerDriver::new(nuage_driver_container::ContainerConfig {
                state_dir: cfg.data_dir.join("compute"),
                runtime: cfg.runtime.clone(),
                cgroup_parent: cfg.cgroup_parent.clone(),
            })
            .context("cannot start the container driver (is runc installed?)")?,
        ),
    };
    let network_agent = if cfg.network && cfg.compute_driver == ComputeDriverKind::Container {
        let (plugger, agent) = start_data_plane(cfg, db, &network)?;
        driver.set_nic_plugger(plugger);
        Some(agent)
    } else {
        None
    };
    let name = node_name();
    let agent = Arc::new(LocalAgent::new(format!("node-{name}"), driver, images));
    compute
        .register_agent(
            agent,
            NodeRegistration {
                id: format!("node-{name}"),
                name,
                availability_zone: Some(cfg.availability_zone.clone()),
                labels: Default::default(),
            },
        )
        .await
        .context("cannot register the local compute node")?;
    Ok((compute, network, network_agent))
}

/// Makes the operator's external network exist in the store, owned by
/// the admin project and shared, so `allocate-address` draws from it and
/// default networks get a default router through it (ADR 22).
async fn ensure_external_network(
    network: &nuage_network::NetworkService,
    identity: &Identity,
    ext: &crate::config::ExternalNetwork,
) -> Result<()> {
    // Idempotent: reports the admin project of the bootstrapped cloud.
    let admin = identity
        .bootstrap(Bootstrap {
            admin_password: None,
            access_key: None,
        })
        .await
        .context("cannot find the admin project")?;
    let pool = match (&ext.pool_start, &ext.pool_end) {
        (Some(start), Some(end)) => Some(nuage_network::types::Pool {
            start: start.clone(),
            end: end.clone(),
        }),
        _ => None,
    };
    let n = network
        .ensure_external_network(
            &admin.admin_project_id,
            &nuage_network::ExternalNetworkConfig {
                name: "external".into(),
                cidr: ext.cidr.clone(),
                gateway_ip: ext.gateway.clone(),
                allocation_pool: pool,
            },
        )
        .await
        .with_context(|| format!("cannot make the external network {}", ext.cidr))?;
    tracing::info!(network = %n.id, cidr = %ext.cidr, bridge = %ext.bridge, "external network ready");
    Ok(())
}

/// The node's network data plane: bridges and rules in a network namespace
/// of nuage's own (`DATA_DIR/network/node.netns`), so that nothing touches
/// the machine's interfaces, routes or firewall.
fn start_data_plane(
    cfg: &Config,
    db: &Db,
    network: &nuage_network::NetworkService,
) -> Result<(
    Arc<dyn nuage_driver::NicPlugger>,
    nuage_network::agent::NetworkAgent,
)> {
    let node_ns = cfg.data_dir.join("network").join("node.netns");
    nuage_netdriver::node::ensure_node_netns(&node_ns).with_context(|| {
        format!(
            "cannot make the node's network namespace at {}",
            node_ns.display()
        )
    })?;
    let driver: Arc<dyn nuage_netdriver::NetDriver> = Arc::new(
        nuage_netdriver::linux::LinuxNetDriver::new(nuage_netdriver::linux::LinuxConfig {
            host_netns: Some(node_ns),
            trunk: None,
            nft: None,
            security_full_every: None,
            security_check_every: None,
            routers_dir: Some(cfg.data_dir.join("network").join("routers")),
            external: cfg.external_network.as_ref().map(|e| {
                nuage_netdriver::router::ExternalBridge {
                    bridge: e.bridge.clone(),
                    netns: e.netns.clone(),
                }
            }),
        }),
    );
    let plugger = nuage_netdriver::plug::NetPlugger::new(driver.clone());
    let agent = nuage_network::agent::NetworkAgent::new(
        db.clone(),
        driver,
        plugger.gate(),
        nuage_network::agent::AgentConfig {
            resync_every: Duration::from_secs(cfg.resync_secs),
            ..nuage_network::agent::AgentConfig::default()
        },
    );
    // Woken by this process's writes; an instance's init starts only once
    // its port is in the security plan in force (ADR 24).
    agent.wake_on(network.changes());
    let plugger = plugger.with_security_in_force(
        agent.security_in_force(),
        nuage_netdriver::plug::SECURITY_WAIT,
    );
    Ok((Arc::new(plugger), agent))
}

/// The connection bounds: the configured maximum, or one derived from the
/// file limit (raised to its hard limit at start, in `main`).
fn connection_limits(cfg: &Config) -> Result<nuage_api::conn::ConnLimits> {
    let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let max = match cfg.max_connections {
        Some(0) => anyhow::bail!("max_connections must be at least 1"),
        Some(n) => n,
        None => nuage_api::conn::max_connections_for(nofile),
    };
    anyhow::ensure!(
        cfg.idle_timeout_secs > 0,
        "idle_timeout must be at least 1 second"
    );
    tracing::info!(
        max_connections = max,
        open_files = nofile,
        "connection limits"
    );
    Ok(nuage_api::conn::ConnLimits {
        max,
        idle: Duration::from_secs(cfg.idle_timeout_secs),
    })
}

/// hyper's header-read timeout: slow or absent request headers, and an
/// HTTP/1 connection idle between requests, end the connection.
fn header_timeout(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    cfg: &Config,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(cfg.header_timeout_secs.max(1)));
}

fn scheduler_config(cfg: &Config) -> Result<nuage_scheduler::SchedulerConfig> {
    let mut s = nuage_scheduler::SchedulerConfig {
        // Container root disks are overlay upper directories that grow as
        // written, not reservations: over-commit them as Nova does CPUs.
        disk_allocation_ratio: 16.0,
        ..Default::default()
    };
    for (name, value, slot) in [
        (
            "cpu_allocation_ratio",
            cfg.cpu_allocation_ratio,
            &mut s.cpu_allocation_ratio,
        ),
        (
            "ram_allocation_ratio",
            cfg.ram_allocation_ratio,
            &mut s.ram_allocation_ratio,
        ),
        (
            "disk_allocation_ratio",
            cfg.disk_allocation_ratio,
            &mut s.disk_allocation_ratio,
        ),
    ] {
        if let Some(v) = value {
            anyhow::ensure!(v.is_finite() && v > 0.0, "{name} must be a positive number");
            *slot = v;
        }
    }
    Ok(s)
}

fn node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "local".into())
}

/// The database holds secrets (the token key, access key secrets): create
/// it 0600 before SQLite does, which then gives its -wal and -shm files the
/// same mode.
fn protect_sqlite_file(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create the database file {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// What a newcomer needs on stdout: where each API is and where the
/// credentials are. Never the secrets themselves: they are in admin.env
/// (0600) only, as stdout often lands in a log.
fn print_banner(cfg: &Config, env_path: &std::path::Path, first: Option<&Credentials>) {
    use std::io::Write;
    let mut out = String::new();
    out.push_str(&format!("nuage is serving at {}\n", cfg.public_url));
    out.push_str(&format!(
        "  Keystone v3: {url}/v3   native API: {url}/nuage/v1 (OpenAPI: {url}/nuage/v1/openapi.json)\n  \
         S3: {url}   Swift: {url}/v1/AUTH_<project id>   metrics: {url}/metrics\n",
        url = cfg.public_url
    ));
    if let Some(c) = first {
        out.push_str(&format!(
            "First start: created the admin user and project, and access key {}.\n",
            c.access_key_id
        ));
    }
    out.push_str(&format!(
        "The admin's password and secret key are in {path} (mode 0600).\n\
         Credentials for every client: source {path}\n  then: nuage project list | openstack token issue | aws --endpoint-url \"$NUAGE_URL\" s3 ls\n",
        path = env_path.display()
    ));
    let _ = std::io::stdout().write_all(out.as_bytes());
    let _ = std::io::stdout().flush();
}
