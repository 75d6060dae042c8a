//! `nuage group ...`

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use crate::client::items;
use crate::output::{self, Col};
use crate::Ctx;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// List groups
    List {
        /// Only the group with this name
        #[arg(long)]
        name: Option<String>,
    },
    /// Create a group
    Create {
        /// The new group's name
        name: String,
        /// A free-text description
        #[arg(long, default_value = "")]
        description: String,
        /// Domain (name or id); default: Default
        #[arg(long)]
        domain: Option<String>,
    },
    /// Show a group
    Show {
        /// Group name or id
        group: String,
    },
    /// Delete groups
    Delete {
        /// Group names or ids
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Add a user to a group
    AddUser {
        /// Group name or id
        group: String,
        /// User name or id
        user: String,
    },
    /// Remove a user from a group
    RemoveUser {
        /// Group name or id
        group: String,
        /// User name or id
        user: String,
    },
    /// List a group's users
    Users {
        /// Group name or id
        group: String,
    },
}

pub async fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<()> {
    match cmd {
        Cmd::List { name } => {
            let q: Vec<_> = name.map(|n| ("name", n)).into_iter().collect();
            let v = ctx.client.get(&["groups"], &q).await?;
            let cols = [
                Col::field("ID", "id"),
                Col::field("Name", "name"),
                Col::field("Domain ID", "domain_id"),
                Col::field("Description", "description"),
            ];
            output::list(ctx.format, &v, items(&v), &cols);
        }
        Cmd::Create {
            name,
            description,
            domain,
        } => {
            let mut body = json!({"name": name, "description": description});
            if let Some(d) = domain {
                body["domain"] = json!(d);
            }
            let v = ctx.client.post(&["groups"], &body).await?;
            output::show(ctx.format, &v);
        }
        Cmd::Show { group } => {
            let v = ctx.client.get(&["groups", &group], &[]).await?;
            output::show(ctx.format, &v);
        }
        Cmd::Delete { groups } => crate::delete_all(ctx, "groups", "group", &groups).await?,
        Cmd::AddUser { group, user } => {
            ctx.client
                .put(&["groups", &group, "users", &user], None)
                .await?;
        }
        Cmd::RemoveUser { group, user } => {
            ctx.client
                .delete(&["groups", &group, "users", &user])
                .await?;
        }
        Cmd::Users { group } => {
            let v = ctx.client.get(&["groups", &group, "users"], &[]).await?;
            output::list(ctx.format, &v, items(&v), &crate::user::columns());
        }
    }
    Ok(())
}
