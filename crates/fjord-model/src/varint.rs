//! LEB128 varints and a bounds-checked byte reader, shared by every binary format in Fjord
//! (chunks, WAL records, index files).
//!
//! **Invariant:** readers never panic on truncated or hostile input; every read that runs past
//! the end returns [`Truncated`].

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded, so small negative numbers stay short.
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// The input ended (or a length pointed) past the end of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("truncated or corrupt data")]
pub struct Truncated;

/// A cursor over a byte slice with checked reads.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn uvarint(&mut self) -> Result<u64, Truncated> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = *self.buf.get(self.pos).ok_or(Truncated)?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(Truncated);
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(Truncated);
            }
        }
    }

    pub fn varint(&mut self) -> Result<i64, Truncated> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A varint that must fit a `usize` no larger than `max`.
    pub fn len_at_most(&mut self, max: usize) -> Result<usize, Truncated> {
        let v = self.uvarint()?;
        if v > max as u64 {
            return Err(Truncated);
        }
        Ok(v as usize)
    }

    pub fn u8(&mut self) -> Result<u8, Truncated> {
        let b = *self.buf.get(self.pos).ok_or(Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    pub fn u32_le(&mut self) -> Result<u32, Truncated> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        let end = self.pos.checked_add(n).ok_or(Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(Truncated)?;
        self.pos = end;
        Ok(s)
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<&'a [u8], Truncated> {
        let n = self.len_at_most(self.remaining())?;
        self.take(n)
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<&'a str, Truncated> {
        std::str::from_utf8(self.bytes()?).map_err(|_| Truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn round_trips(vals in proptest::collection::vec(proptest::num::i64::ANY, 0..50)) {
            let mut buf = Vec::new();
            for v in &vals {
                put_varint(&mut buf, *v);
                put_uvarint(&mut buf, *v as u64);
            }
            let mut r = Reader::new(&buf);
            for v in &vals {
                proptest::prop_assert_eq!(r.varint().unwrap(), *v);
                proptest::prop_assert_eq!(r.uvarint().unwrap(), *v as u64);
            }
            proptest::prop_assert!(r.is_empty());
        }

        #[test]
        fn never_panics(buf in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let mut r = Reader::new(&buf);
            while r.uvarint().is_ok() {}
            let mut r = Reader::new(&buf);
            let _ = r.bytes();
            let _ = r.str();
        }
    }
}
