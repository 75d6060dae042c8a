//! Filters: each one says whether a node can take one instance of a request,
//! and why not. They run in order; a node is dropped by the first filter that
//! rejects it, so per-filter rejection counts add up to the fleet size.

use crate::types::{NodeState, Policy, Request};

/// Facts about the whole fleet that some filters need and that a single node
/// cannot tell: computed by the scheduler once per placement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FleetFacts {
    /// The request's server group has at least one member on some node.
    pub group_has_members: bool,
}

impl FleetFacts {
    /// Scans the fleet for what the filters need to know about `req`.
    pub fn scan(nodes: &[NodeState], req: &Request) -> Self {
        let group_has_members = match &req.group {
            Some(g) => nodes.iter().any(|n| n.groups.contains(&g.id)),
            None => false,
        };
        FleetFacts { group_has_members }
    }
}

/// A yes/no test of one node against one request.
///
/// `passes` gives the reason in words because it ends up in the user's error
/// message. The scheduler calls [`Filter::accepts`] in its hot loop (once per
/// node per placement, 10 million times for 10,000 placements over 1,000
/// nodes), so filters whose reasons allocate override it with a check that
/// doesn't; the reasons are only built when a placement fails.
pub trait Filter: Send + Sync {
    /// Name shown in "no node fits" messages, Nova's names where Nova has one.
    fn name(&self) -> &'static str;

    /// `Err(reason)` when `node` cannot take one instance of `req`.
    fn passes(&self, node: &NodeState, req: &Request) -> Result<(), String>;

    /// Like [`Filter::passes`], for filters that also need fleet-wide facts.
    fn passes_with(
        &self,
        node: &NodeState,
        req: &Request,
        _fleet: &FleetFacts,
    ) -> Result<(), String> {
        self.passes(node, req)
    }

    /// Whether `node` passes, without building a reason.
    fn accepts(&self, node: &NodeState, req: &Request, fleet: &FleetFacts) -> bool {
        self.passes_with(node, req, fleet).is_ok()
    }

    /// Whether this filter can reject anything for `req` at all; the
    /// scheduler skips it for the whole launch when not (an AZ filter when no
    /// zone is asked for). Must be `true` whenever `accepts` could be `false`.
    fn applies_to(&self, _req: &Request) -> bool {
        true
    }

    /// One reason summarising every node this filter rejected (e.g. the
    /// best shortfall), or `None` to use the first node's reason.
    fn summarize(&self, _rejected: &[&NodeState], _req: &Request) -> Option<String> {
        None
    }
}

/// Rejects disabled nodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ComputeFilter;

impl Filter for ComputeFilter {
    fn name(&self) -> &'static str {
        "ComputeFilter"
    }
    fn passes(&self, node: &NodeState, _req: &Request) -> Result<(), String> {
        if node.enabled {
            Ok(())
        } else {
            Err(format!("node {} is disabled", node.id))
        }
    }
    fn accepts(&self, node: &NodeState, _req: &Request, _fleet: &FleetFacts) -> bool {
        node.enabled
    }
    fn summarize(&self, _rejected: &[&NodeState], _req: &Request) -> Option<String> {
        Some("disabled".to_string())
    }
}

/// Keeps nodes of the requested availability zone.
#[derive(Debug, Clone, Copy, Default)]
pub struct AvailabilityZoneFilter;

impl Filter for AvailabilityZoneFilter {
    fn name(&self) -> &'static str {
        "AvailabilityZoneFilter"
    }
    fn applies_to(&self, req: &Request) -> bool {
        req.az.is_some()
    }
    fn passes(&self, node: &NodeState, req: &Request) -> Result<(), String> {
        match &req.az {
            Some(az) if *az != node.az => {
                Err(format!("node is in zone {}, zone {az} wanted", node.az))
            }
            _ => Ok(()),
        }
    }
    fn accepts(&self, node: &NodeState, req: &Request, _fleet: &FleetFacts) -> bool {
        req.az.as_ref().is_none_or(|az| *az == node.az)
    }
    fn summarize(&self, _rejected: &[&NodeState], req: &Request) -> Option<String> {
        req.az.as_ref().map(|az| format!("zone {az} wanted"))
    }
}

/// Keeps nodes of the architecture the request (instance type or caller) names.
#[derive(Debug, Clone, Copy, Default)]
pub struct ArchitectureFilter;

impl Filter for ArchitectureFilter {
    fn name(&self) -> &'static str {
        "ArchitectureFilter"
    }
    fn applies_to(&self, req: &Request) -> bool {
        req.arch.is_some()
    }
    fn passes(&self, node: &NodeState, req: &Request) -> Result<(), String> {
        match req.arch {
            Some(arch) if arch != node.arch => Err(format!("node is {}, {arch} wanted", node.arch)),
            _ => Ok(()),
        }
    }
    fn accepts(&self, node: &NodeState, req: &Request, _fleet: &FleetFacts) -> bool {
        req.arch.is_none_or(|arch| arch == node.arch)
    }
    fn summarize(&self, _rejected: &[&NodeState], req: &Request) -> Option<String> {
        req.arch.map(|arch| format!("architecture {arch} wanted"))
    }
}

/// Keeps nodes that meet the image's properties: its architecture, its
/// hypervisor type (container or vm) and the node labels it requires.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImagePropertiesFilter;

impl Filter for ImagePropertiesFilter {
    fn name(&self) -> &'static str {
        "ImagePropertiesFilter"
    }
    fn applies_to(&self, req: &Request) -> bool {
        let p = &req.image_properties;
        p.arch.is_some() || p.hypervisor_type.is_some() || !p.required_labels.is_empty()
    }
    fn passes(&self, node: &NodeState, req: &Request) -> Result<(), String> {
        let props = &req.image_properties;
        if let Some(arch) = props.arch {
            if arch != node.arch {
                return Err(format!("image is {arch}, node is {}", node.arch));
            }
        }
        if let Some(hv) = props.hypervisor_type {
            if !node.hypervisor_types.contains(&hv) {
                return Err(format!("image needs hypervisor type {hv}, node has none"));
            }
        }
        for (key, want) in &props.required_labels {
            match node.labels.get(key) {
                Some(have) if have == want => {}
                Some(have) => {
                    return Err(format!(
                        "image needs label {key}={want}, node has {key}={have}"
                    ))
                }
                None => return Err(format!("image needs label {key}={want}, node has no {key}")),
            }
        }
        Ok(())
    }
    fn accepts(&self, node: &NodeState, req: &Request, _fleet: &FleetFacts) -> bool {
        let props = &req.image_properties;
        props.arch.is_none_or(|a| a == node.arch)
            && props
                .hypervisor_type
                .is_none_or(|hv| node.hypervisor_types.contains(&hv))
            && props
                .required_labels
                .iter()
                .all(|(k, v)| node.labels.get(k) == Some(v))
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// How much of a resource is left under an allocation ratio.
fn free_under(total: u64, used: u64, ratio: f64) -> f64 {
    total as f64 * ratio - used as f64
}

/// `what`'s best shortfall over the rejected nodes.
fn best_free(rejected: &[&NodeState], free: impl Fn(&NodeState) -> f64) -> f64 {
    rejected
        .iter()
        .map(|n| free(n))
        .fold(f64::NEG_INFINITY, f64::max)
        .max(0.0)
}

/// Keeps nodes with enough RAM left under `ram_allocation_ratio`.
#[derive(Debug, Clone, Copy)]
pub struct RamFilter {
    pub ram_allocation_ratio: f64,
}

impl RamFilter {
    fn free(&self, node: &NodeState) -> f64 {
        free_under(node.ram_mib, node.used_ram_mib, self.ram_allocation_ratio)
    }
}

impl Filter for RamFilter {
    fn name(&self) -> &'static str {
        "RamFilter"
    }
    fn passes(&self, node: &NodeState, req: &Request) -> Result<(), String> {
        let free = self.free(node);
        if req.ram_mib as f64 <= free {
            Ok(())
        } else {
            Err(format!(
                "needs {} MiB, node has {} free",
                req.ram_mib,
                free.max(0.0).floor()
            ))
        }
    }
    fn accepts(&self, node: &NodeState, req: &Request, _fleet: &FleetFacts) -> bool {
        req.ram_mib as f64 <= self.free(node)
    }
    fn summarize(&self, rejected: &[&NodeState], req: &Request) -> Option<String> {
        let best = best_free(rejected, |n| self.free(n));
        Some(format!(
            "needs {} MiB, best node has {} free",
            req.ram_mib,
            best.floor()
        ))
    }
}

/// Keeps nodes with enough vCPUs left under `cpu_allocation_ratio`
/// (over-commit: 16 vCPUs per core by default, as Nova's CoreFilter had).
#[derive(Debug, Clone, Copy)]
pub struct CoreFilter {
    pub cpu_allocation_ratio: f64,
}

impl CoreFilter {
    fn free(&self, node: &NodeState) -> f64 {
        free_under(
            node.vcpus.into(),
            node.used_vcpus.into(),
            self.cpu_allocation_ratio,
        )
    }
}

impl Filter for CoreFilter {
    fn name(&self) -> &'static str {
        "CoreFilter"
    }
    fn passes(&self, node: &NodeState, req: &Request) -> Result<(), String> {
        let free = self.free(node);
        if f64::from(req.vcpus) <= free {
            Ok(())
        } else {
            Err(format!(
                "needs {} vCPU{}, node has {} free at allocation ratio {}",
                req.vcpus,
                plural(req.vcpus),
                free.max(0.0).floor(),
                self.cpu_allocation_ratio
            ))
        }
    }
    fn accepts(&self, node: &NodeState, req: &Request, _fleet: &FleetFacts) -> bool {
        f64::from(req.vcpus) <= self.free(node)
    }
    fn summarize(&self, rejected: &[&NodeState], req: &Request) -> Option<String> {
        let best = best_free(rejected, |n| self.free(n));
        Some(format!(
            "needs {} vCPU{}, best node has {} free at allocation ratio {}",
            req.vcpus,
            plural(req.vcpus),
            best.floor(),
            self.cpu_allocation_ratio
        ))
    }
}

/// Keeps nodes with enough disk left under `disk_allocation_ratio`.
#[derive(Debug, Clone, Copy)]
pub struct DiskFilter {
    pub disk_allocation_ratio: f64,
}

impl DiskFilter {
    fn free(&self, node: &NodeState) -> f64 {
        free_under(
            node.disk_gib,
            node.used_disk_gib,
            self.disk_allocation_ratio,
        )
    }
}

impl Filter for DiskFilter {
    fn name(&self) -> &'static str {
        "DiskFilter"
    }
    fn passes(&self, node: &NodeState, req: &Request) -> Result<(), String> {
        let free = self.free(node);
        if req.disk_gib as f64 <= free {
            Ok(())
        } else {
            Err(format!(
                "needs {} GiB, node has {} free",
                req.disk_gib,
                free.max(0.0).floor()
            ))
        }
    }
    fn accepts(&self, node: &NodeState, req: &Request, _fleet: &FleetFacts) -> bool {
        req.disk_gib as f64 <= self.free(node)
    }
    fn summarize(&self, rejected: &[&NodeState], req: &Request) -> Option<String> {
        let best = best_free(rejected, |n| self.free(n));
        Some(format!(
            "needs {} GiB disk, best node has {} free",
            req.disk_gib,
            best.floor()
        ))
    }
}

/// For an affinity group: once the group has a member somewhere, only the
/// nodes holding members qualify. The first member goes anywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerGroupAffinityFilter;

impl Filter for ServerGroupAffinityFilter {
    fn name(&self) -> &'static str {
        "ServerGroupAffinityFilter"
    }
    fn applies_to(&self, req: &Request) -> bool {
        req.group
            .as_ref()
            .is_some_and(|g| g.policy == Policy::Affinity)
    }
    /// Without fleet facts, assumes the group already has members elsewhere.
    fn passes(&self, node: &NodeState, req: &Request) -> Result<(), String> {
        match &req.group {
            Some(g) if g.policy == Policy::Affinity && !node.groups.contains(&g.id) => {
                Err(format!(
                    "server group {} (affinity) has its members on another node",
                    g.id
                ))
            }
            _ => Ok(()),
        }
    }
    fn passes_with(
        &self,
        node: &NodeState,
        req: &Request,
        fleet: &FleetFacts,
    ) -> Result<(), String> {
        if fleet.group_has_members {
            self.passes(node, req)
        } else {
            Ok(())
        }
    }
    fn accepts(&self, node: &NodeState, req: &Request, fleet: &FleetFacts) -> bool {
        match &req.group {
            Some(g) if g.policy == Policy::Affinity && fleet.group_has_members => {
                node.groups.contains(&g.id)
            }
            _ => true,
        }
    }
}

/// For an anti-affinity group: a node already holding a member is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerGroupAntiAffinityFilter;

impl Filter for ServerGroupAntiAffinityFilter {
    fn name(&self) -> &'static str {
        "ServerGroupAntiAffinityFilter"
    }
    fn applies_to(&self, req: &Request) -> bool {
        req.group
            .as_ref()
            .is_some_and(|g| g.policy == Policy::AntiAffinity)
    }
    fn passes(&self, node: &NodeState, req: &Request) -> Result<(), String> {
        match &req.group {
            Some(g) if g.policy == Policy::AntiAffinity && node.groups.contains(&g.id) => {
                Err(format!(
                    "server group {} (anti-affinity) already has a member on this node",
                    g.id
                ))
            }
            _ => Ok(()),
        }
    }
    fn accepts(&self, node: &NodeState, req: &Request, _fleet: &FleetFacts) -> bool {
        match &req.group {
            Some(g) if g.policy == Policy::AntiAffinity => !node.groups.contains(&g.id),
            _ => true,
        }
    }
    fn summarize(&self, _rejected: &[&NodeState], req: &Request) -> Option<String> {
        req.group.as_ref().map(|g| {
            format!(
                "server group {} (anti-affinity) already has a member on each",
                g.id
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Arch, GroupRef, HypervisorType, NodeState, Request};

    fn node() -> NodeState {
        NodeState::new("n1", "nuage-1a", Arch::X86_64, 4, 8_192, 100)
    }

    /// `passes`, `passes_with` and `accepts` must agree, and a filter that
    /// says it does not apply must accept.
    fn check(f: &dyn Filter, n: &NodeState, r: &Request, fleet: FleetFacts) -> Result<(), String> {
        let res = f.passes_with(n, r, &fleet);
        assert_eq!(
            res.is_ok(),
            f.accepts(n, r, &fleet),
            "{} disagrees with itself",
            f.name()
        );
        if !f.applies_to(r) {
            assert!(res.is_ok(), "{} rejects though it does not apply", f.name());
        }
        res
    }

    fn ok(f: &dyn Filter, n: &NodeState, r: &Request) {
        assert_eq!(check(f, n, r, FleetFacts::default()), Ok(()));
    }

    fn rejects(f: &dyn Filter, n: &NodeState, r: &Request, reason: &str) {
        assert_eq!(
            check(f, n, r, FleetFacts::default()),
            Err(reason.to_string())
        );
    }

    #[test]
    fn compute_filter() {
        let mut n = node();
        ok(&ComputeFilter, &n, &Request::new(1, 1, 1));
        n.enabled = false;
        rejects(
            &ComputeFilter,
            &n,
            &Request::new(1, 1, 1),
            "node n1 is disabled",
        );
    }

    #[test]
    fn availability_zone_filter() {
        let mut r = Request::new(1, 1, 1);
        ok(&AvailabilityZoneFilter, &node(), &r);
        r.az = Some("nuage-1a".into());
        ok(&AvailabilityZoneFilter, &node(), &r);
        r.az = Some("nuage-1b".into());
        rejects(
            &AvailabilityZoneFilter,
            &node(),
            &r,
            "node is in zone nuage-1a, zone nuage-1b wanted",
        );
        assert_eq!(
            AvailabilityZoneFilter.summarize(&[], &r).as_deref(),
            Some("zone nuage-1b wanted")
        );
    }

    #[test]
    fn architecture_filter() {
        let mut r = Request::new(1, 1, 1);
        ok(&ArchitectureFilter, &node(), &r);
        r.arch = Some(Arch::X86_64);
        ok(&ArchitectureFilter, &node(), &r);
        r.arch = Some(Arch::Aarch64);
        rejects(
            &ArchitectureFilter,
            &node(),
            &r,
            "node is x86_64, aarch64 wanted",
        );
    }

    #[test]
    fn image_properties_filter() {
        let mut n = node();
        let mut r = Request::new(1, 1, 1);
        ok(&ImagePropertiesFilter, &n, &r);
        r.image_properties.arch = Some(Arch::Aarch64);
        rejects(
            &ImagePropertiesFilter,
            &n,
            &r,
            "image is aarch64, node is x86_64",
        );
        r.image_properties.arch = Some(Arch::X86_64);
        r.image_properties.hypervisor_type = Some(HypervisorType::Vm);
        rejects(
            &ImagePropertiesFilter,
            &n,
            &r,
            "image needs hypervisor type vm, node has none",
        );
        n.hypervisor_types.push(HypervisorType::Vm);
        ok(&ImagePropertiesFilter, &n, &r);
        r.image_properties
            .required_labels
            .insert("gpu".into(), "nvidia".into());
        rejects(
            &ImagePropertiesFilter,
            &n,
            &r,
            "image needs label gpu=nvidia, node has no gpu",
        );
        n.labels.insert("gpu".into(), "amd".into());
        rejects(
            &ImagePropertiesFilter,
            &n,
            &r,
            "image needs label gpu=nvidia, node has gpu=amd",
        );
        n.labels.insert("gpu".into(), "nvidia".into());
        ok(&ImagePropertiesFilter, &n, &r);
    }

    #[test]
    fn ram_filter_with_ratio() {
        let f = RamFilter {
            ram_allocation_ratio: 1.0,
        };
        let mut n = node();
        n.used_ram_mib = 6_144;
        ok(&f, &n, &Request::new(1, 2_048, 1));
        rejects(
            &f,
            &n,
            &Request::new(1, 2_049, 1),
            "needs 2049 MiB, node has 2048 free",
        );
        let over = RamFilter {
            ram_allocation_ratio: 1.5,
        };
        ok(&over, &n, &Request::new(1, 6_144, 1));
        rejects(
            &over,
            &n,
            &Request::new(1, 6_145, 1),
            "needs 6145 MiB, node has 6144 free",
        );
        let mut m = node();
        m.used_ram_mib = 7_168;
        let r = Request::new(1, 4_096, 1);
        assert_eq!(
            f.summarize(&[&n, &m], &r).as_deref(),
            Some("needs 4096 MiB, best node has 2048 free")
        );
    }

    #[test]
    fn core_filter_with_ratio() {
        let f = CoreFilter {
            cpu_allocation_ratio: 16.0,
        };
        let mut n = node();
        n.used_vcpus = 60;
        ok(&f, &n, &Request::new(4, 1, 1));
        rejects(
            &f,
            &n,
            &Request::new(5, 1, 1),
            "needs 5 vCPUs, node has 4 free at allocation ratio 16",
        );
        let strict = CoreFilter {
            cpu_allocation_ratio: 1.0,
        };
        rejects(
            &strict,
            &n,
            &Request::new(1, 1, 1),
            "needs 1 vCPU, node has 0 free at allocation ratio 1",
        );
    }

    #[test]
    fn disk_filter() {
        let f = DiskFilter {
            disk_allocation_ratio: 1.0,
        };
        let mut n = node();
        n.used_disk_gib = 90;
        ok(&f, &n, &Request::new(1, 1, 10));
        rejects(
            &f,
            &n,
            &Request::new(1, 1, 11),
            "needs 11 GiB, node has 10 free",
        );
    }

    #[test]
    fn anti_affinity_filter() {
        let f = ServerGroupAntiAffinityFilter;
        let mut n = node();
        let mut r = Request::new(1, 1, 1);
        ok(&f, &n, &r);
        r.group = Some(GroupRef {
            id: "g1".into(),
            policy: Policy::AntiAffinity,
        });
        ok(&f, &n, &r);
        n.groups.insert("g1".into());
        rejects(
            &f,
            &n,
            &r,
            "server group g1 (anti-affinity) already has a member on this node",
        );
        // An affinity group on the node is not this filter's business.
        r.group = Some(GroupRef {
            id: "g1".into(),
            policy: Policy::Affinity,
        });
        ok(&f, &n, &r);
    }

    #[test]
    fn affinity_filter() {
        let f = ServerGroupAffinityFilter;
        let mut n = node();
        let r = Request {
            group: Some(GroupRef {
                id: "g1".into(),
                policy: Policy::Affinity,
            }),
            ..Request::new(1, 1, 1)
        };
        let members = FleetFacts {
            group_has_members: true,
        };
        // No member anywhere yet: any node will do.
        assert_eq!(check(&f, &n, &r, FleetFacts::default()), Ok(()));
        assert_eq!(
            check(&f, &n, &r, members),
            Err("server group g1 (affinity) has its members on another node".to_string())
        );
        n.groups.insert("g1".into());
        assert_eq!(check(&f, &n, &r, members), Ok(()));
    }

    #[test]
    fn fleet_facts_see_group_members() {
        let mut nodes = vec![node(), node()];
        let r = Request {
            group: Some(GroupRef {
                id: "g1".into(),
                policy: Policy::Affinity,
            }),
            ..Request::new(1, 1, 1)
        };
        assert!(!FleetFacts::scan(&nodes, &r).group_has_members);
        nodes[1].groups.insert("g1".into());
        assert!(FleetFacts::scan(&nodes, &r).group_has_members);
    }
}
