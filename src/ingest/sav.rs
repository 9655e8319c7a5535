//! SPSS system files: `.sav` (uncompressed or bytecode-compressed) and `.zsav` (zlib blocks).
//!
//! A minimal reader for what survey data needs, written from the PSPP description of the
//! format ("System File Format" in the PSPP developers' guide). It is hand-written because the
//! one well-kept pure-Rust reader, `ambers`, returns Arrow 57 record batches and so would compile
//! a second Arrow major (with arrow-cast and arrow-ord) into a build that uses Arrow 60; see
//! `docs/data-formats.md`.
//!
//! Read: the file header, variable records (names, labels, print formats, user-missing values),
//! value labels (short and long strings), documents (skipped), the extension records for
//! character encoding, long variable names, very long strings, long string value labels, and
//! the dictionary terminator; then the cases, streamed one at a time. Everything else is
//! skipped by its declared size. Every read is bounded by the file length, so a truncated or
//! corrupt file is an error naming the file and the byte offset, never a panic or a huge
//! allocation.
//!
//! The case data are bounded before they are read (`case_rows`): the rows the header
//! announces must fit in the bytes present, the zlib blocks of a `.zsav` may hold no more than
//! those rows can need (and each block inflates to exactly its declared size, `sav_zlib.rs`),
//! a bytecode stream that goes on past the announced rows is an error, and the rows the data
//! can hold must fit in memory. The list is in `docs/reliability.md` ("Bounds").

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use encoding_rs::Encoding;

use super::builder::ColumnBuilder;
use super::dictionary::{FileCode, FileDictionary, FileMissing, FileType, FileVariable, Observed};
use super::stat_sink::{StatCell, StatSink};
use super::{ColumnPlan, IngestError, RawTable, input_sha256};

#[path = "sav_zlib.rs"]
mod zlib;

/// Bytes of one case slot.
const SLOT: usize = 8;
/// A very long string of width w is stored as ceil(w / 252) string variables ("segments").
const SEGMENT_BYTES: usize = 252;

/// A reading error: what and where (byte offset).
#[derive(Debug)]
struct SavError(String);

type Res<T> = Result<T, SavError>;

/// Little reader over the file that knows the byte order and the remaining length.
struct Input<R> {
    inner: R,
    pos: u64,
    len: u64,
    big_endian: bool,
    /// True when reading the file itself (its end is the file's end), false inside a record
    /// already read into memory.
    in_file: bool,
}

impl<R: Read> Input<R> {
    fn bytes(&mut self, n: usize, what: &str) -> Res<Vec<u8>> {
        if (n as u64) > self.len.saturating_sub(self.pos) {
            if !self.in_file {
                return Err(SavError(format!(
                    "corrupt {what}: an entry at byte {} of the record needs {n} bytes, the \
                     record has {}",
                    self.pos, self.len
                )));
            }
            return Err(SavError(format!(
                "truncated: {what} at byte {} needs {n} bytes, but the file ends at byte {} (its \
                 size); it was cut short (an interrupted download or copy?): get the complete \
                 file again",
                self.pos, self.len
            )));
        }
        let mut buf = vec![0u8; n];
        self.inner
            .read_exact(&mut buf)
            .map_err(|e| SavError(format!("{what} at byte {}: {e}", self.pos)))?;
        self.pos += n as u64;
        Ok(buf)
    }
    fn array<const N: usize>(&mut self, what: &str) -> Res<[u8; N]> {
        let v = self.bytes(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&v);
        Ok(a)
    }
    fn i32(&mut self, what: &str) -> Res<i32> {
        let a = self.array::<4>(what)?;
        Ok(if self.big_endian {
            i32::from_be_bytes(a)
        } else {
            i32::from_le_bytes(a)
        })
    }
    fn i64(&mut self, what: &str) -> Res<i64> {
        let a = self.array::<8>(what)?;
        Ok(if self.big_endian {
            i64::from_be_bytes(a)
        } else {
            i64::from_le_bytes(a)
        })
    }
    fn f64(&mut self, what: &str) -> Res<f64> {
        let a = self.array::<8>(what)?;
        Ok(decode_f64(a, self.big_endian))
    }
    /// A count that must be in `0..=max`.
    fn count(&mut self, what: &str, max: u64) -> Res<usize> {
        let at = self.pos;
        let n = self.i32(what)?;
        if n < 0 || n as u64 > max {
            return Err(SavError(format!(
                "{what} at byte {at} is {n}, which is impossible here"
            )));
        }
        Ok(n as usize)
    }
    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }
}

fn decode_f64(a: [u8; 8], big_endian: bool) -> f64 {
    if big_endian {
        f64::from_be_bytes(a)
    } else {
        f64::from_le_bytes(a)
    }
}

fn encode_f64(x: f64, big_endian: bool) -> [u8; 8] {
    if big_endian {
        x.to_be_bytes()
    } else {
        x.to_le_bytes()
    }
}

/// A value label record as stored: raw values, raw labels, 1-based slots of its variables.
type LabelRecord = (Vec<[u8; 8]>, Vec<Vec<u8>>, Vec<usize>);

/// A variable record as stored: one per 8-byte slot of a case (continuations included).
#[derive(Debug, Clone)]
struct VarRecord {
    short_name: Vec<u8>,
    /// 0 numeric, 1..=255 string width, -1 continuation of the previous string.
    width: i32,
    label: Option<Vec<u8>>,
    missing_code: i32,
    missing: Vec<[u8; 8]>,
    print_format: i32,
}

/// A variable as the user sees it, with where its bytes lie in a case.
#[derive(Debug, Clone)]
struct Var {
    dict: FileVariable,
    /// The 8-byte name of the variable record.
    short: String,
    numeric: bool,
    /// (first slot, useful bytes) per segment; one segment except for very long strings.
    segments: Vec<(usize, usize)>,
}

/// The parsed dictionary plus what the data reader needs.
struct Layout {
    dict: FileDictionary,
    vars: Vec<Var>,
    n_slots: usize,
    compression: i32,
    n_cases: Option<u64>,
    bias: f64,
    big_endian: bool,
    sysmis: f64,
    encoding: &'static Encoding,
    /// Byte offset of the first case (or of the zlib header).
    data_start: u64,
}

fn codepage_encoding(code: i32) -> &'static Encoding {
    let label = match code {
        65001 => "utf-8",
        1250..=1258 => {
            return Encoding::for_label(format!("windows-{code}").as_bytes())
                .unwrap_or(encoding_rs::WINDOWS_1252);
        }
        28591 => "iso-8859-1",
        28592..=28599 => {
            return Encoding::for_label(format!("iso-8859-{}", code - 28590).as_bytes())
                .unwrap_or(encoding_rs::WINDOWS_1252);
        }
        932 => "shift_jis",
        936 => "gbk",
        949 => "euc-kr",
        950 => "big5",
        _ => "windows-1252",
    };
    Encoding::for_label(label.as_bytes()).unwrap_or(encoding_rs::WINDOWS_1252)
}

fn decode(encoding: &'static Encoding, bytes: &[u8]) -> String {
    let (s, _) = encoding.decode_without_bom_handling(bytes);
    s.trim_end_matches([' ', '\0']).to_string()
}

fn read_layout<R: Read>(input: &mut Input<R>) -> Res<Layout> {
    let magic = input.array::<4>("file header")?;
    let zlib = match &magic {
        b"$FL2" => false,
        b"$FL3" => true,
        _ => {
            let head = String::from_utf8_lossy(&magic).to_string();
            return Err(SavError(if head.starts_with("ENCR") {
                "the file is encrypted; save it unencrypted from SPSS".into()
            } else {
                format!(
                    "not an SPSS system file (starts with {head:?}, expected \"$FL2\" or \"$FL3\")"
                )
            }));
        }
    };
    let _product = input.bytes(60, "file header")?;
    let layout = input.array::<4>("layout code")?;
    input.big_endian = match (i32::from_le_bytes(layout), i32::from_be_bytes(layout)) {
        (2 | 3, _) => false,
        (_, 2 | 3) => true,
        _ => {
            return Err(SavError(
                "unknown layout code in the file header (byte 64)".into(),
            ));
        }
    };
    let _nominal_case_size = input.i32("file header")?;
    let compression = input.i32("file header")?;
    match (compression, zlib) {
        (0 | 1, false) | (2, true) => {}
        _ => {
            return Err(SavError(format!(
                "unsupported compression {compression} for a {} file",
                if zlib { "$FL3" } else { "$FL2" }
            )));
        }
    }
    let _weight_index = input.i32("file header")?;
    let n_cases = input.i32("file header")?;
    let bias = input.f64("file header")?;
    let _date = input.bytes(17, "file header")?;
    let file_label = input.bytes(64, "file header")?;
    let _pad = input.bytes(3, "file header")?;

    let mut records: Vec<VarRecord> = Vec::new();
    let mut value_labels: Vec<LabelRecord> = Vec::new();
    let mut encoding: Option<&'static Encoding> = None;
    let mut codepage: Option<i32> = None;
    let mut sysmis = -f64::MAX;
    let mut highest = f64::MAX;
    let mut lowest = f64::from_bits((-f64::MAX).to_bits() - 1);
    let mut long_names: Option<Vec<u8>> = None;
    let mut very_long: Option<Vec<u8>> = None;
    let mut long_labels: Vec<Vec<u8>> = Vec::new();
    let mut long_missing: Vec<Vec<u8>> = Vec::new();
    let max = input.len;
    loop {
        let at = input.pos;
        let rec_type = input.i32("record type")?;
        match rec_type {
            2 => {
                let width = input.i32("variable record")?;
                if !(-1..=255).contains(&width) {
                    return Err(SavError(format!(
                        "variable record at byte {at}: impossible width {width}"
                    )));
                }
                let has_label = input.i32("variable record")?;
                let missing_code = input.i32("variable record")?;
                let print_format = input.i32("variable record")?;
                let _write_format = input.i32("variable record")?;
                let short_name = input.bytes(8, "variable name")?;
                let label = if has_label == 1 {
                    let n = input.count("variable label length", max)?;
                    let padded = n.div_ceil(4) * 4;
                    let mut l = input.bytes(padded, "variable label")?;
                    l.truncate(n);
                    Some(l)
                } else {
                    None
                };
                let n_missing = match missing_code {
                    0..=3 => missing_code as usize,
                    -2 => 2,
                    -3 => 3,
                    _ => {
                        return Err(SavError(format!(
                            "variable record at byte {at}: impossible missing-value count {missing_code}"
                        )));
                    }
                };
                let mut missing = Vec::with_capacity(n_missing);
                for _ in 0..n_missing {
                    missing.push(input.array::<8>("missing values")?);
                }
                if width == -1 && records.is_empty() {
                    return Err(SavError(format!(
                        "variable record at byte {at}: a continuation without a string variable"
                    )));
                }
                records.push(VarRecord {
                    short_name,
                    width,
                    label,
                    missing_code,
                    missing,
                    print_format,
                });
            }
            3 => {
                let n = input.count("value label count", max / 9)?;
                let mut values = Vec::with_capacity(n);
                let mut labels = Vec::with_capacity(n);
                for _ in 0..n {
                    values.push(input.array::<8>("value label")?);
                    let len = input.bytes(1, "value label")?[0] as usize;
                    let padded = (len + 1).div_ceil(8) * 8 - 1;
                    let mut l = input.bytes(padded, "value label")?;
                    l.truncate(len);
                    labels.push(l);
                }
                let at4 = input.pos;
                if input.i32("value label variables")? != 4 {
                    return Err(SavError(format!(
                        "a value label record must be followed by its variables (record type 4) at byte {at4}"
                    )));
                }
                let n_vars = input.count("value label variable count", max / 4)?;
                let mut vars = Vec::with_capacity(n_vars);
                for _ in 0..n_vars {
                    vars.push(input.count("value label variable", u32::MAX as u64)?);
                }
                value_labels.push((values, labels, vars));
            }
            6 => {
                let n = input.count("document line count", max / 80)?;
                input.bytes(n * 80, "documents")?;
            }
            7 => {
                let subtype = input.i32("extension record")?;
                let size = input.count("extension record size", max)?;
                let count = input.count("extension record count", max)?;
                let total = (size as u64).saturating_mul(count as u64);
                if total > input.remaining() {
                    return Err(SavError(format!(
                        "truncated: extension record {subtype} at byte {at} declares {total} bytes"
                    )));
                }
                let data = input.bytes(total as usize, "extension record")?;
                let word = |i: usize| -> Option<[u8; 8]> {
                    data.get(i * 8..i * 8 + 8).map(|s| {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(s);
                        a
                    })
                };
                match subtype {
                    3 if size == 4 && count >= 8 => {
                        let b = [data[28], data[29], data[30], data[31]];
                        codepage = Some(if input.big_endian {
                            i32::from_be_bytes(b)
                        } else {
                            i32::from_le_bytes(b)
                        });
                    }
                    4 if size == 8 && count >= 3 => {
                        if let (Some(a), Some(b), Some(c)) = (word(0), word(1), word(2)) {
                            sysmis = decode_f64(a, input.big_endian);
                            highest = decode_f64(b, input.big_endian);
                            lowest = decode_f64(c, input.big_endian);
                        }
                    }
                    13 => long_names = Some(data),
                    14 => very_long = Some(data),
                    20 => {
                        encoding =
                            Encoding::for_label(String::from_utf8_lossy(&data).trim().as_bytes());
                    }
                    21 => long_labels.push(data),
                    22 => long_missing.push(data),
                    _ => {}
                }
            }
            999 => {
                input.i32("dictionary terminator")?;
                break;
            }
            other => {
                return Err(SavError(format!(
                    "unknown record type {other} at byte {at} (corrupt file?)"
                )));
            }
        }
    }
    if records.is_empty() {
        return Err(SavError("the dictionary declares no variables".into()));
    }
    let encoding = encoding
        .or_else(|| codepage.map(codepage_encoding))
        .unwrap_or(encoding_rs::WINDOWS_1252);
    let big_endian = input.big_endian;

    // Variables: a record with width >= 0 starts one, continuations extend it.
    let mut vars: Vec<Var> = Vec::new();
    let mut first_slot_of: Vec<(usize, usize)> = Vec::new(); // (slot, var index)
    for (slot, r) in records.iter().enumerate() {
        if r.width == -1 {
            continue;
        }
        let numeric = r.width == 0;
        let width = r.width.max(0) as usize;
        let short = decode(encoding, &r.short_name);
        let mut missing = Vec::new();
        let as_code = |a: &[u8; 8]| -> FileCode {
            if numeric {
                FileCode::Num(decode_f64(*a, big_endian))
            } else {
                FileCode::Text(decode(encoding, a))
            }
        };
        let bound = |a: &[u8; 8]| -> f64 {
            let x = decode_f64(*a, big_endian);
            if x == lowest || x == -f64::MAX {
                f64::NEG_INFINITY
            } else if x == highest {
                f64::INFINITY
            } else {
                x
            }
        };
        match r.missing_code {
            -2 | -3 if numeric => {
                missing.push(FileMissing::Range(
                    bound(&r.missing[0]),
                    bound(&r.missing[1]),
                ));
                if r.missing_code == -3 {
                    missing.push(FileMissing::Code(as_code(&r.missing[2])));
                }
            }
            _ => missing.extend(r.missing.iter().map(|a| FileMissing::Code(as_code(a)))),
        }
        let fmt_type = (r.print_format >> 16) & 0xff;
        let decimals = r.print_format & 0xff;
        let integer = decimals == 0 && matches!(fmt_type, 3 | 5 | 16 | 32);
        first_slot_of.push((slot, vars.len()));
        vars.push(Var {
            short: short.clone(),
            dict: FileVariable {
                name: short,
                label: r
                    .label
                    .as_deref()
                    .map(|l| decode(encoding, l))
                    .unwrap_or_default(),
                file_type: if numeric {
                    FileType::Numeric { integer }
                } else {
                    FileType::Text { width }
                },
                value_labels: Vec::new(),
                missing,
            },
            numeric,
            segments: vec![(slot, width.max(1))],
        });
    }
    let n_slots = records.len();

    // Value labels, attached by the 1-based slot of each variable.
    for (values, labels, slots) in value_labels {
        for s in slots {
            let Some(&(_, vi)) = first_slot_of.iter().find(|(slot, _)| slot + 1 == s) else {
                return Err(SavError(format!(
                    "value labels refer to variable slot {s}, which does not start a variable"
                )));
            };
            let numeric = vars[vi].numeric;
            for (v, l) in values.iter().zip(&labels) {
                let code = if numeric {
                    FileCode::Num(decode_f64(*v, big_endian))
                } else {
                    FileCode::Text(decode(encoding, v))
                };
                vars[vi].dict.value_labels.push((code, decode(encoding, l)));
            }
        }
    }

    // Long variable names: SHORT=Long, separated by tabs.
    if let Some(data) = long_names {
        let text = decode(encoding, &data);
        for pair in text.split('\t') {
            if let Some((short, long)) = pair.split_once('=')
                && let Some(v) = vars
                    .iter_mut()
                    .find(|v| v.dict.name.eq_ignore_ascii_case(short.trim()))
            {
                v.dict.name = long.trim().to_string();
            }
        }
    }

    // Very long strings: SHORT=width pairs separated by NUL+tab; the following segment
    // variables are merged into the first.
    if let Some(data) = very_long {
        let text = String::from_utf8_lossy(&data).to_string();
        for pair in text.split(['\t', '\0']) {
            let Some((short, width)) = pair.split_once('=') else {
                continue;
            };
            let Ok(width) = width.trim().parse::<usize>() else {
                continue;
            };
            let Some(i) = vars
                .iter()
                .position(|v| v.short.eq_ignore_ascii_case(short.trim()))
            else {
                continue;
            };
            let n_segments = width.div_ceil(SEGMENT_BYTES);
            if n_segments < 2 || i + n_segments > vars.len() {
                continue;
            }
            // Each segment but the last carries 255 bytes of the value (as SPSS and ReadStat
            // write them); the last carries the rest, up to its own width.
            let segments: Vec<(usize, usize)> = (0..n_segments)
                .map(|k| {
                    let (slot, own_width) = vars[i + k].segments[0];
                    (slot, if k + 1 < n_segments { 255 } else { own_width })
                })
                .collect();
            vars[i].segments = segments;
            vars[i].dict.file_type = FileType::Text { width };
            vars.drain(i + 1..i + n_segments);
        }
    }

    // Value labels of long string variables (extension 21).
    for data in long_labels {
        let mut r = Input {
            inner: &data[..],
            pos: 0,
            len: data.len() as u64,
            big_endian,
            in_file: false,
        };
        while r.remaining() > 0 {
            let n = r.count("long string value labels", data.len() as u64)?;
            let name = decode(encoding, &r.bytes(n, "long string value labels")?);
            let _width = r.i32("long string value labels")?;
            let n_labels = r.count("long string value labels", data.len() as u64)?;
            let mut entries = Vec::with_capacity(n_labels);
            for _ in 0..n_labels {
                let n = r.count("long string value labels", data.len() as u64)?;
                let value = decode(encoding, &r.bytes(n, "long string value labels")?);
                let n = r.count("long string value labels", data.len() as u64)?;
                let label = decode(encoding, &r.bytes(n, "long string value labels")?);
                entries.push((FileCode::Text(value), label));
            }
            if let Some(v) = vars
                .iter_mut()
                .find(|v| v.dict.name.eq_ignore_ascii_case(&name))
            {
                v.dict.value_labels.extend(entries);
            }
        }
    }

    // Missing values of long string variables (extension 22): per variable its name, the
    // number of values and their width (8: SPSS keeps the first 8 bytes of each).
    for data in long_missing {
        let mut r = Input {
            inner: &data[..],
            pos: 0,
            len: data.len() as u64,
            big_endian,
            in_file: false,
        };
        while r.remaining() > 0 {
            let what = "long string missing values (record 7.22)";
            let n = r.count(what, data.len() as u64)?;
            let name = decode(encoding, &r.bytes(n, what)?);
            let n_values = r.bytes(1, what)?[0] as usize;
            let width = r.count(what, data.len() as u64)?;
            let mut values = Vec::with_capacity(n_values.min(3));
            for _ in 0..n_values {
                values.push(decode(encoding, &r.bytes(width, what)?));
            }
            if let Some(v) = vars
                .iter_mut()
                .find(|v| v.dict.name.eq_ignore_ascii_case(&name) && !v.numeric)
            {
                v.dict.missing.extend(
                    values
                        .into_iter()
                        .map(|s| FileMissing::Code(FileCode::Text(s))),
                );
            }
        }
    }

    let dict = FileDictionary {
        format: "SPSS",
        version: String::from_utf8_lossy(&magic).to_string(),
        label: decode(encoding, &file_label),
        variables: vars.iter().map(|v| v.dict.clone()).collect(),
        rows: (n_cases >= 0).then_some(n_cases as u64),
    };
    Ok(Layout {
        dict,
        vars,
        n_slots,
        compression,
        n_cases: (n_cases >= 0).then_some(n_cases as u64),
        bias,
        big_endian,
        sysmis,
        encoding,
        data_start: input.pos,
    })
}

fn malformed(path: &Path, e: SavError) -> IngestError {
    IngestError::Malformed {
        path: path.to_path_buf(),
        format: "SPSS",
        message: e.0,
    }
}

fn open(path: &Path) -> Result<(Layout, BufReader<File>, u64), IngestError> {
    let io = |e: std::io::Error| IngestError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut input = Input {
        inner: BufReader::new(file),
        pos: 0,
        len,
        big_endian: false,
        in_file: true,
    };
    let layout = read_layout(&mut input).map_err(|e| malformed(path, e))?;
    Ok((layout, input.inner, len))
}

/// Read the dictionary of a `.sav`/`.zsav` file (no cases).
pub(crate) fn read_dictionary(path: &Path) -> Result<FileDictionary, IngestError> {
    open(path).map(|(l, _, _)| l.dict)
}

/// Cases as 8-byte slots, from an uncompressed or bytecode-compressed stream.
struct Cases<R> {
    inner: R,
    bytecode: bool,
    big_endian: bool,
    bias: f64,
    sysmis: f64,
    commands: [u8; 8],
    next_command: usize,
    done: bool,
}

/// Read exactly `buf.len()` bytes; Ok(false) when the stream ends before the first byte.
fn fill<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => {
                return if got == 0 {
                    Ok(false)
                } else {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the data end inside a value",
                    ))
                };
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

impl<R: Read> Cases<R> {
    /// Next slot; Ok(None) at the end of the data.
    fn slot(&mut self) -> std::io::Result<Option<[u8; 8]>> {
        if self.done {
            return Ok(None);
        }
        if !self.bytecode {
            let mut a = [0u8; 8];
            return Ok(fill(&mut self.inner, &mut a)?.then_some(a));
        }
        loop {
            if self.next_command == 8 {
                if !fill(&mut self.inner, &mut self.commands)? {
                    self.done = true;
                    return Ok(None);
                }
                self.next_command = 0;
            }
            let code = self.commands[self.next_command];
            self.next_command += 1;
            match code {
                0 => continue,
                1..=251 => {
                    return Ok(Some(encode_f64(
                        f64::from(code) - self.bias,
                        self.big_endian,
                    )));
                }
                252 => {
                    self.done = true;
                    return Ok(None);
                }
                253 => {
                    let mut a = [0u8; 8];
                    if !fill(&mut self.inner, &mut a)? {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the data end inside a value",
                        ));
                    }
                    return Ok(Some(a));
                }
                254 => return Ok(Some([b' '; 8])),
                _ => return Ok(Some(encode_f64(self.sysmis, self.big_endian))),
            }
        }
    }
}

/// Read an SPSS `.sav` or `.zsav` file, streaming cases into the planned columns.
pub(crate) fn read_sav(
    path: &Path,
    plan: &dyn Fn(&str) -> ColumnPlan,
) -> Result<RawTable, IngestError> {
    let sha256 = input_sha256(path)?;
    let sink = stream(path, &|dict| {
        Ok(Sink {
            sink: StatSink::new(path, dict, plan)?,
            row_bytes: row_bytes(dict, plan),
        })
    })?;
    sink.finish(sha256)
}

/// Read every case of a `.sav`/`.zsav` file and say what each variable holds.
pub(crate) fn observe(path: &Path) -> Result<Vec<Observed>, IngestError> {
    let observer = |dict: &FileDictionary| {
        Ok(Sink {
            sink: StatSink::observer(path, dict),
            // It keeps counts, not cells: its memory does not grow with the rows.
            row_bytes: 0,
        })
    };
    Ok(stream(path, &observer)?.into_observed())
}

/// Where the cases of a file go, and the memory that takes per row.
struct Sink {
    sink: StatSink,
    /// Bytes a row of the loaded columns takes (0 for a sink that keeps no cells).
    row_bytes: u64,
}

/// Memory of an inferred column's cell, counted as the Parquet reader counts it: the text is
/// kept until the end, so a short one.
const INFERRED_CELL_BYTES: u64 = 32;

/// Memory the loaded columns take per row, as the column builders count it.
fn row_bytes(dict: &FileDictionary, plan: &dyn Fn(&str) -> ColumnPlan) -> u64 {
    dict.variables
        .iter()
        .map(|v| match plan(&v.name) {
            ColumnPlan::Declared(rules) => ColumnBuilder::new(&v.name, rules, 0).bytes_per_cell(),
            ColumnPlan::Inferred => INFERRED_CELL_BYTES,
            ColumnPlan::Ignore => 0,
        })
        .sum()
}

/// The message for data that end before the header says they do.
fn cut_short(len: u64, what: &str) -> SavError {
    SavError(format!(
        "truncated: the file is {len} bytes and ends inside {what}; it was cut short (an \
         interrupted download or copy?): get the complete file again"
    ))
}

/// A `.zsav` file whose header does not give the number of cases may inflate its case data to
/// at most this many times their compressed size. Nothing else bounds the rows of such a file
/// (deflate alone allows 1032:1, and bytecode one value per byte, so 200 kB could hold 200
/// million values). Survey data compress far less: 8:1 for the demo survey; about 40:1 for a
/// thousand variables of which ten are answered, and 100:1 only when even fewer are. Every
/// writer that can seek (SPSS, PSPP, ReadStat) records the number of cases, which lifts this
/// limit.
const UNKNOWN_CASES_MAX_EXPANSION: u64 = 100;

/// Where the case data are and how much of them there is.
enum CaseData {
    /// Uncompressed: 8 bytes a value, `bytes` of them after the dictionary.
    Plain { bytes: u64 },
    /// Bytecode (compression 1): `bytes` after the dictionary.
    Bytecode { bytes: u64 },
    /// Bytecode in zlib blocks: `bytes` once inflated (as the trailer declares and the reader
    /// enforces), from `compressed` bytes in the file.
    Zlib { bytes: u64, compressed: u64 },
}

/// The most bytes a bytecode stream of `rows` cases of `slots` values can need: per case, 8
/// bytes a value plus its command codes in whole 8-byte blocks and one spare block (ReadStat
/// starts every case on a new block and opens an empty one after a full one; zero codes may
/// pad), then one block for the end-of-data code 252.
fn bytecode_bound(rows: u64, slots: u64) -> u64 {
    let per_case = slots
        .saturating_add(slots.div_ceil(8))
        .saturating_add(1)
        .saturating_mul(8);
    rows.saturating_mul(per_case).saturating_add(8)
}

/// The most rows the case data can give: the header's count, once it is checked against the
/// bytes present, or, when the header does not say (-1), what those bytes can hold at the
/// format's densest (bytecode: one value per byte, since a command block of 8 codes can stand
/// for 8 values with nothing after it; uncompressed: one value per 8 bytes).
fn case_rows(layout: &Layout, data: &CaseData, len: u64) -> Res<u64> {
    let slots = layout.n_slots as u64;
    let Some(n) = layout.n_cases else {
        return Ok(match *data {
            CaseData::Plain { bytes } => bytes / slots.saturating_mul(8),
            CaseData::Bytecode { bytes } => bytes / slots,
            CaseData::Zlib { bytes, compressed } => {
                if bytes > compressed.saturating_mul(UNKNOWN_CASES_MAX_EXPANSION) {
                    return Err(SavError(format!(
                        "the header does not give the number of cases, and the zlib blocks \
                         inflate {compressed} bytes of case data to {bytes}, more than the \
                         {UNKNOWN_CASES_MAX_EXPANSION}:1 accepted from such a file (survey \
                         data compress far less; a file made to blow up in memory does not): \
                         if the file is genuine, save it again with SPSS, PSPP or ReadStat, \
                         which record the number of cases"
                    )));
                }
                bytes / slots
            }
        });
    };
    let values = n.saturating_mul(slots);
    let at = layout.data_start;
    match *data {
        CaseData::Plain { bytes } if values.saturating_mul(8) > bytes => Err(SavError(format!(
            "truncated: the file is {len} bytes, too short for the {n} cases its header \
             announces ({slots} values of 8 bytes a case need {} bytes from byte {at}, and \
             {bytes} are left); it was cut short (an interrupted download or copy?): get the \
             complete file again",
            values.saturating_mul(8)
        ))),
        CaseData::Bytecode { bytes } if values > bytes => Err(SavError(format!(
            "truncated: the file is {len} bytes, too short for the {n} cases its header \
             announces ({slots} values a case need at least {values} bytes of compressed data \
             from byte {at}, and {bytes} are left); it was cut short (an interrupted download \
             or copy?): get the complete file again"
        ))),
        CaseData::Zlib { bytes, .. } if values > bytes => Err(SavError(format!(
            "the zlib blocks hold {bytes} bytes of case data, too few for the {n} cases the \
             header announces ({slots} values a case need at least {values} bytes)"
        ))),
        CaseData::Zlib { bytes, .. } if bytes > bytecode_bound(n, slots) => Err(SavError(format!(
            "the zlib blocks hold {bytes} bytes of case data, more than the {n} cases the \
             header announces can need ({slots} values a case: at most {} bytes, 8 a value \
             plus command codes and padding)",
            bytecode_bound(n, slots)
        ))),
        _ => Ok(n),
    }
}

/// Read the cases of a file into the sink that `make_sink` sets up for its dictionary.
fn stream(
    path: &Path,
    make_sink: &dyn Fn(&FileDictionary) -> Result<Sink, IngestError>,
) -> Result<StatSink, IngestError> {
    let (layout, mut file, len) = open(path)?;
    let Sink {
        mut sink,
        row_bytes: per_row,
    } = make_sink(&layout.dict)?;
    let after_dictionary = len.saturating_sub(layout.data_start);
    let (stream, data): (Box<dyn Read>, CaseData) = match layout.compression {
        2 => {
            let trailer =
                zlib::read_trailer(&layout, &mut file, len).map_err(|e| malformed(path, e))?;
            let data = CaseData::Zlib {
                bytes: trailer.uncompressed,
                compressed: trailer.compressed,
            };
            (Box::new(zlib::ZlibBlocks::new(trailer, file)), data)
        }
        1 => (
            Box::new(file),
            CaseData::Bytecode {
                bytes: after_dictionary,
            },
        ),
        _ => (
            Box::new(file),
            CaseData::Plain {
                bytes: after_dictionary,
            },
        ),
    };
    let max_rows = case_rows(&layout, &data, len).map_err(|e| malformed(path, e))?;
    if per_row > 0 {
        let columns = (0..layout.vars.len()).filter(|&i| sink.wants(i)).count();
        crate::memory::check(max_rows.saturating_mul(per_row)).map_err(|m| {
            IngestError::TooLarge {
                path: path.to_path_buf(),
                rows: max_rows,
                columns,
                message: if layout.n_cases.is_some() {
                    m
                } else {
                    format!(
                        "(the most its case data can hold; its header does not give the number \
                         of cases) {m}"
                    )
                },
            }
        })?;
    }
    let mut cases = Cases {
        inner: stream,
        bytecode: layout.compression != 0,
        big_endian: layout.big_endian,
        bias: layout.bias,
        sysmis: layout.sysmis,
        commands: [0; 8],
        next_command: 8,
        done: false,
    };
    let wanted: Vec<usize> = (0..layout.vars.len()).filter(|&i| sink.wants(i)).collect();
    let mut case = vec![0u8; layout.n_slots * SLOT];
    let mut text = Vec::new();
    loop {
        if layout.n_cases.is_some_and(|n| sink.rows() as u64 >= n) {
            break;
        }
        let row = sink.rows() + 1;
        let mut complete = true;
        for k in 0..layout.n_slots {
            match cases.slot() {
                Ok(Some(a)) => case[k * SLOT..(k + 1) * SLOT].copy_from_slice(&a),
                Ok(None) if k == 0 => {
                    complete = false;
                    break;
                }
                Ok(None) => {
                    return Err(malformed(
                        path,
                        cut_short(
                            len,
                            &format!("case {row}, after {k} of its {} values", layout.n_slots),
                        ),
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(malformed(
                        path,
                        cut_short(len, &format!("case {row} ({e})")),
                    ));
                }
                Err(e) => {
                    return Err(malformed(path, SavError(format!("case {row}: {e}"))));
                }
            }
        }
        if !complete {
            break;
        }
        for &i in &wanted {
            let var = &layout.vars[i];
            if var.numeric {
                let s = var.segments[0].0 * SLOT;
                let mut a = [0u8; 8];
                a.copy_from_slice(&case[s..s + SLOT]);
                let x = decode_f64(a, layout.big_endian);
                if x == layout.sysmis || x.is_nan() {
                    sink.push(i, StatCell::SysMissing);
                } else {
                    sink.push(i, StatCell::Num(x));
                }
            } else {
                text.clear();
                for &(slot, useful) in &var.segments {
                    let s = slot * SLOT;
                    let end = (s + useful).min(case.len());
                    text.extend_from_slice(&case[s..end]);
                }
                let value = decode(layout.encoding, &text);
                sink.push(i, StatCell::Str(&value));
            }
        }
        sink.end_row();
    }
    // A bytecode stream must end with the rows the header announces (zero codes, the
    // end-of-data code or the end of the data may follow, nothing else).
    if let Some(n) = layout.n_cases
        && cases.bytecode
        && sink.rows() as u64 == n
    {
        let row = n + 1;
        match cases.slot() {
            Ok(None) => {}
            Ok(Some(_)) => {
                return Err(malformed(
                    path,
                    SavError(format!(
                        "case {row}: the header announces {n} cases, but the compressed data \
                         go on with more values (a damaged header, or data made to expand in \
                         memory)"
                    )),
                ));
            }
            Err(e) => return Err(malformed(path, SavError(format!("case {row}: {e}")))),
        }
    }
    if let Some(n) = layout.n_cases
        && (sink.rows() as u64) < n
    {
        return Err(malformed(
            path,
            cut_short(
                len,
                &format!(
                    "the data: the header announces {n} cases, the file holds {}",
                    sink.rows()
                ),
            ),
        ));
    }
    // Every zlib block must inflate to its declared size, the blocks after the last case too
    // (their bytes are bounded by the checks above).
    if layout.compression == 2 {
        std::io::copy(&mut cases.inner, &mut std::io::sink())
            .map_err(|e| malformed(path, SavError(format!("after case {}: {e}", sink.rows()))))?;
    }
    Ok(sink)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::builder::CellRules;

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/statfiles")
            .join(name)
    }

    #[test]
    fn dictionary_of_the_demo_files() {
        for name in ["demo.sav", "demo.zsav"] {
            let d = read_dictionary(&fixture(name)).expect("dictionary");
            assert_eq!(d.format, "SPSS");
            assert_eq!(d.rows, Some(20028));
            let v = d
                .variables
                .iter()
                .find(|v| v.name == "bribe_police")
                .expect("long name kept");
            assert_eq!(v.label_of(&FileCode::Num(2.0)), Some("No"));
            assert!(v.is_missing(&FileCode::Num(8.0)));
            assert!(v.is_missing(&FileCode::Num(9.0)));
            assert!(!v.is_missing(&FileCode::Num(1.0)));
            let r = d
                .variables
                .iter()
                .find(|v| v.name == "region")
                .expect("region");
            assert!(matches!(r.file_type, FileType::Text { .. }));
        }
    }

    fn cells(table: RawTable) -> Vec<(String, Vec<Option<String>>)> {
        table
            .builders
            .into_iter()
            .map(|b| {
                let c = b.finish();
                let v = (0..c.len()).map(|r| c.display(r)).collect();
                (c.name, v)
            })
            .collect()
    }

    #[test]
    fn very_long_strings_encodings_and_user_missing() {
        for name in ["small.sav", "small.zsav", "small_plain.sav"] {
            let t = read_sav(&fixture(name), &|_| ColumnPlan::Inferred).expect(name);
            let got = cells(t);
            let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["id", "q1", "note", "name", "district"], "{name}");
            assert_eq!(got[4].1[1].as_deref(), Some("D02-South"));
            let note = &got[2].1;
            assert_eq!(
                note[0].as_deref(),
                Some(format!("{}y", "x".repeat(299)).as_str())
            );
            assert_eq!(note[1].as_deref(), Some("short"));
            assert_eq!(note[2], None);
            assert_eq!(got[3].1[0].as_deref(), Some("Zoë"));
            // The user-missing 8 is read as the value 8; system missing as blank.
            assert_eq!(got[1].1, [Some("1".into()), Some("8".into()), None]);
            let d = read_dictionary(&fixture(name)).expect("dictionary");
            assert_eq!(d.variables[2].file_type, FileType::Text { width: 300 });
            assert!(d.variables[1].is_missing(&FileCode::Num(8.0)));
            assert_eq!(d.variables[1].label_of(&FileCode::Num(8.0)), Some("DK"));
            // A value label of a string longer than 8 bytes (extension record 21).
            assert_eq!(
                d.variables[4].label_of(&FileCode::Text("D01-North".into())),
                Some("North district")
            );
        }
    }

    #[test]
    fn user_missing_values_of_short_and_long_strings() {
        let d = read_dictionary(&fixture("draft_strmiss.sav")).expect("dictionary");
        let var = |name: &str| d.variables.iter().find(|v| v.name == name).expect(name);
        let text = |s: &str| FileMissing::Code(FileCode::Text(s.into()));
        // A short string keeps them in its variable record, a long one in record 7.22.
        assert_eq!(var("answer").missing, [text("DK"), text("RF")]);
        assert!(matches!(var("comment").file_type, FileType::Text { width } if width > 8));
        assert_eq!(var("comment").missing, [text("NOANSWER")]);
        assert!(var("comment").is_missing(&FileCode::Text("NOANSWER".into())));
        let r = read_dictionary(&fixture("draft_ranges.sav")).expect("ranges");
        let q5 = r.variables.iter().find(|v| v.name == "q5").expect("q5");
        assert_eq!(
            q5.missing,
            [
                FileMissing::Range(8.0, 9.0),
                FileMissing::Code(FileCode::Num(0.0))
            ]
        );
        let debt = r.variables.iter().find(|v| v.name == "debt").expect("debt");
        assert_eq!(debt.missing, [FileMissing::Range(f64::NEG_INFINITY, -1.0)]);
    }

    #[test]
    fn the_bytecode_bound_holds_every_writer_s_layout() {
        assert_eq!(bytecode_bound(3, 43), 3 * 8 * (43 + 6 + 1) + 8);
        for slots in 1..=80u64 {
            for rows in [1u64, 2, 7, 1000] {
                // ReadStat: every case starts a command block, and a full block is followed by
                // a new one (which takes the end code after the last case).
                let readstat = rows * (8 * slots + 8 * (slots / 8 + 1));
                // PSPP and SPSS: the codes run on across cases, then the end code, in whole
                // blocks; every value stored as 8 bytes.
                let continuous = 8 * rows * slots + 8 * (rows * slots + 1).div_ceil(8);
                let bound = bytecode_bound(rows, slots);
                assert!(bound >= readstat && bound >= continuous, "{rows} x {slots}");
                // Slack of at most one block per case and the end block.
                assert!(bound - readstat <= 8 * rows + 8, "{rows} x {slots}");
            }
        }
    }

    #[test]
    fn truncated_and_corrupt_files_are_errors_not_panics() {
        let dir = std::env::temp_dir().join(format!("cvsurvey-sav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        for name in ["demo.sav", "demo.zsav"] {
            let bytes = std::fs::read(fixture(name)).expect("demo");
            let ext = if name.ends_with("zsav") {
                "zsav"
            } else {
                "sav"
            };
            let cuts = [
                0usize,
                3,
                100,
                200,
                1000,
                3000,
                bytes.len() / 2,
                bytes.len() - 9,
            ];
            for cut in cuts {
                let p = dir.join(format!("cut{cut}.{ext}"));
                std::fs::write(&p, &bytes[..cut]).expect("write");
                let r = read_sav(&p, &|_| ColumnPlan::Declared(CellRules::free(false)));
                let e = r
                    .err()
                    .unwrap_or_else(|| panic!("{name} cut at {cut} must fail"));
                let msg = e.to_string();
                assert!(msg.contains(&format!("cut{cut}.{ext}")), "{msg}");
                // Said plainly, with the file's size.
                assert!(
                    msg.contains("truncated") && msg.contains(&cut.to_string()),
                    "{msg}"
                );
            }
            // Flip bytes all over the dictionary: errors or data, never a panic.
            for at in (0..1500.min(bytes.len())).step_by(41) {
                let mut bad = bytes.clone();
                bad[at] ^= 0xA5;
                let p = dir.join(format!("flip.{ext}"));
                std::fs::write(&p, &bad).expect("write");
                let _ = read_sav(&p, &|_| ColumnPlan::Declared(CellRules::free(false)));
            }
        }
        let p = dir.join("not.sav");
        std::fs::write(&p, b"resp_id,region\n1,R01\n").expect("write");
        let e = read_sav(&p, &|_| ColumnPlan::Ignore).err().expect("fails");
        assert!(e.to_string().contains("not an SPSS system file"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
