//! `nuage domain ...`

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use crate::client::items;
use crate::output::{self, Col};
use crate::Ctx;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// List domains
    List,
    /// Show a domain
    Show {
        /// Domain name or id
        domain: String,
    },
    /// Create a domain
    Create {
        /// The new domain's name
        name: String,
        /// A free-text description
        #[arg(long, default_value = "")]
        description: String,
    },
}

pub async fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<()> {
    match cmd {
        Cmd::List => {
            let v = ctx.client.get(&["domains"], &[]).await?;
            let cols = [
                Col::field("ID", "id"),
                Col::field("Name", "name"),
                Col::field("Enabled", "enabled"),
                Col::field("Description", "description"),
            ];
            output::list(ctx.format, &v, items(&v), &cols);
        }
        Cmd::Show { domain } => {
            let v = ctx.client.get(&["domains", &domain], &[]).await?;
            output::show(ctx.format, &v);
        }
        Cmd::Create { name, description } => {
            let v = ctx
                .client
                .post(
                    &["domains"],
                    &json!({"name": name, "description": description}),
                )
                .await?;
            output::show(ctx.format, &v);
        }
    }
    Ok(())
}
