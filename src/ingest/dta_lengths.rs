//! Checks the lengths a `.dta` file declares before the `dta` crate reads it.
//!
//! The crate (0.6) allocates a buffer of each declared length before reading into it, so a
//! damaged 700-byte file that declares a 2 GB characteristic made it allocate 2 GB (found by
//! fuzzing). Every length-prefixed block (characteristics, value-label tables, long strings) is
//! checked here against the bytes the file has left, and so is the data section of releases
//! 113–115 (rows × row width). A block that does not fit would make the
//! crate fail anyway, after the allocation; this check only fails first, with a message that
//! names the block. Blocks whose framing does not look as expected are left to the crate.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// Why a declared length cannot be right: the block, where it starts, what it claims.
pub(crate) fn check(file: &mut File) -> Result<(), String> {
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut r = Bytes { file, len };
    let Some(first) = r.at(0, 1) else {
        return Ok(());
    };
    if first[0] == b'<' {
        check_xml_like(&mut r)
    } else {
        check_binary(&mut r, first[0])
    }
}

struct Bytes<'a> {
    file: &'a mut File,
    len: u64,
}

impl Bytes<'_> {
    /// `n` bytes at `offset`, or `None` past the end.
    fn at(&mut self, offset: u64, n: usize) -> Option<Vec<u8>> {
        if offset.checked_add(n as u64)? > self.len {
            return None;
        }
        self.file.seek(SeekFrom::Start(offset)).ok()?;
        let mut buf = vec![0u8; n];
        self.file.read_exact(&mut buf).ok()?;
        Some(buf)
    }

    fn uint(&mut self, offset: u64, n: usize, big_endian: bool) -> Option<u64> {
        let b = self.at(offset, n)?;
        let mut v = 0u64;
        for k in 0..n {
            let byte = if big_endian { b[k] } else { b[n - 1 - k] };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    }

    /// A block of `declared` bytes starting at `start` must end inside the file.
    fn fits(&self, what: &str, start: u64, declared: u64) -> Result<(), String> {
        let left = self.len.saturating_sub(start);
        if declared > left {
            return Err(format!(
                "{what} at byte {start} declares {declared} bytes, but the file has {left} bytes left \
                 (it ends at byte {}): the file is truncated or damaged; get the complete file again",
                self.len
            ));
        }
        Ok(())
    }
}

/// Releases 113–115: a fixed header, descriptors (display formats of 12 bytes in 113, 49 in
/// 114–115), then expansion fields
/// `{type: u8, length: u32, payload}` ended by a zero type and length; value-label tables after
/// the data, each `{length: u32, name: 33 bytes, padding: 3 bytes, table}`.
fn check_binary(r: &mut Bytes<'_>, release: u8) -> Result<(), String> {
    if !(113..=115).contains(&release) {
        return Ok(());
    }
    let format_width: u64 = if release >= 114 { 49 } else { 12 };
    let Some(header) = r.at(0, 109) else {
        return Ok(());
    };
    let big = header[1] == 1;
    let nvar = if big {
        u16::from_be_bytes([header[4], header[5]])
    } else {
        u16::from_le_bytes([header[4], header[5]])
    } as u64;
    let nobs = r.uint(6, 4, big).unwrap_or(0);
    let Some(types) = r.at(109, nvar as usize) else {
        return Ok(());
    };
    let mut pos =
        109 + nvar + 33 * nvar + 2 * (nvar + 1) + format_width * nvar + 33 * nvar + 81 * nvar;
    loop {
        let (Some(kind), Some(length)) = (r.at(pos, 1), r.uint(pos + 1, 4, big)) else {
            return Ok(());
        };
        pos += 5;
        if kind[0] == 0 && length == 0 {
            break;
        }
        r.fits("an expansion field (characteristic)", pos, length)?;
        pos += length;
    }
    let row_width: u64 = types
        .iter()
        .map(|&t| match t {
            251 => 1,
            252 => 2,
            253 | 254 => 4,
            255 => 8,
            width => u64::from(width),
        })
        .sum();
    // A header claiming a billion rows of zero width made the crate hand out empty records for
    // half a minute (found by fuzzing): the rows must fit in the bytes that follow.
    if nobs > 0 && row_width == 0 {
        return Err(format!(
            "the header declares {nobs} rows, but its variables hold no bytes (the file is damaged)"
        ));
    }
    let Some(data) = nobs.checked_mul(row_width) else {
        return Err(format!(
            "the header declares {nobs} rows of {row_width} bytes (the file is damaged)"
        ));
    };
    r.fits("the data section", pos, data)?;
    pos = pos.saturating_add(data);
    while let Some(length) = r.uint(pos, 4, big) {
        pos += 4 + 33 + 3;
        r.fits("a value-label table", pos, length)?;
        pos += length;
    }
    Ok(())
}

/// Releases 117–119: an XML-like header with a map of section offsets; characteristics
/// `<ch>{length: u32}payload</ch>`, value labels `<lbl>{length: u32}{name}{padding}table</lbl>`,
/// long strings `GSO{v}{o}{type: u8}{length: u32}payload`.
fn check_xml_like(r: &mut Bytes<'_>) -> Result<(), String> {
    const OPEN: &[u8] = b"<stata_dta><header><release>";
    let Some(start) = r.at(0, OPEN.len() + 3) else {
        return Ok(());
    };
    if &start[..OPEN.len()] != OPEN {
        return Ok(());
    }
    let release: u32 = match std::str::from_utf8(&start[OPEN.len()..]).map(str::parse) {
        Ok(Ok(v)) => v,
        _ => return Ok(()),
    };
    let mut pos = (OPEN.len() + 3) as u64;
    let expect = |r: &mut Bytes<'_>, pos: &mut u64, tag: &[u8]| -> bool {
        let ok = r.at(*pos, tag.len()).is_some_and(|b| b == tag);
        *pos += tag.len() as u64;
        ok
    };
    if !expect(r, &mut pos, b"</release><byteorder>") {
        return Ok(());
    }
    let big = r.at(pos, 3).is_some_and(|b| b == b"MSF");
    pos += 3;
    if !expect(r, &mut pos, b"</byteorder><K>") {
        return Ok(());
    }
    pos += if release >= 119 { 4 } else { 2 };
    if !expect(r, &mut pos, b"</K><N>") {
        return Ok(());
    }
    pos += if release >= 118 { 8 } else { 4 };
    if !expect(r, &mut pos, b"</N><label>") {
        return Ok(());
    }
    let label_width = if release >= 118 { 2 } else { 1 };
    let Some(label) = r.uint(pos, label_width, big) else {
        return Ok(());
    };
    pos += label_width as u64 + label;
    if !expect(r, &mut pos, b"</label><timestamp>") {
        return Ok(());
    }
    let Some(stamp) = r.uint(pos, 1, big) else {
        return Ok(());
    };
    pos += 1 + stamp;
    if !expect(r, &mut pos, b"</timestamp></header><map>") {
        return Ok(());
    }
    let mut map = [0u64; 14];
    for (k, slot) in map.iter_mut().enumerate() {
        match r.uint(pos + 8 * k as u64, 8, big) {
            Some(v) => *slot = v,
            None => return Ok(()),
        }
    }
    // A file cut short: the map says where each section starts and where the file ends.
    if map.windows(2).all(|w| w[0] <= w[1]) && map[13] > r.len {
        const SECTIONS: [&str; 13] = [
            "the file header",
            "the map of sections",
            "the variable types",
            "the variable names",
            "the sort order",
            "the display formats",
            "the value-label names",
            "the variable labels",
            "the characteristics (notes and other metadata)",
            "the data rows",
            "the long strings (strL)",
            "the value labels",
            "the closing tag",
        ];
        let k = (0..13).rev().find(|&k| map[k] < r.len).unwrap_or(0);
        return Err(format!(
            "truncated: the file is {} bytes, but its map of sections says it ends at byte {}; \
             it ends inside {}, which start at byte {}. It was cut short (an interrupted \
             download or copy?): get the complete file again",
            r.len, map[13], SECTIONS[k], map[k]
        ));
    }
    // Characteristics.
    let mut pos = map[8];
    if expect(r, &mut pos, b"<characteristics>") {
        while r.at(pos, 4).is_some_and(|b| b == b"<ch>") {
            let Some(length) = r.uint(pos + 4, 4, big) else {
                break;
            };
            pos += 8;
            r.fits("a characteristic", pos, length)?;
            pos += length + 5;
        }
    }
    // Long strings (strLs).
    let mut pos = map[10];
    let o_width = if release >= 118 { 8 } else { 4 };
    if expect(r, &mut pos, b"<strls>") {
        while r.at(pos, 3).is_some_and(|b| b == b"GSO") {
            let at = pos + 3 + 4 + o_width + 1;
            let Some(length) = r.uint(at, 4, big) else {
                break;
            };
            pos = at + 4;
            r.fits("a long string (strL)", pos, length)?;
            pos += length;
        }
    }
    // Value labels.
    let mut pos = map[11];
    let name_width = if release >= 118 { 129 } else { 33 };
    if expect(r, &mut pos, b"<value_labels>") {
        while r.at(pos, 5).is_some_and(|b| b == b"<lbl>") {
            let Some(length) = r.uint(pos + 5, 4, big) else {
                break;
            };
            pos += 5 + 4 + name_width + 3;
            r.fits("a value-label table", pos, length)?;
            pos += length + 6;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> Vec<u8> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        for dir in ["fixtures/statfiles", "fuzz/seeds/dta_ingest"] {
            if let Ok(bytes) = std::fs::read(root.join(dir).join(name)) {
                return bytes;
            }
        }
        panic!("no fixture {name}");
    }

    fn check_bytes(name: &str, bytes: &[u8]) -> Result<(), String> {
        let path = std::env::temp_dir().join(format!("cvsurvey-dta-lengths-{name}"));
        std::fs::write(&path, bytes).expect("write");
        let mut file = File::open(&path).expect("open");
        let result = check(&mut file);
        let _ = std::fs::remove_file(&path);
        result
    }

    fn find(bytes: &[u8], tag: &[u8]) -> usize {
        bytes
            .windows(tag.len())
            .position(|w| w == tag)
            .expect("tag present")
    }

    #[test]
    fn sound_files_pass() {
        for name in [
            "demo.dta",
            "small_v114.dta",
            "small_v113.dta",
            "draft_v113.dta",
            "small_extmiss.dta",
            "demo_3_rows_v118.dta",
            "demo_3_rows_v114.dta",
        ] {
            assert_eq!(check_bytes(name, &fixture(name)), Ok(()), "{name}");
        }
    }

    #[test]
    fn an_oversized_expansion_field_is_refused_before_allocation() {
        let mut bytes = fixture("small_v114.dta");
        let nvar = u64::from(u16::from_le_bytes([bytes[4], bytes[5]]));
        let pos =
            (109 + nvar + 33 * nvar + 2 * (nvar + 1) + 49 * nvar + 33 * nvar + 81 * nvar) as usize;
        bytes[pos] = 1;
        bytes[pos + 1..pos + 5].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        let e = check_bytes("v114-huge.dta", &bytes).expect_err("refused");
        assert!(
            e.contains("expansion field") && e.contains("2147483647"),
            "{e}"
        );
    }

    #[test]
    fn an_oversized_value_label_table_is_refused() {
        let mut bytes = fixture("demo_3_rows_v118.dta");
        let at = find(&bytes, b"<lbl>") + 5;
        bytes[at..at + 4].copy_from_slice(&0x4000_0000u32.to_le_bytes());
        let e = check_bytes("v118-huge.dta", &bytes).expect_err("refused");
        assert!(e.contains("value-label table"), "{e}");
    }

    #[test]
    fn a_file_cut_short_names_the_section_it_ends_in() {
        let whole = fixture("demo_3_rows_v118.dta");
        let data = find(&whole, b"<data>");
        let labels = find(&whole, b"<value_labels>");
        for (cut, section) in [
            (data + 10, "the data rows"),
            (labels + 20, "the value labels"),
            (300, "the variable"),
        ] {
            let e = check_bytes("cut118.dta", &whole[..cut]).expect_err("cut");
            assert!(
                e.contains("truncated")
                    && e.contains(&format!("the file is {cut} bytes"))
                    && e.contains(&format!("ends at byte {}", whole.len()))
                    && e.contains(section),
                "{cut}: {e}"
            );
        }
    }

    #[test]
    fn rows_that_cannot_fit_are_refused() {
        // 119 bytes declaring about 1.1 billion rows of zero width (found by fuzzing; it took
        // 26 s to read as empty records).
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/regressions/dta_ingest/timeout-56f7d52aaafb5caa195631d9f3109dc229f03ba5");
        let bytes = std::fs::read(path).expect("regression input");
        let e = check_bytes("zero-width.dta", &bytes).expect_err("refused");
        assert!(e.contains("rows"), "{e}");
        // A sound file whose data section is cut short.
        let whole = fixture("small_v114.dta");
        let nvar = u64::from(u16::from_le_bytes([whole[4], whole[5]]));
        let descriptors =
            (109 + nvar + 33 * nvar + 2 * (nvar + 1) + 49 * nvar + 33 * nvar + 81 * nvar + 5)
                as usize;
        let e = check_bytes("cut.dta", &whole[..descriptors + 3]).expect_err("refused");
        assert!(e.contains("data section"), "{e}");
    }
}
