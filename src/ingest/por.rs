//! SPSS portable files (`.por`): the text format SPSS used to move data between machines before
//! system files could be read everywhere, still common in survey archives.
//!
//! Written from the PSPP description of the format ("Portable File Format" in the PSPP
//! developers' guide) and checked on files written by PSPP. The file is text in lines of 80
//! characters (shorter lines count as padded with spaces; line ends carry no meaning). It starts
//! with 200 characters of splash text and a 256-character table that says which byte of the file
//! stands for each character of the portable character set, so that a file recoded on its way
//! (EBCDIC to ASCII, say) still reads; then `SPSSPORT`, a version letter, and records that each
//! start with a one-character tag: product and author (`1`, `2`, `3`), number of variables
//! (`4`), precision (`5`), weight variable (`6`), a variable (`7`), its missing values (`8` one
//! value, `9` LO THRU x, `A` x THRU HI, `B` x THRU y), its label (`C`), value labels (`D`),
//! documents (`E`), and the data (`F`), ended by `Z`.
//!
//! Numbers are written in base 30 (digits `0`–`9`, `A`–`T`), with an optional sign, fraction and
//! base-30 exponent (`-R-3/` is −27 × 30⁻³ = −0.001), each ended by `/`; `*.` is system missing.
//! Strings are a number (their length) followed by that many characters. The number of cases is
//! not stated anywhere: the data end at the `Z`, so a file without it is reported as truncated.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::dictionary::{FileCode, FileDictionary, FileMissing, FileType, FileVariable, Observed};
use super::stat_sink::{StatCell, StatSink};
use super::{ColumnPlan, IngestError, RawTable, input_sha256};

/// A reading error: what and where.
#[derive(Debug)]
struct PorError(String);

type Res<T> = Result<T, PorError>;

/// The portable character set, by position in the file's translation table (positions 0–63
/// are control characters, which no file uses; 189–255 are unassigned). The PSPP description
/// gives the characters; where it names a typographic variant of an ASCII character (the
/// quote at 153, the grave accent at 149), the ASCII character is used, as SPSS writes them.
fn portable_char(position: usize) -> Option<char> {
    const ASCII: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz .<(+|&[]!$*);^-/|,%_>?`:#@'=\"";
    const OTHER: [char; 33] = [
        '≤', '□', '±', '■', '°', '†', '~', '–', '└', '┌', '≥', '⁰', 'ⁱ', '²', '³', '⁴', '⁵', '⁶',
        '⁷', '⁸', '⁹', '┘', '┐', '≠', '—', '⁽', '⁾', '⸸', '{', '}', '\\', '¢', '•',
    ];
    match position {
        64..=155 => ASCII.chars().nth(position - 64),
        156..=188 => OTHER.get(position - 156).copied(),
        _ => None,
    }
}

/// One character of the file after translation: a character of the portable set, or a byte
/// the table does not list (PSPP writes text that is not ASCII as its UTF-8 bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ch {
    Char(char),
    Raw(u8),
}

/// The file as a stream of characters: line ends removed, short lines padded with spaces,
/// bytes translated through the file's table once it has been read.
struct Chars<R> {
    inner: R,
    /// Bytes consumed from the file.
    pos: u64,
    /// File size.
    len: u64,
    /// Characters given out since the last line end.
    column: usize,
    /// Spaces still owed to the current line (it ended before 80 characters).
    padding: usize,
    /// Byte → character, once the table has been read.
    table: Option<Box<[Option<char>; 256]>>,
    peeked: Option<Ch>,
    buf: [u8; 1],
}

/// Characters of a line; shorter lines count as padded with spaces.
const LINE: usize = 80;

impl<R: Read> Chars<R> {
    /// The next byte of the line structure (line ends dropped, padding added), untranslated.
    fn raw(&mut self) -> Res<Option<u8>> {
        loop {
            if self.padding > 0 {
                // Blanks owed to the line that just ended: the new line's column stays 0.
                self.padding -= 1;
                return Ok(Some(b' '));
            }
            let n = self
                .inner
                .read(&mut self.buf)
                .map_err(|e| PorError(format!("cannot read at byte {}: {e}", self.pos)))?;
            if n == 0 {
                return Ok(None);
            }
            self.pos += 1;
            match self.buf[0] {
                b'\r' => continue,
                b'\n' => {
                    self.padding = LINE.saturating_sub(self.column);
                    self.column = 0;
                    // The padding of a line that ends the file is never needed.
                    continue;
                }
                b => {
                    self.column += 1;
                    return Ok(Some(b));
                }
            }
        }
    }

    fn translate(&self, b: u8) -> Ch {
        match &self.table {
            Some(t) => t[usize::from(b)].map_or(Ch::Raw(b), Ch::Char),
            None => Ch::Raw(b),
        }
    }

    /// The next character, or `None` at the end of the file.
    fn next(&mut self) -> Res<Option<Ch>> {
        if let Some(c) = self.peeked.take() {
            return Ok(Some(c));
        }
        Ok(self.raw()?.map(|b| self.translate(b)))
    }

    fn peek(&mut self) -> Res<Option<Ch>> {
        if self.peeked.is_none() {
            self.peeked = self.next()?;
        }
        Ok(self.peeked)
    }

    /// The next character; the end of the file here means it was cut short.
    fn char(&mut self, what: &str) -> Res<Ch> {
        self.next()?.ok_or_else(|| self.truncated(what))
    }

    fn truncated(&self, what: &str) -> PorError {
        PorError(format!(
            "truncated: the file is {} bytes and ends inside {what}; it was cut short (an \
             interrupted download or copy?): get the complete file again",
            self.len
        ))
    }

    /// A base-30 number ended by `/`, or `None` for system missing (`*` and one more character).
    fn number(&mut self, what: &str) -> Res<Option<f64>> {
        let at = self.pos;
        let bad = |this: &Self, found: &str| {
            PorError(format!(
                "{what} at byte {at}: {found} where a base-30 number was expected (the file is \
                 damaged, or not a portable file){}",
                if this.pos >= this.len {
                    " — the file ends there"
                } else {
                    ""
                }
            ))
        };
        let mut c = self.char(what)?;
        while c == Ch::Char(' ') {
            c = self.char(what)?;
        }
        if c == Ch::Char('*') {
            self.char(what)?;
            return Ok(None);
        }
        let negative = c == Ch::Char('-');
        if negative {
            c = self.char(what)?;
        }
        // Digits as an exact integer (a u128 holds 26 base-30 digits), the point's place, and
        // the exponent.
        let mut mantissa: u128 = 0;
        let mut any_digit = false;
        let mut digits = 0usize;
        let mut fraction_digits: i64 = 0;
        let mut seen_point = false;
        let mut dropped: i64 = 0;
        loop {
            match c {
                Ch::Char('/') if any_digit => break,
                Ch::Char('.') if !seen_point => seen_point = true,
                Ch::Char(d) if d.is_ascii_digit() || ('A'..='T').contains(&d) => {
                    any_digit = true;
                    let v = d.to_digit(30).unwrap_or(0);
                    if digits < 25 {
                        mantissa = mantissa * 30 + u128::from(v);
                        digits += usize::from(mantissa > 0);
                        if seen_point {
                            fraction_digits += 1;
                        }
                    } else if !seen_point {
                        // Beyond 25 significant digits: keep the magnitude only.
                        dropped += 1;
                    }
                }
                Ch::Char('+' | '-') if any_digit => {
                    let exp_negative = c == Ch::Char('-');
                    let mut exp: i64 = 0;
                    loop {
                        match self.char(what)? {
                            Ch::Char('/') => break,
                            Ch::Char(d) if d.is_ascii_digit() || ('A'..='T').contains(&d) => {
                                exp = exp * 30 + i64::from(d.to_digit(30).unwrap_or(0));
                                if exp > 10_000 {
                                    return Err(bad(self, "an exponent out of range"));
                                }
                            }
                            other => return Err(bad(self, &shown(other))),
                        }
                    }
                    let scale = dropped - fraction_digits + if exp_negative { -exp } else { exp };
                    return Ok(Some(finish(negative, mantissa, scale)));
                }
                other => return Err(bad(self, &shown(other))),
            }
            c = self.char(what)?;
        }
        Ok(Some(finish(negative, mantissa, dropped - fraction_digits)))
    }

    /// A whole number in `0..=max`.
    fn count(&mut self, what: &str, max: u64) -> Res<usize> {
        let at = self.pos;
        match self.number(what)? {
            Some(x) if x >= 0.0 && x.fract() == 0.0 && x <= max as f64 => Ok(x as usize),
            Some(x) => Err(PorError(format!(
                "{what} at byte {at} is {x}, which is impossible here (the file is damaged)"
            ))),
            None => Err(PorError(format!(
                "{what} at byte {at} is missing (the file is damaged)"
            ))),
        }
    }

    /// A string: its length, then its characters.
    fn string(&mut self, what: &str) -> Res<String> {
        let n = self.count(what, u64::from(u32::MAX))?;
        let mut chars = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            chars.push(self.char(what)?);
        }
        Ok(text(&chars))
    }
}

fn shown(c: Ch) -> String {
    match c {
        Ch::Char(c) => format!("{c:?}"),
        Ch::Raw(b) => format!("byte {b:#04x}"),
    }
}

/// ±mantissa × 30^scale, rounded once when the mantissa and the power are exact (mantissa below
/// 2^53 and |scale| ≤ 13, as 30^13 = 2^13 × 15^13 with 15^13 < 2^53): the case of every number
/// with up to 10 significant base-30 digits, hence of every decimal with up to 10 digits.
fn finish(negative: bool, mantissa: u128, scale: i64) -> f64 {
    let m = mantissa as f64;
    let value = if scale == 0 {
        m
    } else if scale.unsigned_abs() <= 13 {
        let p = 30f64.powi(scale.unsigned_abs() as i32);
        if scale < 0 { m / p } else { m * p }
    } else {
        m * 30f64.powf(scale as f64)
    };
    if negative { -value } else { value }
}

/// Characters as text: UTF-8 when the untranslated bytes among them form UTF-8 (as PSPP writes
/// text that is not ASCII), else those bytes as Windows-1252. Trailing blanks are removed.
fn text(chars: &[Ch]) -> String {
    let mut bytes = Vec::with_capacity(chars.len());
    let mut raw = false;
    for c in chars {
        match *c {
            Ch::Char(c) => {
                let mut b = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
            Ch::Raw(b) => {
                raw = true;
                bytes.push(b);
            }
        }
    }
    let s = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) if raw => chars
            .iter()
            .map(|c| match *c {
                Ch::Char(c) => c.to_string(),
                Ch::Raw(b) => encoding_rs::WINDOWS_1252.decode(&[b]).0.into_owned(),
            })
            .collect(),
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    s.trim_end_matches([' ', '\0']).to_string()
}

/// A variable as the data section needs it.
struct Var {
    dict: FileVariable,
    /// 0 for numbers, else the string width.
    width: usize,
}

/// The dictionary, with the reader positioned at the first case.
struct Layout<R> {
    chars: Chars<R>,
    dict: FileDictionary,
    vars: Vec<Var>,
    /// False when the dictionary ends with `Z` (a file without data).
    has_data: bool,
}

fn read_layout<R: Read>(inner: R, len: u64) -> Res<Layout<R>> {
    let mut chars = Chars {
        inner,
        pos: 0,
        len,
        column: 0,
        padding: 0,
        table: None,
        peeked: None,
        buf: [0],
    };
    // Splash strings, then the character table.
    for _ in 0..200 {
        chars
            .raw()?
            .ok_or_else(|| chars.truncated("the file header"))?;
    }
    let mut table_bytes = [0u8; 256];
    for b in table_bytes.iter_mut() {
        *b = chars
            .raw()?
            .ok_or_else(|| chars.truncated("the character table"))?;
    }
    // A byte stands for the first character of the set that the table gives it (unused
    // positions are filled with a placeholder, usually the byte of "0", which must mean 0).
    let mut table: Box<[Option<char>; 256]> = Box::new([None; 256]);
    for (position, &b) in table_bytes.iter().enumerate().skip(64) {
        if table[usize::from(b)].is_none() {
            table[usize::from(b)] = portable_char(position);
        }
    }
    chars.table = Some(table);
    let mut tag = String::new();
    for _ in 0..8 {
        match chars.char("the file header")? {
            Ch::Char(c) => tag.push(c),
            Ch::Raw(b) => tag.push(char::from(b)),
        }
    }
    if tag != "SPSSPORT" {
        return Err(PorError(format!(
            "not an SPSS portable file: expected \"SPSSPORT\" after the 456-byte header, found \
             {tag:?}"
        )));
    }
    let version = match chars.char("the file header")? {
        Ch::Char(c) => c.to_string(),
        Ch::Raw(b) => format!("{b:#04x}"),
    };
    let _date = chars.string("the creation date")?;
    let _time = chars.string("the creation time")?;

    let mut vars: Vec<Var> = Vec::new();
    let has_data = loop {
        let at = chars.pos;
        let tag = chars.char("the dictionary")?;
        let last = |vars: &mut Vec<Var>, what: &str| -> Res<usize> {
            if vars.is_empty() {
                Err(PorError(format!(
                    "{what} at byte {at} comes before any variable (the file is damaged)"
                )))
            } else {
                Ok(vars.len() - 1)
            }
        };
        match tag {
            Ch::Char('1' | '2' | '3') => {
                chars.string("the author or product record")?;
            }
            Ch::Char('4') => {
                chars.count("the number of variables", u64::from(u32::MAX))?;
            }
            Ch::Char('5') => {
                chars.count("the precision", 1000)?;
            }
            Ch::Char('6') => {
                chars.string("the weight variable")?;
            }
            Ch::Char('7') => {
                let width = chars.count("a variable's width", 32767)?;
                let name = chars.string("a variable's name")?;
                let mut format = [0usize; 6];
                for f in format.iter_mut() {
                    *f = chars.count("a variable's format", 1000)?;
                }
                let (fmt_type, decimals) = (format[0], format[2]);
                let integer = decimals == 0 && matches!(fmt_type, 3 | 5 | 16 | 32);
                vars.push(Var {
                    dict: FileVariable {
                        name: name.trim().to_string(),
                        label: String::new(),
                        file_type: if width == 0 {
                            FileType::Numeric { integer }
                        } else {
                            FileType::Text { width }
                        },
                        value_labels: Vec::new(),
                        missing: Vec::new(),
                    },
                    width,
                });
            }
            Ch::Char('8') => {
                let i = last(&mut vars, "a missing value")?;
                let code = if vars[i].width == 0 {
                    match chars.number("a missing value")? {
                        Some(x) => FileCode::Num(x),
                        None => continue,
                    }
                } else {
                    FileCode::Text(chars.string("a missing value")?)
                };
                vars[i].dict.missing.push(FileMissing::Code(code));
            }
            Ch::Char(c @ ('9' | 'A' | 'B')) => {
                let i = last(&mut vars, "a missing range")?;
                let bound = |chars: &mut Chars<R>| -> Res<f64> {
                    Ok(chars.number("a missing range")?.unwrap_or(f64::NAN))
                };
                let range = match c {
                    '9' => FileMissing::Range(f64::NEG_INFINITY, bound(&mut chars)?),
                    'A' => FileMissing::Range(bound(&mut chars)?, f64::INFINITY),
                    _ => {
                        let lo = bound(&mut chars)?;
                        FileMissing::Range(lo, bound(&mut chars)?)
                    }
                };
                vars[i].dict.missing.push(range);
            }
            Ch::Char('C') => {
                let i = last(&mut vars, "a variable label")?;
                vars[i].dict.label = chars.string("a variable label")?;
            }
            Ch::Char('D') => {
                let n = chars.count("a value label record", u64::from(u32::MAX))?;
                let mut targets = Vec::new();
                for _ in 0..n {
                    let name = chars.string("a value label record")?;
                    let name = name.trim();
                    match vars.iter().position(|v| v.dict.name == name) {
                        Some(i) => targets.push(i),
                        None => {
                            return Err(PorError(format!(
                                "value labels at byte {at} name variable {name:?}, which the \
                                 file does not declare (the file is damaged)"
                            )));
                        }
                    }
                }
                let numeric = targets.first().is_none_or(|&i| vars[i].width == 0);
                let m = chars.count("a value label record", u64::from(u32::MAX))?;
                for _ in 0..m {
                    let code = if numeric {
                        chars.number("a labelled value")?.map(FileCode::Num)
                    } else {
                        Some(FileCode::Text(chars.string("a labelled value")?))
                    };
                    let label = chars.string("a value label")?;
                    // A label of system missing labels nothing a cell can hold.
                    let Some(code) = code else { continue };
                    for &i in &targets {
                        vars[i]
                            .dict
                            .value_labels
                            .push((code.clone(), label.clone()));
                    }
                }
            }
            Ch::Char('E') => {
                let n = chars.count("the documents", u64::from(u32::MAX))?;
                for _ in 0..n {
                    chars.string("the documents")?;
                }
            }
            Ch::Char('F') => break true,
            Ch::Char('Z') => break false,
            other => {
                return Err(PorError(format!(
                    "unknown record {} at byte {at} (the file is damaged)",
                    shown(other)
                )));
            }
        }
    };
    if vars.is_empty() {
        return Err(PorError("the dictionary declares no variables".into()));
    }
    let dict = FileDictionary {
        format: "SPSS portable",
        version,
        label: String::new(),
        variables: vars.iter().map(|v| v.dict.clone()).collect(),
        rows: None,
    };
    Ok(Layout {
        chars,
        dict,
        vars,
        has_data,
    })
}

fn malformed(path: &Path, e: PorError) -> IngestError {
    IngestError::Malformed {
        path: path.to_path_buf(),
        format: "SPSS portable",
        message: e.0,
    }
}

fn open(path: &Path) -> Result<Layout<BufReader<File>>, IngestError> {
    let io = |e: std::io::Error| IngestError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    read_layout(BufReader::new(file), len).map_err(|e| malformed(path, e))
}

/// Read the dictionary of a `.por` file (no cases).
pub(crate) fn read_dictionary(path: &Path) -> Result<FileDictionary, IngestError> {
    open(path).map(|l| l.dict)
}

/// Read an SPSS portable file, streaming cases into the planned columns.
pub(crate) fn read_por(
    path: &Path,
    plan: &dyn Fn(&str) -> ColumnPlan,
) -> Result<RawTable, IngestError> {
    let sha256 = input_sha256(path)?;
    let sink = stream(path, &|dict| StatSink::new(path, dict, plan))?;
    sink.finish(sha256)
}

/// Read every case of a `.por` file and say what each variable holds.
pub(crate) fn observe(path: &Path) -> Result<Vec<Observed>, IngestError> {
    Ok(stream(path, &|dict| Ok(StatSink::observer(path, dict)))?.into_observed())
}

fn stream(
    path: &Path,
    make_sink: &dyn Fn(&FileDictionary) -> Result<StatSink, IngestError>,
) -> Result<StatSink, IngestError> {
    let Layout {
        mut chars,
        dict,
        vars,
        has_data,
    } = open(path)?;
    let mut sink = make_sink(&dict)?;
    if has_data {
        read_cases(&mut chars, &vars, &mut sink).map_err(|e| malformed(path, e))?;
    }
    Ok(sink)
}

fn read_cases<R: Read>(chars: &mut Chars<R>, vars: &[Var], sink: &mut StatSink) -> Res<()> {
    loop {
        let case = sink.rows() + 1;
        while chars.peek()? == Some(Ch::Char(' ')) {
            chars.next()?;
        }
        match chars.peek()? {
            Some(Ch::Char('Z')) => return Ok(()),
            None => {
                return Err(chars.truncated(&format!(
                    "the data after case {} (the data end with Z)",
                    case - 1
                )));
            }
            Some(_) => {}
        }
        let what = format!("case {case}");
        for (i, v) in vars.iter().enumerate() {
            if v.width == 0 {
                match chars.number(&what)? {
                    Some(x) => sink.push(i, StatCell::Num(x)),
                    None => sink.push(i, StatCell::SysMissing),
                }
            } else {
                let s = chars.string(&what)?;
                sink.push(i, StatCell::Str(&s));
            }
        }
        sink.end_row();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/statfiles")
            .join(name)
    }

    fn chars(text: &str) -> Chars<&[u8]> {
        let mut table: Box<[Option<char>; 256]> = Box::new([None; 256]);
        for p in 64..=188 {
            if let Some(c) = portable_char(p)
                && c.is_ascii()
                && table[c as usize].is_none()
            {
                table[c as usize] = Some(c);
            }
        }
        Chars {
            inner: text.as_bytes(),
            pos: 0,
            len: text.len() as u64,
            column: 0,
            padding: 0,
            table: Some(table),
            peeked: None,
            buf: [0],
        }
    }

    #[test]
    fn base_30_numbers() {
        for (text, want) in [
            ("1/", Some(1.0)),
            ("37/", Some(97.0)),
            ("1.F/", Some(1.5)),
            ("-2.7F/", Some(-2.25)),
            ("1713A.F/", Some(1_000_000.5)),
            (".3/", Some(0.1)),
            ("-R-3/", Some(-0.001)),
            ("3.3MF/", Some(3.125)),
            ("1+2/", Some(900.0)),
            ("  C/", Some(12.0)),
            ("*.", None),
            ("0/", Some(0.0)),
        ] {
            let got = chars(text).number("test").expect(text);
            assert_eq!(got, want, "{text}");
        }
        for bad in ["1", "X/", "1..2/", "-/", "/", "./", "-+1/"] {
            assert!(chars(bad).number("test").is_err(), "{bad}");
        }
        // Decimals come out as the nearest double, as if parsed from their decimal text:
        // 1234.56 = 1234 + 504/900 = "1B4.GO" in base 30; 0.001 = 27/27000.
        assert_eq!(chars("1B4.GO/").number("t").expect("ok"), Some(1234.56));
        assert_eq!(chars(".00R/").number("t").expect("ok"), Some(0.001));
    }

    #[test]
    fn short_lines_are_padded_to_80_characters() {
        // A string of 5 characters starts near the end of a line of 78 characters that lost its
        // two trailing blanks: the blanks count, so the string is "ab", two blanks and "c".
        let mut text = "x".repeat(74);
        text.push_str("5/ab\r\n");
        text.push_str("cde");
        let mut c = chars(&text);
        for _ in 0..74 {
            c.char("test").expect("x");
        }
        let mut got = Vec::new();
        assert_eq!(c.count("test", 10).expect("length"), 5);
        for _ in 0..5 {
            got.push(c.char("test").expect("char"));
        }
        assert_eq!(text_of(&got), "ab  c");
        assert_eq!(c.char("test").expect("d"), Ch::Char('d'));
    }

    fn text_of(chars: &[Ch]) -> String {
        chars
            .iter()
            .map(|c| match *c {
                Ch::Char(c) => c,
                Ch::Raw(b) => char::from(b),
            })
            .collect()
    }

    #[test]
    fn the_pspp_file_and_its_dictionary() {
        let d = read_dictionary(&fixture("small.por")).expect("dictionary");
        assert_eq!(d.format, "SPSS portable");
        let names: Vec<&str> = d.variables.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ID", "Q1", "SCORE", "HOURS", "TRUST", "WT", "NAME", "CODE", "NOTE"
            ]
        );
        let var = |n: &str| d.variables.iter().find(|v| v.name == n).expect(n);
        assert_eq!(var("Q1").label, "Did you answer yes?");
        assert_eq!(var("Q1").file_type, FileType::Numeric { integer: true });
        assert_eq!(var("SCORE").file_type, FileType::Numeric { integer: false });
        assert_eq!(var("NOTE").file_type, FileType::Text { width: 20 });
        assert_eq!(
            var("Q1").missing,
            [
                FileMissing::Code(FileCode::Num(8.0)),
                FileMissing::Code(FileCode::Num(9.0))
            ]
        );
        assert_eq!(
            var("SCORE").missing,
            [FileMissing::Range(f64::NEG_INFINITY, -1.0)]
        );
        assert_eq!(var("HOURS").missing, [FileMissing::Range(97.0, 99.0)]);
        assert_eq!(
            var("NOTE").missing,
            [FileMissing::Code(FileCode::Text("NOANSWER".into()))]
        );
        assert_eq!(var("Q1").label_of(&FileCode::Num(8.0)), Some("Don't know"));
        assert_eq!(
            var("CODE").label_of(&FileCode::Text("DK".into())),
            Some("Don't know")
        );
        assert_eq!(var("TRUST").value_labels.len(), 2);
    }

    fn cells(path: &Path) -> Vec<Vec<Option<String>>> {
        let t = read_por(path, &|_| ColumnPlan::Inferred).expect("read");
        t.builders
            .into_iter()
            .map(|b| {
                let c = b.finish();
                (0..c.len()).map(|r| c.display(r)).collect()
            })
            .collect()
    }

    #[test]
    fn lines_that_lost_their_trailing_blanks_or_end_in_lf_read_the_same() {
        let bytes = std::fs::read(fixture("small.por")).expect("small.por");
        // Split at CR LF, drop each line's trailing blanks, join with LF (on bytes: a line
        // end can fall inside a UTF-8 character, as in "Zoë" here).
        let mut trimmed: Vec<u8> = Vec::new();
        for line in bytes.split(|&b| b == b'\n') {
            let mut line = line.strip_suffix(b"\r").unwrap_or(line);
            while let Some(rest) = line.strip_suffix(b" ") {
                line = rest;
            }
            trimmed.extend_from_slice(line);
            trimmed.push(b'\n');
        }
        assert!(
            trimmed.len() < bytes.len() - 50,
            "some lines had trailing blanks"
        );
        let p = std::env::temp_dir().join(format!("cvsurvey-por-trim-{}.por", std::process::id()));
        std::fs::write(&p, trimmed).expect("write");
        let (a, b) = (cells(&fixture("small.por")), cells(&p));
        let _ = std::fs::remove_file(&p);
        assert_eq!(a, b);
        assert_eq!(a.len(), 9);
        assert_eq!(a[6][0].as_deref(), Some("Zoë"));
    }

    #[test]
    fn a_recoded_file_reads_through_its_character_table() {
        // Recode the file as a system with another character set would: every byte of the
        // portable characters swapped for another, the table (and the splash) with them.
        let swaps = [
            (b'0', b'Q'),
            (b'/', b'#'),
            (b'A', b'z'),
            (b'D', b'%'),
            (b'.', b'j'),
        ];
        let bytes: Vec<u8> = std::fs::read(fixture("small.por"))
            .expect("small.por")
            .into_iter()
            .map(|b| {
                swaps
                    .iter()
                    .find_map(|&(x, y)| {
                        if b == x {
                            Some(y)
                        } else if b == y {
                            Some(x)
                        } else {
                            None
                        }
                    })
                    .unwrap_or(b)
            })
            .collect();
        let p = std::env::temp_dir().join(format!("cvsurvey-por-rec-{}.por", std::process::id()));
        std::fs::write(&p, bytes).expect("write");
        let (a, b) = (cells(&fixture("small.por")), cells(&p));
        let d = read_dictionary(&p).expect("dictionary");
        let _ = std::fs::remove_file(&p);
        assert_eq!(a, b);
        let code = d.variables.iter().find(|v| v.name == "CODE").expect("CODE");
        assert_eq!(code.label, "Code (A/B/DK)");
        assert_eq!(
            code.label_of(&FileCode::Text("DK".into())),
            Some("Don't know")
        );
    }

    #[test]
    fn a_readstat_file_holds_the_demo_rows_it_was_written_from() {
        // fuzz/make_seeds.py wrote the first 3 rows of the demo survey with pyreadstat
        // (ReadStat), a second writer besides PSPP, its columns renamed V1..V45. The demo file
        // has since gained bribe_amount as its last column, which the .por file does not have.
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let got = cells(&root.join("fuzz/seeds/por_ingest/demo_3_rows.por"));
        let mut csv = csv::Reader::from_path(root.join("fixtures/demo/data.csv")).expect("csv");
        let header = csv.headers().expect("header").clone();
        let rows: Vec<csv::StringRecord> = csv.records().take(3).map(|r| r.expect("row")).collect();
        assert_eq!(got.len(), 45);
        let added: Vec<&str> = header.iter().skip(got.len()).collect();
        assert_eq!(added, ["bribe_amount"]);
        for (j, column) in got.iter().enumerate() {
            for (r, row) in rows.iter().enumerate() {
                let want = row.get(j).expect("field").trim();
                let have = column[r].as_deref().unwrap_or("");
                match (want.parse::<f64>(), have.parse::<f64>()) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "column {j} row {r}"),
                    _ => assert_eq!(want, have, "column {j} row {r}"),
                }
            }
        }
    }

    #[test]
    fn truncated_and_damaged_files_are_errors_not_panics() {
        let bytes = std::fs::read(fixture("small.por")).expect("small.por");
        let dir = std::env::temp_dir().join(format!("cvsurvey-por-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let data_end = bytes.len() - 100;
        for cut in [0usize, 100, 300, 500, 700, 1000, 1300, data_end] {
            let p = dir.join(format!("cut{cut}.por"));
            std::fs::write(&p, &bytes[..cut]).expect("write");
            let e = read_por(&p, &|_| ColumnPlan::Inferred)
                .err()
                .unwrap_or_else(|| panic!("cut at {cut} must fail"));
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("cut{cut}.por"))
                    && msg.contains("truncated")
                    && msg.contains(&format!("{cut} bytes")),
                "{msg}"
            );
        }
        for at in (456..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[at] ^= 0x5A;
            let p = dir.join("flip.por");
            std::fs::write(&p, &bad).expect("write");
            let _ = read_por(&p, &|_| ColumnPlan::Inferred);
        }
        // Random edits of the characters that steer the parser (digits, tags, separators,
        // line ends), from a fixed seed: errors or data, never a panic.
        let alphabet = b"0123456789ABCTZ/*.-+ \n\r7DF";
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: usize| -> usize {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) as usize) % n
        };
        for _ in 0..400 {
            let mut bad = bytes.clone();
            for _ in 0..1 + next(3) {
                let at = next(bad.len());
                bad[at] = alphabet[next(alphabet.len())];
            }
            if next(4) == 0 {
                bad.truncate(next(bad.len()));
            }
            let p = dir.join("edit.por");
            std::fs::write(&p, &bad).expect("write");
            let _ = read_por(&p, &|_| ColumnPlan::Inferred);
            // A questionnaire drafted from whatever reads is valid TOML the parser accepts.
            if let Err(crate::questionnaire::import::ImportError::Draft(m)) =
                crate::questionnaire::import::import(&p, None)
            {
                panic!("draft from an edited file does not parse: {m}");
            }
        }
        let p = dir.join("not.por");
        std::fs::write(&p, "x".repeat(600)).expect("write");
        let e = read_por(&p, &|_| ColumnPlan::Inferred)
            .err()
            .expect("fails");
        assert!(e.to_string().contains("SPSSPORT"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
