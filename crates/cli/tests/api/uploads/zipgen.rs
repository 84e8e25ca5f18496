//! Zip files written byte by byte for the upload tests: office files, and
//! bombs whose deflate streams are generated without compressing anything
//! (2 GiB of zeros in ~13 MB, in milliseconds). `python3 -m zipfile -t` and
//! `unzip -t` accept them: they are real archives, CRCs and all.

/// One zip entry: stored bytes, or a deflate stream of zeros.
pub struct Entry {
    name: String,
    method: u16,
    crc: u32,
    /// The uncompressed size the headers declare.
    pub size: u32,
    data: Vec<u8>,
}

impl Entry {
    pub fn stored(name: &str, data: &[u8]) -> Entry {
        let crc = crc32(data);
        Entry {
            name: name.into(),
            method: 0,
            crc,
            size: data.len() as u32,
            data: data.to_vec(),
        }
    }

    /// `n` zero bytes, deflated with the fixed Huffman code: a literal zero,
    /// then (length 258, distance 1) matches of 13 bits each, ~159:1.
    pub fn zeros(name: &str, n: u64) -> Entry {
        let mut w = Bits::default();
        w.put(0b011, 3); // final block, fixed codes
        let rev = |code: u64, len: u32| code.reverse_bits() >> (64 - len);
        let literal_zero = rev(0x30, 8);
        w.put(literal_zero, 8);
        let matches = (n - 1) / 258;
        let match_258 = rev(0xC5, 8); // symbol 285; distance code 0 is 5 zero bits
        for _ in 0..matches {
            w.put(match_258, 13);
        }
        for _ in 0..(n - 1) % 258 {
            w.put(literal_zero, 8);
        }
        w.put(0, 7); // end of block (symbol 256)
        Entry {
            name: name.into(),
            method: 8,
            crc: crc32_zeros(n),
            size: n as u32,
            data: w.finish(),
        }
    }
}

#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    len: u32,
}

impl Bits {
    fn put(&mut self, v: u64, n: u32) {
        self.acc |= v << self.len;
        self.len += n;
        while self.len >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.len -= 8;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.len > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A zip of the entries (local headers, data, central directory, end).
pub fn zip(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let at = out.len() as u32;
        let common = |v: &mut Vec<u8>| {
            for x in [20u16, 0, e.method, 0, 0x21] {
                v.extend(x.to_le_bytes()); // version, flags, method, time, date
            }
            for x in [e.crc, e.data.len() as u32, e.size] {
                v.extend(x.to_le_bytes());
            }
            v.extend((e.name.len() as u16).to_le_bytes());
            v.extend(0u16.to_le_bytes()); // extra field length
        };
        out.extend(0x0403_4b50u32.to_le_bytes());
        common(&mut out);
        out.extend(e.name.as_bytes());
        out.extend(&e.data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(20u16.to_le_bytes()); // made by
        common(&mut central);
        // Comment length, disk, internal and external attributes.
        central.extend([0u8; 10]);
        central.extend(at.to_le_bytes());
        central.extend(e.name.as_bytes());
    }
    let (cd_at, cd_len, n) = (out.len() as u32, central.len() as u32, entries.len() as u16);
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]); // disk numbers
    for x in [n, n] {
        out.extend(x.to_le_bytes());
    }
    for x in [cd_len, cd_at] {
        out.extend(x.to_le_bytes());
    }
    out.extend(0u16.to_le_bytes());
    out
}

/// A small office file of the kind `marker` names, its marker not first (as
/// in real files, where `infer` alone often cannot tell them from a zip).
pub fn office_zip(marker: &str) -> Vec<u8> {
    let body = "<?xml version=\"1.0\"?><row>1,2,3</row>".repeat(50);
    zip(&[
        Entry::stored("[Content_Types].xml", b"<?xml version=\"1.0\"?><Types/>"),
        Entry::stored("docProps/app.xml", body.as_bytes()),
        Entry::stored(marker, b"<?xml version=\"1.0\"?><workbook/>"),
    ])
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for b in data {
        c ^= u32::from(*b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// The CRC-32 of `n` zero bytes without reading them: a zero byte is a linear
/// map of the CRC register, raised to the n-th power by squaring (as zlib's
/// crc32_combine does).
fn crc32_zeros(n: u64) -> u32 {
    fn times(m: &[u32; 32], mut v: u32) -> u32 {
        let (mut sum, mut i) = (0, 0);
        while v != 0 {
            if v & 1 == 1 {
                sum ^= m[i];
            }
            v >>= 1;
            i += 1;
        }
        sum
    }
    fn square(m: &[u32; 32]) -> [u32; 32] {
        std::array::from_fn(|i| times(m, m[i]))
    }
    // One zero bit: bit 0 feeds the polynomial back, the rest shift down.
    let mut op: [u32; 32] =
        std::array::from_fn(|i| if i == 0 { 0xEDB8_8320 } else { 1 << (i - 1) });
    for _ in 0..3 {
        op = square(&op);
    }
    let (mut reg, mut k) = (!0u32, n);
    while k != 0 {
        if k & 1 == 1 {
            reg = times(&op, reg);
        }
        op = square(&op);
        k >>= 1;
    }
    !reg
}

#[test]
fn crc_of_zeros_matches_the_bytewise_crc() {
    for n in [1u64, 7, 258, 4096] {
        assert_eq!(crc32_zeros(n), crc32(&vec![0; n as usize]), "{n}");
    }
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}
