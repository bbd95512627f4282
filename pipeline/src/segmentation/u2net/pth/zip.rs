//! The zip container of `torch.save` (PyTorch ≥ 1.6): entries are stored uncompressed (method 0)
//! and found through the central directory, with the zip64 extensions a large checkpoint uses.

use std::collections::HashMap;

const EOCD: u32 = 0x0605_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_EOCD: u32 = 0x0606_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;

fn le(bytes: &[u8], at: usize, n: usize) -> Result<u64, String> {
    let b = bytes.get(at..at.saturating_add(n)).ok_or("truncated zip")?;
    Ok(b.iter().rev().fold(0u64, |acc, &x| acc << 8 | u64::from(x)))
}

fn index(v: u64) -> Result<usize, String> {
    usize::try_from(v).map_err(|_| "zip offset overflows".to_string())
}

/// Name → contents of every entry.
pub fn entries(bytes: &[u8]) -> Result<HashMap<String, &[u8]>, String> {
    // The end-of-central-directory record is in the last 64 KiB + 22 bytes.
    let lowest = bytes.len().saturating_sub(22 + 65535);
    let eocd = (lowest..=bytes.len().saturating_sub(22))
        .rev()
        .find(|&i| le(bytes, i, 4) == Ok(u64::from(EOCD)))
        .ok_or("no end of central directory: truncated zip")?;
    let mut count = le(bytes, eocd + 10, 2)?;
    let mut cd = le(bytes, eocd + 16, 4)?;
    if (count == 0xffff || cd == 0xffff_ffff)
        && eocd >= 20
        && le(bytes, eocd - 20, 4)? == u64::from(ZIP64_LOCATOR)
    {
        let rec = index(le(bytes, eocd - 20 + 8, 8)?)?;
        if le(bytes, rec, 4)? != u64::from(ZIP64_EOCD) {
            return Err("bad zip64 end of central directory".into());
        }
        count = le(bytes, rec + 32, 8)?;
        cd = le(bytes, rec + 48, 8)?;
    }
    let mut out = HashMap::new();
    let mut at = index(cd)?;
    for _ in 0..count {
        if le(bytes, at, 4)? != u64::from(CENTRAL) {
            return Err("bad central directory entry".into());
        }
        let method = le(bytes, at + 10, 2)?;
        let mut size = le(bytes, at + 24, 4)?;
        let name_len = index(le(bytes, at + 28, 2)?)?;
        let extra_len = index(le(bytes, at + 30, 2)?)?;
        let comment_len = index(le(bytes, at + 32, 2)?)?;
        let mut local = le(bytes, at + 42, 4)?;
        let name = bytes
            .get(at + 46..at + 46 + name_len)
            .ok_or("truncated zip entry name")?;
        let name = String::from_utf8_lossy(name).into_owned();
        // Zip64 extra field: the 64-bit values of the fields that are all ones, in order
        // uncompressed size, compressed size, local header offset.
        let extra = bytes
            .get(at + 46 + name_len..at + 46 + name_len + extra_len)
            .ok_or("truncated zip extra field")?;
        let mut e = 0;
        while e + 4 <= extra.len() {
            let id = le(extra, e, 2)?;
            let len = index(le(extra, e + 2, 2)?)?;
            if id == 1 {
                let mut f = e + 4;
                if size == 0xffff_ffff {
                    size = le(extra, f, 8)?;
                    f += 8;
                }
                if le(bytes, at + 20, 4)? == 0xffff_ffff {
                    f += 8;
                }
                if local == 0xffff_ffff {
                    local = le(extra, f, 8)?;
                }
            }
            e += 4 + len;
        }
        if method != 0 {
            return Err(format!(
                "zip entry `{name}` is compressed (method {method})"
            ));
        }
        let local = index(local)?.min(bytes.len());
        if le(bytes, local, 4)? != u64::from(LOCAL) {
            return Err(format!("bad local header for `{name}`"));
        }
        let start =
            local + 30 + index(le(bytes, local + 26, 2)?)? + index(le(bytes, local + 28, 2)?)?;
        let data = bytes
            .get(start..start.saturating_add(index(size)?))
            .ok_or_else(|| format!("zip entry `{name}` is truncated"))?;
        out.insert(name, data);
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(out)
}
