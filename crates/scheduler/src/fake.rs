//! A fake fleet: SIMULATED compute nodes and launch requests for tests and
//! benchmarks.
//!
//! Nothing here talks to a machine. These node states are never a real
//! driver's report and must never be fed to the scheduler in a running cloud;
//! they exist so the scheduler can be exercised at 1,000 nodes and 10,000
//! instances on one small machine.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::types::{Arch, GroupRef, HypervisorType, ImageProperties, NodeState, Policy, Request};

/// Zones of the simulated fleet.
pub const ZONES: [&str; 3] = ["nuage-1a", "nuage-1b", "nuage-1c"];

/// SIMULATES `n` compute nodes for tests and benchmarks; never a real driver.
///
/// The same `(n, seed)` gives the same fleet. Nodes are spread round-robin
/// over [`ZONES`]; about 80% are x86_64 and 20% aarch64; sizes range from 8
/// vCPU / 16 GiB to 64 vCPU / 512 GiB; about a third also run VMs, a tenth
/// carry `gpu=nvidia`, a half `disk=ssd`; 2% are disabled. Usage starts at
/// zero and load is random in [0, 1).
pub fn fleet(n: usize, seed: u64) -> Vec<NodeState> {
    const SIZES: [(u32, u64, u64); 5] = [
        (8, 16_384, 200),
        (16, 65_536, 500),
        (32, 131_072, 1_000),
        (48, 262_144, 2_000),
        (64, 524_288, 4_000),
    ];
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let (vcpus, ram, disk) = SIZES[rng.gen_range(0..SIZES.len())];
            let arch = if rng.gen_bool(0.8) {
                Arch::X86_64
            } else {
                Arch::Aarch64
            };
            let mut node = NodeState::new(
                format!("fake-{i:04}"),
                ZONES[i % ZONES.len()],
                arch,
                vcpus,
                ram,
                disk,
            );
            if rng.gen_bool(0.33) {
                node.hypervisor_types.push(HypervisorType::Vm);
            }
            if rng.gen_bool(0.1) {
                node.labels.insert("gpu".into(), "nvidia".into());
            }
            let disk_kind = if rng.gen_bool(0.5) { "ssd" } else { "hdd" };
            node.labels.insert("disk".into(), disk_kind.into());
            node.enabled = !rng.gen_bool(0.02);
            node.load = rng.gen_range(0.0..1.0);
            node
        })
        .collect()
}

/// SIMULATES `n` single-instance launch requests for tests and benchmarks:
/// instance types from 1 vCPU / 512 MiB to 8 vCPU / 16 GiB; a quarter pinned
/// to a zone, a tenth to an architecture, a few needing a VM or an SSD node,
/// and every twentieth joining one of a few anti-affinity groups of at most
/// five members (small enough to fit a zone, big enough to matter).
pub fn workload(n: usize, seed: u64) -> Vec<Request> {
    const TYPES: [(u32, u64, u64); 6] = [
        (1, 512, 10),
        (1, 1_024, 20),
        (2, 2_048, 20),
        (2, 4_096, 40),
        (4, 8_192, 80),
        (8, 16_384, 160),
    ];
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    (0..n)
        .map(|i| {
            let (vcpus, ram, disk) = TYPES[rng.gen_range(0..TYPES.len())];
            let mut req = Request::new(vcpus, ram, disk);
            if rng.gen_bool(0.25) {
                req.az = Some(ZONES[rng.gen_range(0..ZONES.len())].to_string());
            }
            if rng.gen_bool(0.1) {
                req.arch = Some(if rng.gen_bool(0.7) {
                    Arch::X86_64
                } else {
                    Arch::Aarch64
                });
            }
            if rng.gen_bool(0.05) {
                req.image_properties = ImageProperties {
                    hypervisor_type: Some(HypervisorType::Vm),
                    ..Default::default()
                };
            } else if rng.gen_bool(0.05) {
                req.image_properties
                    .required_labels
                    .insert("disk".into(), "ssd".into());
            }
            if i % 20 == 0 {
                req.group = Some(GroupRef {
                    id: format!("sg-{}", i / 100),
                    policy: Policy::AntiAffinity,
                });
            }
            req
        })
        .collect()
}
