//! Account metadata: Swift's `X-Account-Meta-*`, one row per project that
//! set any. An account is a project; its containers are the project's
//! buckets (ADR 10).

use std::collections::BTreeMap;

use nuage_identity::policy::Rule;
use nuage_model::identity::Principal;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::ObjectResult;
use crate::{authorize_as, check_meta_size, ObjectStore};

fn load(c: &Connection, project: &str) -> ObjectResult<BTreeMap<String, String>> {
    let meta: Option<String> = c
        .prepare_cached("SELECT meta FROM accounts WHERE project_id = ?1")?
        .query_row(params![project], |r| r.get(0))
        .optional()?;
    Ok(match meta {
        Some(m) => serde_json::from_str(&m)?,
        None => BTreeMap::new(),
    })
}

impl ObjectStore {
    /// The metadata of `project`'s account.
    pub async fn account_meta(
        &self,
        caller: &Principal,
        project: &str,
    ) -> ObjectResult<BTreeMap<String, String>> {
        authorize_as(caller, "object:get_account", Rule::ProjectRead(project))?;
        let p = project.to_string();
        self.inner.meta.read(move |c| load(c, &p)).await
    }

    /// Sets (`Some`) and removes (`None`) keys of the account's metadata,
    /// keeping the others, in one commit; returns the result.
    pub async fn update_account_meta(
        &self,
        caller: &Principal,
        project: &str,
        patch: BTreeMap<String, Option<String>>,
    ) -> ObjectResult<BTreeMap<String, String>> {
        authorize_as(caller, "object:update_account", Rule::ProjectWrite(project))?;
        let p = project.to_string();
        self.inner
            .meta
            .write(move |c| {
                let mut meta = load(c, &p)?;
                for (k, v) in patch {
                    match v {
                        Some(v) => meta.insert(k, v),
                        None => meta.remove(&k),
                    };
                }
                check_meta_size(&meta)?;
                if meta.is_empty() {
                    c.prepare_cached("DELETE FROM accounts WHERE project_id = ?1")?
                        .execute(params![p])?;
                } else {
                    c.prepare_cached(
                        "INSERT OR REPLACE INTO accounts (project_id, meta) VALUES (?1, ?2)",
                    )?
                    .execute(params![p, serde_json::to_string(&meta)?])?;
                }
                Ok(meta)
            })
            .await
    }
}
