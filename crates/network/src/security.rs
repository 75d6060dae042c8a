//! Security groups and their rules: what a port lets in and out.
//!
//! A rule is checked completely before anything is written (protocol, port
//! range or ICMP type/code, one peer), so a refused rule changes nothing;
//! a group's generation grows with each rule change, and the nftables
//! reconciler applies the group's rule set as one transaction.

use nuage_identity::policy::{authorize, Rule};
use nuage_model::id;
use nuage_model::identity::Principal;
use nuage_store::sqlx::AnyConnection;

use crate::cidr::Cidr;
use crate::types::{
    prefix, Direction, NewRule, NewSecurityGroup, Protocol, RuleMatch, SecurityGroup,
    SecurityGroupRule, DEFAULT_NAME,
};
use crate::{
    check_name, may_read, must_write, now, repo, NetworkError, NetworkResult, NetworkService,
    Resource,
};

/// Everywhere, as a peer.
const ANYWHERE: &str = "0.0.0.0/0";

/// Rules one group holds at most: every rule becomes nftables rules on
/// every node with a member, so a client must not grow it without bound
/// (the figure is 1,000 rules applied in 100 ms).
pub const MAX_RULES_PER_GROUP: i64 = 1000;

/// The rule `req` asks for, normalised, or why it cannot be enforced.
/// A peer is a CIDR or a group; neither means anywhere.
fn check_rule(group: &str, req: &NewRule) -> NetworkResult<SecurityGroupRule> {
    let protocol = Protocol::parse(req.protocol.trim()).ok_or_else(|| {
        NetworkError::rule(format!(
            "protocol {:?} is not one of tcp, udp, icmp, all (or 6, 17, 1, -1)",
            req.protocol
        ))
    })?;
    // EC2 spells "no port" -1; both spellings mean all.
    let port = |v: Option<i64>| v.filter(|p| *p != -1);
    let (min, max) = (port(req.port_range_min), port(req.port_range_max));
    let (min, max) = match protocol {
        Protocol::Tcp | Protocol::Udp => match (min, max) {
            (None, None) => (None, None),
            (Some(a), Some(b)) if (1..=65535).contains(&a) && (1..=65535).contains(&b) => {
                if a > b {
                    return Err(NetworkError::rule(format!(
                        "port range {a}-{b}: the first port is above the last"
                    )));
                }
                (Some(a as u16), Some(b as u16))
            }
            (Some(_), Some(_)) => {
                return Err(NetworkError::rule("ports are 1 to 65535"));
            }
            _ => {
                return Err(NetworkError::rule(
                    "give both ends of the port range, or neither for all ports",
                ))
            }
        },
        Protocol::Icmp => {
            let byte = |v: i64, what: &str| {
                u8::try_from(v)
                    .map(u16::from)
                    .map_err(|_| NetworkError::rule(format!("the ICMP {what} is 0 to 255")))
            };
            match (min, max) {
                (None, None) => (None, None),
                (Some(t), None) => (Some(byte(t, "type")?), None),
                (Some(t), Some(c)) => (Some(byte(t, "type")?), Some(byte(c, "code")?)),
                (None, Some(_)) => {
                    return Err(NetworkError::rule("an ICMP code needs an ICMP type"));
                }
            }
        }
        Protocol::All => {
            if min.is_some() || max.is_some() {
                return Err(NetworkError::rule(
                    "a rule for all protocols takes no port range",
                ));
            }
            (None, None)
        }
    };
    let remote_cidr = match (&req.remote_cidr, &req.remote_group_id) {
        (Some(_), Some(_)) => {
            return Err(NetworkError::rule(
                "give a remote CIDR or a remote group, not both",
            ))
        }
        (Some(c), None) => {
            let cidr: Cidr = c
                .trim()
                .parse()
                .map_err(|reason| NetworkError::InvalidCidr {
                    cidr: c.clone(),
                    reason,
                })?;
            Some(cidr.to_string())
        }
        (None, Some(_)) => None,
        (None, None) => Some(ANYWHERE.to_string()),
    };
    if req.description.chars().count() > 255 {
        return Err(NetworkError::rule(
            "a description is at most 255 characters",
        ));
    }
    Ok(SecurityGroupRule {
        id: id::ec2(prefix::RULE),
        group_id: group.to_string(),
        direction: req.direction,
        protocol,
        port_range_min: min,
        port_range_max: max,
        remote_cidr,
        remote_group_id: req.remote_group_id.clone(),
        description: req.description.clone(),
    })
}

/// What makes two rules the same rule (the description does not).
fn fingerprint(r: &SecurityGroupRule) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}",
        r.direction.as_str(),
        r.protocol.as_str(),
        r.port_range_min.map(|p| p.to_string()).unwrap_or_default(),
        r.port_range_max.map(|p| p.to_string()).unwrap_or_default(),
        r.remote_cidr.as_deref().unwrap_or(""),
        r.remote_group_id.as_deref().unwrap_or(""),
    )
}

async fn insert_group(
    c: &mut AnyConnection,
    project: &str,
    name: &str,
    description: &str,
    t: i64,
) -> NetworkResult<Option<String>> {
    let g = SecurityGroup {
        id: id::ec2(prefix::SECURITY_GROUP),
        project_id: project.to_string(),
        name: name.to_string(),
        description: description.to_string(),
        rules: Vec::new(),
        generation: 1,
        observed_generation: 0,
        created_at: t,
    };
    if !repo::insert_sg(c, &g, t).await? {
        return Ok(None);
    }
    // Every group lets everything out, as EC2's and Neutron's do.
    let egress = check_rule(
        &g.id,
        &NewRule {
            direction: Direction::Egress,
            protocol: "all".into(),
            port_range_min: None,
            port_range_max: None,
            remote_cidr: None,
            remote_group_id: None,
            description: String::new(),
        },
    )?;
    repo::insert_rule(c, &egress, &fingerprint(&egress), t).await?;
    Ok(Some(g.id))
}

/// The project's `default` group, made (all egress; ingress from its own
/// members) if it does not exist yet; its id.
pub(crate) async fn ensure_default_group(
    c: &mut AnyConnection,
    project: &str,
    t: i64,
) -> NetworkResult<String> {
    if let Some(id) = repo::sg_by_name(c, project, DEFAULT_NAME).await? {
        return Ok(id);
    }
    match insert_group(c, project, DEFAULT_NAME, "default security group", t).await? {
        Some(id) => {
            let ingress = check_rule(
                &id,
                &NewRule {
                    direction: Direction::Ingress,
                    protocol: "all".into(),
                    port_range_min: None,
                    port_range_max: None,
                    remote_cidr: None,
                    remote_group_id: Some(id.clone()),
                    description: String::new(),
                },
            )?;
            repo::insert_rule(c, &ingress, &fingerprint(&ingress), t).await?;
            Ok(id)
        }
        // Made by a concurrent transaction that committed meanwhile.
        None => repo::sg_by_name(c, project, DEFAULT_NAME)
            .await?
            .ok_or_else(|| {
                NetworkError::Conflict(format!(
                    "the default security group of project {project} is being changed; try again"
                ))
            }),
    }
}

impl NetworkService {
    /// A group the caller may read; another project's is "not found".
    pub(crate) async fn visible_group(
        &self,
        c: &mut AnyConnection,
        caller: &Principal,
        id: &str,
    ) -> NetworkResult<SecurityGroup> {
        let g = repo::get_sg(c, id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::SecurityGroup, id))?;
        if may_read(caller, "network:get_security_group", &g.project_id) {
            Ok(g)
        } else {
            Err(NetworkError::not_found(Resource::SecurityGroup, id))
        }
    }

    pub async fn create_security_group(
        &self,
        caller: &Principal,
        req: NewSecurityGroup,
    ) -> NetworkResult<SecurityGroup> {
        let project = caller.project_id.clone();
        authorize(
            caller,
            "network:create_security_group",
            Rule::ProjectWrite(&project),
        )?;
        let name = req.name.trim();
        if name.is_empty() {
            return Err(NetworkError::invalid("a security group needs a name"));
        }
        check_name("a security group's name", name)?;
        check_name("a security group's description", &req.description)?;
        if name == DEFAULT_NAME {
            return Err(NetworkError::invalid(
                "the name default is reserved for the project's default security group",
            ));
        }
        let mut tx = self.begin().await?;
        let t = now();
        let Some(id) = insert_group(&mut tx, &project, name, &req.description, t).await? else {
            return Err(NetworkError::AlreadyExists {
                kind: Resource::SecurityGroup,
                name: name.to_string(),
            });
        };
        let g = repo::get_sg(&mut tx, &id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::SecurityGroup, &id))?;
        self.commit(tx).await?;
        tracing::info!(group = %g.id, project = %project, "security group created");
        Ok(g)
    }

    pub async fn get_security_group(
        &self,
        caller: &Principal,
        id: &str,
    ) -> NetworkResult<SecurityGroup> {
        let mut c = self.reader().await?;
        self.visible_group(&mut c, caller, id).await
    }

    pub async fn list_security_groups(
        &self,
        caller: &Principal,
        all_projects: bool,
    ) -> NetworkResult<Vec<SecurityGroup>> {
        authorize(
            caller,
            "network:list_security_groups",
            Rule::ProjectRead(&caller.project_id),
        )?;
        let scope = if all_projects {
            authorize(caller, "network:list_all_security_groups", Rule::Admin)?;
            None
        } else {
            Some(caller.project_id.as_str())
        };
        let mut c = self.reader().await?;
        Ok(repo::list_sgs(&mut c, scope).await?)
    }

    /// Deletes a group no port uses and no other group's rule names; the
    /// project's `default` group is never deleted.
    pub async fn delete_security_group(&self, caller: &Principal, id: &str) -> NetworkResult<()> {
        let mut tx = self.begin().await?;
        let g = self.visible_group(&mut tx, caller, id).await?;
        must_write(caller, "network:delete_security_group", &g.project_id)?;
        if g.name == DEFAULT_NAME {
            return Err(NetworkError::CannotDelete {
                kind: Resource::SecurityGroup,
                id: id.to_string(),
                reason: "it is the project's default security group",
            });
        }
        repo::bump_sg(&mut tx, id, now()).await?;
        if let Some(port) = repo::sg_member(&mut tx, id).await? {
            return Err(NetworkError::in_use(
                Resource::SecurityGroup,
                id,
                format!("port {port}"),
            ));
        }
        if let Some(other) = repo::sg_referrer(&mut tx, id).await? {
            return Err(NetworkError::in_use(
                Resource::SecurityGroup,
                id,
                format!("a rule of security group {other}"),
            ));
        }
        repo::delete_sg(&mut tx, id).await?;
        self.commit(tx).await?;
        tracing::info!(group = %id, "security group deleted");
        Ok(())
    }

    /// Adds an allow rule. A remote group must be of the same project (a
    /// foreign one answers "not found"); a duplicate rule is refused.
    pub async fn add_security_group_rule(
        &self,
        caller: &Principal,
        group: &str,
        req: NewRule,
    ) -> NetworkResult<SecurityGroupRule> {
        let mut added = self
            .add_security_group_rules(caller, group, vec![req])
            .await?;
        added
            .pop()
            .ok_or_else(|| NetworkError::Internal("one rule asked, none added".into()))
    }

    /// Adds every rule of `reqs` or none, in one transaction (EC2's
    /// Authorize with several permissions): a rule already in the group,
    /// or given twice, is `AlreadyExists` (EC2's
    /// `InvalidPermission.Duplicate`) and nothing is written, so a crash
    /// can never leave half of the list either.
    pub async fn add_security_group_rules(
        &self,
        caller: &Principal,
        group: &str,
        reqs: Vec<NewRule>,
    ) -> NetworkResult<Vec<SecurityGroupRule>> {
        if reqs.is_empty() {
            return Err(NetworkError::rule("give at least one rule"));
        }
        let mut tx = self.begin().await?;
        let g = self.visible_group(&mut tx, caller, group).await?;
        must_write(caller, "network:add_security_group_rule", &g.project_id)?;
        let rules = reqs
            .iter()
            .map(|r| check_rule(group, r))
            .collect::<NetworkResult<Vec<_>>>()?;
        for remote in rules.iter().filter_map(|r| r.remote_group_id.as_deref()) {
            let r = repo::get_sg(&mut tx, remote).await?;
            if r.is_none_or(|r| r.project_id != g.project_id) {
                return Err(NetworkError::not_found(Resource::SecurityGroup, remote));
            }
        }
        let t = now();
        if !repo::bump_sg(&mut tx, group, t).await? {
            return Err(NetworkError::not_found(Resource::SecurityGroup, group));
        }
        // Counted under the group's row lock: racing adds cannot overrun it.
        let held = repo::count_rules(&mut tx, group).await?;
        if held + rules.len() as i64 > MAX_RULES_PER_GROUP {
            return Err(NetworkError::LimitExceeded {
                what: "rules in a security group",
                limit: MAX_RULES_PER_GROUP,
            });
        }
        for rule in &rules {
            // A refusal drops `tx`: the rules inserted before it go too.
            if !repo::insert_rule(&mut tx, rule, &fingerprint(rule), t).await? {
                return Err(NetworkError::AlreadyExists {
                    kind: Resource::SecurityGroupRule,
                    name: fingerprint(rule),
                });
            }
        }
        self.commit(tx).await?;
        for rule in &rules {
            tracing::info!(group = %group, rule = %rule.id, "security group rule added");
        }
        Ok(rules)
    }

    /// Removes the rule of `group` that `req` describes (EC2's Revoke,
    /// which names rules by their content, not their id): "not found" when
    /// the group holds no such rule.
    pub async fn remove_matching_rule(
        &self,
        caller: &Principal,
        group: &str,
        req: NewRule,
    ) -> NetworkResult<SecurityGroupRule> {
        let mut removed = self
            .remove_security_group_rules(caller, group, vec![RuleMatch::Content(req)])
            .await?;
        removed
            .pop()
            .ok_or_else(|| NetworkError::Internal("one rule named, none removed".into()))
    }

    /// Removes every rule `wanted` names from `group`, or none, in one
    /// transaction (EC2's Revoke with several permissions or rule ids): a
    /// name that matches no rule of the group is `NotFound` of a
    /// [`Resource::SecurityGroupRule`] (EC2's `InvalidPermission.NotFound`)
    /// carrying the fingerprint, or the id, it was given, and nothing is
    /// removed. Two names of one rule remove it once.
    pub async fn remove_security_group_rules(
        &self,
        caller: &Principal,
        group: &str,
        wanted: Vec<RuleMatch>,
    ) -> NetworkResult<Vec<SecurityGroupRule>> {
        if wanted.is_empty() {
            return Err(NetworkError::rule("give at least one rule"));
        }
        let mut tx = self.begin().await?;
        if !repo::bump_sg(&mut tx, group, now()).await? {
            return Err(NetworkError::not_found(Resource::SecurityGroup, group));
        }
        // Read after the bump, under the group's row lock: what is matched
        // is what is deleted.
        let g = self.visible_group(&mut tx, caller, group).await?;
        must_write(caller, "network:remove_security_group_rule", &g.project_id)?;
        let mut removed: Vec<SecurityGroupRule> = Vec::new();
        for w in &wanted {
            let found = match w {
                RuleMatch::Content(req) => {
                    let key = fingerprint(&check_rule(group, req)?);
                    g.rules
                        .iter()
                        .find(|r| fingerprint(r) == key)
                        .ok_or_else(|| NetworkError::not_found(Resource::SecurityGroupRule, key))?
                }
                RuleMatch::Id { id, direction } => g
                    .rules
                    .iter()
                    .find(|r| &r.id == id && r.direction == *direction)
                    .ok_or_else(|| NetworkError::not_found(Resource::SecurityGroupRule, id))?,
            };
            if !removed.iter().any(|r| r.id == found.id) {
                removed.push(found.clone());
            }
        }
        for r in &removed {
            repo::delete_rule(&mut tx, &r.id).await?;
        }
        self.commit(tx).await?;
        for r in &removed {
            tracing::info!(group = %group, rule = %r.id, "security group rule removed");
        }
        Ok(removed)
    }

    pub async fn remove_security_group_rule(
        &self,
        caller: &Principal,
        rule: &str,
    ) -> NetworkResult<()> {
        let missing = || NetworkError::not_found(Resource::SecurityGroupRule, rule);
        let mut tx = self.begin().await?;
        let r = repo::get_rule(&mut tx, rule).await?.ok_or_else(missing)?;
        let g = self
            .visible_group(&mut tx, caller, &r.group_id)
            .await
            .map_err(|_| missing())?;
        must_write(caller, "network:remove_security_group_rule", &g.project_id)?;
        repo::bump_sg(&mut tx, &g.id, now()).await?;
        repo::delete_rule(&mut tx, rule).await?;
        self.commit(tx).await?;
        tracing::info!(group = %g.id, rule = %rule, "security group rule removed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(protocol: &str, min: Option<i64>, max: Option<i64>) -> NewRule {
        NewRule {
            direction: Direction::Ingress,
            protocol: protocol.into(),
            port_range_min: min,
            port_range_max: max,
            remote_cidr: None,
            remote_group_id: None,
            description: String::new(),
        }
    }

    #[test]
    fn rules_are_checked() {
        let ok = check_rule("sg-1", &rule("tcp", Some(22), Some(22))).expect("ssh");
        assert_eq!(ok.remote_cidr.as_deref(), Some(ANYWHERE));
        assert!(check_rule("sg-1", &rule("6", Some(1), Some(65535))).is_ok());
        assert!(check_rule("sg-1", &rule("icmp", Some(8), Some(0))).is_ok());
        assert!(check_rule("sg-1", &rule("icmp", Some(-1), Some(-1))).is_ok());
        assert!(check_rule("sg-1", &rule("-1", None, None)).is_ok());
        for (p, a, b) in [
            ("tcp", Some(80), Some(22)),
            ("tcp", Some(0), Some(22)),
            ("udp", Some(1), Some(70000)),
            ("tcp", Some(22), None),
            ("icmp", Some(256), None),
            ("icmp", None, Some(0)),
            ("all", Some(1), Some(2)),
            ("gre", None, None),
        ] {
            assert!(
                matches!(
                    check_rule("sg-1", &rule(p, a, b)),
                    Err(NetworkError::InvalidRule(_))
                ),
                "{p} {a:?}-{b:?} must be refused"
            );
        }
        let mut both = rule("tcp", None, None);
        both.remote_cidr = Some("10.0.0.0/8".into());
        both.remote_group_id = Some("sg-2".into());
        assert!(check_rule("sg-1", &both).is_err());
        both.remote_group_id = None;
        both.remote_cidr = Some("10.0.0.1/8".into());
        assert!(matches!(
            check_rule("sg-1", &both),
            Err(NetworkError::InvalidCidr { .. })
        ));
    }
}
