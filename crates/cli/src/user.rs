//! `nuage user ...`

use anyhow::Result;
use clap::{ArgGroup, Subcommand};
use serde_json::{json, Map, Value};

use crate::client::items;
use crate::output::{self, Col};
use crate::Ctx;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// List users
    List {
        /// Only the user with this name
        #[arg(long)]
        name: Option<String>,
        /// Only users in this domain (name or id)
        #[arg(long)]
        domain: Option<String>,
    },
    /// Create a user
    Create {
        /// The new user's name
        name: String,
        /// The user's password (a user without one cannot log in with a password)
        #[arg(long)]
        password: Option<String>,
        /// The user's e-mail address
        #[arg(long)]
        email: Option<String>,
        /// Default project (name or id), where the user's tokens are scoped
        /// when no project is asked for
        #[arg(long, value_name = "PROJECT")]
        project: Option<String>,
        /// Domain (name or id); default: Default
        #[arg(long)]
        domain: Option<String>,
        /// Create it disabled
        #[arg(long)]
        disable: bool,
    },
    /// Show a user
    Show {
        /// User name or id
        user: String,
    },
    /// Change a user
    #[command(group(ArgGroup::new("change").required(true).multiple(true)))]
    Set {
        /// User name or id
        user: String,
        /// New name
        #[arg(long, group = "change")]
        name: Option<String>,
        /// New password
        #[arg(long, group = "change")]
        password: Option<String>,
        /// Your current password: required to change your own (admins
        /// setting another user's password need none)
        #[arg(long, requires = "password")]
        original_password: Option<String>,
        /// New e-mail address
        #[arg(long, group = "change")]
        email: Option<String>,
        /// New default project (name or id)
        #[arg(long, value_name = "PROJECT", group = "change")]
        project: Option<String>,
        /// Enable the user: it can log in again
        #[arg(long, group = "change", conflicts_with = "disable")]
        enable: bool,
        /// Disable the user: its tokens stop working, nothing is deleted
        #[arg(long, group = "change")]
        disable: bool,
    },
    /// Delete users
    Delete {
        /// User names or ids
        #[arg(required = true)]
        users: Vec<String>,
    },
}

pub fn columns() -> Vec<Col<'static>> {
    vec![
        Col::field("ID", "id"),
        Col::field("Name", "name"),
        Col::field("Domain ID", "domain_id"),
        Col::field("Email", "email"),
        Col::field("Enabled", "enabled"),
        Col::field("Default Project ID", "default_project_id"),
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
            let v = ctx.client.get(&["users"], &q).await?;
            output::list(ctx.format, &v, items(&v), &columns());
        }
        Cmd::Create {
            name,
            password,
            email,
            project,
            domain,
            disable,
        } => {
            let mut body = json!({"name": name, "enabled": !disable});
            for (k, v) in [
                ("password", password),
                ("email", email),
                ("default_project", project),
                ("domain", domain),
            ] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            let v = ctx.client.post(&["users"], &body).await?;
            output::show(ctx.format, &v);
        }
        Cmd::Show { user } => {
            let v = ctx.client.get(&["users", &user], &[]).await?;
            output::show(ctx.format, &v);
        }
        Cmd::Set {
            user,
            name,
            password,
            original_password,
            email,
            project,
            enable,
            disable,
        } => {
            let mut body = Map::new();
            for (k, v) in [
                ("name", name),
                ("password", password),
                ("original_password", original_password),
                ("email", email),
                ("default_project", project),
            ] {
                if let Some(v) = v {
                    body.insert(k.into(), json!(v));
                }
            }
            if enable || disable {
                body.insert("enabled".into(), json!(enable));
            }
            let v = ctx
                .client
                .patch(&["users", &user], &Value::Object(body))
                .await?;
            output::show(ctx.format, &v);
        }
        Cmd::Delete { users } => crate::delete_all(ctx, "users", "user", &users).await?,
    }
    Ok(())
}
