//! The built-in instance types: the EC2 families the course names (general
//! purpose t2 and m5; compute C3–C5; memory X1, X1e, R3, R4; GPU P2, P3, G3,
//! F1; storage H1, I3, D2) and OpenStack's classic m1 flavors. Sizes are
//! AWS's and Nova's published ones. Containers enforce vCPU, memory, pids and
//! I/O weight; the GPU and FPGA families are sizes only (no device is passed
//! through).

/// `(name, vcpus, memory in MiB, root disk in GiB)`.
const GIB: u64 = 1024;

/// EC2 types, root disk 8 GiB as an EC2 AMI's default EBS root volume.
const EC2: &[(&str, u32, u64)] = &[
    ("t2.nano", 1, GIB / 2),
    ("t2.micro", 1, GIB),
    ("t2.small", 1, 2 * GIB),
    ("t2.medium", 2, 4 * GIB),
    ("t2.large", 2, 8 * GIB),
    ("t2.xlarge", 4, 16 * GIB),
    ("t2.2xlarge", 8, 32 * GIB),
    ("m5.large", 2, 8 * GIB),
    ("m5.xlarge", 4, 16 * GIB),
    ("m5.2xlarge", 8, 32 * GIB),
    ("m5.4xlarge", 16, 64 * GIB),
    ("m5.12xlarge", 48, 192 * GIB),
    ("m5.24xlarge", 96, 384 * GIB),
    ("c3.large", 2, 3840),
    ("c3.xlarge", 4, 7680),
    ("c3.2xlarge", 8, 15 * GIB),
    ("c3.4xlarge", 16, 30 * GIB),
    ("c3.8xlarge", 32, 60 * GIB),
    ("c4.large", 2, 3840),
    ("c4.xlarge", 4, 7680),
    ("c4.2xlarge", 8, 15 * GIB),
    ("c4.4xlarge", 16, 30 * GIB),
    ("c4.8xlarge", 36, 60 * GIB),
    ("c5.large", 2, 4 * GIB),
    ("c5.xlarge", 4, 8 * GIB),
    ("c5.2xlarge", 8, 16 * GIB),
    ("c5.4xlarge", 16, 32 * GIB),
    ("c5.9xlarge", 36, 72 * GIB),
    ("c5.18xlarge", 72, 144 * GIB),
    ("x1.16xlarge", 64, 976 * GIB),
    ("x1.32xlarge", 128, 1952 * GIB),
    ("x1e.xlarge", 4, 122 * GIB),
    ("x1e.2xlarge", 8, 244 * GIB),
    ("x1e.4xlarge", 16, 488 * GIB),
    ("x1e.8xlarge", 32, 976 * GIB),
    ("x1e.16xlarge", 64, 1952 * GIB),
    ("x1e.32xlarge", 128, 3904 * GIB),
    ("r3.large", 2, 15616),
    ("r3.xlarge", 4, 31232),
    ("r3.2xlarge", 8, 61 * GIB),
    ("r3.4xlarge", 16, 122 * GIB),
    ("r3.8xlarge", 32, 244 * GIB),
    ("r4.large", 2, 15616),
    ("r4.xlarge", 4, 31232),
    ("r4.2xlarge", 8, 61 * GIB),
    ("r4.4xlarge", 16, 122 * GIB),
    ("r4.8xlarge", 32, 244 * GIB),
    ("r4.16xlarge", 64, 488 * GIB),
    ("p2.xlarge", 4, 61 * GIB),
    ("p2.8xlarge", 32, 488 * GIB),
    ("p2.16xlarge", 64, 732 * GIB),
    ("p3.2xlarge", 8, 61 * GIB),
    ("p3.8xlarge", 32, 244 * GIB),
    ("p3.16xlarge", 64, 488 * GIB),
    ("g3.4xlarge", 16, 122 * GIB),
    ("g3.8xlarge", 32, 244 * GIB),
    ("g3.16xlarge", 64, 488 * GIB),
    ("f1.2xlarge", 8, 122 * GIB),
    ("f1.16xlarge", 64, 976 * GIB),
    ("h1.2xlarge", 8, 32 * GIB),
    ("h1.4xlarge", 16, 64 * GIB),
    ("h1.8xlarge", 32, 128 * GIB),
    ("h1.16xlarge", 64, 256 * GIB),
    ("i3.large", 2, 15616),
    ("i3.xlarge", 4, 31232),
    ("i3.2xlarge", 8, 61 * GIB),
    ("i3.4xlarge", 16, 122 * GIB),
    ("i3.8xlarge", 32, 244 * GIB),
    ("i3.16xlarge", 64, 488 * GIB),
    ("d2.xlarge", 4, 31232),
    ("d2.2xlarge", 8, 61 * GIB),
    ("d2.4xlarge", 16, 122 * GIB),
    ("d2.8xlarge", 36, 244 * GIB),
];

/// OpenStack's default flavors: `(name, vcpus, MiB, GiB)`.
const FLAVORS: &[(&str, u32, u64, u64)] = &[
    ("m1.tiny", 1, 512, 1),
    ("m1.small", 1, 2048, 20),
    ("m1.medium", 2, 4096, 40),
    ("m1.large", 4, 8192, 80),
    ("m1.xlarge", 8, 16384, 160),
];

/// The pids limit of a type: generous for real work, low enough that a fork
/// bomb stops long before the host's limit (4,194,304).
pub fn default_pids_limit(vcpus: u32) -> u32 {
    (1024 * vcpus).clamp(1024, 32768)
}

/// Relative block I/O weight given to every built-in type (cgroup default).
pub const DEFAULT_IO_WEIGHT: u16 = 100;

/// Every built-in type as `(name, vcpus, memory_mib, disk_gib)`.
pub fn builtin() -> Vec<(&'static str, u32, u64, u64)> {
    EC2.iter()
        .map(|&(n, c, m)| (n, c, m, 8))
        .chain(FLAVORS.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn catalog_has_the_course_types() {
        let all = super::builtin();
        let get = |n: &str| all.iter().find(|t| t.0 == n).copied();
        assert_eq!(get("t2.nano"), Some(("t2.nano", 1, 512, 8)));
        assert_eq!(get("m5.24xlarge"), Some(("m5.24xlarge", 96, 384 * 1024, 8)));
        assert_eq!(get("m1.tiny"), Some(("m1.tiny", 1, 512, 1)));
        for fam in [
            "c3.", "c4.", "c5.", "x1.", "x1e.", "r3.", "r4.", "p2.", "p3.", "g3.", "f1.", "h1.",
            "i3.", "d2.",
        ] {
            assert!(all.iter().any(|t| t.0.starts_with(fam)), "{fam}");
        }
        let mut names: Vec<_> = all.iter().map(|t| t.0).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len(), "no duplicate names");
    }
}
