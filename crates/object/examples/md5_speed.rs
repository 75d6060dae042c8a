//! MD5 speed over a file's bytes in memory, one thread: nuage's hasher
//! (the ETag's; AVX-512 where the CPU has it) beside the md-5 crate's
//! (OpenSSL's assembly). scripts/bench-objects prints it beside the large
//! PUT, whose ceiling it is.
//!
//!     cargo run --release -p nuage-object --example md5_speed -- FILE [ROUNDS]

use std::time::Instant;

use md5::Digest as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: md5_speed FILE [ROUNDS]")?;
    let rounds: usize = args.next().map_or(Ok(7), |r| r.parse())?;
    let data = std::fs::read(&path)?;
    let mib = data.len() as f64 / (1024.0 * 1024.0);
    let (mut ours, mut crate_) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let mut h = nuage_object::checksum::md5();
        h.update(&data);
        let a = h.finalize();
        ours.push(mib / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let b: [u8; 16] = md5::Md5::digest(&data).into();
        crate_.push(mib / t.elapsed().as_secs_f64());
        if a != b {
            return Err("the two MD5s differ".into());
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{{\"nuage\": {:.1}, \"md5_crate\": {:.1}, \"hasher\": \"{:?}\"}}",
        median(&mut ours),
        median(&mut crate_),
        nuage_object::checksum::md5()
    );
    Ok(())
}
