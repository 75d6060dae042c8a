//! Weighers: rank the nodes that passed every filter.
//!
//! As in Nova, each weigher's raw values are normalised to [0, 1] over the
//! candidate set (min maps to 0, max to 1, all-equal to 0) and then multiplied
//! by the weigher's multiplier; the node with the highest sum wins. A positive
//! multiplier prefers high raw values, a negative one low values, zero turns
//! the weigher off.

use crate::types::{NodeState, Request};

/// One criterion for ranking candidate nodes.
pub trait Weigher: Send + Sync {
    fn name(&self) -> &'static str;
    /// The raw value, before normalisation; higher means "more of it".
    fn weight(&self, node: &NodeState, req: &Request) -> f64;
    /// Scale applied after normalisation; its sign decides the direction.
    fn multiplier(&self) -> f64;
}

/// Normalises `values` in place to [0, 1] as Nova's `weights.normalize` does:
/// `(v - min) / (max - min)`, or all zeros when every value is the same.
pub fn normalize(values: &mut [f64]) {
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in values.iter() {
        min = min.min(v);
        max = max.max(v);
    }
    let range = max - min;
    if !range.is_finite() || range <= 0.0 {
        values.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    values.iter_mut().for_each(|v| *v = (*v - min) / range);
}

/// Free RAM (physical, MiB). Positive multiplier spreads instances over the
/// fleet (emptiest node first); negative stacks them (fullest node first).
#[derive(Debug, Clone, Copy)]
pub struct RamWeigher {
    pub multiplier: f64,
}

impl Weigher for RamWeigher {
    fn name(&self) -> &'static str {
        "RAMWeigher"
    }
    fn weight(&self, node: &NodeState, _req: &Request) -> f64 {
        node.free_ram_mib() as f64
    }
    fn multiplier(&self) -> f64 {
        self.multiplier
    }
}

/// Number of instances on the node. Negative multiplier prefers nodes with fewer.
#[derive(Debug, Clone, Copy)]
pub struct NumInstancesWeigher {
    pub multiplier: f64,
}

impl Weigher for NumInstancesWeigher {
    fn name(&self) -> &'static str {
        "NumInstancesWeigher"
    }
    fn weight(&self, node: &NodeState, _req: &Request) -> f64 {
        f64::from(node.instances)
    }
    fn multiplier(&self) -> f64 {
        self.multiplier
    }
}

/// Reported CPU load per vCPU. Negative multiplier prefers idle nodes.
#[derive(Debug, Clone, Copy)]
pub struct LoadWeigher {
    pub multiplier: f64,
}

impl Weigher for LoadWeigher {
    fn name(&self) -> &'static str {
        "LoadWeigher"
    }
    fn weight(&self, node: &NodeState, _req: &Request) -> f64 {
        node.load
    }
    fn multiplier(&self) -> f64 {
        self.multiplier
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Arch;

    #[test]
    fn normalize_maps_to_unit_interval() {
        let mut v = vec![2.0, 4.0, 6.0];
        normalize(&mut v);
        assert_eq!(v, vec![0.0, 0.5, 1.0]);
        let mut same = vec![3.0, 3.0];
        normalize(&mut same);
        assert_eq!(same, vec![0.0, 0.0]);
        let mut empty: Vec<f64> = Vec::new();
        normalize(&mut empty);
        assert!(empty.is_empty());
        let mut neg = vec![-10.0, 0.0, 10.0];
        normalize(&mut neg);
        assert_eq!(neg, vec![0.0, 0.5, 1.0]);
    }

    #[test]
    fn raw_weights() {
        let mut n = NodeState::new("n", "z", Arch::X86_64, 4, 8_192, 10);
        n.used_ram_mib = 2_048;
        n.instances = 3;
        n.load = 0.25;
        let r = Request::new(1, 1, 1);
        assert_eq!(RamWeigher { multiplier: 1.0 }.weight(&n, &r), 6_144.0);
        assert_eq!(NumInstancesWeigher { multiplier: -1.0 }.weight(&n, &r), 3.0);
        assert_eq!(LoadWeigher { multiplier: -1.0 }.weight(&n, &r), 0.25);
        // Over-committed RAM weighs below zero rather than wrapping.
        n.used_ram_mib = 10_000;
        assert_eq!(RamWeigher { multiplier: 1.0 }.weight(&n, &r), -1_808.0);
    }
}
