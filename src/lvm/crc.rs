//! LVM2's checksum: the CRC used for labels, metadata-area headers and metadata text.
//!
//! LVM's `calc_crc` (`lib/misc/crc.c`) is the reflected CRC-32 (polynomial 0xEDB88320) started
//! from a caller-given value, with no inversion at either end. zlib-style CRC-32 (what
//! `crc32fast` computes) inverts on the way in and out, so LVM's value is
//! `!crc32fast(data, start = !initial)`. Chaining (`calc_crc(calc_crc(INITIAL_CRC, a), b)`)
//! works the same way, which is how LVM checksums metadata text that wraps around the ring.

/// LVM's `INITIAL_CRC`: the starting value for every checksum on disk.
pub const INITIAL_CRC: u32 = 0xF597_A6CF;

/// LVM's `calc_crc(initial, data)`: continue a checksum over `data`.
pub fn calc_crc(initial: u32, data: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new_with_initial(!initial);
    hasher.update(data);
    !hasher.finalize()
}

/// The checksum of `data` as LVM stores it: `calc_crc(INITIAL_CRC, data)`.
pub fn lvm_crc(data: &[u8]) -> u32 {
    calc_crc(INITIAL_CRC, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bit-by-bit definition from `lib/misc/crc.c`, used only to check the fast path.
    fn reference(initial: u32, data: &[u8]) -> u32 {
        let mut crc = initial;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn initial_value_matches_the_crc32fast_seed() {
        assert_eq!(!INITIAL_CRC, 0x0A68_5930);
    }

    #[test]
    fn empty_input_is_the_initial_value() {
        assert_eq!(lvm_crc(b""), INITIAL_CRC);
    }

    #[test]
    fn matches_the_bitwise_definition() {
        let data: Vec<u8> = (0..2000u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in [0, 1, 3, 8, 63, 512, 2000] {
            let part = data.get(..len).unwrap_or_default();
            assert_eq!(lvm_crc(part), reference(INITIAL_CRC, part), "length {len}");
        }
    }

    #[test]
    fn chaining_equals_one_pass() {
        let data = b"vg0 {\nid = \"abc\"\nseqno = 7\n}\n\0";
        let (a, b) = data.split_at(11);
        assert_eq!(calc_crc(lvm_crc(a), b), lvm_crc(data));
    }
}
