//! The aws CLI's argument syntaxes, so that `nuage run-instances ...` takes
//! what `aws ec2 run-instances ...` takes: the shorthand
//! (`Name=tag:Name,Values=a,b`, `Tags=[{Key=k,Value=v}]`), its JSON
//! alternative, `--count N:M`, and blobs given as `file://`, `fileb://` or
//! literally.
//!
//! Parsers return `Result<_, String>` so clap reports their errors as usage
//! errors (exit 2).

use std::path::PathBuf;

use serde_json::Value;

/// A parsed shorthand value: a scalar, a list or a structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sh {
    Str(String),
    List(Vec<Sh>),
    Map(Vec<(String, Sh)>),
}

impl Sh {
    fn from_json(v: &Value) -> Sh {
        match v {
            Value::Null => Sh::Str(String::new()),
            Value::String(s) => Sh::Str(s.clone()),
            Value::Array(a) => Sh::List(a.iter().map(Sh::from_json).collect()),
            Value::Object(m) => Sh::Map(
                m.iter()
                    .map(|(k, v)| (k.clone(), Sh::from_json(v)))
                    .collect(),
            ),
            other => Sh::Str(other.to_string()),
        }
    }

    /// The value as a list of strings: a scalar is a list of one.
    fn strings(&self, what: &str) -> Result<Vec<String>, String> {
        match self {
            Sh::Str(s) => Ok(vec![s.clone()]),
            Sh::List(l) => l
                .iter()
                .map(|x| match x {
                    Sh::Str(s) => Ok(s.clone()),
                    _ => Err(format!("{what} must be a list of strings")),
                })
                .collect(),
            Sh::Map(_) => Err(format!("{what} must be a string or a list of strings")),
        }
    }

    fn string(&self, what: &str) -> Result<String, String> {
        match self {
            Sh::Str(s) => Ok(s.clone()),
            _ => Err(format!("{what} must be a single string")),
        }
    }
}

/// Characters that end a key or a bare value, or start a structure.
const SPECIAL: &[char] = &['=', ',', '[', ']', '{', '}'];

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected {c:?}")))
        }
    }

    fn error(&self, what: &str) -> String {
        let at: String = self.chars[self.pos.min(self.chars.len())..]
            .iter()
            .collect();
        if at.is_empty() {
            format!("{what} at the end")
        } else {
            format!("{what} at {at:?}")
        }
    }

    /// Whether `Key=` starts at `pos`: what tells a new pair from one more
    /// value of a list (`Values=a,b,Name=...`).
    fn key_at(&self, mut pos: usize) -> bool {
        while self.chars.get(pos).is_some_and(|c| c.is_whitespace()) {
            pos += 1;
        }
        let start = pos;
        while let Some(&c) = self.chars.get(pos) {
            if SPECIAL.contains(&c) || c == '"' || c == '\'' {
                break;
            }
            pos += 1;
        }
        pos > start && self.chars.get(pos) == Some(&'=')
    }

    /// `Key=value,Key=value` up to `close` (or the end at the top level).
    fn pairs(&mut self, close: Option<char>) -> Result<Vec<(String, Sh)>, String> {
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            if close.is_some() && self.peek() == close {
                return Ok(out);
            }
            let start = self.pos;
            while self.peek().is_some_and(|c| !SPECIAL.contains(&c)) {
                self.pos += 1;
            }
            let key: String = self.chars[start..self.pos].iter().collect();
            let key = key.trim().to_string();
            if key.is_empty() || self.peek() != Some('=') {
                self.pos = start;
                return Err(self.error("expected Key=Value"));
            }
            self.pos += 1;
            let value = self.values(close.is_some())?;
            out.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                None if close.is_none() => return Ok(out),
                c if c.is_some() && c == close => return Ok(out),
                _ => return Err(self.error("expected ','")),
            }
        }
    }

    /// One value, or several separated by commas (`Values=a,b`), up to the
    /// next `Key=`.
    fn values(&mut self, nested: bool) -> Result<Sh, String> {
        let mut all = vec![self.value(nested)?];
        loop {
            self.skip_ws();
            if self.peek() != Some(',') || self.key_at(self.pos + 1) {
                break;
            }
            self.pos += 1;
            all.push(self.value(nested)?);
        }
        Ok(if all.len() == 1 {
            all.swap_remove(0)
        } else {
            Sh::List(all)
        })
    }

    fn value(&mut self, nested: bool) -> Result<Sh, String> {
        self.skip_ws();
        match self.peek() {
            Some('[') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.peek() == Some(']') {
                        self.pos += 1;
                        return Ok(Sh::List(items));
                    }
                    if !items.is_empty() {
                        self.expect(',')?;
                    }
                    items.push(self.value(true)?);
                }
            }
            Some('{') => {
                self.pos += 1;
                let m = self.pairs(Some('}'))?;
                self.expect('}')?;
                Ok(Sh::Map(m))
            }
            Some(q @ ('"' | '\'')) => {
                self.pos += 1;
                let mut s = String::new();
                loop {
                    match self.peek() {
                        None => return Err(self.error(&format!("unclosed {q}"))),
                        Some('\\') if self.chars.get(self.pos + 1) == Some(&q) => {
                            s.push(q);
                            self.pos += 2;
                        }
                        Some(c) if c == q => {
                            self.pos += 1;
                            return Ok(Sh::Str(s));
                        }
                        Some(c) => {
                            s.push(c);
                            self.pos += 1;
                        }
                    }
                }
            }
            _ => {
                let mut s = String::new();
                while let Some(c) = self.peek() {
                    if c == ',' || (nested && matches!(c, ']' | '}')) {
                        break;
                    }
                    if c == '\\' {
                        if let Some(&n) = self.chars.get(self.pos + 1) {
                            s.push(n);
                            self.pos += 2;
                            continue;
                        }
                    }
                    s.push(c);
                    self.pos += 1;
                }
                Ok(Sh::Str(s.trim().to_string()))
            }
        }
    }
}

/// Parses `Key=value,...` shorthand, or a JSON object or list of objects.
/// Gives the structures found: one for shorthand.
pub fn parse(s: &str) -> Result<Vec<Vec<(String, Sh)>>, String> {
    let t = s.trim();
    if t.starts_with('{') || t.starts_with('[') {
        let v: Value = serde_json::from_str(t).map_err(|e| format!("invalid JSON: {e}"))?;
        let objects = match &v {
            Value::Array(a) => a.iter().collect(),
            _ => vec![&v],
        };
        return objects
            .into_iter()
            .map(|o| match Sh::from_json(o) {
                Sh::Map(m) => Ok(m),
                _ => Err("the JSON must be an object or a list of objects".to_string()),
            })
            .collect();
    }
    let mut p = Parser {
        chars: t.chars().collect(),
        pos: 0,
    };
    Ok(vec![p.pairs(None)?])
}

/// Takes the named keys out of a structure (case-insensitively), refusing
/// any other key.
fn fields<const N: usize>(
    pairs: Vec<(String, Sh)>,
    keys: [&str; N],
    what: &str,
) -> Result<[Option<Sh>; N], String> {
    let mut out: [Option<Sh>; N] = std::array::from_fn(|_| None);
    for (k, v) in pairs {
        let Some(i) = keys.iter().position(|x| x.eq_ignore_ascii_case(&k)) else {
            return Err(format!(
                "{what}: unknown key {k:?} (expected {})",
                keys.join(", ")
            ));
        };
        if out[i].replace(v).is_some() {
            return Err(format!("{what}: {k} is given twice"));
        }
    }
    Ok(out)
}

/// One `--filters` entry: `Name=instance-state-name,Values=running,stopped`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

/// The filters in one `--filters` word (a JSON list may hold several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filters(pub Vec<Filter>);

/// Parses one `--filters` word, whatever the filter names.
pub fn parse_filters(s: &str) -> Result<Filters, String> {
    let mut out = Vec::new();
    for m in parse(s)? {
        let [name, values] = fields(m, ["Name", "Values"], "--filters")?;
        let name = name
            .ok_or("--filters: Name is missing (Name=NAME,Values=V1,V2)")?
            .string("--filters Name")?;
        let values = values
            .ok_or_else(|| format!("--filters: filter {name} has no Values"))?
            .strings("--filters Values")?;
        if values.iter().all(String::is_empty) {
            return Err(format!("--filters: filter {name} has no Values"));
        }
        out.push(Filter { name, values });
    }
    Ok(Filters(out))
}

/// The filter names `describe-instances` translates into query parameters.
pub const INSTANCE_FILTERS: &[&str] = &[
    "instance-state-name",
    "instance-type",
    "image-id",
    "availability-zone",
    "instance-id",
    "tag-key",
    "tag:KEY",
];

/// The instance states, as EC2 names them.
pub const STATES: &[&str] = &[
    "pending",
    "running",
    "stopping",
    "stopped",
    "shutting-down",
    "terminated",
];

/// Parses a `describe-instances --filters` word, refusing filters the
/// server cannot apply (rather than silently showing everything).
pub fn parse_instance_filters(s: &str) -> Result<Filters, String> {
    let f = parse_filters(s)?;
    for x in &f.0 {
        let known = INSTANCE_FILTERS.contains(&x.name.as_str())
            || x.name.strip_prefix("tag:").is_some_and(|k| !k.is_empty());
        if !known {
            return Err(format!(
                "unknown filter name {:?}; instances can be filtered by {}",
                x.name,
                INSTANCE_FILTERS.join(", ")
            ));
        }
        if x.name == "instance-state-name" {
            if let Some(bad) = x.values.iter().find(|v| !STATES.contains(&v.as_str())) {
                return Err(format!(
                    "{bad:?} is not an instance state (one of {})",
                    STATES.join(", ")
                ));
            }
        }
    }
    Ok(f)
}

/// The filter names `describe-images` applies.
pub const IMAGE_FILTERS: &[&str] = &[
    "name",
    "image-id",
    "state",
    "architecture",
    "visibility",
    "is-public",
    "owner-id",
];

/// Parses a `describe-images --filters` word.
pub fn parse_image_filters(s: &str) -> Result<Filters, String> {
    let f = parse_filters(s)?;
    if let Some(x) =
        f.0.iter()
            .find(|x| !IMAGE_FILTERS.contains(&x.name.as_str()))
    {
        return Err(format!(
            "unknown filter name {:?}; images can be filtered by {}",
            x.name,
            IMAGE_FILTERS.join(", ")
        ));
    }
    Ok(f)
}

/// Query parameters for `GET /instances` from `--instance-ids` (sent as
/// `instance_ids`, which must all exist) and `--filters`, in the order
/// given. A filter name given twice keeps the values
/// common to both, as EC2 ANDs filters; `None` when that leaves nothing,
/// so that no instance can match.
pub fn instance_query(ids: &[String], filters: &[Filter]) -> Option<Vec<(String, String)>> {
    let mut merged: Vec<(String, Vec<String>)> = Vec::new();
    for f in filters {
        let mut values: Vec<String> = Vec::new();
        for v in &f.values {
            if !values.contains(v) {
                values.push(v.clone());
            }
        }
        match merged.iter_mut().find(|(n, _)| *n == f.name) {
            Some((_, have)) => have.retain(|v| values.contains(v)),
            None => merged.push((f.name.clone(), values)),
        }
    }
    if merged.iter().any(|(_, v)| v.is_empty()) {
        return None;
    }
    let mut query: Vec<(String, String)> = Vec::new();
    if !ids.is_empty() {
        // Named ids must all exist (EC2's InvalidInstanceID.NotFound), unlike
        // the instance-id filter.
        query.push(("instance_ids".into(), ids.join(",")));
    }
    query.extend(merged.into_iter().map(|(n, v)| (n, v.join(","))));
    Some(query)
}

/// `--tag-specifications`: the instance tags, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSpec(pub Vec<(String, String)>);

/// Parses `ResourceType=instance,Tags=[{Key=Name,Value=web},...]` (or its
/// JSON). Only instances take tags here, so other resource types are
/// refused rather than dropped.
pub fn parse_tag_spec(s: &str) -> Result<TagSpec, String> {
    let mut tags = Vec::new();
    for m in parse(s)? {
        let [rtype, t] = fields(m, ["ResourceType", "Tags"], "--tag-specifications")?;
        let rtype = rtype
            .ok_or("--tag-specifications: ResourceType is missing (ResourceType=instance,Tags=[{Key=K,Value=V}])")?
            .string("ResourceType")?;
        if rtype != "instance" {
            return Err(format!(
                "--tag-specifications: only ResourceType=instance can be tagged, not {rtype:?}"
            ));
        }
        let list = match t.ok_or("--tag-specifications: Tags is missing")? {
            Sh::List(l) => l,
            m @ Sh::Map(_) => vec![m],
            Sh::Str(_) => {
                return Err("--tag-specifications: Tags must be [{Key=K,Value=V},...]".into())
            }
        };
        for tag in list {
            let Sh::Map(m) = tag else {
                return Err("--tag-specifications: each tag must be {Key=K,Value=V}".into());
            };
            let [k, v] = fields(m, ["Key", "Value"], "--tag-specifications")?;
            let k = k
                .ok_or("--tag-specifications: a tag has no Key")?
                .string("Key")?;
            if k.is_empty() {
                return Err("--tag-specifications: a tag Key is empty".into());
            }
            let v = match v {
                Some(v) => v.string("Value")?,
                None => String::new(),
            };
            tags.push((k, v));
        }
    }
    Ok(TagSpec(tags))
}

/// One `--ip-permissions` entry, as `aws ec2 authorize-security-group-*`
/// takes it: a protocol, a port range (or ICMP type and code) and its peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpPermission {
    pub protocol: String,
    pub from_port: Option<i64>,
    pub to_port: Option<i64>,
    /// `(CidrIp, Description)`.
    pub cidrs: Vec<(String, String)>,
    /// `(GroupId or GroupName, Description)`.
    pub groups: Vec<(String, String)>,
}

/// The permissions of one `--ip-permissions` word (a JSON list may hold
/// several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpPermissions(pub Vec<IpPermission>);

/// The structures of a list value (a single structure is a list of one).
fn maps(v: Sh, what: &str) -> Result<Vec<Vec<(String, Sh)>>, String> {
    let list = match v {
        Sh::List(l) => l,
        m @ Sh::Map(_) => vec![m],
        Sh::Str(_) => return Err(format!("--ip-permissions: {what} must be [{{...}},...]")),
    };
    list.into_iter()
        .map(|x| match x {
            Sh::Map(m) => Ok(m),
            _ => Err(format!("--ip-permissions: each of {what} must be {{...}}")),
        })
        .collect()
}

/// Parses `IpProtocol=tcp,FromPort=22,ToPort=22,IpRanges=[{CidrIp=10.0.0.0/8}],
/// UserIdGroupPairs=[{GroupId=sg-1}]` or its JSON (a list gives several).
/// Values are only parsed here; the server judges them.
pub fn parse_ip_permissions(s: &str) -> Result<IpPermissions, String> {
    let mut out = Vec::new();
    for m in parse(s)? {
        let [proto, from, to, ranges, pairs] = fields(
            m,
            [
                "IpProtocol",
                "FromPort",
                "ToPort",
                "IpRanges",
                "UserIdGroupPairs",
            ],
            "--ip-permissions",
        )?;
        let protocol = proto
            .ok_or("--ip-permissions: IpProtocol is missing")?
            .string("IpProtocol")?;
        let port = |v: Option<Sh>, what: &str| -> Result<Option<i64>, String> {
            v.map(|v| {
                let t = v.string(what)?;
                t.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("--ip-permissions: {what} {t:?} is not a number"))
            })
            .transpose()
        };
        let mut p = IpPermission {
            protocol,
            from_port: port(from, "FromPort")?,
            to_port: port(to, "ToPort")?,
            cidrs: Vec::new(),
            groups: Vec::new(),
        };
        for r in ranges
            .map(|r| maps(r, "IpRanges"))
            .transpose()?
            .unwrap_or_default()
        {
            let [cidr, desc] = fields(r, ["CidrIp", "Description"], "--ip-permissions IpRanges")?;
            let cidr = cidr
                .ok_or("--ip-permissions: an IpRanges entry has no CidrIp")?
                .string("CidrIp")?;
            let desc = desc.map(|d| d.string("Description")).transpose()?;
            p.cidrs.push((cidr, desc.unwrap_or_default()));
        }
        for g in pairs
            .map(|g| maps(g, "UserIdGroupPairs"))
            .transpose()?
            .unwrap_or_default()
        {
            let [id, name, desc, _user] = fields(
                g,
                ["GroupId", "GroupName", "Description", "UserId"],
                "--ip-permissions UserIdGroupPairs",
            )?;
            let group = id
                .or(name)
                .ok_or("--ip-permissions: a UserIdGroupPairs entry has no GroupId")?
                .string("GroupId")?;
            let desc = desc.map(|d| d.string("Description")).transpose()?;
            p.groups.push((group, desc.unwrap_or_default()));
        }
        out.push(p);
    }
    Ok(IpPermissions(out))
}

/// `--placement AvailabilityZone=Z,GroupName=G`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pub availability_zone: Option<String>,
    pub group_name: Option<String>,
}

pub fn parse_placement(s: &str) -> Result<Placement, String> {
    let mut p = Placement::default();
    for m in parse(s)? {
        let [az, group] = fields(m, ["AvailabilityZone", "GroupName"], "--placement")?;
        if let Some(az) = az {
            p.availability_zone = Some(az.string("AvailabilityZone")?);
        }
        if let Some(g) = group {
            p.group_name = Some(g.string("GroupName")?);
        }
    }
    Ok(p)
}

/// `--count N` (exactly N) or `--count MIN:MAX`, as the aws CLI reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub min: u32,
    pub max: u32,
}

pub fn parse_count(s: &str) -> Result<Count, String> {
    let num = |x: &str| {
        x.trim()
            .parse::<u32>()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| format!("{s:?} is not a count: use N or MIN:MAX with numbers from 1"))
    };
    let (min, max) = match s.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let n = num(s)?;
            (n, n)
        }
    };
    if min > max {
        return Err(format!("--count {s}: the minimum is above the maximum"));
    }
    Ok(Count { min, max })
}

/// A blob argument: `file://PATH` (text), `fileb://PATH` (bytes), or the
/// value itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blob {
    File(PathBuf),
    Literal(String),
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

pub fn parse_blob(s: &str) -> Result<Blob, String> {
    // file:// and fileb:// differ in the aws CLI only by text decoding,
    // which nuage does not do: both send the bytes as they are.
    match s
        .strip_prefix("fileb://")
        .or_else(|| s.strip_prefix("file://"))
    {
        Some("") => Err(format!("{s:?} names no file")),
        Some(p) => Ok(Blob::File(expand_home(p))),
        None => Ok(Blob::Literal(s.to_string())),
    }
}

impl Blob {
    /// The bytes, read from the file if it names one.
    pub fn load(&self) -> Result<Vec<u8>, String> {
        match self {
            Blob::Literal(s) => Ok(s.clone().into_bytes()),
            Blob::File(p) => {
                std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
            }
        }
    }
}

/// The most user data an instance takes, before base64 (as on EC2).
pub const USER_DATA_MAX: usize = 16 * 1024;

/// Loads `--user-data` and base64-encodes it for the API, refusing more
/// than [`USER_DATA_MAX`] here rather than after a round trip.
pub fn user_data(blob: &Blob) -> Result<String, String> {
    use base64::Engine;
    let bytes = blob.load()?;
    if bytes.len() > USER_DATA_MAX {
        return Err(format!(
            "--user-data is {} bytes; instances take at most {USER_DATA_MAX} bytes (16 KiB) before base64 encoding",
            bytes.len()
        ));
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// `--user-data` ready for the API: read and encoded while the arguments
/// are parsed, so that an unreadable or oversized file is a usage error
/// found before logging in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserData(pub String);

pub fn parse_user_data(s: &str) -> Result<UserData, String> {
    user_data(&parse_blob(s)?).map(UserData)
}

/// `--public-key-material`: the OpenSSH public key line, from a file or
/// literal. The aws CLI v2 takes a literal as base64 of the key file, so a
/// literal that decodes to a key line is decoded.
pub fn parse_public_key(s: &str) -> Result<String, String> {
    use base64::Engine;
    let blob = parse_blob(s)?;
    let bytes = blob.load()?;
    let mut text = String::from_utf8(bytes)
        .map_err(|_| "--public-key-material is not text: give an OpenSSH public key".to_string())?
        .trim()
        .to_string();
    if matches!(blob, Blob::Literal(_)) && !text.contains(' ') {
        if let Some(decoded) = base64::engine::general_purpose::STANDARD
            .decode(&text)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|d| d.contains(' '))
        {
            text = decoded.trim().to_string();
        }
    }
    if text.is_empty() {
        return Err("--public-key-material is empty".into());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, values: &[&str]) -> Filter {
        Filter {
            name: name.into(),
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn filters_in_shorthand() {
        assert_eq!(
            parse_filters("Name=tag:Name,Values=a,b").expect("parses").0,
            vec![f("tag:Name", &["a", "b"])]
        );
        assert_eq!(
            parse_filters("Name=instance-state-name,Values=running")
                .expect("parses")
                .0,
            vec![f("instance-state-name", &["running"])]
        );
        // Values first, a list in brackets, quoted commas, spaces.
        assert_eq!(
            parse_filters("Values=[x, \"y,z\"], Name=tag-key")
                .expect("parses")
                .0,
            vec![f("tag-key", &["x", "y,z"])]
        );
        assert_eq!(
            parse_filters(r"Name=tag:k,Values=a\,b,c")
                .expect("parses")
                .0,
            vec![f("tag:k", &["a,b", "c"])]
        );
        // A value holding '=' is one value.
        assert_eq!(
            parse_filters("Name=tag:expr,Values=a=b").expect("parses").0,
            vec![f("tag:expr", &["a=b"])]
        );
    }

    #[test]
    fn filters_in_json() {
        let j = r#"[{"Name":"instance-type","Values":["t2.nano","t2.micro"]},{"Name":"tag:env","Values":["prod"]}]"#;
        assert_eq!(
            parse_filters(j).expect("parses").0,
            vec![
                f("instance-type", &["t2.nano", "t2.micro"]),
                f("tag:env", &["prod"])
            ]
        );
    }

    #[test]
    fn bad_filters_say_why() {
        let e = parse_filters("Name=x").expect_err("no values");
        assert!(e.contains("no Values"), "{e}");
        let e = parse_filters("Values=a").expect_err("no name");
        assert!(e.contains("Name is missing"), "{e}");
        let e = parse_filters("Nom=x,Values=a").expect_err("bad key");
        assert!(e.contains("unknown key \"Nom\""), "{e}");
        let e = parse_filters("running").expect_err("no pairs");
        assert!(e.contains("expected Key=Value"), "{e}");
        let e = parse_instance_filters("Name=vpc-id,Values=v").expect_err("unknown name");
        assert!(e.contains("unknown filter name \"vpc-id\""), "{e}");
        assert!(e.contains("instance-state-name"), "{e}");
        let e = parse_instance_filters("Name=instance-state-name,Values=runing")
            .expect_err("bad state");
        assert!(e.contains("not an instance state"), "{e}");
        assert!(parse_instance_filters("Name=tag:,Values=a").is_err());
        assert!(parse_instance_filters("Name=tag:Name,Values=a").is_ok());
        assert!(parse_image_filters("Name=name,Values=deb*").is_ok());
        assert!(parse_image_filters("Name=tag:Name,Values=a").is_err());
    }

    #[test]
    fn query_strings() {
        let ids = vec!["i-1".to_string(), "i-2".to_string()];
        let q = instance_query(
            &ids,
            &[
                f("instance-state-name", &["running", "stopped"]),
                f("tag:Name", &["web"]),
                f("tag-key", &["env"]),
            ],
        )
        .expect("satisfiable");
        assert_eq!(
            q,
            vec![
                ("instance_ids".to_string(), "i-1,i-2".to_string()),
                ("instance-state-name".into(), "running,stopped".into()),
                ("tag:Name".into(), "web".into()),
                ("tag-key".into(), "env".into()),
            ]
        );
        // Repeated filter names AND: the values common to both.
        let both = [
            f("instance-id", &["i-2", "i-3"]),
            f("instance-id", &["i-3"]),
        ];
        let q = instance_query(&[], &both).expect("some");
        assert_eq!(q, vec![("instance-id".to_string(), "i-3".to_string())]);
        let none = [f("instance-id", &["i-2"]), f("instance-id", &["i-9"])];
        assert_eq!(instance_query(&[], &none), None);
        // Named ids go separately: the server refuses unknown ones.
        let q = instance_query(&ids, &[f("instance-id", &["i-9"])]).expect("some");
        assert_eq!(q[0], ("instance_ids".to_string(), "i-1,i-2".to_string()));
        assert_eq!(instance_query(&[], &[]), Some(vec![]));
    }

    #[test]
    fn tag_specifications() {
        let t = parse_tag_spec(
            "ResourceType=instance,Tags=[{Key=Name,Value=web},{Key=env,Value=prod}]",
        )
        .expect("parses");
        assert_eq!(
            t.0,
            vec![
                ("Name".to_string(), "web".to_string()),
                ("env".into(), "prod".into())
            ]
        );
        let t = parse_tag_spec("ResourceType=instance,Tags=[{Key=a b,Value=\"x, y\"},{Key=empty}]")
            .expect("parses");
        assert_eq!(
            t.0,
            vec![
                ("a b".to_string(), "x, y".to_string()),
                ("empty".into(), String::new())
            ]
        );
        let t =
            parse_tag_spec(r#"[{"ResourceType":"instance","Tags":[{"Key":"Name","Value":"db"}]}]"#)
                .expect("parses");
        assert_eq!(t.0, vec![("Name".to_string(), "db".to_string())]);
        let e = parse_tag_spec("ResourceType=volume,Tags=[{Key=a,Value=b}]").expect_err("volume");
        assert!(e.contains("only ResourceType=instance"), "{e}");
        let e = parse_tag_spec("ResourceType=instance,Tags=[{Key=a,Value=b}").expect_err("open");
        assert!(e.contains("expected ','"), "{e}");
        assert!(parse_tag_spec("ResourceType=instance,Tags=[{Kee=a}]").is_err());
    }

    #[test]
    fn placement() {
        assert_eq!(
            parse_placement("AvailabilityZone=nova-a,GroupName=spread").expect("parses"),
            Placement {
                availability_zone: Some("nova-a".into()),
                group_name: Some("spread".into())
            }
        );
        assert!(parse_placement("Tenancy=dedicated").is_err());
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("3"), Ok(Count { min: 3, max: 3 }));
        assert_eq!(parse_count("2:5"), Ok(Count { min: 2, max: 5 }));
        assert!(parse_count("5:2").is_err());
        assert!(parse_count("0").is_err());
        assert!(parse_count("a:3").is_err());
        assert!(parse_count("2:").is_err());
        assert!(parse_count("-1").is_err());
    }

    #[test]
    fn user_data_from_files_and_literals() {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("init.sh");
        std::fs::write(&script, b"#!/bin/sh\necho hi\n").expect("write");
        for prefix in ["file://", "fileb://"] {
            let blob = parse_blob(&format!("{prefix}{}", script.display())).expect("parses");
            assert_eq!(blob, Blob::File(script.clone()));
            assert_eq!(user_data(&blob), Ok(b64(b"#!/bin/sh\necho hi\n")));
        }
        let blob = parse_blob("echo hello").expect("parses");
        assert_eq!(user_data(&blob), Ok(b64(b"echo hello")));

        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; USER_DATA_MAX + 1]).expect("write");
        let e = user_data(&Blob::File(big.clone())).expect_err("too large");
        assert!(e.contains("16385 bytes") && e.contains("16 KiB"), "{e}");
        std::fs::write(&big, vec![b'x'; USER_DATA_MAX]).expect("write");
        assert!(user_data(&Blob::File(big)).is_ok());

        let e = user_data(&Blob::File(dir.path().join("missing"))).expect_err("missing");
        assert!(e.contains("cannot read"), "{e}");
        assert!(parse_blob("file://").is_err());
    }

    #[test]
    fn public_keys() {
        use base64::Engine;
        let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0 me@host";
        assert_eq!(parse_public_key(line).as_deref(), Ok(line));
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{line}\n"));
        assert_eq!(parse_public_key(&b64).as_deref(), Ok(line));
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("id.pub");
        std::fs::write(&p, format!("{line}\n")).expect("write");
        assert_eq!(
            parse_public_key(&format!("fileb://{}", p.display())).as_deref(),
            Ok(line)
        );
        assert!(parse_public_key("  ").is_err());
        let d = parse_user_data("echo hi").expect("parses");
        assert_eq!(d.0, "ZWNobyBoaQ==");
    }

    #[test]
    fn home_is_expanded() {
        if let Some(home) = std::env::var_os("HOME") {
            assert_eq!(
                parse_blob("fileb://~/.ssh/id_ed25519.pub").expect("parses"),
                Blob::File(PathBuf::from(home).join(".ssh/id_ed25519.pub"))
            );
        }
    }
}
