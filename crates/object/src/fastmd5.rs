//! MD5, the ETag of S3 objects and parts. One stream's MD5 cannot be split
//! across threads, so it bounds how fast a single large PUT can go.
//!
//! On x86-64 with AVX-512 (F and VL) the block function runs in vector
//! registers: each of its 64 steps is then a chain of four one-cycle
//! instructions (ternary logic for F/G/H/I, add, rotate, add), ~4 cycles a
//! byte against ~4.8 for the md-5 crate's assembly (OpenSSL's): +20%
//! measured on this project's machine (docs/benchmarks.md, ADR 0011).
//! Elsewhere, the md-5 crate. The tests compare both on every length.

use md5::Digest as _;

/// An MD5 hasher.
#[derive(Clone)]
pub struct Md5(Inner);

#[derive(Clone)]
enum Inner {
    /// Only made when the CPU has AVX-512 F and VL.
    #[cfg(target_arch = "x86_64")]
    Vector {
        state: [u32; 4],
        buf: [u8; 64],
        buffered: usize,
        len: u64,
    },
    Portable(md5::Md5),
}

impl std::fmt::Debug for Md5 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            #[cfg(target_arch = "x86_64")]
            Inner::Vector { .. } => "Md5(avx512)",
            Inner::Portable(_) => "Md5(md-5)",
        })
    }
}

impl Default for Md5 {
    fn default() -> Self {
        Md5::new()
    }
}

const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

impl Md5 {
    /// The fastest hasher this CPU runs.
    pub fn new() -> Md5 {
        #[cfg(target_arch = "x86_64")]
        if vector::available() {
            return Md5(Inner::Vector {
                state: INIT,
                buf: [0; 64],
                buffered: 0,
                len: 0,
            });
        }
        Md5::portable()
    }

    /// The md-5 crate's hasher, whatever the CPU.
    pub fn portable() -> Md5 {
        Md5(Inner::Portable(md5::Md5::new()))
    }

    pub fn update(&mut self, mut data: &[u8]) {
        match &mut self.0 {
            #[cfg(target_arch = "x86_64")]
            Inner::Vector {
                state,
                buf,
                buffered,
                len,
            } => {
                *len += data.len() as u64;
                if *buffered > 0 {
                    let n = data.len().min(64 - *buffered);
                    buf[*buffered..*buffered + n].copy_from_slice(&data[..n]);
                    *buffered += n;
                    data = &data[n..];
                    if *buffered < 64 {
                        return;
                    }
                    vector::compress(state, std::slice::from_ref(buf));
                    *buffered = 0;
                }
                let (blocks, rest) = data.as_chunks::<64>();
                vector::compress(state, blocks);
                buf[..rest.len()].copy_from_slice(rest);
                *buffered = rest.len();
            }
            Inner::Portable(h) => h.update(data),
        }
    }

    pub fn finalize(self) -> [u8; 16] {
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Inner::Vector {
                mut state,
                buf,
                buffered,
                len,
            } => {
                // Padding: 0x80, zeros, the length in bits (little-endian)
                // in the last 8 bytes of the last block.
                let mut tail = [[0u8; 64]; 2];
                let flat = tail.as_flattened_mut();
                flat[..buffered].copy_from_slice(&buf[..buffered]);
                flat[buffered] = 0x80;
                let blocks = if buffered < 56 { 1 } else { 2 };
                flat[blocks * 64 - 8..blocks * 64].copy_from_slice(&(len * 8).to_le_bytes());
                vector::compress(&mut state, &tail[..blocks]);
                let mut out = [0u8; 16];
                for (o, w) in out.chunks_exact_mut(4).zip(state) {
                    o.copy_from_slice(&w.to_le_bytes());
                }
                out
            }
            Inner::Portable(h) => h.finalize().into(),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vector {
    use std::arch::x86_64::*;

    /// Whether this CPU has what [`compress_avx512`] needs (detected once;
    /// the standard library caches it).
    pub fn available() -> bool {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl")
    }

    /// Runs MD5's block function over `blocks`. Only called for a hasher
    /// made when [`available`] said yes.
    pub fn compress(state: &mut [u32; 4], blocks: &[[u8; 64]]) {
        debug_assert!(available());
        // SAFETY: `Inner::Vector`, whose methods are the only callers, is
        // only made after `available()` found AVX-512 F and VL, the
        // features `compress_avx512` is compiled for.
        #[allow(unsafe_code)]
        unsafe {
            compress_avx512(state, blocks)
        }
    }

    const K: [u32; 64] = [
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391,
    ];

    /// The message word of step `i` (RFC 1321's schedule).
    const fn word(i: usize) -> usize {
        match i / 16 {
            0 => i,
            1 => (1 + 5 * i) % 16,
            2 => (5 + 3 * i) % 16,
            _ => (7 * i) % 16,
        }
    }

    /// The block function with the four words in lane 0 of XMM registers.
    /// Step `i` is `a = b + rotl(a + f(b, c, d) + K[i] + M[word(i)], s)`;
    /// `a + K + M` is added a step early (it does not depend on the newest
    /// word `b`), which also leaves `d` dead at the ternary-logic
    /// instruction so that it, not `b`, is the register overwritten: the
    /// critical path per step is then ternlog, add, rotate, add.
    #[target_feature(enable = "avx512f,avx512vl")]
    fn compress_avx512(state: &mut [u32; 4], blocks: &[[u8; 64]]) {
        let word_reg = |v: u32| _mm_cvtsi32_si128(v as i32);
        let mut a = word_reg(state[0]);
        let mut b = word_reg(state[1]);
        let mut c = word_reg(state[2]);
        let mut d = word_reg(state[3]);
        for block in blocks {
            let mut m = [0u32; 16];
            for (w, bytes) in m.iter_mut().zip(block.as_chunks::<4>().0) {
                *w = u32::from_le_bytes(*bytes);
            }
            let (a0, b0, c0, d0) = (a, b, c, d);
            let km = |i: usize| word_reg(K[i].wrapping_add(m[word(i)]));
            let mut t = _mm_add_epi32(a, km(0));
            // `$imm` is the ternary-logic table of f with operands (d, b, c).
            macro_rules! step {
                ($imm:expr, $a:ident, $b:ident, $c:ident, $d:ident, $i:expr, $s:expr) => {
                    let next = if $i < 63 {
                        _mm_add_epi32($d, km($i + 1))
                    } else {
                        $d
                    };
                    let f = _mm_ternarylogic_epi32::<$imm>($d, $b, $c);
                    $a = _mm_add_epi32(_mm_rol_epi32::<$s>(_mm_add_epi32(t, f)), $b);
                    t = next;
                };
            }
            macro_rules! round {
                ($imm:expr, $base:expr, $s0:expr, $s1:expr, $s2:expr, $s3:expr) => {
                    let mut i = $base;
                    while i < $base + 16 {
                        step!($imm, a, b, c, d, i, $s0);
                        step!($imm, d, a, b, c, i + 1, $s1);
                        step!($imm, c, d, a, b, i + 2, $s2);
                        step!($imm, b, c, d, a, i + 3, $s3);
                        i += 4;
                    }
                };
            }
            round!(0xb8, 0, 7, 12, 17, 22); // F = (b & c) | (!b & d)
            round!(0xca, 16, 5, 9, 14, 20); // G = (b & d) | (c & !d)
            round!(0x96, 32, 4, 11, 16, 23); // H = b ^ c ^ d
            round!(0x65, 48, 6, 10, 15, 21); // I = c ^ (b | !d)
            let _ = t;
            a = _mm_add_epi32(a, a0);
            b = _mm_add_epi32(b, b0);
            c = _mm_add_epi32(c, c0);
            d = _mm_add_epi32(d, d0);
        }
        state[0] = _mm_cvtsi128_si32(a) as u32;
        state[1] = _mm_cvtsi128_si32(b) as u32;
        state[2] = _mm_cvtsi128_si32(c) as u32;
        state[3] = _mm_cvtsi128_si32(d) as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 131 + i / 251) as u8).collect()
    }

    fn reference(d: &[u8]) -> [u8; 16] {
        md5::Md5::digest(d).into()
    }

    #[test]
    fn matches_md5_on_every_length_and_split() {
        let d = data(4096 + 77);
        for n in (0..300).chain([1000, 4095, 4096, 4097, 4096 + 77]) {
            for h in [Md5::new(), Md5::portable()] {
                let mut one = h.clone();
                one.update(&d[..n]);
                assert_eq!(one.finalize(), reference(&d[..n]), "{h:?}, {n} bytes");
                // The same bytes in uneven pieces.
                let mut pieces = h.clone();
                for c in d[..n].chunks(37) {
                    pieces.update(c);
                }
                assert_eq!(
                    pieces.finalize(),
                    reference(&d[..n]),
                    "{h:?}, {n} in pieces"
                );
            }
        }
        assert_eq!(
            hex::encode(Md5::new().finalize()),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
    }

    /// The vector path is the one taken where the CPU allows it (this
    /// project's machines do; the test says which path it checked).
    #[test]
    fn the_vector_path_is_used_when_available() {
        let h = format!("{:?}", Md5::new());
        #[cfg(target_arch = "x86_64")]
        assert_eq!(h == "Md5(avx512)", vector::available(), "{h}");
        eprintln!("MD5 path checked: {h}");
    }
}
