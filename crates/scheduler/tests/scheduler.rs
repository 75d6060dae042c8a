//! The scheduler end to end over hand-made and fake fleets.

use std::collections::BTreeSet;

use nuage_scheduler::{
    fake, Arch, GroupRef, NodeState, Policy, Request, Scheduler, SchedulerConfig,
};

fn node(id: &str, az: &str, vcpus: u32, ram_mib: u64) -> NodeState {
    NodeState::new(id, az, Arch::X86_64, vcpus, ram_mib, 1_000)
}

fn group(id: &str, policy: Policy) -> Option<GroupRef> {
    Some(GroupRef {
        id: id.into(),
        policy,
    })
}

#[test]
fn spread_puts_instances_on_distinct_nodes() {
    let mut nodes: Vec<_> = (0..4)
        .map(|i| node(&format!("n{i}"), "nuage-1a", 8, 8_192))
        .collect();
    let mut s = Scheduler::new(SchedulerConfig::spread());
    let req = Request {
        count: 4,
        ..Request::new(1, 1_024, 10)
    };
    let placed = s.place(&mut nodes, &req).expect("fits");
    let distinct: BTreeSet<_> = placed.iter().map(|p| p.node_index).collect();
    assert_eq!(distinct.len(), 4, "{placed:?}");
    assert!(nodes
        .iter()
        .all(|n| n.instances == 1 && n.used_ram_mib == 1_024));
}

#[test]
fn stack_fills_one_node_first() {
    let mut nodes: Vec<_> = (0..4)
        .map(|i| node(&format!("n{i}"), "nuage-1a", 8, 8_192))
        .collect();
    let mut s = Scheduler::new(SchedulerConfig::stack());
    let req = Request {
        count: 4,
        ..Request::new(1, 1_024, 10)
    };
    let placed = s.place(&mut nodes, &req).expect("fits");
    let distinct: BTreeSet<_> = placed.iter().map(|p| p.node_index).collect();
    assert_eq!(distinct.len(), 1, "{placed:?}");
    // Once the first node is full, stacking moves on to the next one.
    let big = Request {
        count: 5,
        ..Request::new(1, 1_024, 10)
    };
    let placed = s.place(&mut nodes, &big).expect("fits");
    assert_eq!(placed.iter().filter(|p| p.node_index == 0).count(), 4);
    assert_eq!(nodes[0].used_ram_mib, 8_192);
}

#[test]
fn spread_prefers_the_emptiest_node() {
    let mut nodes = vec![
        node("small", "nuage-1a", 8, 4_096),
        node("big", "nuage-1a", 8, 65_536),
    ];
    nodes[1].used_ram_mib = 8_192;
    let mut s = Scheduler::new(SchedulerConfig::default());
    let placed = s
        .place(&mut nodes, &Request::new(1, 1_024, 10))
        .expect("fits");
    assert_eq!(placed[0].node_id, "big");
}

#[test]
fn anti_affinity_uses_distinct_nodes_and_says_why_when_too_many() {
    let mut nodes: Vec<_> = (0..5)
        .map(|i| node(&format!("n{i}"), "nuage-1a", 64, 65_536))
        .collect();
    let mut s = Scheduler::new(SchedulerConfig::stack());
    let req = Request {
        count: 5,
        group: group("web", Policy::AntiAffinity),
        ..Request::new(1, 512, 10)
    };
    let placed = s.place(&mut nodes, &req).expect("5 nodes for 5 members");
    let distinct: BTreeSet<_> = placed.iter().map(|p| p.node_index).collect();
    assert_eq!(distinct.len(), 5, "even when stacking");

    let mut fresh: Vec<_> = (0..3)
        .map(|i| node(&format!("n{i}"), "nuage-1a", 64, 65_536))
        .collect();
    let before = fresh.clone();
    let req = Request {
        count: 4,
        group: group("db", Policy::AntiAffinity),
        ..Request::new(1, 512, 10)
    };
    let err = s.place(&mut fresh, &req).expect_err("4 members, 3 nodes");
    assert_eq!(fresh, before, "rolled back");
    assert_eq!(err.per_filter.len(), 1);
    assert_eq!(err.per_filter[0].filter, "ServerGroupAntiAffinityFilter");
    assert_eq!(err.per_filter[0].rejected, 3);
    let msg = err.to_string();
    assert_eq!(
        msg,
        "no node fits instance 4 of 4 (the 3 placed before it were rolled back): \
         ServerGroupAntiAffinityFilter rejected 3 nodes (server group db (anti-affinity) already has a member on each)"
    );
}

#[test]
fn anti_affinity_respects_members_from_earlier_launches() {
    let mut nodes: Vec<_> = (0..3)
        .map(|i| node(&format!("n{i}"), "nuage-1a", 8, 8_192))
        .collect();
    nodes[0].groups.insert("web".into());
    nodes[1].groups.insert("web".into());
    let mut s = Scheduler::new(SchedulerConfig::stack());
    let req = Request {
        group: group("web", Policy::AntiAffinity),
        ..Request::new(1, 512, 10)
    };
    let placed = s.place(&mut nodes, &req).expect("n2 is free of the group");
    assert_eq!(placed[0].node_id, "n2");
    assert!(s.place(&mut nodes, &req).is_err());
}

#[test]
fn affinity_keeps_members_together_and_fails_when_their_node_is_full() {
    let mut nodes: Vec<_> = (0..4)
        .map(|i| node(&format!("n{i}"), "nuage-1a", 8, 4_096))
        .collect();
    let mut s = Scheduler::new(SchedulerConfig::spread());
    let req = Request {
        count: 3,
        group: group("cache", Policy::Affinity),
        ..Request::new(1, 1_024, 10)
    };
    let placed = s
        .place(&mut nodes, &req)
        .expect("first member goes anywhere, the rest follow");
    let distinct: BTreeSet<_> = placed.iter().map(|p| p.node_index).collect();
    assert_eq!(distinct.len(), 1, "spread is overridden by affinity");
    let home = placed[0].node_index;

    // One more fits on the same node (4 GiB), the next one does not.
    let one = Request {
        group: group("cache", Policy::Affinity),
        ..Request::new(1, 1_024, 10)
    };
    assert_eq!(
        s.place(&mut nodes, &one).expect("room left")[0].node_index,
        home
    );
    let err = s.place(&mut nodes, &one).expect_err("home node full");
    let names: Vec<_> = err
        .per_filter
        .iter()
        .map(|r| (r.filter, r.rejected))
        .collect();
    assert_eq!(
        names,
        vec![("RamFilter", 1), ("ServerGroupAffinityFilter", 3)]
    );
    assert!(
        err.to_string().contains("has its members on another node"),
        "{err}"
    );
}

#[test]
fn over_commit_ratio_limits_vcpus() {
    let mut nodes = vec![node("n0", "nuage-1a", 2, 1_048_576)];
    let mut s = Scheduler::new(SchedulerConfig {
        cpu_allocation_ratio: 4.0,
        ..SchedulerConfig::default()
    });
    let placed = s
        .place_range(&mut nodes, &Request::new(1, 512, 1), 0, 100)
        .expect("min 0");
    assert_eq!(placed.len(), 8, "2 cores x 4.0");
    let err = s
        .place(&mut nodes, &Request::new(1, 512, 1))
        .expect_err("full");
    assert_eq!(err.to_string(), "no node fits: CoreFilter rejected 1 node (needs 1 vCPU, best node has 0 free at allocation ratio 4)");

    let mut nodes = vec![node("n0", "nuage-1a", 2, 1_048_576)];
    let mut default = Scheduler::new(SchedulerConfig::default());
    let placed = default
        .place_range(&mut nodes, &Request::new(1, 512, 1), 0, 100)
        .expect("min 0");
    assert_eq!(placed.len(), 32, "default ratio 16");
}

#[test]
fn min_max_places_what_fits_or_rolls_back() {
    let mut nodes: Vec<_> = (0..2)
        .map(|i| node(&format!("n{i}"), "nuage-1a", 8, 4_096))
        .collect();
    let mut s = Scheduler::new(SchedulerConfig::default());
    let req = Request::new(1, 1_024, 10);

    // 8 fit; asking for 5..=20 gives 8.
    let placed = s
        .place_range(&mut nodes.clone(), &req, 5, 20)
        .expect("at least 5 fit");
    assert_eq!(placed.len(), 8);

    // Asking for at least 9 fails and leaves the fleet untouched.
    let before = nodes.clone();
    let err = s
        .place_range(&mut nodes, &req, 9, 20)
        .expect_err("only 8 fit");
    assert_eq!(nodes, before);
    assert_eq!(err.instance, 9);
    assert_eq!(err.min_count, 9);
    assert!(err.to_string().starts_with("no node fits instance 9 of 9 (the 8 placed before it were rolled back): RamFilter rejected 2 nodes"), "{err}");

    // Then the usage really is free: 8 still fit.
    assert_eq!(
        s.place_range(&mut nodes, &req, 8, 8).expect("fits").len(),
        8
    );
}

#[test]
fn no_valid_host_names_each_filter_with_counts() {
    let mut nodes = Vec::new();
    for i in 0..6 {
        nodes.push(node(&format!("a{i}"), "nuage-1a", 8, 8_192));
    }
    for i in 0..4 {
        let mut n = node(&format!("b{i}"), "nuage-1b", 8, 4_096);
        n.used_ram_mib = 2_048 - (i as u64) * 512;
        nodes.push(n);
    }
    let mut disabled = node("b-off", "nuage-1b", 8, 65_536);
    disabled.enabled = false;
    nodes.insert(0, disabled);
    let mut s = Scheduler::new(SchedulerConfig::default());
    let req = Request {
        az: Some("nuage-1b".into()),
        ..Request::new(1, 4_096, 10)
    };
    let err = s.place(&mut nodes, &req).expect_err("nothing fits");
    assert_eq!(
        err.to_string(),
        "no node fits: ComputeFilter rejected 1 node (disabled), AvailabilityZoneFilter rejected 6 \
         (zone nuage-1b wanted), RamFilter rejected 4 (needs 4096 MiB, best node has 3584 free)"
    );
    let total: usize = err.per_filter.iter().map(|r| r.rejected).sum();
    assert_eq!(total, nodes.len(), "every node is counted once");
    assert_eq!(
        nuage_model::HasKind::kind(&err),
        nuage_model::ErrorKind::InsufficientCapacity
    );
}

#[test]
fn empty_fleet_says_so() {
    let mut s = Scheduler::new(SchedulerConfig::default());
    let err = s
        .place(&mut [], &Request::new(1, 512, 1))
        .expect_err("no nodes");
    assert_eq!(
        err.to_string(),
        "no node fits: no compute node has reported in"
    );
}

/// Every node within its capacity times the allocation ratios, and the
/// usage adds up to what was placed.
fn check_invariants(nodes: &[NodeState], cfg: &SchedulerConfig, placed: &[(usize, Request)]) {
    let mut want = vec![(0u64, 0u64, 0u64, 0u32); nodes.len()];
    for (idx, r) in placed {
        let w = &mut want[*idx];
        w.0 += u64::from(r.vcpus);
        w.1 += r.ram_mib;
        w.2 += r.disk_gib;
        w.3 += 1;
    }
    for (n, w) in nodes.iter().zip(&want) {
        assert!(
            f64::from(n.used_vcpus) <= f64::from(n.vcpus) * cfg.cpu_allocation_ratio,
            "{}",
            n.id
        );
        assert!(
            n.used_ram_mib as f64 <= n.ram_mib as f64 * cfg.ram_allocation_ratio,
            "{}",
            n.id
        );
        assert!(
            n.used_disk_gib as f64 <= n.disk_gib as f64 * cfg.disk_allocation_ratio,
            "{}",
            n.id
        );
        assert_eq!(
            (
                u64::from(n.used_vcpus),
                n.used_ram_mib,
                n.used_disk_gib,
                n.instances
            ),
            *w,
            "{}",
            n.id
        );
        if n.instances > 0 {
            assert!(n.enabled, "{} is disabled but took instances", n.id);
        }
    }
}

#[test]
fn fake_fleet_at_scale_keeps_invariants() {
    // The figure's scale (1,000 nodes, 10,000 instances), in debug: a few
    // seconds. The timing itself is examples/scheduler_bench.rs, in release.
    let mut nodes = fake::fleet(1_000, 7);
    assert_eq!(nodes, fake::fleet(1_000, 7), "same seed, same fleet");
    let requests = fake::workload(10_000, 7);
    let cfg = SchedulerConfig::default();
    let mut s = Scheduler::new(cfg);
    let mut placed = Vec::new();
    let mut failures = 0;
    for req in &requests {
        match s.place(&mut nodes, req) {
            Ok(p) => {
                assert_eq!(p.len(), 1);
                let idx = p[0].node_index;
                let n = &nodes[idx];
                assert_eq!(n.id, p[0].node_id);
                if let Some(az) = &req.az {
                    assert_eq!(&n.az, az);
                }
                if let Some(arch) = req.arch {
                    assert_eq!(n.arch, arch);
                }
                placed.push((idx, req.clone()));
            }
            Err(e) => {
                failures += 1;
                assert!(!e.per_filter.is_empty());
            }
        }
    }
    assert_eq!(failures, 0, "the fake fleet has room for this workload");
    check_invariants(&nodes, &cfg, &placed);
    // Anti-affinity groups never share a node.
    let mut seen = BTreeSet::new();
    for (idx, r) in &placed {
        if let Some(g) = &r.group {
            assert!(
                seen.insert((g.id.clone(), *idx)),
                "group {} twice on node {idx}",
                g.id
            );
        }
    }
    let total: u32 = nodes.iter().map(|n| n.instances).sum();
    assert_eq!(total as usize, placed.len());
}

#[test]
fn fake_fleet_fills_up_without_overcommitting() {
    // Keep launching until nothing fits: capacity holds at the edge too.
    let mut nodes = fake::fleet(50, 3);
    let cfg = SchedulerConfig {
        cpu_allocation_ratio: 1.0,
        ..SchedulerConfig::default()
    };
    let mut s = Scheduler::new(cfg);
    let req = Request::new(4, 8_192, 80);
    let placed = s.place_range(&mut nodes, &req, 0, 100_000).expect("min 0");
    assert!(!placed.is_empty());
    let placed: Vec<_> = placed.iter().map(|p| (p.node_index, req.clone())).collect();
    check_invariants(&nodes, &cfg, &placed);
    let err = s.place(&mut nodes, &req).expect_err("full");
    let total: usize = err.per_filter.iter().map(|r| r.rejected).sum();
    assert_eq!(total, 50);
}
