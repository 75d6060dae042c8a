//! `nuage describe-login-lockouts` and `nuage clear-login-lockout`: the
//! failed-login throttle as admins see it, over `/nuage/v1/login-lockouts`.
//! Named as the aws-style verbs are, since lockouts have no openstack noun.

use anyhow::Result;
use clap::{ArgGroup, Args, ValueEnum};
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::items;
use crate::output::{self, Col};
use crate::Ctx;

/// What a lockout entry counts failures against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A user (by id), or a name no user has, as it was typed
    User,
    /// A client address
    Source,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Source => "source",
        }
    }
}

#[derive(Debug, Args)]
pub struct Describe {
    /// Only entries that are locked now, not those that merely failed lately
    #[arg(long)]
    locked: bool,
    /// Only users or only source addresses
    #[arg(long, value_enum)]
    kind: Option<Kind>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("whose").required(true).multiple(true).args(["user", "source"])))]
pub struct Clear {
    /// The user whose failed logins to forget: a name (Default domain) or an
    /// id, or an unknown name as the list shows it (e.g. default/bob)
    #[arg(long, value_name = "NAME-OR-ID")]
    user: Option<String>,
    /// The client address whose failed logins to forget
    #[arg(long, value_name = "ADDR")]
    source: Option<std::net::IpAddr>,
}

fn columns() -> Vec<Col<'static>> {
    vec![
        Col::field("Kind", "kind"),
        Col::field("Subject", "subject"),
        Col::field("Failures", "failures"),
        Col::with("Locked until", |r| output::time_cell(&r["locked_until"])),
    ]
}

/// Keeps the rows `d` asks for; `None` when it asks for all.
fn select(d: &Describe, rows: &[Value]) -> Option<Vec<Value>> {
    if !d.locked && d.kind.is_none() {
        return None;
    }
    Some(
        rows.iter()
            .filter(|r| !d.locked || !r["locked_until"].is_null())
            .filter(|r| d.kind.is_none_or(|k| r["kind"] == k.as_str()))
            .cloned()
            .collect(),
    )
}

pub async fn describe(d: Describe, ctx: &Ctx) -> Result<()> {
    let v = ctx.client.get(&["login-lockouts"], &[]).await?;
    let answer = match select(&d, items(&v)) {
        Some(rows) => json!({ "items": rows }),
        None => v,
    };
    output::list(ctx.format, &answer, items(&answer), &columns());
    Ok(())
}

/// Prints nothing on success, as the delete commands; the server answers
/// 404 when there was nothing to clear.
pub async fn clear(c: Clear, ctx: &Ctx) -> Result<()> {
    let mut query = Vec::new();
    if let Some(u) = c.user {
        query.push(("user", u));
    }
    if let Some(a) = c.source {
        query.push(("source", a.to_string()));
    }
    ctx.client
        .send(Method::DELETE, &["login-lockouts"], &query, None, true)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(subcommand)]
        c: C,
    }

    #[derive(Debug, clap::Subcommand)]
    enum C {
        Describe(Describe),
        Clear(Clear),
    }

    #[test]
    fn clear_needs_a_user_or_an_address() {
        assert!(T::try_parse_from(["t", "clear"]).is_err());
        assert!(T::try_parse_from(["t", "clear", "--source", "not-an-ip"]).is_err());
        let Ok(T { c: C::Clear(c) }) =
            T::try_parse_from(["t", "clear", "--user", "bob", "--source", "::1"])
        else {
            panic!("both flags parse");
        };
        assert_eq!(c.user.as_deref(), Some("bob"));
        assert_eq!(c.source, Some("::1".parse().expect("ip")));
    }

    #[test]
    fn describe_filters_locked_entries_and_kinds() {
        let rows = [
            json!({"kind": "user", "subject": "u1", "failures": 5, "locked_until": "2026-12-04T23:00:00Z"}),
            json!({"kind": "user", "subject": "u2", "failures": 1, "locked_until": null}),
            json!({"kind": "source", "subject": "127.0.0.7", "failures": 30, "locked_until": "2026-12-04T23:00:00Z"}),
        ];
        let parse = |args: &[&str]| match T::try_parse_from(args) {
            Ok(T { c: C::Describe(d) }) => d,
            other => panic!("{other:?}"),
        };
        assert!(select(&parse(&["t", "describe"]), &rows).is_none());
        let subjects = |d: Describe| -> Vec<String> {
            select(&d, &rows)
                .unwrap_or_default()
                .iter()
                .map(|r| output::cell(&r["subject"]))
                .collect()
        };
        assert_eq!(
            subjects(parse(&["t", "describe", "--locked"])),
            ["u1", "127.0.0.7"]
        );
        assert_eq!(
            subjects(parse(&["t", "describe", "--kind", "user"])),
            ["u1", "u2"]
        );
        assert_eq!(
            subjects(parse(&["t", "describe", "--locked", "--kind", "source"])),
            ["127.0.0.7"]
        );
    }
}
