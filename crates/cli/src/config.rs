//! Where the client finds its endpoint and credentials.
//!
//! Sources, first match wins: command-line flags; the environment
//! (`NUAGE_URL`, `NUAGE_TOKEN`, `OS_USERNAME`, ...); the user's
//! `config.toml`; and the `admin.env` file that `nuage serve` writes
//! (`NUAGE_ENV_FILE`, or `$NUAGE_DATA_DIR/admin.env`, default `/var/lib/nuage/admin.env`, when it is readable).
//!
//! The URL and the CA file are each taken from the first source that has
//! them. Credentials hang together: the user (or token) comes from the first
//! source naming one, and its password, project and domain only from that
//! source or a stronger one, so `--user alice` never borrows the admin's
//! password or project from `admin.env`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

/// Where `nuage serve` writes its admin.env by default.
/// The admin.env that `nuage serve` writes in its data directory: under
/// `NUAGE_DATA_DIR` when set (as for the server), else /var/lib/nuage.
pub fn default_env_file() -> String {
    match std::env::var("NUAGE_DATA_DIR") {
        Ok(d) if !d.is_empty() => format!("{}/admin.env", d.trim_end_matches('/')),
        _ => "/var/lib/nuage/admin.env".to_string(),
    }
}

/// The connection flags, given before the command
/// (`nuage --user alice --password ... project list`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Flags {
    /// The nuage endpoint, e.g. https://cloud.example:8443 [env: NUAGE_URL]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// User name or id to log in as [env: OS_USERNAME]
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// The user's password [env: OS_PASSWORD]
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Project (name or id) to scope the token to; default: the user's
    /// default project [env: OS_PROJECT_NAME]
    #[arg(long, value_name = "PROJECT")]
    pub project: Option<String>,
    /// The user's domain (name or id) [env: OS_USER_DOMAIN_NAME]
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// An existing token, instead of a password [env: NUAGE_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// PEM file of the CA to trust for an https endpoint
    /// [env: NUAGE_CACERT, OS_CACERT]
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
}

/// The same settings as read from one source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layer {
    /// What the source is, for messages: "--flags", "the environment", a path.
    pub source: String,
    pub url: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub project: Option<String>,
    pub domain: Option<String>,
    pub token: Option<String>,
    pub cacert: Option<PathBuf>,
}

/// `config.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    url: Option<String>,
    user: Option<String>,
    password: Option<String>,
    project: Option<String>,
    domain: Option<String>,
    cacert: Option<PathBuf>,
    token: Option<String>,
}

/// How to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Token(String),
    Password {
        user: String,
        password: String,
        project: Option<String>,
        domain: Option<String>,
    },
}

/// The resolved settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub url: String,
    pub cacert: Option<PathBuf>,
    pub auth: Auth,
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

impl Flags {
    fn layer(&self) -> Layer {
        Layer {
            source: "the command line".into(),
            url: nonempty(self.url.clone()),
            user: nonempty(self.user.clone()),
            password: self.password.clone(),
            project: nonempty(self.project.clone()),
            domain: nonempty(self.domain.clone()),
            token: nonempty(self.token.clone()),
            cacert: self.cacert.clone(),
        }
    }
}

/// The settings named by environment-style variables, read through `get`
/// (the process environment, or the variables of an admin.env file).
pub fn vars_layer(source: String, get: &dyn Fn(&str) -> Option<String>) -> Layer {
    let var = |k: &str| nonempty(get(k));
    Layer {
        source,
        url: var("NUAGE_URL"),
        user: var("OS_USERNAME"),
        password: get("OS_PASSWORD").filter(|p| !p.is_empty()),
        project: var("OS_PROJECT_NAME").or_else(|| var("OS_PROJECT_ID")),
        domain: var("OS_USER_DOMAIN_NAME")
            .or_else(|| var("OS_USER_DOMAIN_ID"))
            .or_else(|| var("OS_PROJECT_DOMAIN_NAME")),
        token: var("NUAGE_TOKEN"),
        cacert: var("NUAGE_CACERT")
            .or_else(|| var("OS_CACERT"))
            .map(PathBuf::from),
    }
}

/// Parses the `export K=V` lines of an admin.env file (values may be
/// single-quoted, with `'\''` for a quote).
pub fn parse_env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = if let Some(inner) = v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
                inner.replace(r"'\''", "'")
            } else if let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                inner.to_string()
            } else {
                v.to_string()
            };
            (k.trim().to_string(), v)
        })
        .collect()
}

/// The path of the user's config file: `$XDG_CONFIG_HOME/nuage/config.toml`,
/// else `$HOME/.config/nuage/config.toml`.
pub fn config_path(get: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(x) = nonempty(get("XDG_CONFIG_HOME")).filter(|x| Path::new(x).is_absolute()) {
        return Some(Path::new(&x).join("nuage/config.toml"));
    }
    nonempty(get("HOME")).map(|h| Path::new(&h).join(".config/nuage/config.toml"))
}

fn file_layer(path: &Path) -> Result<Option<Layer>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let c: FileConfig = toml::from_str(&text)
        .map_err(|e| anyhow!("{} is not valid: {}", path.display(), e.message()))?;
    // A relative CA path is relative to the config file.
    let cacert = c.cacert.map(|p| match path.parent() {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p,
    });
    Ok(Some(Layer {
        source: path.display().to_string(),
        url: nonempty(c.url),
        user: nonempty(c.user),
        password: c.password,
        project: nonempty(c.project),
        domain: nonempty(c.domain),
        token: nonempty(c.token),
        cacert,
    }))
}

/// The admin.env layer: `NUAGE_ENV_FILE` (which must be readable), else the
/// default path when it is readable. The second value is a hint for the
/// "nothing configured" message when the default file exists but cannot be
/// read.
fn env_file_layer(get: &dyn Fn(&str) -> Option<String>) -> Result<(Option<Layer>, Option<String>)> {
    if let Some(p) = nonempty(get("NUAGE_ENV_FILE")) {
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("cannot read NUAGE_ENV_FILE={p}"))?;
        let vars = parse_env_file(&text);
        return Ok((Some(vars_layer(p, &|k| vars.get(k).cloned())), None));
    }
    let default_env_file = default_env_file();
    match std::fs::read_to_string(&default_env_file) {
        Ok(text) => {
            let vars = parse_env_file(&text);
            Ok((Some(vars_layer(default_env_file.clone(), &|k| vars.get(k).cloned())), None))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((None, None)),
        Err(e) => Ok((
            None,
            Some(format!(
                "{default_env_file} exists but cannot be read ({e}): use sudo, or copy it somewhere private"
            )),
        )),
    }
}

/// Collects the layers from every source, strongest first.
pub fn layers(
    flags: &Flags,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<(Vec<Layer>, Option<String>)> {
    let mut out = vec![flags.layer(), vars_layer("the environment".into(), get)];
    if let Some(p) = config_path(get) {
        if let Some(l) = file_layer(&p)? {
            out.push(l);
        }
    }
    let (env_file, hint) = env_file_layer(get)?;
    out.extend(env_file);
    Ok((out, hint))
}

/// Combines the layers (strongest first) into settings.
pub fn resolve(
    layers: &[Layer],
    hint: Option<&str>,
    config_path: Option<&Path>,
) -> Result<Settings> {
    let config = config_path
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "~/.config/nuage/config.toml".into());
    let Some(url) = layers.iter().find_map(|l| l.url.clone()) else {
        let mut msg = format!(
            "no nuage endpoint is configured: run `source {}` (the file `nuage serve` writes in its data directory), \
             or pass --url with --user and --password, or set NUAGE_URL, OS_USERNAME and OS_PASSWORD, or write {config}",
            default_env_file()
        );
        if let Some(h) = hint {
            msg.push_str(&format!(" ({h})"));
        }
        bail!(msg);
    };
    let cacert = layers.iter().find_map(|l| l.cacert.clone());

    let Some(idx) = layers
        .iter()
        .position(|l| l.user.is_some() || l.token.is_some())
    else {
        bail!(
            "no credentials for {url}: pass --user and --password (or --token), set OS_USERNAME and OS_PASSWORD \
             (e.g. `source {}`), or add user and password to {config}",
            default_env_file()
        );
    };
    let strong = &layers[..=idx];
    let first = |f: fn(&Layer) -> Option<String>| strong.iter().find_map(f);
    let auth = if let Some(t) = &layers[idx].token {
        Auth::Token(t.clone())
    } else {
        let user = layers[idx].user.clone().unwrap_or_default();
        let Some(password) = first(|l| l.password.clone()) else {
            bail!(
                "no password for user {user} (from {}): pass --password or set OS_PASSWORD",
                layers[idx].source
            );
        };
        Auth::Password {
            user,
            password,
            project: first(|l| l.project.clone()),
            domain: first(|l| l.domain.clone()),
        }
    };
    Ok(Settings { url, cacert, auth })
}

/// Reads every source and resolves the settings.
pub fn load(flags: &Flags) -> Result<Settings> {
    let get = |k: &str| std::env::var(k).ok();
    let (layers, hint) = layers(flags, &get)?;
    resolve(&layers, hint.as_deref(), config_path(&get).as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(source: &str, f: impl FnOnce(&mut Layer)) -> Layer {
        let mut l = Layer {
            source: source.into(),
            ..Layer::default()
        };
        f(&mut l);
        l
    }

    #[test]
    fn env_file_values_are_unquoted() {
        let vars = parse_env_file(
            "# comment\nexport NUAGE_URL=http://127.0.0.1:8080\nexport OS_PASSWORD='it'\\''s $x'\nnot an export\n",
        );
        assert_eq!(vars["NUAGE_URL"], "http://127.0.0.1:8080");
        assert_eq!(vars["OS_PASSWORD"], "it's $x");
        assert_eq!(vars.len(), 2);
    }

    #[test]
    fn vars_map_to_settings() {
        let vars = parse_env_file(
            "export NUAGE_URL=https://h:1\nexport OS_USERNAME=admin\nexport OS_PASSWORD=pw\n\
             export OS_PROJECT_NAME=admin\nexport OS_USER_DOMAIN_NAME=Default\nexport OS_CACERT=/ca.pem\n",
        );
        let l = vars_layer("f".into(), &|k| vars.get(k).cloned());
        assert_eq!(l.url.as_deref(), Some("https://h:1"));
        assert_eq!(l.domain.as_deref(), Some("Default"));
        assert_eq!(l.cacert, Some(PathBuf::from("/ca.pem")));
        let s = resolve(&[l], None, None).expect("settings");
        assert_eq!(
            s.auth,
            Auth::Password {
                user: "admin".into(),
                password: "pw".into(),
                project: Some("admin".into()),
                domain: Some("Default".into())
            }
        );
    }

    #[test]
    fn a_stronger_user_does_not_borrow_a_weaker_password_or_project() {
        let flags = layer("flags", |l| {
            l.user = Some("alice".into());
            l.password = Some("a-pw".into());
        });
        let env = layer("env", |l| {
            l.url = Some("http://h".into());
            l.user = Some("admin".into());
            l.password = Some("admin-pw".into());
            l.project = Some("admin".into());
        });
        let s = resolve(&[flags, env.clone()], None, None).expect("settings");
        assert_eq!(
            s.auth,
            Auth::Password {
                user: "alice".into(),
                password: "a-pw".into(),
                project: None,
                domain: None
            }
        );
        // A stronger project alone still applies to the weaker user.
        let flags = layer("flags", |l| l.project = Some("other".into()));
        let s = resolve(&[flags, env.clone()], None, None).expect("settings");
        assert!(
            matches!(s.auth, Auth::Password { ref user, ref project, .. }
            if user == "admin" && project.as_deref() == Some("other"))
        );
        // A user without a password anywhere stronger is an error.
        let flags = layer("flags", |l| l.user = Some("bob".into()));
        let e = resolve(&[flags, env], None, None).expect_err("no password");
        assert!(e.to_string().contains("no password for user bob"), "{e}");
    }

    #[test]
    fn a_token_wins_at_its_level() {
        let env = layer("env", |l| {
            l.url = Some("http://h".into());
            l.user = Some("admin".into());
            l.password = Some("pw".into());
            l.token = Some("tok".into());
        });
        let s = resolve(std::slice::from_ref(&env), None, None).expect("settings");
        assert_eq!(s.auth, Auth::Token("tok".into()));
        let flags = layer("flags", |l| {
            l.user = Some("u".into());
            l.password = Some("p".into());
        });
        let s = resolve(&[flags, env], None, None).expect("settings");
        assert!(matches!(s.auth, Auth::Password { .. }));
    }

    #[test]
    fn nothing_configured_says_what_to_do() {
        let e = resolve(&[Layer::default()], None, None).expect_err("nothing");
        assert!(
            e.to_string().contains("source /var/lib/nuage/admin.env"),
            "{e}"
        );
        let only_url = layer("env", |l| l.url = Some("http://h".into()));
        let e = resolve(&[only_url], None, None).expect_err("no credentials");
        assert!(e.to_string().contains("no credentials"), "{e}");
    }

    #[test]
    fn config_path_follows_xdg() {
        let xdg = |k: &str| match k {
            "XDG_CONFIG_HOME" => Some("/x".to_string()),
            "HOME" => Some("/home/u".to_string()),
            _ => None,
        };
        assert_eq!(
            config_path(&xdg),
            Some(PathBuf::from("/x/nuage/config.toml"))
        );
        let home = |k: &str| (k == "HOME").then(|| "/home/u".to_string());
        assert_eq!(
            config_path(&home),
            Some(PathBuf::from("/home/u/.config/nuage/config.toml"))
        );
    }

    #[test]
    fn config_file_is_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("nuage-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("config.toml");
        std::fs::write(
            &p,
            "url = \"https://h\"\nuser = \"u\"\npassword = \"p\"\ncacert = \"ca.pem\"\n",
        )
        .expect("write");
        let l = file_layer(&p).expect("read").expect("present");
        assert_eq!(l.cacert, Some(dir.join("ca.pem")));
        assert_eq!(l.user.as_deref(), Some("u"));
        std::fs::write(&p, "username = \"u\"\n").expect("write");
        let e = file_layer(&p).expect_err("unknown key");
        assert!(e.to_string().contains("username"), "{e}");
        assert_eq!(file_layer(&dir.join("absent.toml")).expect("absent"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
