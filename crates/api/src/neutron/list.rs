//! Neutron's list parameters, applied to rendered views: filters (a
//! repeated key is "any of", different keys "all of"), `fields`,
//! `sort_key`/`sort_dir`, `limit`/`marker`/`page_reverse` with a `next`
//! link, and the tag filters. Filters on an attribute the resource does
//! not have are refused (the `filter-validation` extension), so a typo
//! never widens a list silently.

use std::cmp::Ordering;

use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Map, Value};

use super::{answer, base, Fault, Result};
use crate::Core;

/// The list parameters of one request.
#[derive(Debug, Default, Clone)]
pub struct Listing {
    filters: Vec<(String, String)>,
    fields: Vec<String>,
    sort: Vec<(String, bool)>,
    limit: Option<usize>,
    marker: Option<String>,
    page_reverse: bool,
    /// The query as given, for the next link.
    query: Vec<(String, String)>,
}

/// Filters every tagged resource takes.
const TAG_FILTERS: &[&str] = &["tags", "tags-any", "not-tags", "not-tags-any"];

impl Listing {
    pub fn parse(query: &[(String, String)]) -> Result<Listing> {
        let mut l = Listing {
            query: query.to_vec(),
            ..Listing::default()
        };
        let mut keys = Vec::new();
        let mut dirs = Vec::new();
        for (k, v) in query {
            match k.as_str() {
                "fields" => l.fields.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|f| !f.is_empty())
                        .map(str::to_string),
                ),
                "sort_key" => keys.push(v.clone()),
                "sort_dir" => match v.as_str() {
                    "asc" => dirs.push(true),
                    "desc" => dirs.push(false),
                    _ => {
                        return Err(Fault::bad_request(format!(
                            "{v} is an invalid value for sort_dir: asc or desc"
                        )))
                    }
                },
                "limit" => {
                    let n: i64 = v.parse().map_err(|_| {
                        Fault::bad_request(format!("Limit must be an integer, not '{v}'"))
                    })?;
                    if n < 0 {
                        return Err(Fault::bad_request(format!(
                            "Limit must be an integer 0 or greater and not '{v}'"
                        )));
                    }
                    // 0 means no limit, as in Neutron.
                    l.limit = (n > 0).then_some(n as usize);
                }
                "marker" => l.marker = Some(v.clone()),
                "page_reverse" => l.page_reverse = v.eq_ignore_ascii_case("true") || v == "1",
                _ => l.filters.push((k.clone(), v.clone())),
            }
        }
        if dirs.len() > keys.len() || (!dirs.is_empty() && dirs.len() != keys.len()) {
            return Err(Fault::bad_request(
                "The number of sort_keys and sort_dirs must be same",
            ));
        }
        l.sort = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, dirs.get(i).copied().unwrap_or(true)))
            .collect();
        Ok(l)
    }

    /// The values given for filter `name`, if any.
    pub fn filter(&self, name: &str) -> Vec<&str> {
        self.filters
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Checks filter and sort names against the resource's attributes.
    fn check(&self, attrs: &[&str]) -> Result<()> {
        for (k, _) in &self.filters {
            if !attrs.contains(&k.as_str()) && !TAG_FILTERS.contains(&k.as_str()) {
                return Err(Fault::bad_request(format!(
                    "{k} is an invalid filter for this resource"
                )));
            }
        }
        for (k, _) in &self.sort {
            if !attrs.contains(&k.as_str()) {
                return Err(Fault::bad_request(format!(
                    "{k} is an invalid attribute for sort_keys"
                )));
            }
        }
        Ok(())
    }

    fn matches(&self, item: &Map<String, Value>) -> bool {
        let mut names: Vec<&str> = self.filters.iter().map(|(k, _)| k.as_str()).collect();
        names.dedup();
        names.iter().all(|name| {
            let wanted = self.filter(name);
            let tags: Vec<&str> = item
                .get("tags")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let listed =
                |v: &str| -> Vec<String> { v.split(',').map(|t| t.trim().to_string()).collect() };
            match *name {
                "tags" => wanted
                    .iter()
                    .all(|v| listed(v).iter().all(|t| tags.contains(&t.as_str()))),
                "tags-any" => wanted
                    .iter()
                    .any(|v| listed(v).iter().any(|t| tags.contains(&t.as_str()))),
                "not-tags" => !wanted
                    .iter()
                    .all(|v| listed(v).iter().all(|t| tags.contains(&t.as_str()))),
                "not-tags-any" => !wanted
                    .iter()
                    .any(|v| listed(v).iter().any(|t| tags.contains(&t.as_str()))),
                _ => {
                    let have = item.get(*name).unwrap_or(&Value::Null);
                    wanted.iter().any(|w| value_matches(have, w))
                }
            }
        })
    }

    /// Filters, sorts, pages and trims `items` into Neutron's list answer.
    pub fn answer(
        &self,
        core: &Core,
        collection: &str,
        attrs: &[&str],
        items: Vec<Map<String, Value>>,
    ) -> Result<Response> {
        self.check(attrs)?;
        let mut items: Vec<Map<String, Value>> =
            items.into_iter().filter(|i| self.matches(i)).collect();
        if !self.sort.is_empty() {
            items.sort_by(|a, b| {
                for (k, asc) in &self.sort {
                    let o = compare(a.get(k), b.get(k));
                    let o = if *asc { o } else { o.reverse() };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                compare(a.get("id"), b.get("id"))
            });
        }
        if self.page_reverse {
            items.reverse();
        }
        let key = |m: &Map<String, Value>| {
            m.get("id")
                .or_else(|| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let start = match &self.marker {
            None => 0,
            Some(m) => match items.iter().position(|i| &key(i) == m) {
                Some(p) => p + 1,
                None => {
                    return Err(Fault::not_found(
                        "HTTPNotFound",
                        format!("The marker {m} could not be found in {collection}."),
                    ))
                }
            },
        };
        let rest = items.split_off(start.min(items.len()));
        let n = self.limit.unwrap_or(usize::MAX).min(rest.len());
        let more = rest.len() > n;
        let mut page: Vec<Map<String, Value>> = rest.into_iter().take(n).collect();
        let last = page.last().map(key);
        if self.page_reverse {
            page.reverse();
        }
        let page: Vec<Value> = page
            .into_iter()
            .map(|i| Value::Object(self.trim(i)))
            .collect();
        let mut out = Map::new();
        out.insert(collection.to_string(), Value::Array(page));
        if let (true, Some(last), Some(limit)) = (more, last, self.limit) {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in self
                .query
                .iter()
                .filter(|(k, _)| k != "marker" && k != "limit")
            {
                q.append_pair(k, v);
            }
            q.append_pair("limit", &limit.to_string());
            q.append_pair("marker", &last);
            out.insert(
                format!("{collection}_links"),
                json!([{"rel": "next", "href": format!("{}/v2.0/{collection}?{}", base(core), q.finish())}]),
            );
        }
        Ok(answer(StatusCode::OK, Value::Object(out)))
    }

    /// Keeps only the `fields` asked for (all without any).
    pub fn trim(&self, mut item: Map<String, Value>) -> Map<String, Value> {
        if !self.fields.is_empty() {
            item.retain(|k, _| self.fields.iter().any(|f| f == k));
        }
        item
    }

    /// Whether any list control parameter or filter was given that a show
    /// does not take (a show takes `fields` only).
    pub fn only_fields(&self) -> bool {
        self.filters.is_empty()
            && self.sort.is_empty()
            && self.limit.is_none()
            && self.marker.is_none()
    }
}

/// Whether the attribute value `have` matches the filter text `want`, as
/// Neutron converts filter values to the attribute's type.
fn value_matches(have: &Value, want: &str) -> bool {
    match have {
        Value::String(s) => s == want,
        Value::Bool(b) => match want.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => *b,
            "false" | "0" | "no" | "off" => !*b,
            _ => false,
        },
        Value::Number(n) => n.to_string() == want,
        Value::Null => want.is_empty() || want.eq_ignore_ascii_case("none"),
        Value::Array(a) => a.iter().any(|x| match x {
            // `fixed_ips=ip_address=10.0.0.5`, `fixed_ips=subnet_id=...`.
            Value::Object(o) => want
                .split_once('=')
                .is_some_and(|(k, v)| o.get(k).and_then(Value::as_str) == Some(v)),
            other => value_matches(other, want),
        }),
        Value::Object(_) => false,
    }
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (None | Some(Value::Null), None | Some(Value::Null)) => Ordering::Equal,
        (None | Some(Value::Null), _) => Ordering::Less,
        (_, None | Some(Value::Null)) => Ordering::Greater,
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn item(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn filters_take_any_of_one_key_and_all_of_several() {
        let l = Listing::parse(&q(&[("name", "a"), ("name", "b"), ("shared", "False")]))
            .expect("listing");
        assert!(l.matches(&item(json!({"name": "a", "shared": false}))));
        assert!(l.matches(&item(json!({"name": "b", "shared": false}))));
        assert!(!l.matches(&item(json!({"name": "c", "shared": false}))));
        assert!(!l.matches(&item(json!({"name": "a", "shared": true}))));
        let ip = Listing::parse(&q(&[("fixed_ips", "ip_address=10.0.0.5")])).expect("listing");
        assert!(ip.matches(&item(
            json!({"fixed_ips": [{"subnet_id": "s", "ip_address": "10.0.0.5"}]})
        )));
        assert!(!ip.matches(&item(
            json!({"fixed_ips": [{"subnet_id": "s", "ip_address": "10.0.0.6"}]})
        )));
        let tags = Listing::parse(&q(&[("tags", "a,b")])).expect("listing");
        assert!(tags.matches(&item(json!({"tags": ["a", "b", "c"]}))));
        assert!(!tags.matches(&item(json!({"tags": ["a"]}))));
        assert!(Listing::parse(&q(&[("colour", "red")]))
            .expect("listing")
            .check(&["name"])
            .is_err());
        assert!(Listing::parse(&q(&[("limit", "x")])).is_err());
        assert!(Listing::parse(&q(&[("sort_dir", "up")])).is_err());
    }
}
