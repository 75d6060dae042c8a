//! `nuage access-key ...` (also `nuage ec2 credentials ...`): the EC2/S3
//! access keys of a user.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};

use crate::client::items;
use crate::output::{self, Col, Format};
use crate::Ctx;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// List a user's access keys (secrets are never listed)
    List {
        /// User name or id; default: the caller
        #[arg(long)]
        user: Option<String>,
    },
    /// Create an access key; its secret is shown this once
    Create {
        /// User name or id; default: the caller
        #[arg(long)]
        user: Option<String>,
        /// Project (name or id) the key acts in; default: the token's
        /// project, or for another user, that user's default project
        #[arg(long)]
        project: Option<String>,
    },
    /// Delete access keys
    Delete {
        /// Access key ids
        #[arg(required = true)]
        keys: Vec<String>,
        /// Owner (name or id); default: the caller
        #[arg(long)]
        user: Option<String>,
    },
}

async fn user_or_me(ctx: &mut Ctx, user: Option<String>) -> Result<String> {
    match user {
        Some(u) => Ok(u),
        None => ctx.client.my_user_id().await,
    }
}

fn with_readable_time(v: &Value) -> Vec<(String, String)> {
    output::fields(v)
        .into_iter()
        .map(|(k, val)| {
            if k == "created_at" {
                let t = output::time_cell(&v["created_at"]);
                (k, t)
            } else {
                (k, val)
            }
        })
        .collect()
}

pub async fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<()> {
    match cmd {
        Cmd::List { user } => {
            let user = user_or_me(ctx, user).await?;
            let v = ctx
                .client
                .get(&["users", &user, "access-keys"], &[])
                .await?;
            let cols = [
                Col::field("Access Key", "access_key_id"),
                Col::field("Project ID", "project_id"),
                Col::field("User ID", "user_id"),
                Col::with("Created", |r| output::time_cell(&r["created_at"])),
            ];
            output::list(ctx.format, &v, items(&v), &cols);
        }
        Cmd::Create { user, project } => {
            let project = match (&user, project) {
                // For another user, the caller's project is rarely one of
                // theirs: default to the user's own default project.
                (Some(u), None) => {
                    let target = ctx.client.get(&["users", u], &[]).await?;
                    let me = ctx.client.my_user_id().await?;
                    match target["default_project_id"].as_str() {
                        Some(p) if target["id"].as_str() != Some(me.as_str()) => {
                            Some(p.to_string())
                        }
                        _ => None,
                    }
                }
                (_, p) => p,
            };
            let user = user_or_me(ctx, user).await?;
            let body = match project {
                Some(p) => json!({"project": p}),
                None => json!({}),
            };
            let v = ctx
                .client
                .post(&["users", &user, "access-keys"], &body)
                .await?;
            output::pairs(ctx.format, &v, &with_readable_time(&v));
            if ctx.format == Format::Table {
                eprintln!("Keep the secret now: nuage does not show it again.");
            }
        }
        Cmd::Delete { keys, user } => {
            let user = user_or_me(ctx, user).await?;
            let mut failed = 0;
            for k in &keys {
                let r = ctx.client.delete(&["users", &user, "access-keys", k]).await;
                match r {
                    Err(e) if keys.len() == 1 => return Err(e),
                    Err(e) => {
                        eprintln!("nuage: access key {k}: {e:#}");
                        failed += 1;
                    }
                    Ok(()) => {}
                }
            }
            if failed > 0 {
                anyhow::bail!(
                    "{failed} of {} access keys could not be deleted",
                    keys.len()
                );
            }
        }
    }
    Ok(())
}
