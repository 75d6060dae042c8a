//! `nuage image ...` (openstack style) and `nuage describe-images` (aws
//! style). Importing is two calls: `POST /images` makes a queued image,
//! `PUT /images/{id}/file` streams the archive into it.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use futures_util::TryStreamExt;
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};

use crate::client::items;
use crate::output::{self, Col};
use crate::shorthand::{parse_image_filters, Filter, Filters};
use crate::Ctx;
use nuage_model::filter::wildcard_match;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Visibility {
    /// The owning project only
    Private,
    /// Every project
    Public,
    /// The owner and the projects it is shared with
    Shared,
}

impl Visibility {
    fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Public => "public",
            Visibility::Shared => "shared",
        }
    }
}

/// What `nuage image build` can build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Recipe {
    /// A few-MiB busybox root filesystem: quick to build, for tests
    Busybox,
    /// A Debian root filesystem made with debootstrap (needs root)
    Debian,
}

impl Recipe {
    fn as_str(self) -> &'static str {
        match self {
            Recipe::Busybox => "busybox",
            Recipe::Debian => "debian",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Upload a root filesystem tar[.gz], OCI layout tar or `docker save` tar as an image
    Import {
        /// The archive
        file: PathBuf,
        #[command(flatten)]
        new: NewImage,
    },
    /// Build an image on this machine, then import it
    Build {
        /// What to build: busybox (from busybox-static, offline) or debian
        /// (debootstrap from the configured mirror)
        #[arg(value_enum)]
        recipe: Recipe,
        /// Image name; default: the recipe's
        #[arg(long)]
        name: Option<String>,
        /// Visible to every project
        #[arg(long)]
        public: bool,
    },
    /// List images
    List {
        /// Only images with this name
        #[arg(long)]
        name: Option<String>,
        /// Only images with this visibility
        #[arg(long, value_enum)]
        visibility: Option<Visibility>,
        /// Only images owned by this project (id), or `self`
        #[arg(long)]
        owner: Option<String>,
    },
    /// Show an image
    Show {
        /// Image id or name
        image: String,
    },
    /// Change an image's name or visibility
    #[command(group(ArgGroup::new("change").required(true).multiple(true)))]
    Set {
        /// Image id or name
        image: String,
        /// New name
        #[arg(long, group = "change")]
        name: Option<String>,
        /// New visibility
        #[arg(long, group = "change", value_enum)]
        visibility: Option<Visibility>,
    },
    /// Delete images (refused while instances use them)
    Delete {
        /// Image ids or names
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Let another project launch a (shared) image
    Share {
        /// Image id or name
        image: String,
        /// Project name or id
        #[arg(long)]
        project: String,
    },
    /// Stop sharing an image with a project
    Unshare {
        /// Image id or name
        image: String,
        /// Project name or id
        #[arg(long)]
        project: String,
    },
}

/// The settings of an image being imported.
#[derive(Debug, Args)]
pub struct NewImage {
    /// Image name
    #[arg(long)]
    name: String,
    /// Same as --visibility public
    #[arg(long, conflicts_with = "visibility")]
    public: bool,
    /// Default: private
    #[arg(long, value_enum)]
    visibility: Option<Visibility>,
    /// CPU architecture of the image's binaries; default: the server's (x86_64)
    #[arg(long)]
    architecture: Option<String>,
}

impl NewImage {
    /// The body of `POST /images`.
    fn body(&self) -> Value {
        let mut b = json!({ "name": self.name });
        let vis = if self.public {
            Some(Visibility::Public)
        } else {
            self.visibility
        };
        if let Some(v) = vis {
            b["visibility"] = json!(v.as_str());
        }
        if let Some(a) = &self.architecture {
            b["architecture"] = json!(a);
        }
        b
    }
}

#[derive(Debug, Args)]
pub struct DescribeImages {
    /// Only these images (ids or names; an unknown one is an error)
    #[arg(long, num_args = 1.., value_name = "IMAGE")]
    image_ids: Vec<String>,
    /// Only images owned by these: `self` or project ids
    #[arg(long, num_args = 1.., value_name = "OWNER")]
    owners: Vec<String>,
    /// Name=FILTER,Values=V1,V2 ... with FILTER one of name, image-id,
    /// state, architecture, visibility, is-public, owner-id; values may
    /// hold * and ? wildcards
    #[arg(long, num_args = 1.., value_name = "FILTER", value_parser = parse_image_filters)]
    filters: Vec<Filters>,
}

/// The image table's columns.
pub fn columns() -> Vec<Col<'static>> {
    vec![
        Col::field("ID", "id"),
        Col::field("Name", "name"),
        Col::field("Status", "status"),
        Col::field("Visibility", "visibility"),
        Col::field("Arch", "architecture"),
        Col::field("Format", "format"),
        Col::with("Size", |r| {
            r["size"]
                .as_u64()
                .map(|n| HumanBytes(n).to_string())
                .unwrap_or_default()
        }),
        Col::with("Created", |r| output::time_cell(&r["created_at"])),
    ]
}

/// Whether an image passes every filter (each filter: any of its values).
fn matches(image: &Value, filters: &[Filter]) -> bool {
    filters.iter().all(|f| {
        let field = match f.name.as_str() {
            "name" => output::cell(&image["name"]),
            "image-id" => output::cell(&image["id"]),
            "state" => output::cell(&image["status"]),
            "architecture" => output::cell(&image["architecture"]),
            "visibility" => output::cell(&image["visibility"]),
            "is-public" => (image["visibility"] == "public").to_string(),
            "owner-id" => output::cell(&image["owner"]),
            _ => return false,
        };
        f.values.iter().any(|v| wildcard_match(v, &field))
    })
}

/// The value to pass as `?name=`: a single name without wildcards, so the
/// server narrows the list; every filter is applied here anyway.
fn server_name(filters: &[Filter]) -> Option<String> {
    match filters.iter().find(|f| f.name == "name") {
        Some(Filter { values, .. }) if values.len() == 1 && !values[0].contains(['*', '?']) => {
            Some(values[0].clone())
        }
        _ => None,
    }
}

pub async fn describe(d: DescribeImages, ctx: &mut Ctx) -> Result<()> {
    let filters: Vec<Filter> = d.filters.into_iter().flat_map(|f| f.0).collect();
    let mut rows: Vec<Value> = Vec::new();
    if !d.image_ids.is_empty() {
        for id in &d.image_ids {
            rows.push(ctx.client.get(&["images", id], &[]).await?);
        }
        if !d.owners.is_empty() {
            let mut owners = d.owners.clone();
            if owners.iter().any(|o| o == "self") {
                owners.push(ctx.client.my_project_id().await?);
            }
            rows.retain(|r| owners.iter().any(|o| r["owner"].as_str() == Some(o)));
        }
    } else {
        let owners: Vec<Option<&String>> = if d.owners.is_empty() {
            vec![None]
        } else {
            d.owners.iter().map(Some).collect()
        };
        for owner in owners {
            let mut q = Vec::new();
            if let Some(n) = server_name(&filters) {
                q.push(("name", n));
            }
            if let Some(o) = owner {
                q.push(("owner", o.clone()));
            }
            let v = ctx.client.get(&["images"], &q).await?;
            for r in items(&v) {
                if !rows.iter().any(|x| x["id"] == r["id"]) {
                    rows.push(r.clone());
                }
            }
        }
    }
    rows.retain(|r| matches(r, &filters));
    let answer = json!({ "items": rows });
    output::list(ctx.format, &answer, items(&answer), &columns());
    Ok(())
}

/// Streams `file` into the queued image `id`, with a bar of bytes sent on
/// a terminal.
async fn upload(ctx: &Ctx, id: &str, file: tokio::fs::File, len: u64) -> Result<Value> {
    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::new(len);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        ) {
            b.set_style(style.progress_chars("=> "));
        }
        b.set_message("uploading");
        b
    } else {
        ProgressBar::hidden()
    };
    let counter = bar.clone();
    let stream =
        tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).inspect_ok(move |chunk| {
            counter.inc(chunk.len() as u64);
            if counter.position() >= len {
                counter.set_message("the server is checking the archive");
            }
        });
    let r = ctx
        .client
        .put_stream(
            &["images", id, "file"],
            reqwest::Body::wrap_stream(stream),
            len,
        )
        .await;
    bar.finish_and_clear();
    r
}

/// Creates an image from an archive on disk: `POST /images`, then the
/// upload. A failed upload deletes the still-empty image, so that a retry
/// with the same name starts clean.
async fn import(ctx: &Ctx, file: &Path, new: &NewImage) -> Result<Value> {
    let f = tokio::fs::File::open(file)
        .await
        .with_context(|| format!("cannot open {}", file.display()))?;
    let meta = f
        .metadata()
        .await
        .with_context(|| format!("cannot read {}", file.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", file.display());
    }
    let image = ctx.client.post(&["images"], &new.body()).await?;
    let id = image["id"]
        .as_str()
        .ok_or_else(|| anyhow!("the server's new image has no id"))?
        .to_string();
    match upload(ctx, &id, f, meta.len()).await {
        Ok(v) => Ok(v),
        Err(e) => {
            let what = match ctx.client.delete(&["images", &id]).await {
                Ok(()) => format!("image {id} was deleted again"),
                Err(_) => format!("image {id} stays queued: `nuage image delete {id}`"),
            };
            Err(e.context(format!("cannot upload {} ({what})", file.display())))
        }
    }
}

/// Whether the effective user is root, from /proc (no libc call needed).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Whether `prog` is on the PATH or in the sbin directories, which a
/// non-root PATH often lacks.
fn have_program(prog: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .any(|d| d.join(prog).is_file())
}

/// Checks what a recipe needs before minutes are spent on it.
fn check_can_build(recipe: Recipe) -> Result<()> {
    if recipe == Recipe::Debian {
        if !is_root() {
            bail!(
                "building the debian image needs root (debootstrap creates device files and chroots): \
                 run it with sudo, or import a root filesystem tarball with `nuage image import`"
            );
        }
        if !have_program("debootstrap") {
            bail!("building the debian image needs debootstrap: apt-get install debootstrap");
        }
    }
    Ok(())
}

async fn build(ctx: &Ctx, recipe: Recipe, name: Option<String>, public: bool) -> Result<Value> {
    check_can_build(recipe)?;
    let dir = tempfile::tempdir().context("cannot make a temporary directory")?;
    let out = dir.path().join(format!("{}.tar.gz", recipe.as_str()));
    eprintln!(
        "Building the {} image{}...",
        recipe.as_str(),
        if recipe == Recipe::Debian {
            " (debootstrap takes a few minutes)"
        } else {
            ""
        }
    );
    let target = out.clone();
    tokio::task::spawn_blocking(move || build_into(recipe, &target))
        .await
        .map_err(|e| anyhow!("the image build stopped: {e}"))??;
    let new = NewImage {
        name: name.unwrap_or_else(|| recipe.as_str().to_string()),
        public,
        visibility: None,
        architecture: None,
    };
    import(ctx, &out, &new).await
}

/// Runs a recipe's builder, writing the archive to `out`.
fn build_into(recipe: Recipe, out: &Path) -> Result<()> {
    let r = match recipe {
        Recipe::Busybox => nuage_image::builders::busybox(out),
        Recipe::Debian => {
            nuage_image::builders::debian(out, &nuage_image::builders::DebianOptions::default())
        }
    };
    r.map_err(|e| anyhow!("cannot build the {} image: {e}", recipe.as_str()))
}

pub async fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<()> {
    match cmd {
        Cmd::Import { file, new } => {
            let v = import(ctx, &file, &new).await?;
            output::show(ctx.format, &v);
        }
        Cmd::Build {
            recipe,
            name,
            public,
        } => {
            let v = build(ctx, recipe, name, public).await?;
            output::show(ctx.format, &v);
        }
        Cmd::List {
            name,
            visibility,
            owner,
        } => {
            let mut q = Vec::new();
            if let Some(n) = name {
                q.push(("name", n));
            }
            if let Some(v) = visibility {
                q.push(("visibility", v.as_str().to_string()));
            }
            if let Some(o) = owner {
                q.push(("owner", o));
            }
            let v = ctx.client.get(&["images"], &q).await?;
            output::list(ctx.format, &v, items(&v), &columns());
        }
        Cmd::Show { image } => {
            let v = ctx.client.get(&["images", &image], &[]).await?;
            output::show(ctx.format, &v);
        }
        Cmd::Set {
            image,
            name,
            visibility,
        } => {
            let mut body = Map::new();
            if let Some(n) = name {
                body.insert("name".into(), json!(n));
            }
            if let Some(v) = visibility {
                body.insert("visibility".into(), json!(v.as_str()));
            }
            let v = ctx
                .client
                .patch(&["images", &image], &Value::Object(body))
                .await?;
            output::show(ctx.format, &v);
        }
        Cmd::Delete { images } => crate::delete_all(ctx, "images", "image", &images).await?,
        Cmd::Share { image, project } => {
            let v = ctx
                .client
                .post(
                    &["images", &image, "members"],
                    &json!({ "project": project }),
                )
                .await?;
            if !v.is_null() {
                output::show(ctx.format, &v);
            }
        }
        Cmd::Unshare { image, project } => {
            ctx.client
                .delete(&["images", &image, "members", &project])
                .await?
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shorthand::parse_image_filters;

    fn filters(words: &[&str]) -> Vec<Filter> {
        words
            .iter()
            .flat_map(|w| parse_image_filters(w).expect("parses").0)
            .collect()
    }

    #[test]
    fn image_filters_match_client_side() {
        let img = json!({"id": "ami-00ff", "name": "debian-12", "status": "active",
                         "architecture": "x86_64", "visibility": "public", "owner": "p1"});
        assert!(matches(&img, &[]));
        assert!(matches(&img, &filters(&["Name=name,Values=debian-*"])));
        assert!(matches(
            &img,
            &filters(&[
                "Name=name,Values=busybox,debian-12",
                "Name=is-public,Values=true"
            ])
        ));
        assert!(!matches(
            &img,
            &filters(&["Name=name,Values=debian-*", "Name=state,Values=queued"])
        ));
        assert!(matches(&img, &filters(&["Name=owner-id,Values=p1"])));
        assert!(!matches(&img, &filters(&["Name=is-public,Values=false"])));
    }

    #[test]
    fn only_plain_names_go_to_the_server() {
        assert_eq!(
            server_name(&filters(&["Name=name,Values=debian"])).as_deref(),
            Some("debian")
        );
        assert_eq!(server_name(&filters(&["Name=name,Values=deb*"])), None);
        assert_eq!(server_name(&filters(&["Name=name,Values=a,b"])), None);
        assert_eq!(server_name(&[]), None);
    }

    #[test]
    fn new_image_bodies() {
        let n = NewImage {
            name: "web".into(),
            public: true,
            visibility: None,
            architecture: Some("x86_64".into()),
        };
        assert_eq!(
            n.body(),
            json!({"name": "web", "visibility": "public", "architecture": "x86_64"})
        );
        let n = NewImage {
            public: false,
            visibility: Some(Visibility::Shared),
            architecture: None,
            ..n
        };
        assert_eq!(n.body(), json!({"name": "web", "visibility": "shared"}));
    }

    #[test]
    fn image_table_sizes_are_readable() {
        let rows = [
            json!({"id": "ami-1", "name": "busybox", "status": "active", "size": 2_097_152, "created_at": "2026-11-26T17:19:56.5Z"}),
        ];
        let t = output::table(&rows, &columns());
        assert!(t.contains("2.00 MiB"), "{t}");
        assert!(t.contains("2026-11-26T17:19:56Z"), "{t}");
    }

    #[test]
    fn busybox_needs_nothing_special() {
        assert!(check_can_build(Recipe::Busybox).is_ok());
        if !is_root() {
            let e = check_can_build(Recipe::Debian).expect_err("not root");
            assert!(e.to_string().contains("needs root"), "{e}");
        }
    }
}
