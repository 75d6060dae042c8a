//! `nuage object ...`: buckets and objects, with verbs after `aws s3`
//! (`mb`, `rb`, `ls`, `cp`, `rm`) and plain `put`, `get` and `stat`.
//!
//! Objects are named `BUCKET/KEY`; `cp` needs the scheme on its remote side
//! (`nuage://BUCKET/KEY`, or `s3://` as aws writes it) to tell it from a
//! local path, as `aws s3 cp` does. Bodies stream both ways, never held in
//! memory, with a progress bar on a terminal; each transfer is checked
//! against the object's MD5 ETag.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use futures_util::{StreamExt, TryStreamExt};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use md5::{Digest, Md5};
use reqwest::header::{HeaderMap, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncWriteExt};

use crate::client::{items, ApiError};
use crate::output::{self, Col, Format};
use crate::Ctx;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Make a bucket (bucket names are shared by every project)
    Mb {
        /// Bucket name, or nuage://BUCKET
        bucket: String,
        /// Let anyone, even anonymous S3 or Swift clients, list and read it
        #[arg(long)]
        public: bool,
    },
    /// Remove an empty bucket
    Rb {
        /// Bucket name, or nuage://BUCKET
        bucket: String,
    },
    /// List the buckets, or the objects under BUCKET[/PREFIX] (one level
    /// of `/` unless --recursive)
    Ls {
        /// BUCKET[/PREFIX], with or without nuage://
        path: Option<String>,
        /// Every key under the prefix, not rolled up at `/`
        #[arg(long, short)]
        recursive: bool,
    },
    /// Upload a file (or standard input, `-`) as BUCKET/KEY; KEY defaults
    /// to the file's name
    Put {
        /// The file to upload, or - for standard input
        file: PathBuf,
        /// BUCKET/KEY, BUCKET/PREFIX/ or BUCKET
        object: String,
        #[command(flatten)]
        upload: Upload,
    },
    /// Download BUCKET/KEY to a file (default: the key's last part, here)
    /// or to standard output (`-`)
    Get {
        /// BUCKET/KEY
        object: String,
        /// File, directory or `-`
        file: Option<PathBuf>,
    },
    /// Copy between local files and objects (nuage://BUCKET/KEY), or
    /// between objects on the server without moving the bytes
    Cp {
        /// A local path (`-`: standard input) or nuage://BUCKET/KEY
        src: String,
        /// A local path (`-`: standard output) or nuage://BUCKET/KEY; a
        /// directory or a trailing `/` takes the source's name
        dst: String,
        #[command(flatten)]
        upload: Upload,
    },
    /// Delete objects
    Rm {
        /// BUCKET/KEY ...
        #[arg(required = true)]
        objects: Vec<String>,
    },
    /// Show an object's size, ETag, type and metadata
    Stat {
        /// BUCKET/KEY
        object: String,
    },
}

/// What accompanies the bytes of an upload.
#[derive(Debug, Args)]
pub struct Upload {
    /// Content type; default: guessed from the key's extension
    #[arg(long)]
    content_type: Option<String>,
    /// User metadata, repeatable
    #[arg(long = "metadata", value_name = "NAME=VALUE", value_parser = parse_meta)]
    metadata: Vec<(String, String)>,
}

fn parse_meta(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_ascii_lowercase(), v.to_string())),
        _ => Err(format!("{s:?} is not NAME=VALUE")),
    }
}

/// An object's address.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Remote {
    bucket: String,
    /// Empty, or ending with `/`, when only a bucket or prefix was named.
    key: String,
}

impl Remote {
    /// `BUCKET[/KEY]`, with or without a `nuage://` or `s3://` scheme.
    fn parse(s: &str) -> Result<Remote> {
        let rest = strip_scheme(s).unwrap_or(s);
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            bail!("{s:?} names no bucket: write BUCKET/KEY");
        }
        Ok(Remote {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// The key, which must name one object.
    fn object_key(&self) -> Result<&str> {
        if self.key.is_empty() {
            bail!("{self} names a bucket, not an object: write BUCKET/KEY");
        }
        // URL paths drop `.` and `..` segments, so such keys cannot be
        // addressed.
        if self.key == "." || self.key == ".." {
            bail!("the key {:?} cannot be sent in a URL", self.key);
        }
        Ok(&self.key)
    }

    /// This address with `name` appended when it names a bucket or prefix.
    fn or_named(mut self, name: Option<&str>) -> Result<Remote> {
        if self.key.is_empty() || self.key.ends_with('/') {
            let Some(n) = name else {
                bail!("{self} needs a key: write BUCKET/KEY");
            };
            self.key.push_str(n);
        }
        Ok(self)
    }

    fn path<'a>(&'a self, key: &'a str) -> [&'a str; 4] {
        ["buckets", &self.bucket, "objects", key]
    }
}

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "nuage://{}/{}", self.bucket, self.key)
    }
}

fn strip_scheme(s: &str) -> Option<&str> {
    s.strip_prefix("nuage://")
        .or_else(|| s.strip_prefix("s3://"))
}

/// A bucket name, with or without `nuage://` and a trailing `/`.
fn bucket_name(s: &str) -> Result<String> {
    let b = strip_scheme(s).unwrap_or(s).trim_end_matches('/');
    if b.is_empty() || b.contains('/') {
        bail!("{s:?} is not a bucket name");
    }
    Ok(b.to_string())
}

/// Common types by extension, so that objects in a public bucket open in a
/// browser; everything else is left to the server's default.
fn guess_type(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "txt" | "log" | "md" => "text/plain",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "csv" => "text/csv",
        "js" => "text/javascript",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "zip" => "application/zip",
        "mp4" => "video/mp4",
        _ => return None,
    })
}

/// A bar of bytes on a terminal; hidden for pipes and `-o json`, whose
/// readers are programs.
fn progress(ctx: &Ctx, len: Option<u64>, msg: String) -> ProgressBar {
    if ctx.format == Format::Json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(n) => (
            ProgressBar::new(n),
            "{msg} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        ),
        None => (
            ProgressBar::no_length(),
            "{spinner} {msg} {bytes} {bytes_per_sec}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(msg);
    bar
}

/// Whether an ETag is the MD5 of the whole content (a multipart upload's
/// is `<md5 of the parts' md5s>-<parts>`, which a reader cannot recompute).
fn plain_md5(etag: &str) -> Option<String> {
    let e = etag.trim_matches('"');
    (e.len() == 32 && e.bytes().all(|b| b.is_ascii_hexdigit())).then(|| e.to_ascii_lowercase())
}

fn check_md5(what: &str, etag: &str, md5: &Arc<Mutex<Md5>>) -> Result<()> {
    let Some(want) = plain_md5(etag) else {
        return Ok(());
    };
    let got = md5
        .lock()
        .map_err(|_| anyhow!("the MD5 of {what} was lost"))?
        .clone()
        .finalize();
    let got: String = got.iter().map(|b| format!("{b:02x}")).collect();
    if got != want {
        bail!("{what}: the bytes transferred have MD5 {got}, the object's ETag is {want}");
    }
    Ok(())
}

// ---------------------------------------------------------------- uploads

/// Streams `file` (`-`: standard input) into `dst`.
async fn upload(ctx: &Ctx, file: &Path, dst: &Remote, opts: &Upload) -> Result<Value> {
    let key = dst.object_key()?;
    let stdin = file == Path::new("-");
    let (reader, len): (Box<dyn AsyncRead + Send + Unpin>, Option<u64>) = if stdin {
        (Box::new(tokio::io::stdin()), None)
    } else {
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
        (Box::new(f), Some(meta.len()))
    };
    let bar = progress(ctx, len, format!("uploading to {dst}"));
    let md5 = Arc::new(Mutex::new(Md5::new()));
    let (counter, hasher) = (bar.clone(), md5.clone());
    let stream =
        tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024).inspect_ok(move |chunk| {
            counter.inc(chunk.len() as u64);
            if let Ok(mut h) = hasher.lock() {
                h.update(chunk);
            }
        });
    let content_type = opts
        .content_type
        .as_deref()
        .or_else(|| guess_type(Path::new(key)))
        .unwrap_or("application/octet-stream");
    let mut rb = ctx
        .client
        .object_request(Method::PUT, &dst.path(key))?
        .header("accept", "application/json")
        .header(CONTENT_TYPE, content_type);
    if let Some(n) = len {
        rb = rb.header(CONTENT_LENGTH, n);
    }
    for (k, v) in &opts.metadata {
        rb = rb.header(format!("x-nuage-meta-{k}"), v);
    }
    let r = ctx
        .client
        .answer(rb.body(reqwest::Body::wrap_stream(stream)))
        .await;
    bar.finish_and_clear();
    let v = r
        .with_context(|| format!("cannot upload {} to {dst}", file.display()))?
        .unwrap_or(Value::Null);
    check_md5(
        &dst.to_string(),
        v["etag"].as_str().unwrap_or_default(),
        &md5,
    )?;
    Ok(v)
}

// -------------------------------------------------------------- downloads

/// Where a download goes.
enum Sink {
    Stdout,
    /// Written under a temporary name beside the file, renamed when
    /// complete: an interrupted download never leaves a partial file.
    File(PathBuf),
}

impl Sink {
    /// `-`, a file, or a directory (which takes the key's last part).
    fn of(dest: Option<&Path>, key: &str) -> Result<Sink> {
        let name = key.rsplit('/').find(|s| !s.is_empty()).unwrap_or(key);
        match dest {
            Some(p) if p == Path::new("-") => Ok(Sink::Stdout),
            Some(p) if p.is_dir() || p.as_os_str().to_string_lossy().ends_with('/') => {
                Ok(Sink::File(p.join(name)))
            }
            Some(p) => Ok(Sink::File(p.to_path_buf())),
            None => Ok(Sink::File(PathBuf::from(name))),
        }
    }
}

async fn download(ctx: &Ctx, src: &Remote, sink: Sink) -> Result<Value> {
    let key = src.object_key()?;
    let rb = ctx.client.object_request(Method::GET, &src.path(key))?;
    let resp = ctx
        .client
        .send_streaming(rb)
        .await
        .with_context(|| format!("cannot download {src}"))?;
    let v = meta_of(src, resp.headers());
    let bar = progress(ctx, resp.content_length(), format!("downloading {src}"));
    let md5 = Arc::new(Mutex::new(Md5::new()));
    let r = match &sink {
        Sink::Stdout => copy_body(ctx, resp, tokio::io::stdout(), &bar, &md5).await,
        Sink::File(path) => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let file_name = path
                .file_name()
                .ok_or_else(|| anyhow!("{} is not a file name", path.display()))?;
            let tmp = dir.join(format!(
                ".{}.{}.part",
                file_name.to_string_lossy(),
                std::process::id()
            ));
            let f = tokio::fs::File::create(&tmp)
                .await
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            let r = match copy_body(ctx, resp, f, &bar, &md5).await {
                Ok(()) => check_md5(
                    &src.to_string(),
                    v["etag"].as_str().unwrap_or_default(),
                    &md5,
                ),
                Err(e) => Err(e),
            };
            let r = match r {
                Ok(()) => tokio::fs::rename(&tmp, path)
                    .await
                    .with_context(|| format!("cannot write {}", path.display())),
                Err(e) => Err(e),
            };
            if r.is_err() {
                let _ = tokio::fs::remove_file(&tmp).await;
            }
            r
        }
    };
    bar.finish_and_clear();
    r.with_context(|| format!("cannot download {src}"))?;
    Ok(v)
}

/// Writes the answer's body to `out` as it arrives.
async fn copy_body<W: tokio::io::AsyncWrite + Unpin>(
    ctx: &Ctx,
    resp: reqwest::Response,
    mut out: W,
    bar: &ProgressBar,
    md5: &Arc<Mutex<Md5>>,
) -> Result<()> {
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ctx.client.transport_error(e))?;
        out.write_all(&chunk).await.context("cannot write")?;
        if let Ok(mut h) = md5.lock() {
            h.update(&chunk);
        }
        bar.inc(chunk.len() as u64);
    }
    out.flush().await.context("cannot write")?;
    Ok(())
}

/// An object's description from the headers of a GET or HEAD.
fn meta_of(src: &Remote, h: &HeaderMap) -> Value {
    let text = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let size = h
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok());
    let metadata: Map<String, Value> = h
        .iter()
        .filter_map(|(n, v)| {
            let k = n.as_str().strip_prefix("x-nuage-meta-")?;
            Some((
                k.to_string(),
                json!(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            ))
        })
        .collect();
    json!({
        "bucket": src.bucket,
        "key": src.key,
        "size": size,
        "etag": text("etag").map(|e| e.trim_matches('"').to_string()),
        "content_type": text("content-type"),
        "last_modified": text("last-modified"),
        "metadata": metadata,
    })
}

/// `HEAD` on an object. Its error answers have no body, so the server's
/// message is fetched with a GET of the same path.
async fn stat(ctx: &Ctx, obj: &Remote) -> Result<Value> {
    let key = obj.object_key()?;
    let path = obj.path(key);
    let rb = ctx.client.object_request(Method::HEAD, &path)?;
    match ctx.client.send_streaming(rb).await {
        Ok(resp) => Ok(meta_of(obj, resp.headers())),
        Err(head_err) => {
            let rb = ctx.client.object_request(Method::GET, &path)?;
            match ctx.client.send_streaming(rb).await {
                Err(e) if e.downcast_ref::<ApiError>().is_some() => Err(e),
                _ => Err(head_err),
            }
        }
    }
}

// ----------------------------------------------------------------- listing

fn bucket_columns() -> Vec<Col<'static>> {
    vec![
        Col::field("Name", "name"),
        Col::field("ACL", "acl"),
        Col::field("Objects", "objects"),
        Col::with("Size", |r| {
            r["bytes"]
                .as_u64()
                .map(|n| HumanBytes(n).to_string())
                .unwrap_or_default()
        }),
        Col::with("Created", |r| output::time_cell(&r["created_at"])),
    ]
}

fn object_columns() -> Vec<Col<'static>> {
    vec![
        Col::field("Key", "key"),
        Col::with("Size", |r| match r["size"].as_u64() {
            Some(n) => HumanBytes(n).to_string(),
            None => "PRE".to_string(),
        }),
        Col::with("Modified", |r| output::time_cell(&r["last_modified"])),
        Col::field("ETag", "etag"),
    ]
}

/// Every page of a listing; prefixes become rows (`PRE` in the table).
async fn list_objects(ctx: &Ctx, at: &Remote, recursive: bool) -> Result<Value> {
    let mut objects: Vec<Value> = Vec::new();
    let mut prefixes: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut q = vec![("prefix", at.key.clone())];
        if !recursive {
            q.push(("delimiter", "/".to_string()));
        }
        if let Some(a) = after.take() {
            q.push(("after", a));
        }
        let page = ctx
            .client
            .get(&["buckets", &at.bucket, "objects"], &q)
            .await?;
        objects.extend(items(&page).iter().cloned());
        if let Some(p) = page["prefixes"].as_array() {
            prefixes.extend(p.iter().cloned());
        }
        match page["next_token"].as_str() {
            Some(t) => after = Some(t.to_string()),
            None => break,
        }
    }
    Ok(json!({ "items": objects, "prefixes": prefixes }))
}

fn print_listing(format: Format, answer: &Value) {
    let mut rows: Vec<Value> = answer["prefixes"]
        .as_array()
        .map(|p| p.iter().map(|p| json!({ "key": p })).collect())
        .unwrap_or_default();
    rows.extend(items(answer).iter().cloned());
    rows.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
    output::list(format, answer, &rows, &object_columns());
}

// -------------------------------------------------------------------- run

/// One side of `cp`.
enum End {
    Local(PathBuf),
    Remote(Remote),
}

impl End {
    fn parse(s: &str) -> Result<End> {
        Ok(match strip_scheme(s) {
            Some(_) => End::Remote(Remote::parse(s)?),
            None => End::Local(PathBuf::from(s)),
        })
    }
}

/// The last part of a local path, to name an object after it.
fn file_name(p: &Path) -> Option<&str> {
    p.file_name().and_then(|n| n.to_str())
}

async fn put(ctx: &Ctx, file: &Path, dst: Remote, upload_opts: &Upload) -> Result<()> {
    let dst = dst.or_named(file_name(file).filter(|_| file != Path::new("-")))?;
    let v = upload(ctx, file, &dst, upload_opts).await?;
    output::show(ctx.format, &v);
    Ok(())
}

async fn get(ctx: &Ctx, src: &Remote, dest: Option<&Path>) -> Result<()> {
    let sink = Sink::of(dest, src.object_key()?)?;
    let to_stdout = matches!(sink, Sink::Stdout);
    let v = download(ctx, src, sink).await?;
    if ctx.format == Format::Json && !to_stdout {
        output::json(&v);
    }
    Ok(())
}

async fn copy(ctx: &Ctx, src: &Remote, dst: Remote) -> Result<()> {
    let key = src.object_key()?;
    let name = key.rsplit('/').next();
    let dst = dst.or_named(name)?;
    let mut p = src.path(key).map(str::to_string);
    p[3] = format!("{key}:copy");
    let path: Vec<&str> = p.iter().map(String::as_str).collect();
    let v = ctx
        .client
        .post(
            &path,
            &json!({ "bucket": dst.bucket, "key": dst.object_key()? }),
        )
        .await
        .with_context(|| format!("cannot copy {src} to {dst}"))?;
    output::show(ctx.format, &v);
    Ok(())
}

pub async fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<()> {
    match cmd {
        Cmd::Mb { bucket, public } => {
            let b = bucket_name(&bucket)?;
            let body = public.then(|| json!({ "acl": "public-read" }));
            let v = ctx
                .client
                .put(&["buckets", &b], body.as_ref())
                .await?
                .unwrap_or(Value::Null);
            output::show(ctx.format, &v);
        }
        Cmd::Rb { bucket } => {
            ctx.client
                .delete(&["buckets", &bucket_name(&bucket)?])
                .await?
        }
        Cmd::Ls { path: None, .. } => {
            let v = ctx.client.get(&["buckets"], &[]).await?;
            output::list(ctx.format, &v, items(&v), &bucket_columns());
        }
        Cmd::Ls {
            path: Some(p),
            recursive,
        } => {
            let at = Remote::parse(&p)?;
            let v = list_objects(ctx, &at, recursive).await?;
            print_listing(ctx.format, &v);
        }
        Cmd::Put {
            file,
            object,
            upload,
        } => put(ctx, &file, Remote::parse(&object)?, &upload).await?,
        Cmd::Get { object, file } => get(ctx, &Remote::parse(&object)?, file.as_deref()).await?,
        Cmd::Cp { src, dst, upload } => match (End::parse(&src)?, End::parse(&dst)?) {
            (End::Local(f), End::Remote(r)) => put(ctx, &f, r, &upload).await?,
            (End::Remote(r), End::Local(f)) => get(ctx, &r, Some(&f)).await?,
            (End::Remote(a), End::Remote(b)) => copy(ctx, &a, b).await?,
            (End::Local(_), End::Local(_)) => bail!(
                "neither {src:?} nor {dst:?} is an object: write one side as nuage://BUCKET/KEY"
            ),
        },
        Cmd::Rm { objects } => {
            let mut failed = 0;
            for o in &objects {
                let r = match Remote::parse(o) {
                    Ok(r) => match r.object_key() {
                        Ok(k) => ctx.client.delete(&r.path(k)).await,
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                };
                if let Err(e) = r {
                    if objects.len() == 1 {
                        return Err(e);
                    }
                    eprintln!("nuage: {o}: {e:#}");
                    failed += 1;
                }
            }
            if failed > 0 {
                bail!("{failed} of {} objects could not be deleted", objects.len());
            }
        }
        Cmd::Stat { object } => {
            let v = stat(ctx, &Remote::parse(&object)?).await?;
            output::show(ctx.format, &v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let r = Remote::parse("nuage://b/dir/k.txt").expect("parses");
        assert_eq!((r.bucket.as_str(), r.key.as_str()), ("b", "dir/k.txt"));
        assert_eq!(Remote::parse("s3://b").expect("parses").key, "");
        assert_eq!(
            Remote::parse("b/k").expect("parses").to_string(),
            "nuage://b/k"
        );
        assert!(Remote::parse("nuage:///k").is_err());
        let named = Remote::parse("b/dir/")
            .expect("parses")
            .or_named(Some("f.bin"))
            .expect("named");
        assert_eq!(named.key, "dir/f.bin");
        assert_eq!(
            Remote::parse("b/k")
                .expect("parses")
                .or_named(Some("x"))
                .expect("kept")
                .key,
            "k"
        );
        assert!(Remote::parse("b").expect("parses").or_named(None).is_err());
        assert!(Remote::parse("b/..").expect("parses").object_key().is_err());
        assert_eq!(bucket_name("nuage://b/").expect("bucket"), "b");
        assert!(bucket_name("b/k").is_err());
    }

    #[test]
    fn cp_needs_a_scheme_for_objects() {
        assert!(matches!(End::parse("b/k").expect("parses"), End::Local(_)));
        assert!(matches!(
            End::parse("nuage://b/k").expect("parses"),
            End::Remote(_)
        ));
    }

    #[test]
    fn downloads_name_files_after_keys() {
        let name = |d: Option<&str>, k: &str| match Sink::of(d.map(Path::new), k).expect("sink") {
            Sink::File(p) => p.display().to_string(),
            Sink::Stdout => "-".to_string(),
        };
        assert_eq!(name(None, "dir/f.bin"), "f.bin");
        assert_eq!(name(Some("out/"), "dir/f.bin"), "out/f.bin");
        assert_eq!(name(Some("x.bin"), "f.bin"), "x.bin");
        assert_eq!(name(Some("-"), "f.bin"), "-");
    }

    #[test]
    fn etags_checked_only_when_plain_md5() {
        assert_eq!(
            plain_md5("\"D41D8CD98F00B204E9800998ECF8427E\"").as_deref(),
            Some("d41d8cd98f00b204e9800998ecf8427e")
        );
        assert_eq!(plain_md5("0123456789abcdef0123456789abcdef-3"), None);
        let empty = Arc::new(Mutex::new(Md5::new()));
        assert!(check_md5("x", "d41d8cd98f00b204e9800998ecf8427e", &empty).is_ok());
        assert!(check_md5("x", "00000000000000000000000000000000", &empty).is_err());
        assert!(check_md5("x", "whatever-2", &empty).is_ok());
    }
}
