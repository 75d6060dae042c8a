//! nuage's instance scheduler: picks the compute node for each new instance.
//!
//! It works as Nova's filter scheduler does: every [`Filter`] must accept a
//! node (enabled, right zone and architecture, image properties, enough RAM,
//! vCPU and disk under the allocation ratios, server-group affinity rules),
//! then the [`Weigher`]s rank the survivors (free RAM, instance count, load)
//! and the best one wins. A launch that fits nowhere fails with
//! [`NoValidHost`], which says how many nodes each filter rejected and why.
//!
//! This crate is a pure library: no I/O, no clock, no store. The compute
//! service reads node states from the store, calls [`Scheduler::place`], and
//! writes the placements back; the [`fake`] module simulates fleets so that
//! the scheduler is tested and measured at 1,000 nodes and 10,000 instances.

mod error;
pub mod fake;
pub mod filters;
mod types;
pub mod weighers;

pub use error::{FilterRejection, NoValidHost};
pub use filters::{Filter, FleetFacts};
pub use types::{
    Arch, GroupRef, HypervisorType, ImageProperties, NodeState, Placement, Policy, Request,
};
pub use weighers::Weigher;

use serde::{Deserialize, Serialize};

use filters::{
    ArchitectureFilter, AvailabilityZoneFilter, ComputeFilter, CoreFilter, DiskFilter,
    ImagePropertiesFilter, RamFilter, ServerGroupAffinityFilter, ServerGroupAntiAffinityFilter,
};
use weighers::{LoadWeigher, NumInstancesWeigher, RamWeigher};

/// Allocation ratios and weigher multipliers (see docs/adr/0008-scheduler.md).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SchedulerConfig {
    /// vCPUs that may be given out per physical core: 16.0, Nova's
    /// CoreFilter default. Most instances idle, and a busy CPU only slows down.
    pub cpu_allocation_ratio: f64,
    /// RAM that may be given out per MiB: 1.0 (no over-commit), as Nova's
    /// `initial_ram_allocation_ratio` since Stein. Over-committed RAM ends in
    /// the OOM killer, not in slowness.
    pub ram_allocation_ratio: f64,
    /// Disk that may be given out per GiB: 1.0; images are sparse but a full
    /// disk breaks every instance on the node.
    pub disk_allocation_ratio: f64,
    /// [`weighers::RamWeigher`]: positive spreads, negative stacks.
    pub ram_weight_multiplier: f64,
    /// [`weighers::NumInstancesWeigher`]: negative prefers emptier nodes.
    pub num_instances_weight_multiplier: f64,
    /// [`weighers::LoadWeigher`]: negative prefers idle nodes.
    pub load_weight_multiplier: f64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig::spread()
    }
}

impl SchedulerConfig {
    /// Spread instances over the fleet (the default): most free RAM, fewest
    /// instances, least load first.
    pub fn spread() -> Self {
        SchedulerConfig {
            cpu_allocation_ratio: 16.0,
            ram_allocation_ratio: 1.0,
            disk_allocation_ratio: 1.0,
            ram_weight_multiplier: 1.0,
            num_instances_weight_multiplier: -1.0,
            load_weight_multiplier: -1.0,
        }
    }

    /// Stack instances on as few nodes as possible (least free RAM first), to
    /// keep whole nodes free for large instances or to power them down.
    pub fn stack() -> Self {
        SchedulerConfig {
            ram_weight_multiplier: -1.0,
            num_instances_weight_multiplier: 0.0,
            load_weight_multiplier: 0.0,
            ..SchedulerConfig::spread()
        }
    }
}

/// Places instances on nodes; holds its filters, weighers and reusable
/// buffers (hence `&mut self`: the compute service serialises placements
/// anyway, since each one changes the usage the next one sees).
pub struct Scheduler {
    filters: Vec<Box<dyn Filter>>,
    weighers: Vec<Box<dyn Weigher>>,
    active: Vec<usize>,
    candidates: Vec<usize>,
    raw: Vec<f64>,
    totals: Vec<f64>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field(
                "filters",
                &self.filters.iter().map(|x| x.name()).collect::<Vec<_>>(),
            )
            .field(
                "weighers",
                &self.weighers.iter().map(|x| x.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Scheduler {
    /// The default filters (cheapest first) and weighers, with `config`'s ratios and multipliers.
    pub fn new(config: SchedulerConfig) -> Self {
        let filters: Vec<Box<dyn Filter>> = vec![
            Box::new(ComputeFilter),
            Box::new(AvailabilityZoneFilter),
            Box::new(ArchitectureFilter),
            Box::new(ImagePropertiesFilter),
            Box::new(RamFilter {
                ram_allocation_ratio: config.ram_allocation_ratio,
            }),
            Box::new(CoreFilter {
                cpu_allocation_ratio: config.cpu_allocation_ratio,
            }),
            Box::new(DiskFilter {
                disk_allocation_ratio: config.disk_allocation_ratio,
            }),
            Box::new(ServerGroupAntiAffinityFilter),
            Box::new(ServerGroupAffinityFilter),
        ];
        let weighers: Vec<Box<dyn Weigher>> = vec![
            Box::new(RamWeigher {
                multiplier: config.ram_weight_multiplier,
            }),
            Box::new(NumInstancesWeigher {
                multiplier: config.num_instances_weight_multiplier,
            }),
            Box::new(LoadWeigher {
                multiplier: config.load_weight_multiplier,
            }),
        ];
        Scheduler::with(filters, weighers)
    }

    /// A scheduler with exactly these filters (run in this order) and weighers.
    pub fn with(filters: Vec<Box<dyn Filter>>, weighers: Vec<Box<dyn Weigher>>) -> Self {
        Scheduler {
            filters,
            weighers,
            active: Vec::new(),
            candidates: Vec::new(),
            raw: Vec::new(),
            totals: Vec::new(),
        }
    }

    /// Names of the filters, in the order they run.
    pub fn filter_names(&self) -> Vec<&'static str> {
        self.filters.iter().map(|f| f.name()).collect()
    }

    /// Places `req.count` instances (at least one), all or none: on success
    /// `nodes` carry the new usage; on failure they are as they were.
    pub fn place(
        &mut self,
        nodes: &mut [NodeState],
        req: &Request,
    ) -> Result<Vec<Placement>, NoValidHost> {
        let n = req.count.max(1);
        self.place_range(nodes, req, n, n)
    }

    /// Places as many instances as fit, up to `max`, one at a time, each seeing
    /// the usage of those before it (so spreading and anti-affinity work within
    /// one launch). Fewer than `min` is a failure, and then every tentative
    /// placement is rolled back: EC2's MinCount/MaxCount. `max` below `min` is
    /// read as `min`; `min` of 0 never fails.
    pub fn place_range(
        &mut self,
        nodes: &mut [NodeState],
        req: &Request,
        min: u32,
        max: u32,
    ) -> Result<Vec<Placement>, NoValidHost> {
        let max = max.max(min);
        let mut placed: Vec<Placement> = Vec::with_capacity(max.min(1024) as usize);
        let mut added_group: Vec<bool> = Vec::with_capacity(placed.capacity());
        let mut fleet = FleetFacts::scan(nodes, req);
        self.active.clear();
        self.active
            .extend((0..self.filters.len()).filter(|&k| self.filters[k].applies_to(req)));
        for i in 0..max {
            match self.pick(nodes, req, &fleet) {
                Some(idx) => {
                    let node = &mut nodes[idx];
                    added_group.push(node.claim(req));
                    placed.push(Placement {
                        node_index: idx,
                        node_id: node.id.clone(),
                    });
                    fleet.group_has_members |= req.group.is_some();
                }
                None if placed.len() >= min as usize => break,
                None => {
                    let err = self.explain(nodes, req, &fleet, i + 1, min);
                    for (p, added) in placed.iter().zip(&added_group).rev() {
                        nodes[p.node_index].release(req, *added);
                    }
                    return Err(err);
                }
            }
        }
        Ok(placed)
    }

    /// The best node for one instance of `req`, or `None` if none passes.
    fn pick(&mut self, nodes: &[NodeState], req: &Request, fleet: &FleetFacts) -> Option<usize> {
        self.candidates.clear();
        for (i, node) in nodes.iter().enumerate() {
            if self
                .active
                .iter()
                .all(|&k| self.filters[k].accepts(node, req, fleet))
            {
                self.candidates.push(i);
            }
        }
        match self.candidates.len() {
            0 => return None,
            1 => return self.candidates.first().copied(),
            _ => {}
        }
        self.totals.clear();
        self.totals.resize(self.candidates.len(), 0.0);
        for w in &self.weighers {
            let m = w.multiplier();
            if m == 0.0 {
                continue;
            }
            self.raw.clear();
            let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
            for &i in &self.candidates {
                let v = w.weight(&nodes[i], req);
                min = if v < min { v } else { min };
                max = if v > max { v } else { max };
                self.raw.push(v);
            }
            // weighers::normalize, fused with the multiplier: one multiply per
            // value instead of a division (all-equal values add nothing).
            let range = max - min;
            if !range.is_finite() || range <= 0.0 {
                continue;
            }
            let scale = m / range;
            for (t, r) in self.totals.iter_mut().zip(&self.raw) {
                *t += scale * (r - min);
            }
        }
        // Highest total wins; ties go to the earliest node, so results are
        // reproducible for a given fleet order.
        let mut best = 0;
        for (k, &t) in self.totals.iter().enumerate() {
            if t > self.totals[best] {
                best = k;
            }
        }
        self.candidates.get(best).copied()
    }

    /// Runs the filters again with reasons, to say why nothing fits.
    fn explain(
        &self,
        nodes: &[NodeState],
        req: &Request,
        fleet: &FleetFacts,
        instance: u32,
        min: u32,
    ) -> NoValidHost {
        let mut rejected: Vec<Vec<&NodeState>> = vec![Vec::new(); self.filters.len()];
        let mut first_reason: Vec<Option<String>> = vec![None; self.filters.len()];
        for node in nodes {
            for (k, f) in self.filters.iter().enumerate() {
                if let Err(reason) = f.passes_with(node, req, fleet) {
                    rejected[k].push(node);
                    first_reason[k].get_or_insert(reason);
                    break;
                }
            }
        }
        let per_filter = self
            .filters
            .iter()
            .zip(rejected.iter().zip(first_reason))
            .filter(|(_, (r, _))| !r.is_empty())
            .map(|(f, (r, first))| FilterRejection {
                filter: f.name(),
                rejected: r.len(),
                reason: f.summarize(r, req).or(first).unwrap_or_default(),
            })
            .collect();
        NoValidHost {
            per_filter,
            nodes: nodes.len(),
            instance,
            min_count: min,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, free_ram: u64, instances: u32, load: f64) -> NodeState {
        let mut n = NodeState::new(id, "z", Arch::X86_64, 64, 100_000, 1_000);
        n.used_ram_mib = 100_000 - free_ram;
        n.instances = instances;
        n.load = load;
        n
    }

    /// Normalisation makes the weighers' units irrelevant: a node with a
    /// little less RAM but far fewer instances wins when both count equally.
    #[test]
    fn weighers_are_normalised_before_multiplying() {
        let mut nodes = vec![
            node("ram", 50_000, 10, 0.0),
            node("count", 49_000, 0, 0.0),
            node("mid", 49_500, 5, 0.0),
        ];
        // ram: normalised 1.0, 0.0, 0.5; instances (x -1): -1.0, 0.0, -0.5.
        // Totals 0.0, 0.0, 0.0 with equal multipliers: tie goes to the first.
        let cfg = SchedulerConfig {
            load_weight_multiplier: 0.0,
            ..SchedulerConfig::spread()
        };
        let mut s = Scheduler::new(cfg);
        assert_eq!(
            s.place(&mut nodes.clone(), &Request::new(1, 1, 1))
                .map(|p| p[0].node_index),
            Ok(0)
        );
        // Doubling the instance weigher makes "count" win although its raw
        // RAM advantage is 1,000 MiB against 10 instances.
        let cfg = SchedulerConfig {
            num_instances_weight_multiplier: -2.0,
            ..cfg
        };
        let mut s = Scheduler::new(cfg);
        assert_eq!(
            s.place(&mut nodes, &Request::new(1, 1, 1))
                .map(|p| p[0].node_index),
            Ok(1)
        );
    }

    #[test]
    fn load_weigher_prefers_idle_nodes() {
        let mut nodes = vec![node("busy", 50_000, 0, 0.9), node("idle", 50_000, 0, 0.1)];
        let mut s = Scheduler::new(SchedulerConfig::spread());
        assert_eq!(
            s.place(&mut nodes, &Request::new(1, 1, 1))
                .map(|p| p[0].node_id.clone()),
            Ok("idle".into())
        );
    }

    #[test]
    fn default_filters_run_cheapest_first() {
        let s = Scheduler::new(SchedulerConfig::default());
        assert_eq!(
            s.filter_names(),
            [
                "ComputeFilter",
                "AvailabilityZoneFilter",
                "ArchitectureFilter",
                "ImagePropertiesFilter",
                "RamFilter",
                "CoreFilter",
                "DiskFilter",
                "ServerGroupAntiAffinityFilter",
                "ServerGroupAffinityFilter"
            ]
        );
        let cfg = SchedulerConfig::default();
        assert_eq!(
            (
                cfg.cpu_allocation_ratio,
                cfg.ram_allocation_ratio,
                cfg.disk_allocation_ratio
            ),
            (16.0, 1.0, 1.0)
        );
    }
}
