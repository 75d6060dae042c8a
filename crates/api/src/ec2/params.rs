//! The EC2 Query protocol's parameters: a flat map of names such as
//! `InstanceId.1`, `Filter.2.Value.1` or `TagSpecification.1.Tag.1.Key`,
//! read through typed getters.
//!
//! Every getter records the names it read, so that once an operation has
//! parsed what it understands, [`Params::finish`] refuses any parameter
//! left over (`UnknownParameter`, as EC2 does) before anything acts: a
//! request nuage did not fully recognise is never half-served.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use super::error::{Ec2Error, Result};

/// At most this many parameters in one request; EC2's own limit on the
/// body is far above what any real call sends.
pub const MAX_PARAMS: usize = 10_000;

/// Names every request may carry besides its operation's own.
const PROTOCOL: &[&str] = &["Action", "Version"];

/// The parameters of one request.
#[derive(Debug, Default)]
pub struct Params {
    map: BTreeMap<String, String>,
    used: RefCell<BTreeSet<String>>,
}

/// One `Filter.N`: a name and the values any of which may match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

/// One `Tag.N` (or `TagSpecification.N.Tag.M`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// One `TagSpecification.N`: tags for the resources of one type that the
/// call creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSpecification {
    pub resource_type: String,
    pub tags: Vec<Tag>,
}

impl Params {
    /// Collects pairs from the query string and the form body. A name
    /// given twice is refused: which one would win is not defined.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Params> {
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            // SigV4 in the query string (presigned EC2 calls) is the
            // verifier's business, not the operation's.
            if k.starts_with("X-Amz-") {
                continue;
            }
            if map.len() >= MAX_PARAMS {
                return Err(Ec2Error::invalid(format!(
                    "the request has more than {MAX_PARAMS} parameters"
                )));
            }
            if map.contains_key(&k) {
                return Err(Ec2Error::invalid(format!(
                    "the parameter {k} is given more than once"
                )));
            }
            map.insert(k, v);
        }
        Ok(Params {
            map,
            used: RefCell::new(BTreeSet::new()),
        })
    }

    /// Parses an `application/x-www-form-urlencoded` string (query or body).
    pub fn parse_form(query: &str, body: &[u8]) -> Result<Params> {
        let pairs = form_urlencoded::parse(query.as_bytes())
            .chain(form_urlencoded::parse(body))
            .map(|(k, v)| (k.into_owned(), v.into_owned()));
        Params::from_pairs(pairs)
    }

    /// The `Action` parameter, before anything else is read.
    pub fn action(&self) -> Result<&str> {
        self.map
            .get("Action")
            .map(String::as_str)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                Ec2Error::new(
                    400,
                    "MissingAction",
                    "The request must contain the parameter Action",
                )
            })
    }

    fn mark(&self, name: &str) {
        self.used.borrow_mut().insert(name.to_string());
    }

    /// An optional string.
    pub fn opt(&self, name: &str) -> Option<&str> {
        let v = self.map.get(name)?;
        self.mark(name);
        Some(v.as_str())
    }

    /// A required string (`MissingParameter` when absent or empty).
    pub fn req(&self, name: &str) -> Result<&str> {
        match self.opt(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(Ec2Error::missing(name)),
        }
    }

    /// An optional boolean (`true`/`false`, as botocore sends them).
    pub fn bool(&self, name: &str) -> Result<Option<bool>> {
        match self.opt(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(Ec2Error::invalid(format!(
                "Value ({v}) for parameter {name} is invalid. Expected: 'true' or 'false'."
            ))),
        }
    }

    /// `DryRun`, false when absent.
    pub fn dry_run(&self) -> Result<bool> {
        Ok(self.bool("DryRun")?.unwrap_or(false))
    }

    /// An optional integer within `min..=max`.
    pub fn int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>> {
        let Some(v) = self.opt(name) else {
            return Ok(None);
        };
        let n: i64 = v.parse().map_err(|_| {
            Ec2Error::invalid(format!(
                "Value ({v}) for parameter {name} is invalid. Expected a number."
            ))
        })?;
        if n < min || n > max {
            return Err(Ec2Error::invalid(format!(
                "Value ({n}) for parameter {name} is invalid. Expected a value between {min} and {max}."
            )));
        }
        Ok(Some(n))
    }

    /// The distinct `N` of the names `prefix.N` and `prefix.N.*`, in
    /// numeric order. `N` must be a positive integer.
    pub fn indices(&self, prefix: &str) -> Result<Vec<u32>> {
        let dotted = format!("{prefix}.");
        let mut out = BTreeSet::new();
        for k in self.map.range(dotted.clone()..) {
            let Some(rest) = k.0.strip_prefix(&dotted) else {
                break;
            };
            let n = rest.split('.').next().unwrap_or("");
            match n.parse::<u32>() {
                Ok(i) if i >= 1 && !n.starts_with('0') => {
                    out.insert(i);
                }
                _ => {
                    return Err(Ec2Error::invalid(format!(
                        "the parameter {} has no valid list index",
                        k.0
                    )))
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// A list of strings: `prefix.1`, `prefix.2`, ...
    pub fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for i in self.indices(prefix)? {
            let name = format!("{prefix}.{i}");
            match self.opt(&name) {
                Some(v) => out.push(v.to_string()),
                // `prefix.N.something`: a structure where strings belong.
                None => {
                    return Err(Ec2Error::invalid(format!(
                        "the parameter {name} must be a string"
                    )))
                }
            }
        }
        Ok(out)
    }

    /// `Filter.N.Name` / `Filter.N.Value.M`, names checked against the
    /// filters the action serves (`tag:<key>` whenever `tags` is true).
    pub fn filters(&self, allowed: &[&str], tags: bool) -> Result<Vec<Filter>> {
        let mut out = Vec::new();
        for i in self.indices("Filter")? {
            let name = self.req(&format!("Filter.{i}.Name"))?.to_string();
            let values = self.list(&format!("Filter.{i}.Value"))?;
            let known = allowed.contains(&name.as_str())
                || (tags && (name.starts_with("tag:") || name == "tag-key" || name == "tag-value"));
            if !known {
                return Err(Ec2Error::invalid(format!("The filter '{name}' is invalid")));
            }
            out.push(Filter { name, values });
        }
        Ok(out)
    }

    /// `prefix.N.Key` / `prefix.N.Value` (`Tag.N` for CreateTags).
    pub fn tags(&self, prefix: &str) -> Result<Vec<Tag>> {
        let mut out = Vec::new();
        for i in self.indices(prefix)? {
            let key = self.req(&format!("{prefix}.{i}.Key"))?.to_string();
            let value = self
                .opt(&format!("{prefix}.{i}.Value"))
                .unwrap_or("")
                .to_string();
            check_tag(&key, &value)?;
            out.push(Tag { key, value });
        }
        Ok(out)
    }

    /// `TagSpecification.N.ResourceType` and its `Tag.M`.
    pub fn tag_specifications(&self) -> Result<Vec<TagSpecification>> {
        let mut out = Vec::new();
        for i in self.indices("TagSpecification")? {
            let resource_type = self
                .req(&format!("TagSpecification.{i}.ResourceType"))?
                .to_string();
            let tags = self.tags(&format!("TagSpecification.{i}.Tag"))?;
            out.push(TagSpecification {
                resource_type,
                tags,
            });
        }
        Ok(out)
    }

    /// `MaxResults` (within `min..=max`) and `NextToken`.
    pub fn page(&self, min: i64, max: i64) -> Result<(Option<usize>, Option<String>)> {
        let max_results = self.int("MaxResults", min, max)?.map(|n| n as usize);
        let token = self
            .opt("NextToken")
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        Ok((max_results, token))
    }

    /// Refuses any parameter the operation did not read.
    pub fn finish(&self) -> Result<()> {
        let used = self.used.borrow();
        match self
            .map
            .keys()
            .find(|k| !used.contains(*k) && !PROTOCOL.contains(&k.as_str()))
        {
            None => Ok(()),
            Some(k) => Err(Ec2Error::new(
                400,
                "UnknownParameter",
                format!("The parameter {k} is not recognized"),
            )),
        }
    }
}

/// EC2's tag limits: keys 1–128 characters, values up to 256, and the
/// `aws:` prefix reserved.
pub fn check_tag(key: &str, value: &str) -> Result<()> {
    if key.is_empty() || key.chars().count() > 128 {
        return Err(Ec2Error::new(
            400,
            "InvalidParameterValue",
            format!("Tag key must be between 1 and 128 characters: '{key}'"),
        ));
    }
    if value.chars().count() > 256 {
        return Err(Ec2Error::invalid(format!(
            "Tag value for key '{key}' exceeds 256 characters"
        )));
    }
    if key.starts_with("aws:") {
        return Err(Ec2Error::invalid(
            "Tag keys starting with 'aws:' are reserved for internal use",
        ));
    }
    Ok(())
}

pub use nuage_model::filter::wildcard_match;

impl Filter {
    /// Whether any of the resource's values for this filter matches any of
    /// the filter's values (EC2: OR within one filter, AND across filters).
    pub fn matches<S: AsRef<str>>(&self, resource_values: &[S]) -> bool {
        self.values.iter().any(|pat| {
            resource_values
                .iter()
                .any(|v| wildcard_match(pat, v.as_ref()))
        })
    }
}

/// Whether a resource passes every filter: `field` gives the resource's
/// values for a filter name (several for multi-valued fields, none when
/// absent); `tag:`, `tag-key` and `tag-value` are answered from `tags`.
pub fn keep<F>(filters: &[Filter], tags: &BTreeMap<String, String>, mut field: F) -> bool
where
    F: FnMut(&str) -> Vec<String>,
{
    filters.iter().all(|f| {
        if let Some(key) = f.name.strip_prefix("tag:") {
            return tags.get(key).is_some_and(|v| f.matches(&[v]));
        }
        match f.name.as_str() {
            "tag-key" => f.matches(&tags.keys().collect::<Vec<_>>()),
            "tag-value" => f.matches(&tags.values().collect::<Vec<_>>()),
            name => f.matches(&field(name)),
        }
    })
}

/// Params from literal pairs, for the areas' unit tests.
#[cfg(test)]
pub(crate) fn params(pairs: &[(&str, &str)]) -> Params {
    Params::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("params")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_read_in_numeric_order_and_gaps_are_fine() {
        let p = params(&[
            ("InstanceId.10", "c"),
            ("InstanceId.2", "b"),
            ("InstanceId.1", "a"),
        ]);
        assert_eq!(p.list("InstanceId").expect("list"), ["a", "b", "c"]);
        p.finish().expect("all used");
    }

    #[test]
    fn a_bad_index_is_refused() {
        for bad in [
            "InstanceId.0",
            "InstanceId.x",
            "InstanceId.01",
            "InstanceId.",
        ] {
            let p = params(&[(bad, "a")]);
            let e = p.list("InstanceId").expect_err(bad);
            assert_eq!(e.code, "InvalidParameterValue", "{bad}");
        }
    }

    #[test]
    fn unread_parameters_are_unknown() {
        let p = params(&[("Action", "X"), ("Version", "2016-11-15"), ("Bogus", "1")]);
        let e = p.finish().expect_err("bogus");
        assert_eq!(e.code, "UnknownParameter");
        assert!(e.message.contains("Bogus"));
    }

    #[test]
    fn filters_names_are_checked() {
        let p = params(&[
            ("Filter.1.Name", "instance-state-name"),
            ("Filter.1.Value.1", "running"),
            ("Filter.1.Value.2", "pending"),
            ("Filter.2.Name", "tag:Name"),
            ("Filter.2.Value.1", "web*"),
        ]);
        let f = p.filters(&["instance-state-name"], true).expect("filters");
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].values, ["running", "pending"]);
        let p = params(&[("Filter.1.Name", "no-such"), ("Filter.1.Value.1", "x")]);
        let e = p.filters(&["instance-state-name"], true).expect_err("bad");
        assert_eq!(e.message, "The filter 'no-such' is invalid");
        let p = params(&[("Filter.1.Name", "tag:Name")]);
        assert!(p.filters(&[], false).is_err(), "no tags on this resource");
    }

    #[test]
    fn a_duplicate_name_is_refused() {
        let e = Params::parse_form("Action=A", b"Action=B").expect_err("dup");
        assert_eq!(e.code, "InvalidParameterValue");
    }

    #[test]
    fn integers_and_booleans_are_checked() {
        let p = params(&[("MaxResults", "4"), ("DryRun", "yes")]);
        assert!(p.int("MaxResults", 5, 1000).is_err());
        assert!(p.dry_run().is_err());
        let p = params(&[("MaxResults", "5"), ("DryRun", "TRUE")]);
        assert_eq!(p.int("MaxResults", 5, 1000).expect("n"), Some(5));
        assert!(p.dry_run().expect("b"));
    }

    #[test]
    fn keep_ands_filters_and_ors_values() {
        let mut tags = BTreeMap::new();
        tags.insert("Name".to_string(), "web-1".to_string());
        let f = vec![
            Filter {
                name: "tag:Name".into(),
                values: vec!["db*".into(), "web*".into()],
            },
            Filter {
                name: "instance-state-name".into(),
                values: vec!["running".into()],
            },
        ];
        assert!(keep(&f, &tags, |_| vec!["running".into()]));
        assert!(!keep(&f, &tags, |_| vec!["stopped".into()]));
        let f = vec![Filter {
            name: "tag-key".into(),
            values: vec!["Owner".into()],
        }];
        assert!(!keep(&f, &tags, |_| vec![]));
    }
}
