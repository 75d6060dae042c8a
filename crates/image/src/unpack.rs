//! From a blob to a root filesystem: the archive is staged (extracted as a
//! tar into a partial directory), recognised by what it holds, and either
//! is the root filesystem (a rootfs tarball) or is read as an OCI layout or
//! a `docker save` archive whose verified layers are applied in order into
//! a second partial directory. Only a finished tree gets the real name.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use flate2::read::MultiGzDecoder;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::elf::{host_oci_arch, kernel_arch, Elf};
use crate::layer::{self, resolve, DirTimes};
use crate::store::{sync_dir, ImageStore};
use crate::{is_sha256_hex, Format, ImageConfig, ImageError, Result, Unpacked, DEFAULT_PATH};

/// Manifests, indexes and configs are small; a bigger one is not honest.
const MAX_JSON: u64 = 16 << 20;
/// Nested indexes followed at most (an index of indexes of manifests is 2).
const MAX_INDEX_DEPTH: usize = 4;

pub(crate) fn unpack(store: &ImageStore, sha: &str) -> Result<Unpacked> {
    let blob = store.blob_path(sha);
    let file = match File::open(&blob) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ImageError::Io(format!(
                "image sha256:{sha} is not stored on this node"
            )))
        }
        Err(e) => return Err(ImageError::io(format!("opening {}", blob.display()), e)),
    };
    let staging = Partial::create(store.partial_path(sha))?;
    let mut stage_times = DirTimes::new();
    let entries = extract(file, staging.path(), false, &mut stage_times)?;
    if entries == 0 {
        return Err(ImageError::invalid(
            "the archive is empty (a tar archive with no members)",
        ));
    }
    let layout = staging.path();
    let image = if is_file(layout, "oci-layout") {
        Some((Format::OciArchive, read_oci(layout)?))
    } else if is_file(layout, "manifest.json") {
        Some((Format::DockerArchive, read_docker(layout)?))
    } else {
        None
    };
    let Some((format, image)) = image else {
        let config = rootfs_config(layout).ok_or_else(|| {
            ImageError::invalid(
                "unrecognised archive: not an OCI or docker image archive (no oci-layout or \
                 manifest.json) and not a root filesystem (no /sbin/nuage-init, /sbin/init \
                 or /bin/sh)",
            )
        })?;
        let architecture = detect_arch(layout);
        return finish(
            store,
            sha,
            staging,
            stage_times,
            Format::RootfsTar,
            architecture,
            config,
        );
    };

    let target = Partial::create(store.partial_path(sha))?;
    let mut times = DirTimes::new();
    let total = image.layers.len();
    for (i, l) in image.layers.iter().enumerate() {
        let place = format!("layer {} of {total} ({})", i + 1, l.name);
        apply_layer(l, target.path(), &mut times).map_err(|e| e.within(place))?;
    }
    drop(staging);
    let mut config = image.config;
    if config.command.is_empty() {
        // No Entrypoint or Cmd (a base image): start what the root
        // filesystem offers, as for tarballs.
        if let Some(guess) = rootfs_config(target.path()) {
            config.command = guess.command;
        }
    }
    let architecture = image.architecture.or_else(|| detect_arch(target.path()));
    finish(store, sha, target, times, format, architecture, config)
}

/// A partial directory, removed unless it was renamed into place.
struct Partial {
    path: PathBuf,
    done: bool,
}

impl Partial {
    fn create(path: PathBuf) -> Result<Partial> {
        fs::create_dir(&path)
            .map_err(|e| ImageError::io(format!("creating {}", path.display()), e))?;
        Ok(Partial { path, done: false })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Makes the tree durable, records what was found, and gives the tree its
/// real name. If another thread finished the same image first, its tree
/// wins and this one is dropped.
fn finish(
    store: &ImageStore,
    sha: &str,
    mut tree: Partial,
    times: DirTimes,
    format: Format,
    architecture: Option<String>,
    config: ImageConfig,
) -> Result<Unpacked> {
    layer::set_dir_times(&times)?;
    let unpacked = Unpacked {
        format,
        architecture,
        config,
        unpacked_bytes: du(tree.path())?,
    };
    // One syncfs instead of an fsync per file: the tree is durable before
    // its name says it is complete.
    let dir = File::open(tree.path())
        .map_err(|e| ImageError::io(format!("opening {}", tree.path().display()), e))?;
    rustix::fs::syncfs(&dir).map_err(|e| {
        ImageError::io(
            format!("syncing {}", tree.path().display()),
            io::Error::from(e),
        )
    })?;
    let json = serde_json::to_vec_pretty(&unpacked)
        .map_err(|e| ImageError::io("encoding the image metadata", e))?;
    let mut meta = tempfile::Builder::new()
        .prefix("meta-")
        .tempfile_in(store.tmp_dir())
        .map_err(|e| ImageError::io("creating the image metadata", e))?;
    io::Write::write_all(&mut meta, &json)
        .and_then(|()| meta.as_file().sync_all())
        .map_err(|e| ImageError::io("writing the image metadata", e))?;
    meta.persist(store.meta_path(sha))
        .map_err(|e| ImageError::io("storing the image metadata", e.error))?;
    let dest = store.rootfs_path(sha);
    match fs::rename(tree.path(), &dest) {
        Ok(()) => tree.done = true,
        Err(_) if dest.is_dir() => {
            drop(tree);
            if let Some(u) = store.unpacked(sha)? {
                return Ok(u);
            }
        }
        Err(e) => return Err(ImageError::io(format!("renaming to {}", dest.display()), e)),
    }
    sync_dir(&store.rootfs_dir())?;
    Ok(unpacked)
}

/// Bytes of file data under `root`, hard links counted once.
fn du(root: &Path) -> Result<u64> {
    let mut total = 0u64;
    let mut seen = HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let list = fs::read_dir(&dir).map_err(|e| ImageError::io(dir.display(), e))?;
        for entry in list {
            let entry = entry.map_err(|e| ImageError::io(dir.display(), e))?;
            let m = entry
                .metadata()
                .map_err(|e| ImageError::io(entry.path().display(), e))?;
            if m.is_dir() {
                stack.push(entry.path());
            } else if m.is_file() && (m.nlink() == 1 || seen.insert((m.dev(), m.ino()))) {
                total += m.len();
            }
        }
    }
    Ok(total)
}

// ---------------------------------------------------------------- streams

enum Compression {
    None,
    Gzip,
}

/// Tells compression from the first bytes, and refuses, by name, formats
/// people upload by mistake.
fn sniff(head: &[u8]) -> Result<Compression> {
    let refuse = |what: &str| {
        Err(ImageError::invalid(format!(
            "{what} is not supported: upload a tar archive, plain or gzip-compressed"
        )))
    };
    match head {
        [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => refuse("zstd compression"),
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => refuse("xz compression"),
        [b'B', b'Z', b'h', ..] => refuse("bzip2 compression"),
        [b'P', b'K', 3, 4, ..] => refuse("a zip archive"),
        [b'Q', b'F', b'I', 0xfb, ..] => {
            refuse("a qcow2 disk image (containers need a filesystem, not a disk)")
        }
        _ => Ok(Compression::None),
    }
}

/// Reads through to `inner`, hashing what passes.
struct Hashing<R> {
    inner: R,
    state: Rc<RefCell<(Sha256, u64)>>,
}

impl<R> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing {
            inner,
            state: Rc::new(RefCell::new((Sha256::new(), 0))),
        }
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut s = self.state.borrow_mut();
        s.0.update(&buf[..n]);
        s.1 += n as u64;
        Ok(n)
    }
}

fn hex_of(state: &Rc<RefCell<(Sha256, u64)>>) -> (String, u64) {
    let s = state.borrow();
    (hex::encode(s.0.clone().finalize()), s.1)
}

/// Applies the (maybe gzip-compressed) tar in `raw` onto `root` and reads
/// the stream to its end, so that gzip's CRC is checked. Returns the number
/// of members.
fn extract<R: Read>(raw: R, root: &Path, whiteouts: bool, times: &mut DirTimes) -> Result<u64> {
    let mut buf = BufReader::with_capacity(256 << 10, raw);
    let head = buf
        .fill_buf()
        .map_err(|e| ImageError::io("reading the archive", e))?;
    if head.is_empty() {
        return Err(ImageError::invalid("the archive is empty (0 bytes)"));
    }
    let stream: Box<dyn Read + '_> = match sniff(head)? {
        Compression::Gzip => Box::new(MultiGzDecoder::new(buf)),
        Compression::None => Box::new(buf),
    };
    let (mut rest, applied) = layer::apply(stream, root, whiteouts, times)?;
    io::copy(&mut rest, &mut io::sink())
        .map_err(|e| ImageError::invalid(format!("the archive is corrupt ({e})")))?;
    Ok(applied.entries)
}

// ----------------------------------------------------------------- images

/// What an OCI or docker archive describes, checked and ready to apply.
struct Image {
    layers: Vec<LayerRef>,
    config: ImageConfig,
    architecture: Option<String>,
}

struct LayerRef {
    /// How errors name it: its digest or its path in the archive.
    name: String,
    /// The file, resolved inside the staged archive.
    path: PathBuf,
    /// sha256 (hex) of the file's bytes, when the archive says it.
    digest: Option<String>,
    size: Option<u64>,
    /// sha256 (hex) of the uncompressed tar (the config's diff_id).
    diff_id: Option<String>,
}

fn apply_layer(l: &LayerRef, root: &Path, times: &mut DirTimes) -> Result<()> {
    let file = File::open(&l.path).map_err(|e| ImageError::io(l.path.display(), e))?;
    if file.metadata().is_ok_and(|m| m.len() == 0) {
        // Some tools write empty layers as empty files.
        return verify_hashes(l, &hex::encode(Sha256::digest(b"")), 0, None);
    }
    let raw = Hashing::new(file);
    let raw_state = raw.state.clone();
    let mut buf = BufReader::with_capacity(256 << 10, raw);
    let head = buf
        .fill_buf()
        .map_err(|e| ImageError::io(l.path.display(), e))?;
    let stream: Box<dyn Read> = match sniff(head)? {
        Compression::Gzip => Box::new(MultiGzDecoder::new(buf)),
        Compression::None => Box::new(buf),
    };
    let diff = Hashing::new(stream);
    let diff_state = diff.state.clone();
    let applied = layer::apply(diff, root, true, times).and_then(|(mut rest, _)| {
        io::copy(&mut rest, &mut io::sink())
            .map_err(|e| ImageError::invalid(format!("the layer is corrupt ({e})")))
    });
    if let Err(e) = applied {
        // A tampered blob usually breaks its compression or tar structure
        // first; the digest says what really happened.
        if let Some(want) = &l.digest {
            let got = hash_file(&l.path)?;
            if *want != got {
                return verify_hashes(l, &got, l.size.unwrap_or(0), None);
            }
        }
        return Err(e);
    }
    let (raw_hex, raw_len) = hex_of(&raw_state);
    let (diff_hex, _) = hex_of(&diff_state);
    verify_hashes(l, &raw_hex, raw_len, Some(&diff_hex))
}

fn hash_file(path: &Path) -> Result<String> {
    let mut h = Sha256::new();
    let mut f = File::open(path).map_err(|e| ImageError::io(path.display(), e))?;
    io::copy(&mut f, &mut h).map_err(|e| ImageError::io(path.display(), e))?;
    Ok(hex::encode(h.finalize()))
}

/// Checks what reading a layer measured against what the archive claims;
/// `diff_hex` is the uncompressed stream's (the raw one's when `None`).
fn verify_hashes(l: &LayerRef, raw_hex: &str, len: u64, diff_hex: Option<&str>) -> Result<()> {
    if let Some(size) = l.size {
        if size != len {
            return Err(ImageError::invalid(format!(
                "size mismatch: the manifest says {size} bytes, the archive holds {len}"
            )));
        }
    }
    if let Some(d) = &l.digest {
        if *d != raw_hex {
            return Err(ImageError::invalid(format!(
                "digest mismatch: expected sha256:{d}, the content hashes to sha256:{raw_hex}"
            )));
        }
    }
    if let Some(want) = &l.diff_id {
        let got = diff_hex.unwrap_or(raw_hex);
        if want != got {
            return Err(ImageError::invalid(format!(
                "diff_id mismatch: the config expects sha256:{want}, the uncompressed layer \
                 hashes to sha256:{got}"
            )));
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    platform: Option<Platform>,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Debug, Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// An OCI image config (docker's is the same shape).
#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    config: Option<RunConfig>,
    #[serde(default)]
    rootfs: Option<RootFs>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig {
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// `sha256:<hex>` to its hex; other algorithms are refused.
fn digest_hex(d: &str) -> Result<String> {
    match d.split_once(':') {
        Some(("sha256", hex)) if is_sha256_hex(hex) => Ok(hex.to_string()),
        Some((alg, _)) if alg != "sha256" => Err(ImageError::invalid(format!(
            "digest {d:?} uses {alg}; only sha256 is supported"
        ))),
        _ => Err(ImageError::invalid(format!("malformed digest {d:?}"))),
    }
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| ImageError::invalid(format!("{what} is not valid: {e}")))
}

/// A file inside the staged archive, symlinks resolved inside it.
fn find(layout: &Path, rel: &Path) -> Option<PathBuf> {
    resolve(layout, rel, true, false)
        .ok()
        .flatten()
        .filter(|p| p.is_file())
}

fn is_file(layout: &Path, rel: &str) -> bool {
    find(layout, Path::new(rel)).is_some()
}

/// Reads a small file of the staged archive.
fn read_small(path: &Path, what: &str) -> Result<Vec<u8>> {
    let f = File::open(path).map_err(|e| ImageError::io(path.display(), e))?;
    let mut bytes = Vec::new();
    f.take(MAX_JSON + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ImageError::io(path.display(), e))?;
    if bytes.len() as u64 > MAX_JSON {
        return Err(ImageError::invalid(format!(
            "{what} is larger than {MAX_JSON} bytes"
        )));
    }
    Ok(bytes)
}

/// Reads the blob a descriptor points to and checks its size and digest.
fn read_blob(layout: &Path, d: &Descriptor, what: &str) -> Result<Vec<u8>> {
    let hex = digest_hex(&d.digest)?;
    let path = find(layout, &Path::new("blobs/sha256").join(&hex)).ok_or_else(|| {
        ImageError::invalid(format!("{what} {} is missing from the archive", d.digest))
    })?;
    let bytes = read_small(&path, what)?;
    let got = hex::encode(Sha256::digest(&bytes));
    if got != hex {
        return Err(ImageError::invalid(format!(
            "{what} {} is corrupt: digest mismatch, its content hashes to sha256:{got}",
            d.digest
        )));
    }
    if let Some(size) = d.size {
        if size != bytes.len() as u64 {
            return Err(ImageError::invalid(format!(
                "{what} {}: size mismatch, the descriptor says {size} bytes, the blob has {}",
                d.digest,
                bytes.len()
            )));
        }
    }
    Ok(bytes)
}

fn is_attestation(d: &Descriptor) -> bool {
    d.annotations
        .get("vnd.docker.reference.type")
        .is_some_and(|t| t == "attestation-manifest")
        || d.platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
}

/// The manifest to use from an index: the only one, else the one for
/// linux on this node's architecture.
fn pick<'a>(list: &'a [Descriptor], what: &str) -> Result<&'a Descriptor> {
    let usable: Vec<&Descriptor> = list.iter().filter(|d| !is_attestation(d)).collect();
    match usable.as_slice() {
        [] => return Err(ImageError::invalid(format!("{what} lists no image"))),
        [one] => return Ok(one),
        _ => {}
    }
    let host = host_oci_arch();
    if let Some(d) = usable.iter().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == host)
    }) {
        return Ok(d);
    }
    let platforms: Vec<String> = usable
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .map(|p| format!("{}/{}", p.os, p.architecture))
        .collect();
    if platforms.is_empty() {
        Err(ImageError::invalid(format!(
            "{what} holds {} images; upload an archive of one image",
            usable.len()
        )))
    } else {
        Err(ImageError::invalid(format!(
            "{what} has no linux/{host} image (it has {})",
            platforms.join(", ")
        )))
    }
}

fn read_oci(layout: &Path) -> Result<Image> {
    let marker = find(layout, Path::new("oci-layout"))
        .ok_or_else(|| ImageError::invalid("oci-layout is missing"))?;
    let _: serde_json::Value = parse(&read_small(&marker, "oci-layout")?, "oci-layout")?;
    let index_path = find(layout, Path::new("index.json"))
        .ok_or_else(|| ImageError::invalid("the OCI archive has no index.json"))?;
    let index: Index = parse(&read_small(&index_path, "index.json")?, "index.json")?;
    let mut list = index.manifests;
    let mut what = "index.json".to_string();
    for _ in 0..MAX_INDEX_DEPTH {
        let chosen = pick(&list, &what)?;
        let bytes = read_blob(layout, chosen, "manifest")?;
        let value: serde_json::Value = parse(&bytes, "the manifest")?;
        let is_index = chosen.media_type.ends_with("image.index.v1+json")
            || chosen.media_type.ends_with("manifest.list.v2+json")
            || value.get("manifests").is_some();
        if is_index {
            what = format!("index {}", chosen.digest);
            list = parse::<Index>(&bytes, &what)?.manifests;
            continue;
        }
        let manifest: Manifest = parse(&bytes, &format!("manifest {}", chosen.digest))?;
        let config_bytes = read_blob(layout, &manifest.config, "config")?;
        let config: ConfigFile =
            parse(&config_bytes, &format!("config {}", manifest.config.digest))?;
        let diff_ids = diff_ids(&config, manifest.layers.len())?;
        let mut layers = Vec::new();
        for (i, d) in manifest.layers.iter().enumerate() {
            if d.media_type.contains("zstd") {
                return Err(ImageError::invalid(format!(
                    "layer {} is zstd-compressed ({}); only plain and gzip layers are supported",
                    d.digest, d.media_type
                )));
            }
            let hex = digest_hex(&d.digest)?;
            let path = find(layout, &Path::new("blobs/sha256").join(&hex)).ok_or_else(|| {
                ImageError::invalid(format!("layer {} is missing from the archive", d.digest))
            })?;
            layers.push(LayerRef {
                name: d.digest.clone(),
                path,
                digest: Some(hex),
                size: d.size,
                diff_id: diff_ids.as_ref().map(|ids| ids[i].clone()),
            });
        }
        return image(config, layers);
    }
    Err(ImageError::invalid(format!(
        "indexes nested deeper than {MAX_INDEX_DEPTH}"
    )))
}

/// The config's diff_ids as hex, when it lists one per layer.
fn diff_ids(config: &ConfigFile, layers: usize) -> Result<Option<Vec<String>>> {
    let ids = config
        .rootfs
        .as_ref()
        .map(|r| r.diff_ids.as_slice())
        .unwrap_or(&[]);
    if ids.is_empty() {
        return Ok(None);
    }
    if ids.len() != layers {
        return Err(ImageError::invalid(format!(
            "the config lists {} layers (rootfs.diff_ids) but the manifest {layers}",
            ids.len()
        )));
    }
    ids.iter()
        .map(|d| digest_hex(d))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    #[serde(default)]
    layers: Vec<String>,
}

fn read_docker(layout: &Path) -> Result<Image> {
    let path = find(layout, Path::new("manifest.json"))
        .ok_or_else(|| ImageError::invalid("manifest.json is missing"))?;
    let manifests: Vec<DockerManifest> =
        parse(&read_small(&path, "manifest.json")?, "manifest.json")?;
    let m = match manifests.as_slice() {
        [] => return Err(ImageError::invalid("manifest.json lists no image")),
        [one] => one,
        many => {
            return Err(ImageError::invalid(format!(
                "the archive holds {} images; upload an archive of one image",
                many.len()
            )))
        }
    };
    let config_rel = layer::clean(Path::new(&m.config))?;
    let config_path = find(layout, &config_rel).ok_or_else(|| {
        ImageError::invalid(format!("config {} is missing from the archive", m.config))
    })?;
    let config_bytes = read_small(&config_path, "the config")?;
    // Docker names the config by its digest (<hex>.json, or blobs/sha256/<hex>).
    if let Some(want) = named_digest(&config_rel) {
        let got = hex::encode(Sha256::digest(&config_bytes));
        if got != want {
            return Err(ImageError::invalid(format!(
                "config {} is corrupt: digest mismatch, its content hashes to sha256:{got}",
                m.config
            )));
        }
    }
    let config: ConfigFile = parse(&config_bytes, &format!("config {}", m.config))?;
    let diff_ids = diff_ids(&config, m.layers.len())?.ok_or_else(|| {
        ImageError::invalid("the config has no rootfs.diff_ids: its layers cannot be verified")
    })?;
    let mut layers = Vec::new();
    for (i, name) in m.layers.iter().enumerate() {
        let rel = layer::clean(Path::new(name))?;
        let path = find(layout, &rel).ok_or_else(|| {
            ImageError::invalid(format!("layer {name} is missing from the archive"))
        })?;
        let digest = rel
            .strip_prefix("blobs/sha256")
            .ok()
            .and_then(|p| p.to_str())
            .filter(|h| is_sha256_hex(h))
            .map(str::to_string);
        layers.push(LayerRef {
            name: name.clone(),
            path,
            digest,
            size: None,
            diff_id: Some(diff_ids[i].clone()),
        });
    }
    image(config, layers)
}

/// The digest a docker archive's file name claims, if it claims one.
fn named_digest(rel: &Path) -> Option<String> {
    let name = rel.file_name()?.to_str()?;
    let hex = name.strip_suffix(".json").unwrap_or(name);
    is_sha256_hex(hex).then(|| hex.to_string())
}

fn image(config: ConfigFile, layers: Vec<LayerRef>) -> Result<Image> {
    if let Some(os) = config.os.as_deref() {
        if !os.is_empty() && os != "linux" {
            return Err(ImageError::invalid(format!(
                "this is a {os} image; containers here run linux images"
            )));
        }
    }
    let run = config.config.unwrap_or_default();
    let mut command = run.entrypoint.unwrap_or_default();
    command.extend(run.cmd.unwrap_or_default());
    let workdir = run
        .working_dir
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    Ok(Image {
        layers,
        config: ImageConfig {
            command,
            env: run.env.unwrap_or_default(),
            workdir,
        },
        architecture: config
            .architecture
            .filter(|a| !a.is_empty())
            .map(|a| kernel_arch(&a)),
    })
}

// ----------------------------------------------------------------- rootfs

/// How a bare root filesystem starts: nuage's init, else the system's init,
/// else a shell. `None` when it has none of them (not a root filesystem).
fn rootfs_config(root: &Path) -> Option<ImageConfig> {
    let command = ["sbin/nuage-init", "sbin/init", "bin/sh"]
        .into_iter()
        .find(|c| find(root, Path::new(c)).is_some())?;
    Some(ImageConfig {
        command: vec![format!("/{command}")],
        env: vec![DEFAULT_PATH.to_string()],
        workdir: "/".into(),
    })
}

/// The architecture of the root filesystem's busybox or shell.
fn detect_arch(root: &Path) -> Option<String> {
    ["bin/busybox", "bin/sh"].into_iter().find_map(|c| {
        let path = find(root, Path::new(c))?;
        let mut f = File::open(path).ok()?;
        Elf::read(&mut f)?.architecture().map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        let hex = "ab".repeat(32);
        assert_eq!(digest_hex(&format!("sha256:{hex}")).expect("ok"), hex);
        assert!(digest_hex(&format!("sha512:{hex}")).is_err());
        assert!(digest_hex("sha256:../../etc/passwd").is_err());
        assert!(digest_hex(&hex).is_err());
    }

    #[test]
    fn sniffing_names_wrong_formats() {
        for (bytes, word) in [
            (&b"\x28\xb5\x2f\xfd...."[..], "zstd"),
            (&b"\xfd7zXZ\x00..."[..], "xz"),
            (&b"BZh91AY"[..], "bzip2"),
            (&b"PK\x03\x04"[..], "zip"),
            (&b"QFI\xfb\x00\x00"[..], "qcow2"),
        ] {
            match sniff(bytes) {
                Err(ImageError::Invalid(m)) => assert!(m.contains(word), "{m}"),
                _ => panic!("{word} accepted"),
            }
        }
        assert!(matches!(sniff(b"\x1f\x8b\x08"), Ok(Compression::Gzip)));
    }

    #[test]
    fn picks_the_host_platform() {
        let d = |arch: &str, os: &str| Descriptor {
            media_type: String::new(),
            digest: format!("sha256:{}", "0".repeat(64)),
            size: None,
            platform: Some(Platform {
                architecture: arch.into(),
                os: os.into(),
            }),
            annotations: HashMap::new(),
        };
        let host = host_oci_arch();
        let list = vec![
            d("s390x", "linux"),
            d(host, "linux"),
            d("unknown", "unknown"),
        ];
        let chosen = pick(&list, "index").expect("picks");
        assert_eq!(
            chosen.platform.as_ref().map(|p| p.architecture.as_str()),
            Some(host)
        );
        let none = vec![d("s390x", "linux"), d("ppc64le", "linux")];
        match pick(&none, "index") {
            Err(ImageError::Invalid(m)) => assert!(m.contains("linux/s390x"), "{m}"),
            other => panic!("{other:?}"),
        }
        // A single image is used whatever it says; the scheduler decides.
        assert!(pick(&none[..1], "index").is_ok());
    }
}
