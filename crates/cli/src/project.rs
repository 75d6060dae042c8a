//! `nuage project ...`

use anyhow::Result;
use clap::{ArgGroup, Subcommand};
use serde_json::{json, Map, Value};

use crate::client::items;
use crate::output::{self, Col};
use crate::Ctx;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// List projects (all of them for an admin, else the caller's)
    List {
        /// Only the project with this name
        #[arg(long)]
        name: Option<String>,
        /// Only projects in this domain (name or id)
        #[arg(long)]
        domain: Option<String>,
    },
    /// Create a project
    Create {
        /// The new project's name
        name: String,
        /// A free-text description
        #[arg(long, default_value = "")]
        description: String,
        /// Domain (name or id); default: Default
        #[arg(long)]
        domain: Option<String>,
        /// Create it disabled
        #[arg(long)]
        disable: bool,
    },
    /// Show a project
    Show {
        /// Project name or id
        project: String,
    },
    /// Change a project
    #[command(group(ArgGroup::new("change").required(true).multiple(true)))]
    Set {
        /// Project name or id
        project: String,
        /// New name
        #[arg(long, group = "change")]
        name: Option<String>,
        /// New description
        #[arg(long, group = "change")]
        description: Option<String>,
        /// Enable it: its tokens work again
        #[arg(long, group = "change", conflicts_with = "disable")]
        enable: bool,
        /// Disable it: its tokens stop working, nothing is deleted
        #[arg(long, group = "change")]
        disable: bool,
    },
    /// Delete projects
    Delete {
        /// Project names or ids
        #[arg(required = true)]
        projects: Vec<String>,
    },
}

pub fn columns() -> Vec<Col<'static>> {
    vec![
        Col::field("ID", "id"),
        Col::field("Name", "name"),
        Col::field("Domain ID", "domain_id"),
        Col::field("Enabled", "enabled"),
        Col::field("Description", "description"),
    ]
}

pub async fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<()> {
    match cmd {
        Cmd::List { name, domain } => {
            let mut q = Vec::new();
            if let Some(n) = name {
                q.push(("name", n));
            }
            if let Some(d) = domain {
                q.push(("domain", d));
            }
            let v = ctx.client.get(&["projects"], &q).await?;
            output::list(ctx.format, &v, items(&v), &columns());
        }
        Cmd::Create {
            name,
            description,
            domain,
            disable,
        } => {
            let mut body = json!({"name": name, "description": description, "enabled": !disable});
            if let Some(d) = domain {
                body["domain"] = json!(d);
            }
            let v = ctx.client.post(&["projects"], &body).await?;
            output::show(ctx.format, &v);
        }
        Cmd::Show { project } => {
            let v = ctx.client.get(&["projects", &project], &[]).await?;
            output::show(ctx.format, &v);
        }
        Cmd::Set {
            project,
            name,
            description,
            enable,
            disable,
        } => {
            let mut body = Map::new();
            if let Some(n) = name {
                body.insert("name".into(), json!(n));
            }
            if let Some(d) = description {
                body.insert("description".into(), json!(d));
            }
            if enable || disable {
                body.insert("enabled".into(), json!(enable));
            }
            let v = ctx
                .client
                .patch(&["projects", &project], &Value::Object(body))
                .await?;
            output::show(ctx.format, &v);
        }
        Cmd::Delete { projects } => {
            crate::delete_all(ctx, "projects", "project", &projects).await?
        }
    }
    Ok(())
}
