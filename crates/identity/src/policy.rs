//! The one policy check of nuage.
//!
//! Every core service calls [`authorize`] with the caller's principal before it
//! reads or changes anything, whichever front door the call came through, so
//! the rules live here once:
//!
//! - `admin` (a role on any project) may do everything, in every project: it
//!   is the cloud operator, as Keystone's default policy makes it;
//! - `member` may read and change the resources of the project its token is
//!   scoped to;
//! - `reader` may only read them;
//! - nobody but an admin reaches into a project other than the token's.
//!
//! Denials are logged with the action and the caller's ids, never with
//! credentials.

use nuage_model::identity::{Principal, ROLE_ADMIN, ROLE_MEMBER, ROLE_READER};

use crate::error::{IdentityError, IdentityResult};

/// What an action needs.
#[derive(Debug, Clone, Copy)]
pub enum Rule<'a> {
    /// Cloud administration: identity objects, other projects.
    Admin,
    /// Reading the resources of this project.
    ProjectRead(&'a str),
    /// Creating, changing or deleting the resources of this project.
    ProjectWrite(&'a str),
    /// Acting on this user's own things (its record, its access keys), or admin.
    SelfOrAdmin(&'a str),
}

/// Allows or refuses `action` (a name such as `identity:create_project`, used
/// in logs and error messages) for `principal` under `rule`.
pub fn authorize(principal: &Principal, action: &str, rule: Rule<'_>) -> IdentityResult<()> {
    if principal.has_role(ROLE_ADMIN) {
        return Ok(());
    }
    let refusal = match rule {
        Rule::Admin => Some("it requires the admin role"),
        Rule::ProjectRead(project) | Rule::ProjectWrite(project)
            if project != principal.project_id =>
        {
            Some("the resource belongs to another project")
        }
        Rule::ProjectRead(_) => {
            if principal.has_role(ROLE_READER) || principal.has_role(ROLE_MEMBER) {
                None
            } else {
                Some("it requires the reader role on the project")
            }
        }
        Rule::ProjectWrite(_) => {
            if principal.has_role(ROLE_MEMBER) {
                None
            } else {
                Some("it requires the member role on the project")
            }
        }
        Rule::SelfOrAdmin(user) => {
            if user == principal.user_id {
                None
            } else {
                Some("only the user itself or an admin may do this")
            }
        }
    };
    match refusal {
        None => Ok(()),
        Some(reason) => {
            tracing::info!(
                action,
                user_id = %principal.user_id,
                project_id = %principal.project_id,
                reason,
                "policy denied"
            );
            Err(IdentityError::Forbidden {
                action: action.to_string(),
                reason: reason.to_string(),
            })
        }
    }
}

/// The roles a role name grants through Keystone's default implications.
pub fn implied(role: &str) -> &'static [&'static str] {
    match role {
        ROLE_ADMIN => &[ROLE_ADMIN, ROLE_MEMBER, ROLE_READER],
        ROLE_MEMBER => &[ROLE_MEMBER, ROLE_READER],
        ROLE_READER => &[ROLE_READER],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(roles: &[&str]) -> Principal {
        Principal {
            user_id: "u".into(),
            user_name: "u".into(),
            domain_id: "default".into(),
            project_id: "p".into(),
            project_name: "p".into(),
            project_domain_id: "default".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            method: "token".into(),
            audit_id: "a".into(),
            expires_at: 0,
        }
    }

    #[test]
    fn matrix() {
        let admin = who(&["admin", "member", "reader"]);
        let member = who(&["member", "reader"]);
        let reader = who(&["reader"]);
        let none = who(&[]);
        for p in [&admin, &member, &reader, &none] {
            let ok = |r| authorize(p, "t", r).is_ok();
            let is_admin = p.is_admin();
            assert_eq!(ok(Rule::Admin), is_admin);
            assert_eq!(ok(Rule::ProjectRead("p")), !p.roles.is_empty());
            assert_eq!(ok(Rule::ProjectWrite("p")), p.has_role("member"));
            assert_eq!(ok(Rule::ProjectRead("other")), is_admin);
            assert_eq!(ok(Rule::ProjectWrite("other")), is_admin);
            assert!(ok(Rule::SelfOrAdmin("u")));
            assert_eq!(ok(Rule::SelfOrAdmin("v")), is_admin);
        }
    }
}
