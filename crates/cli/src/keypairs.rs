//! Key pairs, aws style: `create-key-pair`, `import-key-pair`,
//! `delete-key-pair` (in compute.rs), `describe-key-pairs`.

use std::io::IsTerminal;

use anyhow::{anyhow, Result};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use crate::client::items;
use crate::output::{self, Col, Format};
use crate::shorthand::parse_public_key;
use crate::Ctx;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyType {
    Ed25519,
    Rsa,
}

/// Only PEM: the server writes OpenSSH PEM; PuTTY's ppk is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyFormat {
    Pem,
}

#[derive(Debug, Args)]
pub struct Create {
    /// The new key pair's name
    #[arg(long, value_name = "NAME")]
    key_name: String,
    /// Default: the server's
    #[arg(long, value_enum)]
    key_type: Option<KeyType>,
    /// The private key's format
    #[arg(long, value_enum, default_value_t = KeyFormat::Pem)]
    key_format: KeyFormat,
}

#[derive(Debug, Args)]
pub struct Import {
    /// The imported key pair's name
    #[arg(long, value_name = "NAME")]
    key_name: String,
    /// The OpenSSH public key: fileb://~/.ssh/id_ed25519.pub, file://PATH,
    /// or the key line itself
    #[arg(long, value_name = "KEY", value_parser = parse_public_key)]
    public_key_material: String,
}

fn create_body(c: &Create) -> Value {
    let mut b = json!({ "name": c.key_name });
    if let Some(t) = c.key_type {
        b["key_type"] = json!(match t {
            KeyType::Ed25519 => "ed25519",
            KeyType::Rsa => "rsa",
        });
    }
    b
}

/// Prints the private key alone, as `aws ec2 create-key-pair --query
/// KeyMaterial --output text` does, so `> key.pem` saves a usable file;
/// `-o json` prints the whole answer.
pub async fn create(c: Create, ctx: &Ctx) -> Result<()> {
    // The only format; a new one must be handled here.
    let KeyFormat::Pem = c.key_format;
    let v = ctx.client.post(&["key-pairs"], &create_body(&c)).await?;
    if ctx.format == Format::Json {
        output::json(&v);
        return Ok(());
    }
    let key = v["private_key"]
        .as_str()
        .ok_or_else(|| anyhow!("the server's answer has no private key"))?;
    print!("{key}");
    if !key.ends_with('\n') {
        println!();
    }
    if std::io::stdout().is_terminal() {
        eprintln!(
            "Save the private key now (nuage does not keep it), e.g. with `... > {}.pem && chmod 600 {}.pem`.",
            c.key_name, c.key_name
        );
    }
    Ok(())
}

fn columns() -> Vec<Col<'static>> {
    vec![
        Col::field("Name", "name"),
        Col::field("ID", "id"),
        Col::field("Type", "key_type"),
        Col::field("Fingerprint", "fingerprint"),
        Col::with("Created", |r| output::time_cell(&r["created_at"])),
    ]
}

pub async fn import(i: Import, ctx: &Ctx) -> Result<()> {
    let body = json!({ "name": i.key_name, "public_key": i.public_key_material });
    let v = ctx.client.post(&["key-pairs"], &body).await?;
    let pairs: Vec<(String, String)> = ["id", "name", "key_type", "fingerprint"]
        .iter()
        .map(|k| (k.to_string(), output::cell(&v[*k])))
        .chain([(
            "created_at".to_string(),
            output::time_cell(&v["created_at"]),
        )])
        .collect();
    output::pairs(ctx.format, &v, &pairs);
    Ok(())
}

/// Lists key pairs; named ones are fetched one by one so that an unknown
/// name fails with the server's message, as on EC2.
pub async fn describe(names: &[String], ctx: &Ctx) -> Result<()> {
    let answer = if names.is_empty() {
        ctx.client.get(&["key-pairs"], &[]).await?
    } else {
        let mut rows = Vec::new();
        for n in names {
            rows.push(ctx.client.get(&["key-pairs", n], &[]).await?);
        }
        json!({ "items": rows })
    };
    output::list(ctx.format, &answer, items(&answer), &columns());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies() {
        let c = Create {
            key_name: "k".into(),
            key_type: Some(KeyType::Ed25519),
            key_format: KeyFormat::Pem,
        };
        assert_eq!(create_body(&c), json!({"name": "k", "key_type": "ed25519"}));
        let c = Create {
            key_type: None,
            ..c
        };
        assert_eq!(create_body(&c), json!({"name": "k"}));
    }
}
