//! `nuage serve`: the all-in-one cloud.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nuage_api::{Core, Metrics};
use nuage_identity::{Bootstrap, Identity, IdentityConfig};
use nuage_store::Db;

use crate::adminenv::{self, Credentials};
use crate::config::{Config, LogFormat, ServeArgs};
use crate::tls;

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NUAGE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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

    let core = Arc::new(Core {
        identity,
        region: cfg.region.clone(),
        public_url: cfg.public_url.clone(),
        metrics: Arc::new(Metrics::new()),
    });
    let app = nuage_api::router(core);

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

    let service = app.into_make_service();
    match &tls_files {
        Some(t) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&t.cert, &t.key)
                .await
                .context("cannot load the TLS certificate")?;
            axum_server::from_tcp_rustls(listener, rustls)
                .handle(handle)
                .serve(service)
                .await?
        }
        None => {
            axum_server::from_tcp(listener)
                .handle(handle)
                .serve(service)
                .await?
        }
    }
    db.close().await;
    tracing::info!("stopped");
    Ok(())
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

fn print_banner(cfg: &Config, env_path: &std::path::Path, first: Option<&Credentials>) {
    use std::io::Write;
    let mut out = String::new();
    out.push_str(&format!("nuage is serving at {}\n", cfg.public_url));
    out.push_str(&format!(
        "  Keystone v3: {url}/v3   native API: {url}/nuage/v1 (OpenAPI: {url}/nuage/v1/openapi.json)\n  \
         every other API (EC2, S3, Swift, ...) will be served at this same URL\n",
        url = cfg.public_url
    ));
    if let Some(c) = first {
        out.push_str("First start: created the admin user, project and access key.\n");
        out.push_str(&format!("  user: admin   password: {}\n", c.password));
        out.push_str(&format!(
            "  access key id: {} (secret in admin.env)\n",
            c.access_key_id
        ));
    }
    out.push_str(&format!(
        "Credentials for every client: source {}\n  then: nuage project list | openstack token issue\n",
        env_path.display()
    ));
    let _ = std::io::stdout().write_all(out.as_bytes());
    let _ = std::io::stdout().flush();
}
