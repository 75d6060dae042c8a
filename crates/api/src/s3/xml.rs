//! S3 XML documents: the answers the S3 dialect renders and the request
//! bodies it parses.
//!
//! Plain structs only, filled by the handlers from engine values: this module
//! knows S3's wire format, not the engine. Rendering is written by hand (not
//! through serde) because S3's documents carry details serde cannot express
//! well: the namespace on some roots and not on `Error`, `xsi:type` on ACL
//! grantees, and keys that must be percent-encoded under `encoding-type=url`.
//!
//! Parsing is strict: anything that is not exactly the documented shape is an
//! [`XmlError`], which the handlers answer with `MalformedXML` (400). Callers
//! bound the body size; nothing here panics on any input (fuzzed by
//! `fuzz/fuzz_targets/s3_xml.rs`).

use std::fmt::{self, Write as _};

use chrono::{DateTime, Utc};
use nuage_object::Acl;
use quick_xml::events::Event;
use quick_xml::Reader;

/// The namespace of every S3 document except `Error`.
pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
/// The group every anonymous requester belongs to, granted READ by `public-read`.
pub const ALL_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
/// The grantee group of `authenticated-read`.
pub const AUTHENTICATED_USERS_URI: &str =
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
/// At most this many keys in one multi-object delete (S3's limit).
pub const MAX_DELETE_OBJECTS: usize = 1000;
/// Part numbers run from 1 to this.
pub const MAX_PART_NUMBER: u32 = 10_000;

const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

// ---------------------------------------------------------------------------
// Shared pieces

/// ISO 8601 with milliseconds and `Z`, as S3 renders every timestamp in XML.
pub fn timestamp(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// An ETag as S3 shows it: in double quotes (added unless already there).
pub fn quote_etag(etag: &str) -> String {
    if etag.len() >= 2 && etag.starts_with('"') && etag.ends_with('"') {
        etag.to_owned()
    } else {
        format!("\"{etag}\"")
    }
}

/// `encoding-type` of the listing requests. S3 knows one value, `url`: keys,
/// prefixes, markers and delimiters are then percent-encoded in the answer,
/// which is how clients receive keys holding characters XML 1.0 cannot carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodingType {
    Url,
}

impl EncodingType {
    /// The query parameter's value; `None` for anything S3 would refuse
    /// (the handler answers `InvalidArgument`).
    pub fn parse(value: &str) -> Option<EncodingType> {
        value
            .eq_ignore_ascii_case("url")
            .then_some(EncodingType::Url)
    }
}

/// A bucket's or object's owner, also the initiator of multipart uploads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Owner {
    pub id: String,
    pub display_name: String,
}

/// The additional checksums (base64, as on the wire) of an object or part;
/// S3 renders each one present as `ChecksumCRC32`, `ChecksumCRC32C`, ...
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checksums {
    pub crc32: Option<String>,
    pub crc32c: Option<String>,
    pub crc64nvme: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
}

impl Checksums {
    fn fields(&self) -> [(&'static str, Option<&String>); 5] {
        [
            ("ChecksumCRC32", self.crc32.as_ref()),
            ("ChecksumCRC32C", self.crc32c.as_ref()),
            ("ChecksumCRC64NVME", self.crc64nvme.as_ref()),
            ("ChecksumSHA1", self.sha1.as_ref()),
            ("ChecksumSHA256", self.sha256.as_ref()),
        ]
    }

    fn slot(&mut self, element: &str) -> Option<&mut Option<String>> {
        match element {
            "ChecksumCRC32" => Some(&mut self.crc32),
            "ChecksumCRC32C" => Some(&mut self.crc32c),
            "ChecksumCRC64NVME" => Some(&mut self.crc64nvme),
            "ChecksumSHA1" => Some(&mut self.sha1),
            "ChecksumSHA256" => Some(&mut self.sha256),
            _ => None,
        }
    }

    /// Whether no checksum is present.
    pub fn is_empty(&self) -> bool {
        self.fields().iter().all(|(_, v)| v.is_none())
    }
}

// ---------------------------------------------------------------------------
// Writing

/// Escapes text for element content. Besides the five XML specials, `\r` is
/// written as a character reference (a raw one would be read back as `\n`),
/// and so are the control characters XML 1.0 cannot carry at all: S3 does
/// the same, and clients that must see such keys ask for `encoding-type=url`.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(c),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(out, "&#x{:X};", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Percent-encodes like S3 does under `encoding-type=url`: every byte but the
/// unreserved ones and `/`. A space becomes `%20` (never `+`) and `+` becomes
/// `%2B`, so that both `unquote` and `unquote_plus` (botocore) decode it right.
fn url_encode_into(out: &mut String, text: &str) {
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// A document being written. Element names are always literals of this
/// module; only text goes through escaping.
struct Doc {
    out: String,
    url: bool,
}

impl Doc {
    fn new(root: &str, namespace: bool) -> Doc {
        let mut out = String::with_capacity(512);
        out.push_str(DECLARATION);
        out.push('<');
        out.push_str(root);
        if namespace {
            out.push_str(" xmlns=\"");
            out.push_str(S3_NAMESPACE);
            out.push('"');
        }
        out.push('>');
        Doc { out, url: false }
    }

    fn url_encoded(mut self, encoding: Option<EncodingType>) -> Doc {
        self.url = encoding == Some(EncodingType::Url);
        self
    }

    fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// `<name>text</name>`, escaped.
    fn text(&mut self, name: &str, text: &str) {
        self.open(name);
        escape_into(&mut self.out, text);
        self.close(name);
    }

    /// Like [`Doc::text`], but percent-encoded when the listing asked for
    /// `encoding-type=url` (keys, prefixes, markers, delimiters).
    fn key(&mut self, name: &str, text: &str) {
        if self.url {
            self.open(name);
            url_encode_into(&mut self.out, text);
            self.close(name);
        } else {
            self.text(name, text);
        }
    }

    fn display(&mut self, name: &str, value: impl fmt::Display) {
        self.open(name);
        let _ = write!(self.out, "{value}");
        self.close(name);
    }

    fn time(&mut self, name: &str, t: &DateTime<Utc>) {
        self.text(name, &timestamp(t));
    }

    fn etag(&mut self, etag: &str) {
        self.text("ETag", &quote_etag(etag));
    }

    fn owner(&mut self, name: &str, owner: &Owner) {
        self.open(name);
        self.text("ID", &owner.id);
        self.text("DisplayName", &owner.display_name);
        self.close(name);
    }

    fn checksums(&mut self, checksums: &Checksums) {
        for (name, value) in checksums.fields() {
            if let Some(value) = value {
                self.text(name, value);
            }
        }
    }

    fn common_prefixes(&mut self, prefixes: &[String]) {
        for prefix in prefixes {
            self.open("CommonPrefixes");
            self.key("Prefix", prefix);
            self.close("CommonPrefixes");
        }
    }

    fn encoding(&mut self, encoding: Option<EncodingType>) {
        if encoding == Some(EncodingType::Url) {
            self.text("EncodingType", "url");
        }
    }

    fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.out
    }
}

// ---------------------------------------------------------------------------
// Documents rendered

/// `GET /` (ListBuckets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListAllMyBucketsResult {
    pub owner: Owner,
    pub buckets: Vec<BucketEntry>,
}

/// One bucket of [`ListAllMyBucketsResult`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketEntry {
    pub name: String,
    pub creation_date: DateTime<Utc>,
}

impl ListAllMyBucketsResult {
    pub fn to_xml(&self) -> String {
        const ROOT: &str = "ListAllMyBucketsResult";
        let mut d = Doc::new(ROOT, true);
        d.owner("Owner", &self.owner);
        d.open("Buckets");
        for b in &self.buckets {
            d.open("Bucket");
            d.text("Name", &b.name);
            d.time("CreationDate", &b.creation_date);
            d.close("Bucket");
        }
        d.close("Buckets");
        d.finish(ROOT)
    }
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    pub key: String,
    pub last_modified: DateTime<Utc>,
    /// Without quotes (they are added), or with them.
    pub etag: String,
    pub size: u64,
    pub storage_class: String,
    /// Always shown by ListObjects (v1); by v2 only with `fetch-owner=true`.
    pub owner: Option<Owner>,
}

/// What differs between ListObjects (v1) and ListObjectsV2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListVersion {
    V1 {
        marker: String,
        /// Rendered only when the listing has a delimiter and is truncated,
        /// as S3 does; without a delimiter clients continue from the last key.
        next_marker: Option<String>,
    },
    V2 {
        continuation_token: Option<String>,
        next_continuation_token: Option<String>,
        start_after: Option<String>,
    },
}

/// `GET /bucket` (ListObjects and ListObjectsV2). `KeyCount` of v2 is
/// computed from the entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListBucketResult {
    pub name: String,
    pub prefix: String,
    pub delimiter: Option<String>,
    pub max_keys: u32,
    pub is_truncated: bool,
    pub encoding_type: Option<EncodingType>,
    pub contents: Vec<ObjectEntry>,
    pub common_prefixes: Vec<String>,
    pub version: ListVersion,
}

impl ListBucketResult {
    pub fn to_xml(&self) -> String {
        const ROOT: &str = "ListBucketResult";
        let mut d = Doc::new(ROOT, true).url_encoded(self.encoding_type);
        d.text("Name", &self.name);
        d.key("Prefix", &self.prefix);
        match &self.version {
            ListVersion::V1 {
                marker,
                next_marker,
            } => {
                d.key("Marker", marker);
                if let Some(next) = next_marker {
                    if self.is_truncated && self.delimiter.is_some() {
                        d.key("NextMarker", next);
                    }
                }
            }
            ListVersion::V2 {
                continuation_token,
                next_continuation_token,
                ..
            } => {
                if let Some(token) = continuation_token {
                    d.text("ContinuationToken", token);
                }
                if let Some(token) = next_continuation_token {
                    d.text("NextContinuationToken", token);
                }
                d.display("KeyCount", self.contents.len() + self.common_prefixes.len());
            }
        }
        d.display("MaxKeys", self.max_keys);
        if let Some(delimiter) = &self.delimiter {
            d.key("Delimiter", delimiter);
        }
        d.encoding(self.encoding_type);
        d.display("IsTruncated", self.is_truncated);
        if let ListVersion::V2 {
            start_after: Some(start_after),
            ..
        } = &self.version
        {
            d.key("StartAfter", start_after);
        }
        for o in &self.contents {
            d.open("Contents");
            d.key("Key", &o.key);
            d.time("LastModified", &o.last_modified);
            d.etag(&o.etag);
            d.display("Size", o.size);
            d.text("StorageClass", &o.storage_class);
            if let Some(owner) = &o.owner {
                d.owner("Owner", owner);
            }
            d.close("Contents");
        }
        d.common_prefixes(&self.common_prefixes);
        d.finish(ROOT)
    }
}

/// One upload of [`ListMultipartUploadsResult`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadEntry {
    pub key: String,
    pub upload_id: String,
    pub initiator: Owner,
    pub owner: Owner,
    pub storage_class: String,
    pub initiated: DateTime<Utc>,
}

/// `GET /bucket?uploads`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListMultipartUploadsResult {
    pub bucket: String,
    pub key_marker: String,
    pub upload_id_marker: String,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
    pub delimiter: Option<String>,
    pub prefix: String,
    pub max_uploads: u32,
    pub is_truncated: bool,
    pub encoding_type: Option<EncodingType>,
    pub uploads: Vec<UploadEntry>,
    pub common_prefixes: Vec<String>,
}

impl ListMultipartUploadsResult {
    pub fn to_xml(&self) -> String {
        const ROOT: &str = "ListMultipartUploadsResult";
        let mut d = Doc::new(ROOT, true).url_encoded(self.encoding_type);
        d.text("Bucket", &self.bucket);
        d.key("KeyMarker", &self.key_marker);
        d.text("UploadIdMarker", &self.upload_id_marker);
        if let Some(next) = &self.next_key_marker {
            d.key("NextKeyMarker", next);
        }
        if let Some(next) = &self.next_upload_id_marker {
            d.text("NextUploadIdMarker", next);
        }
        if let Some(delimiter) = &self.delimiter {
            d.key("Delimiter", delimiter);
        }
        d.key("Prefix", &self.prefix);
        d.display("MaxUploads", self.max_uploads);
        d.encoding(self.encoding_type);
        d.display("IsTruncated", self.is_truncated);
        for u in &self.uploads {
            d.open("Upload");
            d.key("Key", &u.key);
            d.text("UploadId", &u.upload_id);
            d.owner("Initiator", &u.initiator);
            d.owner("Owner", &u.owner);
            d.text("StorageClass", &u.storage_class);
            d.time("Initiated", &u.initiated);
            d.close("Upload");
        }
        d.common_prefixes(&self.common_prefixes);
        d.finish(ROOT)
    }
}

/// One part of [`ListPartsResult`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartEntry {
    pub part_number: u32,
    pub last_modified: DateTime<Utc>,
    pub etag: String,
    pub size: u64,
    pub checksums: Checksums,
}

/// `GET /bucket/key?uploadId=...` (ListParts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPartsResult {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    pub part_number_marker: u32,
    pub next_part_number_marker: Option<u32>,
    pub max_parts: u32,
    pub is_truncated: bool,
    pub parts: Vec<PartEntry>,
    pub initiator: Owner,
    pub owner: Owner,
    pub storage_class: String,
    /// `CRC32`, `SHA256`, ... when the upload was created with one.
    pub checksum_algorithm: Option<String>,
}

impl ListPartsResult {
    pub fn to_xml(&self) -> String {
        const ROOT: &str = "ListPartsResult";
        let mut d = Doc::new(ROOT, true);
        d.text("Bucket", &self.bucket);
        d.text("Key", &self.key);
        d.text("UploadId", &self.upload_id);
        d.display("PartNumberMarker", self.part_number_marker);
        if let Some(next) = self.next_part_number_marker {
            d.display("NextPartNumberMarker", next);
        }
        d.display("MaxParts", self.max_parts);
        d.display("IsTruncated", self.is_truncated);
        for p in &self.parts {
            d.open("Part");
            d.display("PartNumber", p.part_number);
            d.time("LastModified", &p.last_modified);
            d.etag(&p.etag);
            d.display("Size", p.size);
            d.checksums(&p.checksums);
            d.close("Part");
        }
        d.owner("Initiator", &self.initiator);
        d.owner("Owner", &self.owner);
        d.text("StorageClass", &self.storage_class);
        if let Some(algorithm) = &self.checksum_algorithm {
            d.text("ChecksumAlgorithm", algorithm);
        }
        d.finish(ROOT)
    }
}

/// `POST /bucket/key?uploads`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiateMultipartUploadResult {
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
}

impl InitiateMultipartUploadResult {
    pub fn to_xml(&self) -> String {
        const ROOT: &str = "InitiateMultipartUploadResult";
        let mut d = Doc::new(ROOT, true);
        d.text("Bucket", &self.bucket);
        d.text("Key", &self.key);
        d.text("UploadId", &self.upload_id);
        d.finish(ROOT)
    }
}

/// `POST /bucket/key?uploadId=...` once the object is assembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteMultipartUploadResult {
    /// The object's URL.
    pub location: String,
    pub bucket: String,
    pub key: String,
    /// The multipart ETag (`<md5 of md5s>-<parts>`), quotes added.
    pub etag: String,
    pub checksums: Checksums,
}

impl CompleteMultipartUploadResult {
    pub fn to_xml(&self) -> String {
        const ROOT: &str = "CompleteMultipartUploadResult";
        let mut d = Doc::new(ROOT, true);
        d.text("Location", &self.location);
        d.text("Bucket", &self.bucket);
        d.text("Key", &self.key);
        d.etag(&self.etag);
        d.checksums(&self.checksums);
        d.finish(ROOT)
    }
}

/// `PUT` with `x-amz-copy-source` (CopyObject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyObjectResult {
    pub last_modified: DateTime<Utc>,
    pub etag: String,
}

impl CopyObjectResult {
    pub fn to_xml(&self) -> String {
        copy_result("CopyObjectResult", &self.last_modified, &self.etag)
    }
}

/// `PUT ?partNumber&uploadId` with `x-amz-copy-source` (UploadPartCopy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyPartResult {
    pub last_modified: DateTime<Utc>,
    pub etag: String,
}

impl CopyPartResult {
    pub fn to_xml(&self) -> String {
        copy_result("CopyPartResult", &self.last_modified, &self.etag)
    }
}

fn copy_result(root: &str, last_modified: &DateTime<Utc>, etag: &str) -> String {
    let mut d = Doc::new(root, true);
    d.time("LastModified", last_modified);
    d.etag(etag);
    d.finish(root)
}

/// A key removed by a multi-object delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedEntry {
    pub key: String,
    pub version_id: Option<String>,
}

/// A key a multi-object delete could not remove, with its S3 error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteErrorEntry {
    pub key: String,
    pub version_id: Option<String>,
    pub code: String,
    pub message: String,
}

/// `POST /bucket?delete`. In quiet mode only the errors are listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteResult {
    pub quiet: bool,
    pub deleted: Vec<DeletedEntry>,
    pub errors: Vec<DeleteErrorEntry>,
}

impl DeleteResult {
    pub fn to_xml(&self) -> String {
        const ROOT: &str = "DeleteResult";
        let mut d = Doc::new(ROOT, true);
        if !self.quiet {
            for e in &self.deleted {
                d.open("Deleted");
                d.text("Key", &e.key);
                if let Some(v) = &e.version_id {
                    d.text("VersionId", v);
                }
                d.close("Deleted");
            }
        }
        for e in &self.errors {
            d.open("Error");
            d.text("Key", &e.key);
            if let Some(v) = &e.version_id {
                d.text("VersionId", v);
            }
            d.text("Code", &e.code);
            d.text("Message", &e.message);
            d.close("Error");
        }
        d.finish(ROOT)
    }
}

/// A configuration nuage never stores, answered as S3 answers a bucket on
/// which it was never set: `root` holding the `children` text elements
/// (`GetBucketVersioning`: none; `GetBucketRequestPayment`: the owner pays).
pub fn fixed_configuration(root: &str, children: &[(&str, &str)]) -> String {
    let mut d = Doc::new(root, true);
    for (name, text) in children {
        d.text(name, text);
    }
    d.finish(root)
}

/// `GET /bucket?location`. S3 answers an empty element for its historical
/// default region `us-east-1` (clients read that as `us-east-1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationConstraint {
    pub region: String,
}

impl LocationConstraint {
    pub fn to_xml(&self) -> String {
        let mut out = String::from(DECLARATION);
        if self.region.is_empty() || self.region == "us-east-1" {
            let _ = write!(out, "<LocationConstraint xmlns=\"{S3_NAMESPACE}\"/>");
        } else {
            let _ = write!(out, "<LocationConstraint xmlns=\"{S3_NAMESPACE}\">");
            escape_into(&mut out, &self.region);
            out.push_str("</LocationConstraint>");
        }
        out
    }
}

/// The canned ACL an `x-amz-acl` value names; `None` for a name S3 does
/// not have. `bucket-owner-read` and `bucket-owner-full-control` give the
/// bucket's owner access to an object, which it always has here (objects
/// belong to their bucket's project); `aws-exec-read` (EC2 reads AMI
/// bundles) and `log-delivery-write` (S3's log writer) grant access to
/// AWS's own services, which nuage's services have without a grant: all
/// four are `private`.
pub fn canned_acl(value: &str) -> Option<Acl> {
    match value {
        "bucket-owner-read"
        | "bucket-owner-full-control"
        | "aws-exec-read"
        | "log-delivery-write" => Some(Acl::Private),
        v => Acl::parse(v),
    }
}

/// `GET ?acl` of a bucket or object: the canned ACL spelled out as grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessControlPolicy {
    pub owner: Owner,
    pub acl: Acl,
}

impl AccessControlPolicy {
    pub fn to_xml(&self) -> String {
        const ROOT: &str = "AccessControlPolicy";
        let mut d = Doc::new(ROOT, true);
        d.owner("Owner", &self.owner);
        d.open("AccessControlList");
        d.open("Grant");
        let _ = write!(
            d.out,
            "<Grantee xmlns:xsi=\"{XSI_NAMESPACE}\" xsi:type=\"CanonicalUser\">"
        );
        d.text("ID", &self.owner.id);
        d.text("DisplayName", &self.owner.display_name);
        d.close("Grantee");
        d.text("Permission", "FULL_CONTROL");
        d.close("Grant");
        let groups: &[(&str, &str)] = match self.acl {
            Acl::Private => &[],
            Acl::PublicRead => &[(ALL_USERS_URI, "READ")],
            Acl::PublicReadWrite => &[(ALL_USERS_URI, "READ"), (ALL_USERS_URI, "WRITE")],
            Acl::AuthenticatedRead => &[(AUTHENTICATED_USERS_URI, "READ")],
        };
        for (uri, permission) in groups {
            d.open("Grant");
            let _ = write!(
                d.out,
                "<Grantee xmlns:xsi=\"{XSI_NAMESPACE}\" xsi:type=\"Group\">"
            );
            d.text("URI", uri);
            d.close("Grantee");
            d.text("Permission", permission);
            d.close("Grant");
        }
        d.close("AccessControlList");
        d.finish(ROOT)
    }
}

/// An S3 error answer. `Error` carries no namespace, as AWS renders it;
/// `extra` elements (`BucketName`, `Key`, `ArgumentName`, ...) come after
/// `Message`, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    pub code: String,
    pub message: String,
    pub resource: Option<String>,
    pub request_id: String,
    pub extra: Vec<(&'static str, String)>,
}

impl ErrorResponse {
    pub fn new(
        code: impl Into<String>,
        message: impl Into<String>,
        request_id: impl Into<String>,
    ) -> ErrorResponse {
        ErrorResponse {
            code: code.into(),
            message: message.into(),
            resource: None,
            request_id: request_id.into(),
            extra: Vec::new(),
        }
    }

    /// The path the error is about (`/bucket/key`).
    pub fn resource(mut self, resource: impl Into<String>) -> ErrorResponse {
        self.resource = Some(resource.into());
        self
    }

    /// One more element, e.g. `with("BucketName", name)`.
    pub fn with(mut self, element: &'static str, value: impl Into<String>) -> ErrorResponse {
        self.extra.push((element, value.into()));
        self
    }

    /// The diagnostics AWS adds to `SignatureDoesNotMatch`, so that a client
    /// author can see which string the server signed. Nothing secret: the
    /// string to sign and canonical request are built from the request.
    pub fn signature_mismatch(
        self,
        access_key_id: &str,
        string_to_sign: &str,
        signature_provided: &str,
        canonical_request: &str,
    ) -> ErrorResponse {
        self.with("AWSAccessKeyId", access_key_id)
            .with("StringToSign", string_to_sign)
            .with("SignatureProvided", signature_provided)
            .with("StringToSignBytes", spaced_hex(string_to_sign.as_bytes()))
            .with("CanonicalRequest", canonical_request)
            .with(
                "CanonicalRequestBytes",
                spaced_hex(canonical_request.as_bytes()),
            )
    }

    pub fn to_xml(&self) -> String {
        const ROOT: &str = "Error";
        let mut d = Doc::new(ROOT, false);
        d.text("Code", &self.code);
        d.text("Message", &self.message);
        for (name, value) in &self.extra {
            d.text(name, value);
        }
        if let Some(resource) = &self.resource {
            d.text("Resource", resource);
        }
        d.text("RequestId", &self.request_id);
        d.finish(ROOT)
    }
}

/// `41 57 53 34 ...`, as AWS shows `StringToSignBytes`.
fn spaced_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{b:02x}");
    }
    out
}

// ---------------------------------------------------------------------------
// Parsing

/// Why a request body is not the XML document S3 expects. Every variant is
/// answered with `MalformedXML` (400); the text says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlError {
    /// Not well-formed XML (or not UTF-8, or a DTD).
    Syntax(String),
    /// Another document than the one the operation takes.
    WrongRoot {
        expected: &'static str,
        found: String,
    },
    /// A required element is absent.
    Missing {
        element: &'static str,
        parent: String,
    },
    /// An element the schema does not have there, or text where only
    /// elements belong.
    Unexpected { element: String, parent: String },
    /// An element that may appear once appears twice.
    Duplicate { element: String, parent: String },
    /// An element whose value is out of its domain.
    InvalidValue {
        element: &'static str,
        value: String,
        expected: &'static str,
    },
    /// More repeated elements than S3 accepts.
    TooMany { element: &'static str, max: usize },
    /// Nesting or element count past what any S3 request document needs.
    TooComplex(&'static str),
}

impl XmlError {
    /// S3's code for every malformed request document.
    pub fn s3_code(&self) -> &'static str {
        "MalformedXML"
    }

    pub fn http_status(&self) -> u16 {
        400
    }
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the XML you provided was not well-formed or did not validate against our published schema: ")?;
        match self {
            XmlError::Syntax(why) => f.write_str(why),
            XmlError::WrongRoot { expected, found } => {
                write!(f, "the document is <{found}>, expected <{expected}>")
            }
            XmlError::Missing { element, parent } => {
                write!(f, "<{parent}> lacks its <{element}>")
            }
            XmlError::Unexpected { element, parent } => {
                write!(f, "<{parent}> may not contain {element}")
            }
            XmlError::Duplicate { element, parent } => {
                write!(f, "<{parent}> has more than one <{element}>")
            }
            XmlError::InvalidValue {
                element,
                value,
                expected,
            } => {
                let shown: String = value.chars().take(64).collect();
                write!(f, "<{element}> is {shown:?}; expected {expected}")
            }
            XmlError::TooMany { element, max } => {
                write!(f, "more than {max} <{element}> elements")
            }
            XmlError::TooComplex(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for XmlError {}

type XmlResult<T> = Result<T, XmlError>;

/// No S3 request document nests deeper than this.
const MAX_DEPTH: usize = 16;
/// 10,000 parts of a few elements each fit comfortably.
const MAX_ELEMENTS: usize = 100_000;

/// A parsed element: its local name (any namespace prefix dropped, so that
/// documents are accepted with or without the S3 namespace), its text and
/// its children.
#[derive(Debug, Default)]
struct Node {
    name: String,
    text: String,
    children: Vec<Node>,
}

impl Node {
    /// The text of a leaf element; child elements are an error.
    fn leaf(&self, parent: &str) -> XmlResult<&str> {
        match self.children.first() {
            Some(child) => Err(XmlError::Unexpected {
                element: format!("<{}>", child.name),
                parent: format!("{parent}/{}", self.name),
            }),
            None => Ok(&self.text),
        }
    }

    /// Checks that an element holding elements has no text of its own.
    fn container(&self) -> XmlResult<&[Node]> {
        if !self.text.trim().is_empty() {
            return Err(XmlError::Unexpected {
                element: "text".into(),
                parent: self.name.clone(),
            });
        }
        Ok(&self.children)
    }

    fn unexpected(&self, child: &Node) -> XmlError {
        XmlError::Unexpected {
            element: format!("<{}>", child.name),
            parent: self.name.clone(),
        }
    }

    fn duplicate(&self, child: &Node) -> XmlError {
        XmlError::Duplicate {
            element: child.name.clone(),
            parent: self.name.clone(),
        }
    }
}

/// Stores a leaf's text in a slot that must still be empty.
fn set_once(slot: &mut Option<String>, parent: &Node, child: &Node) -> XmlResult<()> {
    if slot.is_some() {
        return Err(parent.duplicate(child));
    }
    *slot = Some(child.leaf(&parent.name)?.to_owned());
    Ok(())
}

fn syntax(what: impl fmt::Display, position: u64) -> XmlError {
    XmlError::Syntax(format!("{what} (at byte {position})"))
}

/// Reads a whole document into a tree of [`Node`]s, checking well-formedness
/// (matching end tags, a single root, known entities) and bounding depth and
/// size. DTDs are refused: S3 documents have none, and they are the usual
/// road to entity-expansion attacks.
fn parse_tree(body: &[u8]) -> XmlResult<Node> {
    let text = std::str::from_utf8(body)
        .map_err(|e| XmlError::Syntax(format!("the body is not UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.allow_unmatched_ends = false;
    config.allow_dangling_amp = false;
    config.expand_empty_elements = false;

    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut elements = 0usize;
    loop {
        let position = reader.buffer_position();
        let event = reader.read_event().map_err(|e| syntax(e, position))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if root.is_some() {
                    return Err(syntax("an element after the root element", position));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooComplex("the elements nest too deeply"));
                }
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(XmlError::TooComplex("the document has too many elements"));
                }
                for attribute in e.attributes() {
                    let attribute = attribute.map_err(|e| syntax(e, position))?;
                    attribute
                        .unescape_value()
                        .map_err(|e| syntax(e, position))?;
                }
                let name = std::str::from_utf8(e.local_name().as_ref())
                    .map_err(|e| syntax(e, position))?
                    .to_owned();
                let node = Node {
                    name,
                    ..Node::default()
                };
                if matches!(event, Event::Start(_)) {
                    stack.push(node);
                } else {
                    attach(&mut stack, &mut root, node);
                }
            }
            Event::End(_) => match stack.pop() {
                Some(node) => attach(&mut stack, &mut root, node),
                None => return Err(syntax("an end tag without its start", position)),
            },
            Event::Text(t) => {
                let t = t.xml10_content().map_err(|e| syntax(e, position))?;
                push_text(&mut stack, &t, position)?;
            }
            Event::CData(c) => {
                let c = c.decode().map_err(|e| syntax(e, position))?;
                push_text(&mut stack, &c, position)?;
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| syntax(e, position))? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| syntax(e, position))?;
                        match quick_xml::escape::resolve_xml_entity(&name) {
                            Some(v) => v.to_owned(),
                            None => {
                                return Err(syntax(
                                    format!("the entity &{name}; is not defined"),
                                    position,
                                ))
                            }
                        }
                    }
                };
                push_text(&mut stack, &resolved, position)?;
            }
            Event::DocType(_) => {
                return Err(syntax(
                    "document type declarations are not accepted",
                    position,
                ))
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(XmlError::Syntax(format!(
            "the document ends inside <{}>",
            open.name
        )));
    }
    root.ok_or_else(|| XmlError::Syntax("the body holds no XML element".into()))
}

fn attach(stack: &mut [Node], root: &mut Option<Node>, node: Node) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => *root = Some(node),
    }
}

fn push_text(stack: &mut [Node], text: &str, position: u64) -> XmlResult<()> {
    match stack.last_mut() {
        Some(node) => {
            node.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(syntax("text outside the root element", position)),
    }
}

fn parse_root(body: &[u8], expected: &'static str) -> XmlResult<Node> {
    let root = parse_tree(body)?;
    if root.name != expected {
        return Err(XmlError::WrongRoot {
            expected,
            found: root.name,
        });
    }
    Ok(root)
}

/// One `<Part>` of a CompleteMultipartUpload request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    /// 1..=10000.
    pub part_number: u32,
    /// Without the quotes, which clients may or may not send.
    pub etag: String,
    /// As sent (base64); checking them against the stored parts is the engine's job.
    pub checksums: Checksums,
}

/// The body of `POST /bucket/key?uploadId=...`. The parts are in the order
/// sent: that they ascend (`InvalidPartOrder`) and exist (`InvalidPart`) is
/// for the engine to check, since S3 answers those with their own codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteMultipartUpload {
    pub parts: Vec<CompletedPart>,
}

impl CompleteMultipartUpload {
    pub fn from_xml(body: &[u8]) -> Result<CompleteMultipartUpload, XmlError> {
        const ROOT: &str = "CompleteMultipartUpload";
        let root = parse_root(body, ROOT)?;
        let mut parts = Vec::new();
        for child in root.container()? {
            if child.name != "Part" {
                return Err(root.unexpected(child));
            }
            if parts.len() >= MAX_PART_NUMBER as usize {
                return Err(XmlError::TooMany {
                    element: "Part",
                    max: MAX_PART_NUMBER as usize,
                });
            }
            parts.push(completed_part(child)?);
        }
        if parts.is_empty() {
            return Err(XmlError::Missing {
                element: "Part",
                parent: ROOT.into(),
            });
        }
        Ok(CompleteMultipartUpload { parts })
    }
}

fn completed_part(part: &Node) -> XmlResult<CompletedPart> {
    let mut number = None;
    let mut etag = None;
    let mut checksums = Checksums::default();
    for child in part.container()? {
        match child.name.as_str() {
            "PartNumber" => set_once(&mut number, part, child)?,
            "ETag" => set_once(&mut etag, part, child)?,
            name => match checksums.slot(name) {
                Some(slot) => set_once(slot, part, child)?,
                None => return Err(part.unexpected(child)),
            },
        }
    }
    let number = number.ok_or_else(|| XmlError::Missing {
        element: "PartNumber",
        parent: "Part".into(),
    })?;
    let part_number = parse_part_number(&number)?;
    let etag = etag.ok_or_else(|| XmlError::Missing {
        element: "ETag",
        parent: "Part".into(),
    })?;
    let trimmed = etag.trim();
    let unquoted = trimmed
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(trimmed);
    if unquoted.is_empty() || unquoted.contains('"') {
        return Err(XmlError::InvalidValue {
            element: "ETag",
            value: etag,
            expected: "an entity tag, quoted or not",
        });
    }
    for (_, value) in checksums.fields() {
        if value.is_some_and(|v| v.trim().is_empty()) {
            return Err(XmlError::InvalidValue {
                element: "Checksum",
                value: String::new(),
                expected: "a base64 checksum",
            });
        }
    }
    let trim = |v: &mut Option<String>| {
        if let Some(s) = v {
            *s = s.trim().to_owned();
        }
    };
    trim(&mut checksums.crc32);
    trim(&mut checksums.crc32c);
    trim(&mut checksums.crc64nvme);
    trim(&mut checksums.sha1);
    trim(&mut checksums.sha256);
    Ok(CompletedPart {
        part_number,
        etag: unquoted.to_owned(),
        checksums,
    })
}

fn parse_part_number(text: &str) -> XmlResult<u32> {
    let t = text.trim();
    let invalid = || XmlError::InvalidValue {
        element: "PartNumber",
        value: text.to_owned(),
        expected: "an integer from 1 to 10000",
    };
    // Digits only: `+5` or `5.0` are not part numbers, and a long run of
    // digits must not overflow.
    if t.is_empty() || t.len() > 5 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let n: u32 = t.parse().map_err(|_| invalid())?;
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(n)
    } else {
        Err(invalid())
    }
}

/// One `<Object>` of a multi-object delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectIdentifier {
    /// Exactly as sent: keys may begin or end with spaces.
    pub key: String,
    pub version_id: Option<String>,
    /// A conditional delete (`ETag` match); handlers that do not support it
    /// must refuse rather than delete unconditionally.
    pub etag: Option<String>,
}

/// The body of `POST /bucket?delete`: 1 to 1000 keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub quiet: bool,
    pub objects: Vec<ObjectIdentifier>,
}

impl Delete {
    pub fn from_xml(body: &[u8]) -> Result<Delete, XmlError> {
        const ROOT: &str = "Delete";
        let root = parse_root(body, ROOT)?;
        let mut quiet = None;
        let mut objects = Vec::new();
        for child in root.container()? {
            match child.name.as_str() {
                "Object" => {
                    if objects.len() >= MAX_DELETE_OBJECTS {
                        return Err(XmlError::TooMany {
                            element: "Object",
                            max: MAX_DELETE_OBJECTS,
                        });
                    }
                    objects.push(object_identifier(child)?);
                }
                "Quiet" => set_once(&mut quiet, &root, child)?,
                _ => return Err(root.unexpected(child)),
            }
        }
        let quiet = match quiet.as_deref().map(str::trim) {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(XmlError::InvalidValue {
                    element: "Quiet",
                    value: v.to_owned(),
                    expected: "true or false",
                })
            }
        };
        if objects.is_empty() {
            return Err(XmlError::Missing {
                element: "Object",
                parent: ROOT.into(),
            });
        }
        Ok(Delete { quiet, objects })
    }
}

fn object_identifier(object: &Node) -> XmlResult<ObjectIdentifier> {
    let mut key = None;
    let mut version_id = None;
    let mut etag = None;
    for child in object.container()? {
        match child.name.as_str() {
            "Key" => set_once(&mut key, object, child)?,
            "VersionId" => set_once(&mut version_id, object, child)?,
            "ETag" => set_once(&mut etag, object, child)?,
            _ => return Err(object.unexpected(child)),
        }
    }
    let key = key.ok_or_else(|| XmlError::Missing {
        element: "Key",
        parent: "Object".into(),
    })?;
    Ok(ObjectIdentifier {
        key,
        version_id,
        etag,
    })
}

/// The optional body of `PUT /bucket` (CreateBucket).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateBucketConfiguration {
    /// `None` when absent or empty, which S3 reads as `us-east-1`.
    pub location_constraint: Option<String>,
}

impl CreateBucketConfiguration {
    /// An empty (or whitespace-only) body is the default configuration.
    pub fn from_xml(body: &[u8]) -> Result<CreateBucketConfiguration, XmlError> {
        const ROOT: &str = "CreateBucketConfiguration";
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(CreateBucketConfiguration::default());
        }
        let root = parse_root(body, ROOT)?;
        let mut location = None;
        for child in root.container()? {
            match child.name.as_str() {
                "LocationConstraint" => set_once(&mut location, &root, child)?,
                _ => return Err(root.unexpected(child)),
            }
        }
        let location_constraint = location
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty());
        Ok(CreateBucketConfiguration {
            location_constraint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
    }

    const NS: &str = "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"";

    fn owner() -> Owner {
        Owner {
            id: "p1".into(),
            display_name: "alice".into(),
        }
    }

    // -- rendering ----------------------------------------------------------

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        let when = Utc
            .with_ymd_and_hms(2026, 11, 27, 3, 36, 8)
            .single()
            .unwrap_or_default();
        assert_eq!(timestamp(&when), "2026-11-27T03:36:08.000Z");
        let with_ms = when + chrono::Duration::milliseconds(42);
        assert_eq!(timestamp(&with_ms), "2026-11-27T03:36:08.042Z");
    }

    #[test]
    fn list_buckets() {
        let doc = ListAllMyBucketsResult {
            owner: owner(),
            buckets: vec![BucketEntry {
                name: "b1".into(),
                creation_date: t(0),
            }],
        };
        assert_eq!(
            doc.to_xml(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult {NS}>\
                 <Owner><ID>p1</ID><DisplayName>alice</DisplayName></Owner>\
                 <Buckets><Bucket><Name>b1</Name><CreationDate>1970-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets>\
                 </ListAllMyBucketsResult>"
            )
        );
        let empty = ListAllMyBucketsResult {
            owner: owner(),
            buckets: vec![],
        };
        assert!(empty.to_xml().contains("<Buckets></Buckets>"));
    }

    fn entry(key: &str) -> ObjectEntry {
        ObjectEntry {
            key: key.into(),
            last_modified: t(1),
            etag: "d41d8cd98f00b204e9800998ecf8427e".into(),
            size: 0,
            storage_class: "STANDARD".into(),
            owner: Some(owner()),
        }
    }

    #[test]
    fn list_objects_v1() {
        let doc = ListBucketResult {
            name: "b".into(),
            prefix: "".into(),
            delimiter: Some("/".into()),
            max_keys: 1000,
            is_truncated: true,
            encoding_type: None,
            contents: vec![entry("a&b<c>\"'")],
            common_prefixes: vec!["dir/".into()],
            version: ListVersion::V1 {
                marker: "".into(),
                next_marker: Some("dir/".into()),
            },
        };
        assert_eq!(
            doc.to_xml(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult {NS}>\
                 <Name>b</Name><Prefix></Prefix><Marker></Marker><NextMarker>dir/</NextMarker>\
                 <MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>\
                 <Contents><Key>a&amp;b&lt;c&gt;&quot;&apos;</Key><LastModified>1970-01-01T00:00:01.000Z</LastModified>\
                 <ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass>\
                 <Owner><ID>p1</ID><DisplayName>alice</DisplayName></Owner></Contents>\
                 <CommonPrefixes><Prefix>dir/</Prefix></CommonPrefixes></ListBucketResult>"
            )
        );
        // Without a delimiter (or untruncated), no NextMarker.
        let mut plain = doc.clone();
        plain.delimiter = None;
        assert!(!plain.to_xml().contains("NextMarker"));
        let mut complete = doc;
        complete.is_truncated = false;
        assert!(!complete.to_xml().contains("NextMarker"));
    }

    #[test]
    fn list_objects_v2_url_encoded() {
        let mut e = entry("dir/a b+c\u{1}é");
        e.owner = None;
        let doc = ListBucketResult {
            name: "b".into(),
            prefix: "dir/".into(),
            delimiter: Some("/".into()),
            max_keys: 2,
            is_truncated: false,
            encoding_type: Some(EncodingType::Url),
            contents: vec![e],
            common_prefixes: vec!["dir/sub dir/".into()],
            version: ListVersion::V2 {
                continuation_token: Some("tok&".into()),
                next_continuation_token: None,
                start_after: Some("dir/ä".into()),
            },
        };
        assert_eq!(
            doc.to_xml(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult {NS}>\
                 <Name>b</Name><Prefix>dir/</Prefix><ContinuationToken>tok&amp;</ContinuationToken>\
                 <KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter>\
                 <EncodingType>url</EncodingType><IsTruncated>false</IsTruncated><StartAfter>dir/%C3%A4</StartAfter>\
                 <Contents><Key>dir/a%20b%2Bc%01%C3%A9</Key><LastModified>1970-01-01T00:00:01.000Z</LastModified>\
                 <ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>\
                 <CommonPrefixes><Prefix>dir/sub%20dir/</Prefix></CommonPrefixes></ListBucketResult>"
            )
        );
    }

    #[test]
    fn control_characters_without_url_encoding() {
        let mut s = String::new();
        escape_into(&mut s, "a\u{1}b\rc\td\ne\u{ffff}");
        assert_eq!(s, "a&#x1;b&#13;c\td\ne&#xFFFF;");
    }

    #[test]
    fn rendered_documents_parse_back() {
        // Every rendered document is well-formed (for the characters XML 1.0 allows).
        let key = "k &<>\"' ünïcødé 🎉";
        let docs = [
            ListBucketResult {
                name: "b".into(),
                prefix: key.into(),
                delimiter: None,
                max_keys: 1,
                is_truncated: false,
                encoding_type: None,
                contents: vec![entry(key)],
                common_prefixes: vec![],
                version: ListVersion::V1 {
                    marker: key.into(),
                    next_marker: None,
                },
            }
            .to_xml(),
            InitiateMultipartUploadResult {
                bucket: "b".into(),
                key: key.into(),
                upload_id: "u".into(),
            }
            .to_xml(),
            ErrorResponse::new("NoSuchKey", "gone", "r1")
                .with("Key", key)
                .to_xml(),
        ];
        for doc in docs {
            let tree = parse_tree(doc.as_bytes());
            assert!(tree.is_ok(), "{doc}: {tree:?}");
        }
        let tree = parse_tree(
            InitiateMultipartUploadResult {
                bucket: "b".into(),
                key: key.into(),
                upload_id: "u".into(),
            }
            .to_xml()
            .as_bytes(),
        );
        let key_text = tree
            .ok()
            .and_then(|n| n.children.into_iter().find(|c| c.name == "Key"))
            .map(|n| n.text);
        assert_eq!(key_text.as_deref(), Some(key));
    }

    #[test]
    fn multipart_documents() {
        let uploads = ListMultipartUploadsResult {
            bucket: "b".into(),
            key_marker: "".into(),
            upload_id_marker: "".into(),
            next_key_marker: Some("k".into()),
            next_upload_id_marker: Some("u1".into()),
            delimiter: None,
            prefix: "".into(),
            max_uploads: 1000,
            is_truncated: false,
            encoding_type: None,
            uploads: vec![UploadEntry {
                key: "k".into(),
                upload_id: "u1".into(),
                initiator: owner(),
                owner: owner(),
                storage_class: "STANDARD".into(),
                initiated: t(2),
            }],
            common_prefixes: vec![],
        };
        assert_eq!(
            uploads.to_xml(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListMultipartUploadsResult {NS}>\
                 <Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>\
                 <NextKeyMarker>k</NextKeyMarker><NextUploadIdMarker>u1</NextUploadIdMarker>\
                 <Prefix></Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>\
                 <Upload><Key>k</Key><UploadId>u1</UploadId>\
                 <Initiator><ID>p1</ID><DisplayName>alice</DisplayName></Initiator>\
                 <Owner><ID>p1</ID><DisplayName>alice</DisplayName></Owner>\
                 <StorageClass>STANDARD</StorageClass><Initiated>1970-01-01T00:00:02.000Z</Initiated></Upload>\
                 </ListMultipartUploadsResult>"
            )
        );

        let parts = ListPartsResult {
            bucket: "b".into(),
            key: "k".into(),
            upload_id: "u1".into(),
            part_number_marker: 0,
            next_part_number_marker: Some(1),
            max_parts: 1000,
            is_truncated: false,
            parts: vec![PartEntry {
                part_number: 1,
                last_modified: t(3),
                etag: "\"abc\"".into(),
                size: 5_242_880,
                checksums: Checksums {
                    crc32: Some("i9aeUg==".into()),
                    ..Checksums::default()
                },
            }],
            initiator: owner(),
            owner: owner(),
            storage_class: "STANDARD".into(),
            checksum_algorithm: Some("CRC32".into()),
        };
        assert_eq!(
            parts.to_xml(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListPartsResult {NS}>\
                 <Bucket>b</Bucket><Key>k</Key><UploadId>u1</UploadId><PartNumberMarker>0</PartNumberMarker>\
                 <NextPartNumberMarker>1</NextPartNumberMarker><MaxParts>1000</MaxParts><IsTruncated>false</IsTruncated>\
                 <Part><PartNumber>1</PartNumber><LastModified>1970-01-01T00:00:03.000Z</LastModified>\
                 <ETag>&quot;abc&quot;</ETag><Size>5242880</Size><ChecksumCRC32>i9aeUg==</ChecksumCRC32></Part>\
                 <Initiator><ID>p1</ID><DisplayName>alice</DisplayName></Initiator>\
                 <Owner><ID>p1</ID><DisplayName>alice</DisplayName></Owner>\
                 <StorageClass>STANDARD</StorageClass><ChecksumAlgorithm>CRC32</ChecksumAlgorithm></ListPartsResult>"
            )
        );

        assert_eq!(
            InitiateMultipartUploadResult {
                bucket: "b".into(),
                key: "a/b".into(),
                upload_id: "u1".into()
            }
            .to_xml(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult {NS}>\
                 <Bucket>b</Bucket><Key>a/b</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>"
            )
        );

        let complete = CompleteMultipartUploadResult {
            location: "http://s3.nuage.test/b/k".into(),
            bucket: "b".into(),
            key: "k".into(),
            etag: "abc-2".into(),
            checksums: Checksums {
                sha256: Some("x=".into()),
                ..Checksums::default()
            },
        };
        assert_eq!(
            complete.to_xml(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult {NS}>\
                 <Location>http://s3.nuage.test/b/k</Location><Bucket>b</Bucket><Key>k</Key>\
                 <ETag>&quot;abc-2&quot;</ETag><ChecksumSHA256>x=</ChecksumSHA256></CompleteMultipartUploadResult>"
            )
        );
    }

    #[test]
    fn copy_results() {
        assert_eq!(
            CopyObjectResult {
                last_modified: t(4),
                etag: "e".into()
            }
            .to_xml(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult {NS}>\
                 <LastModified>1970-01-01T00:00:04.000Z</LastModified><ETag>&quot;e&quot;</ETag></CopyObjectResult>"
            )
        );
        assert_eq!(
            CopyPartResult {
                last_modified: t(4),
                etag: "\"e\"".into()
            }
            .to_xml(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyPartResult {NS}>\
                 <LastModified>1970-01-01T00:00:04.000Z</LastModified><ETag>&quot;e&quot;</ETag></CopyPartResult>"
            )
        );
    }

    #[test]
    fn delete_result() {
        let result = DeleteResult {
            quiet: false,
            deleted: vec![DeletedEntry {
                key: "a".into(),
                version_id: None,
            }],
            errors: vec![DeleteErrorEntry {
                key: "b".into(),
                version_id: None,
                code: "AccessDenied".into(),
                message: "Access Denied".into(),
            }],
        };
        assert_eq!(
            result.to_xml(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult {NS}>\
                 <Deleted><Key>a</Key></Deleted>\
                 <Error><Key>b</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>"
            )
        );
        let quiet = DeleteResult {
            quiet: true,
            ..result
        };
        assert!(!quiet.to_xml().contains("<Deleted>"));
        assert!(quiet.to_xml().contains("<Error><Key>b</Key>"));
    }

    #[test]
    fn location_constraint() {
        assert_eq!(
            LocationConstraint {
                region: "us-east-1".into()
            }
            .to_xml(),
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint {NS}/>")
        );
        assert_eq!(
            LocationConstraint {
                region: "nuage-1".into()
            }
            .to_xml(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint {NS}>nuage-1</LocationConstraint>"
            )
        );
    }

    #[test]
    fn access_control_policy() {
        let private = AccessControlPolicy {
            owner: owner(),
            acl: Acl::Private,
        };
        let xsi = "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";
        let owner_grant = format!(
            "<Grant><Grantee {xsi} xsi:type=\"CanonicalUser\"><ID>p1</ID><DisplayName>alice</DisplayName></Grantee>\
             <Permission>FULL_CONTROL</Permission></Grant>"
        );
        assert_eq!(
            private.to_xml(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AccessControlPolicy {NS}>\
                 <Owner><ID>p1</ID><DisplayName>alice</DisplayName></Owner>\
                 <AccessControlList>{owner_grant}</AccessControlList></AccessControlPolicy>"
            )
        );
        let public = AccessControlPolicy {
            acl: Acl::PublicRead,
            ..private
        };
        assert_eq!(
            public.to_xml(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AccessControlPolicy {NS}>\
                 <Owner><ID>p1</ID><DisplayName>alice</DisplayName></Owner>\
                 <AccessControlList>{owner_grant}\
                 <Grant><Grantee {xsi} xsi:type=\"Group\"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>\
                 <Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>"
            )
        );
        let authenticated = AccessControlPolicy {
            acl: Acl::AuthenticatedRead,
            ..public.clone()
        };
        assert!(authenticated.to_xml().contains(
            "<URI>http://acs.amazonaws.com/groups/global/AuthenticatedUsers</URI></Grantee><Permission>READ</Permission>"
        ));
        let read_write = AccessControlPolicy {
            acl: Acl::PublicReadWrite,
            ..public.clone()
        };
        assert!(read_write
            .to_xml()
            .contains("<Permission>WRITE</Permission>"));
        assert_eq!(canned_acl("public-read"), Some(Acl::PublicRead));
        assert_eq!(
            canned_acl("authenticated-read"),
            Some(Acl::AuthenticatedRead)
        );
        assert_eq!(canned_acl("bucket-owner-full-control"), Some(Acl::Private));
        assert_eq!(canned_acl("public"), None);
    }

    #[test]
    fn error_document() {
        let e = ErrorResponse::new(
            "NoSuchBucket",
            "The specified bucket does not exist",
            "req-1",
        )
        .resource("/nope")
        .with("BucketName", "nope");
        assert_eq!(
            e.to_xml(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code>\
             <Message>The specified bucket does not exist</Message><BucketName>nope</BucketName>\
             <Resource>/nope</Resource><RequestId>req-1</RequestId></Error>"
        );
        let sig = ErrorResponse::new("SignatureDoesNotMatch", "m", "r")
            .signature_mismatch("AK", "AWS4\nx", "00", "GET\n/");
        let xml = sig.to_xml();
        assert!(
            xml.contains("<StringToSign>AWS4\nx</StringToSign>"),
            "{xml}"
        );
        assert!(xml.contains("<StringToSignBytes>41 57 53 34 0a 78</StringToSignBytes>"));
        assert!(xml.contains("<CanonicalRequest>GET\n/</CanonicalRequest>"));
        assert!(xml.contains("<AWSAccessKeyId>AK</AWSAccessKeyId>"));
    }

    // -- parsing ------------------------------------------------------------

    #[test]
    fn complete_multipart_as_botocore_sends_it() {
        let body = br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>"abc"</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>"#;
        let parsed = CompleteMultipartUpload::from_xml(body);
        assert_eq!(
            parsed,
            Ok(CompleteMultipartUpload {
                parts: vec![CompletedPart {
                    part_number: 1,
                    etag: "abc".into(),
                    checksums: Checksums::default()
                }]
            })
        );
    }

    #[test]
    fn complete_multipart_variants() {
        // No namespace, unquoted and entity-quoted ETags, checksums, whitespace, a prefix.
        let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUpload>\n  \
            <Part><PartNumber> 1 </PartNumber><ETag>abc</ETag><ChecksumCRC32>i9aeUg==</ChecksumCRC32></Part>\n  \
            <Part><PartNumber>2</PartNumber><ETag>&quot;def-1&quot;</ETag></Part>\n</CompleteMultipartUpload>";
        let parsed = CompleteMultipartUpload::from_xml(body);
        let parts = parsed.map(|c| c.parts).unwrap_or_default();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].etag, "abc");
        assert_eq!(parts[0].checksums.crc32.as_deref(), Some("i9aeUg=="));
        assert_eq!(parts[1].part_number, 2);
        assert_eq!(parts[1].etag, "def-1");

        let prefixed = br#"<s3:CompleteMultipartUpload xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/"><s3:Part><s3:PartNumber>10000</s3:PartNumber><s3:ETag>"x"</s3:ETag></s3:Part></s3:CompleteMultipartUpload>"#;
        assert!(CompleteMultipartUpload::from_xml(prefixed).is_ok());
    }

    #[test]
    fn complete_multipart_malformed() {
        let part = |inner: &str| {
            format!("<CompleteMultipartUpload><Part>{inner}</Part></CompleteMultipartUpload>")
        };
        let bad: Vec<String> = vec![
            "".into(),
            "not xml".into(),
            "<CompleteMultipartUpload></CompleteMultipartUpload>".into(),
            "<CompleteMultipartUpload/>".into(),
            "<Delete><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></Delete>".into(),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part>".into(),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload><x/>".into(),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>junk".into(),
            "<CompleteMultipartUpload>text<Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>".into(),
            "<CompleteMultipartUpload><Other/></CompleteMultipartUpload>".into(),
            "<!DOCTYPE x [<!ENTITY a \"b\">]><CompleteMultipartUpload/>".into(),
            part("<ETag>a</ETag>"),
            part("<PartNumber>1</PartNumber>"),
            part("<PartNumber>1</PartNumber><ETag></ETag>"),
            part("<PartNumber>1</PartNumber><ETag>\"\"</ETag>"),
            part("<PartNumber>0</PartNumber><ETag>a</ETag>"),
            part("<PartNumber>10001</PartNumber><ETag>a</ETag>"),
            part("<PartNumber>-1</PartNumber><ETag>a</ETag>"),
            part("<PartNumber>+1</PartNumber><ETag>a</ETag>"),
            part("<PartNumber>1.0</PartNumber><ETag>a</ETag>"),
            part("<PartNumber>99999999999999999999</PartNumber><ETag>a</ETag>"),
            part("<PartNumber>one</PartNumber><ETag>a</ETag>"),
            part("<PartNumber>1</PartNumber><PartNumber>2</PartNumber><ETag>a</ETag>"),
            part("<PartNumber>1</PartNumber><ETag>a</ETag><ETag>b</ETag>"),
            part("<PartNumber>1</PartNumber><ETag>a</ETag><Size>3</Size>"),
            part("<PartNumber>1</PartNumber><ETag><b>a</b></ETag>"),
            part("<PartNumber>1</PartNumber><ETag>a&bogus;</ETag>"),
            part("<PartNumber>1</PartNumber><ETag>a & b</ETag>"),
            part("<PartNumber>1</PartNumber><ETag>a</ETag><ChecksumCRC32></ChecksumCRC32>"),
            part("<PartNumber>1</PartNumber><ETag>a</Etag>"),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload></CompleteMultipartUpload>".into(),
        ];
        for body in &bad {
            let r = CompleteMultipartUpload::from_xml(body.as_bytes());
            assert!(r.is_err(), "accepted {body:?}: {r:?}");
            if let Err(e) = r {
                assert_eq!(e.s3_code(), "MalformedXML");
                assert_eq!(e.http_status(), 400);
            }
        }
        assert!(CompleteMultipartUpload::from_xml(&[0xff, 0xfe, b'<']).is_err());
        let deep = "<a>".repeat(100);
        assert!(matches!(
            CompleteMultipartUpload::from_xml(deep.as_bytes()),
            Err(XmlError::TooComplex(_))
        ));
    }

    #[test]
    fn delete_as_botocore_sends_it() {
        let body = br#"<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a</Key></Object><Quiet>true</Quiet></Delete>"#;
        assert_eq!(
            Delete::from_xml(body),
            Ok(Delete {
                quiet: true,
                objects: vec![ObjectIdentifier {
                    key: "a".into(),
                    version_id: None,
                    etag: None
                }]
            })
        );
    }

    #[test]
    fn delete_keys_are_kept_exactly() {
        let body = "<Delete><Object><Key> a&amp;b&lt;&#x1;&#13;\u{e9} </Key><VersionId>v1</VersionId></Object>\
                    <Object><Key><![CDATA[<raw>]]></Key></Object></Delete>";
        let parsed = Delete::from_xml(body.as_bytes());
        let objects = parsed.map(|d| d.objects).unwrap_or_default();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].key, " a&b<\u{1}\r\u{e9} ");
        assert_eq!(objects[0].version_id.as_deref(), Some("v1"));
        assert_eq!(objects[1].key, "<raw>");
    }

    #[test]
    fn delete_malformed() {
        let objects = |n: usize| {
            format!(
                "<Delete>{}</Delete>",
                "<Object><Key>k</Key></Object>".repeat(n)
            )
        };
        assert!(Delete::from_xml(objects(1000).as_bytes()).is_ok());
        assert!(matches!(
            Delete::from_xml(objects(1001).as_bytes()),
            Err(XmlError::TooMany { .. })
        ));
        let bad = [
            "<Delete></Delete>".to_string(),
            "<Delete><Quiet>true</Quiet></Delete>".into(),
            "<Delete><Object></Object></Delete>".into(),
            "<Delete><Object><Key>a</Key><Key>b</Key></Object></Delete>".into(),
            "<Delete><Object><Key>a</Key><Size>1</Size></Object></Delete>".into(),
            "<Delete><Object><Key>a</Key></Object><Quiet>yes</Quiet></Delete>".into(),
            "<Delete><Object><Key>a</Key></Object><Quiet>true</Quiet><Quiet>true</Quiet></Delete>"
                .into(),
            "<Delete><Object><Key>a</Key></Object><Extra/></Delete>".into(),
            "<CompleteMultipartUpload><Object><Key>a</Key></Object></CompleteMultipartUpload>"
                .into(),
            "<Delete><Object><Key>a</Key></Object>".into(),
            "<Delete><Object><Key>a</Key></Object></Delete><Delete/>".into(),
            "<Delete><Object><Key>&#0;</Key></Object></Delete>".into(),
        ];
        for body in &bad {
            let r = Delete::from_xml(body.as_bytes());
            assert!(r.is_err(), "accepted {body:?}: {r:?}");
        }
    }

    #[test]
    fn create_bucket_configuration() {
        assert_eq!(
            CreateBucketConfiguration::from_xml(b""),
            Ok(CreateBucketConfiguration::default())
        );
        assert_eq!(
            CreateBucketConfiguration::from_xml(b" \n"),
            Ok(CreateBucketConfiguration::default())
        );
        let body = br#"<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>nuage-1</LocationConstraint></CreateBucketConfiguration>"#;
        assert_eq!(
            CreateBucketConfiguration::from_xml(body),
            Ok(CreateBucketConfiguration {
                location_constraint: Some("nuage-1".into())
            })
        );
        for empty in [
            "<CreateBucketConfiguration/>",
            "<CreateBucketConfiguration><LocationConstraint/></CreateBucketConfiguration>",
        ] {
            assert_eq!(
                CreateBucketConfiguration::from_xml(empty.as_bytes()),
                Ok(CreateBucketConfiguration::default())
            );
        }
        for bad in [
            "<CreateBucketConfiguration><LocationConstraint>a</LocationConstraint><LocationConstraint>b</LocationConstraint></CreateBucketConfiguration>",
            "<CreateBucketConfiguration><Bucket/></CreateBucketConfiguration>",
            "<Configuration/>",
            "nuage-1",
        ] {
            assert!(CreateBucketConfiguration::from_xml(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn encoding_type_and_etags() {
        assert_eq!(EncodingType::parse("url"), Some(EncodingType::Url));
        assert_eq!(EncodingType::parse("URL"), Some(EncodingType::Url));
        assert_eq!(EncodingType::parse("base64"), None);
        assert_eq!(quote_etag("abc"), "\"abc\"");
        assert_eq!(quote_etag("\"abc\""), "\"abc\"");
        assert_eq!(quote_etag("\""), "\"\"\"");
    }
}
