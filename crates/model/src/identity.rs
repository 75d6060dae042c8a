//! Identity resources, shaped after Keystone v3.
//!
//! Every other resource in nuage belongs to a [`Project`]; the caller of any API
//! is described by a [`Principal`] that the identity service builds from a
//! token or a signature, and that the policy check reads.

use serde::{Deserialize, Serialize};

/// The id of the domain made at bootstrap; Keystone clients default to it.
pub const DEFAULT_DOMAIN_ID: &str = "default";

/// Role names that nuage's policy understands. `admin` implies `member`,
/// which implies `reader`, as in Keystone's default role hierarchy.
pub const ROLE_ADMIN: &str = "admin";
pub const ROLE_MEMBER: &str = "member";
pub const ROLE_READER: &str = "reader";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
    pub enabled: bool,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub default_project_id: Option<String>,
    pub email: Option<String>,
    pub enabled: bool,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub id: String,
    pub name: String,
    pub description: String,
}

/// Who receives a role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Actor {
    User(String),
    Group(String),
}

/// Where a role applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Target {
    Project(String),
    Domain(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Assignment {
    pub actor: Actor,
    pub target: Target,
    pub role_id: String,
}

/// An EC2-style access key: the id is public, the secret signs requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    pub access_key_id: String,
    /// Present only when the key is created or when the owner reads it back
    /// through the OS-EC2 API, which (like Keystone) returns it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub user_id: String,
    pub project_id: String,
    pub created_at: i64,
}

/// The authenticated caller of one request, scoped to one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub user_id: String,
    pub user_name: String,
    pub domain_id: String,
    pub project_id: String,
    pub project_name: String,
    pub project_domain_id: String,
    /// Effective role names on the project, implied roles included.
    pub roles: Vec<String>,
    /// How the caller proved who it is: `password`, `token`, `sigv4`.
    pub method: String,
    /// Token audit id, to revoke or trace without revealing the token.
    pub audit_id: String,
    pub expires_at: i64,
}

impl Principal {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn is_admin(&self) -> bool {
        self.has_role(ROLE_ADMIN)
    }
}

/// The quota-governed resources, and their defaults for a new project.
pub const QUOTA_RESOURCES: &[(&str, i64)] = &[
    ("instances", 20),
    ("cores", 40),
    ("ram", 100 * 1024),
    ("volumes", 20),
    ("gigabytes", 1000),
    ("floating_ips", 10),
    ("buckets", 100),
    ("bytes", 1 << 40),
];

/// One project's limit for one resource; `-1` means unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub project_id: String,
    pub resource: String,
    pub limit: i64,
}
