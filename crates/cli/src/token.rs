//! `nuage token ...` and `nuage whoami`.

use anyhow::Result;
use clap::Subcommand;
use serde_json::Value;

use crate::output::{self, cell};
use crate::Ctx;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Issue a token (for NUAGE_TOKEN or X-Auth-Token) and print it
    Issue,
    /// Revoke the current token (--token or NUAGE_TOKEN)
    Revoke,
}

fn pairs(v: &Value, token: Option<&str>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(t) = token {
        out.push(("id".to_string(), t.to_string()));
    }
    let expires = match &v["expires_at"] {
        Value::Null => "never".to_string(),
        e => cell(e),
    };
    out.extend(
        [
            ("expires", expires),
            ("user", cell(&v["user"]["name"])),
            ("user_id", cell(&v["user"]["id"])),
            ("user_domain_id", cell(&v["user"]["domain_id"])),
            ("project", cell(&v["project"]["name"])),
            ("project_id", cell(&v["project"]["id"])),
            ("project_domain_id", cell(&v["project"]["domain_id"])),
            ("roles", cell(&v["roles"])),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    out
}

pub async fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<()> {
    match cmd {
        Cmd::Issue => {
            let token = ctx.client.token().to_string();
            let mut v = ctx.client.principal().await?.clone();
            if v.get("token").is_none() {
                v["token"] = Value::String(token.clone());
            }
            output::pairs(ctx.format, &v, &pairs(&v, Some(&token)));
        }
        Cmd::Revoke => ctx.client.delete(&["tokens", "self"]).await?,
    }
    Ok(())
}

pub async fn whoami(ctx: &mut Ctx) -> Result<()> {
    let mut v = ctx.client.principal().await?.clone();
    // A password login's answer also holds the token: whoami does not show it.
    if let Some(m) = v.as_object_mut() {
        m.remove("token");
    }
    let mut p = pairs(&v, None);
    p.push(("method".to_string(), cell(&v["method"])));
    output::pairs(ctx.format, &v, &p);
    Ok(())
}
