//! `nuage role ...` and `nuage role assignment list`.

use std::collections::HashMap;

use anyhow::Result;
use clap::{ArgGroup, Args, Subcommand};
use serde_json::{json, Value};

use crate::client::items;
use crate::output::{self, Col, Format};
use crate::Ctx;

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// List roles
    List {
        /// Only the role with this name
        #[arg(long)]
        name: Option<String>,
    },
    /// Create a role
    Create {
        /// The new role's name
        name: String,
        /// A free-text description
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Show a role
    Show {
        /// Role name or id
        role: String,
    },
    /// Delete roles
    Delete {
        /// Role names or ids
        #[arg(required = true)]
        roles: Vec<String>,
    },
    /// Give a user or a group a role on a project (or a domain)
    #[command(
        group(ArgGroup::new("target").required(true).args(["project", "domain"])),
        group(ArgGroup::new("actor").required(true).args(["user", "group"])),
    )]
    Add(Grant),
    /// Take a role away from a user or a group
    #[command(
        group(ArgGroup::new("target").required(true).args(["project", "domain"])),
        group(ArgGroup::new("actor").required(true).args(["user", "group"])),
    )]
    Remove(Grant),
    /// Role assignments
    #[command(subcommand)]
    Assignment(AssignmentCmd),
}

#[derive(Debug, Args)]
pub struct Grant {
    /// Project (name or id) where the role applies
    #[arg(long)]
    project: Option<String>,
    /// Domain (name or id) where the role applies
    #[arg(long)]
    domain: Option<String>,
    /// User (name or id) who gets the role
    #[arg(long)]
    user: Option<String>,
    /// Group (name or id) that gets the role
    #[arg(long)]
    group: Option<String>,
    /// Role name or id
    role: String,
}

impl Grant {
    fn path(&self) -> [&str; 5] {
        let (tk, t) = match (&self.project, &self.domain) {
            (Some(p), _) => ("projects", p.as_str()),
            (None, d) => ("domains", d.as_deref().unwrap_or_default()),
        };
        let (ak, a) = match (&self.user, &self.group) {
            (Some(u), _) => ("users", u.as_str()),
            (None, g) => ("groups", g.as_deref().unwrap_or_default()),
        };
        [tk, t, ak, a, "roles"]
    }
}

#[derive(Debug, Subcommand)]
pub enum AssignmentCmd {
    /// List role assignments, with names
    List {
        /// Only this user's (name or id)
        #[arg(long)]
        user: Option<String>,
        /// Only this group's (name or id)
        #[arg(long, conflicts_with = "user")]
        group: Option<String>,
        /// Only on this project (name or id)
        #[arg(long)]
        project: Option<String>,
        /// Only on this domain (name or id)
        #[arg(long, conflicts_with = "project")]
        domain: Option<String>,
        /// Only of this role (name or id)
        #[arg(long)]
        role: Option<String>,
        /// Expand group memberships and implied roles
        #[arg(long)]
        effective: bool,
    },
}

pub async fn run(cmd: Cmd, ctx: &mut Ctx) -> Result<()> {
    match cmd {
        Cmd::List { name } => {
            let q: Vec<_> = name.map(|n| ("name", n)).into_iter().collect();
            let v = ctx.client.get(&["roles"], &q).await?;
            let cols = [
                Col::field("ID", "id"),
                Col::field("Name", "name"),
                Col::field("Description", "description"),
            ];
            output::list(ctx.format, &v, items(&v), &cols);
        }
        Cmd::Create { name, description } => {
            let v = ctx
                .client
                .post(
                    &["roles"],
                    &json!({"name": name, "description": description}),
                )
                .await?;
            output::show(ctx.format, &v);
        }
        Cmd::Show { role } => {
            let v = ctx.client.get(&["roles", &role], &[]).await?;
            output::show(ctx.format, &v);
        }
        Cmd::Delete { roles } => crate::delete_all(ctx, "roles", "role", &roles).await?,
        Cmd::Add(g) => {
            let mut path = g.path().to_vec();
            path.push(&g.role);
            ctx.client.put(&path, None).await?;
        }
        Cmd::Remove(g) => {
            let mut path = g.path().to_vec();
            path.push(&g.role);
            ctx.client.delete(&path).await?;
        }
        Cmd::Assignment(AssignmentCmd::List {
            user,
            group,
            project,
            domain,
            role,
            effective,
        }) => {
            let mut q = Vec::new();
            for (k, v) in [
                ("user", user),
                ("group", group),
                ("project", project),
                ("domain", domain),
                ("role", role),
            ] {
                if let Some(v) = v {
                    q.push((k, v));
                }
            }
            if effective {
                q.push(("effective", "true".to_string()));
            }
            let v = ctx.client.get(&["role-assignments"], &q).await?;
            if ctx.format == Format::Json {
                output::json(&v);
                return Ok(());
            }
            let names = Names::load(ctx, items(&v)).await;
            let cols = [
                Col::with("Role", |r| name_or_id(&r["role"], &HashMap::new())),
                Col::with("User", |r| name_or_id(&r["user"], &names.users)),
                Col::with("Group", |r| name_or_id(&r["group"], &names.groups)),
                Col::with("Project", |r| name_or_id(&r["project"], &names.projects)),
                Col::with("Domain", |r| name_or_id(&r["domain"], &names.domains)),
            ];
            output::list(ctx.format, &v, items(&v), &cols);
        }
    }
    Ok(())
}

/// The object's `name`, else the name known for its `id`, else the id.
fn name_or_id(v: &Value, known: &HashMap<String, String>) -> String {
    if let Some(n) = v["name"].as_str().filter(|n| !n.is_empty()) {
        return n.to_string();
    }
    let id = v["id"].as_str().unwrap_or_default();
    known.get(id).cloned().unwrap_or_else(|| id.to_string())
}

/// Id → name maps, each filled by one list call, made only when a row needs it.
#[derive(Default)]
struct Names {
    users: HashMap<String, String>,
    groups: HashMap<String, String>,
    projects: HashMap<String, String>,
    domains: HashMap<String, String>,
}

impl Names {
    async fn load(ctx: &mut Ctx, rows: &[Value]) -> Names {
        let needs = |k: &str| {
            rows.iter()
                .any(|r| r[k]["id"].is_string() && !r[k]["name"].is_string())
        };
        let mut n = Names::default();
        // Listing may be refused to a non-admin: ids are shown then, except
        // for the caller and its projects, which it can always see.
        if needs("user") {
            n.users = by_id(ctx, "users").await;
            if let Ok(p) = ctx.client.principal().await {
                if let (Some(id), Some(name)) =
                    (p["user"]["id"].as_str(), p["user"]["name"].as_str())
                {
                    n.users
                        .entry(id.to_string())
                        .or_insert_with(|| name.to_string());
                }
            }
        }
        if needs("group") {
            n.groups = by_id(ctx, "groups").await;
        }
        if needs("project") {
            n.projects = by_id(ctx, "projects").await;
        }
        if needs("domain") {
            n.domains = by_id(ctx, "domains").await;
        }
        n
    }
}

async fn by_id(ctx: &Ctx, collection: &str) -> HashMap<String, String> {
    let Ok(v) = ctx.client.get(&[collection], &[]).await else {
        return HashMap::new();
    };
    items(&v)
        .iter()
        .filter_map(|x| {
            Some((
                x["id"].as_str()?.to_string(),
                x["name"].as_str()?.to_string(),
            ))
        })
        .collect()
}
