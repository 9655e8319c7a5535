//! CSV files, parsed in parallel: the file is read in blocks, each block is cut at record
//! boundaries into pieces that the `csv` crate parses on every core into typed column pieces,
//! and the pieces of each column are joined in file order at the end. The file's SHA-256 is
//! computed from the same bytes as they are read, so the file is read once.
//!
//! A record boundary is a line break outside a quoted field; [`RecordEnds`] finds them with the
//! quoting rules of the `csv` crate (a quote opens a quoted field only at the start of a field,
//! `""` inside is a quote), so a quoted field with line breaks is never cut. The result does not
//! depend on where blocks and pieces are cut, nor on the number of threads: row numbers of
//! findings are offsets of each piece's rows, known once the pieces before it are parsed.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rayon::prelude::*;
use sha2::Digest;

use super::builder::{AutoBuilder, CellProblem, CellProblems, ColumnBuilder};
use super::read::{MAX_LINE_BYTES, Slot, check_header, finish_slots, plan_slots, reserve_columns};
use super::{
    ColumnPlan, DELIMITERS, FindingKind, IngestError, RawTable, TextFormat, delimiter_name,
};
use crate::progress::Progress;

/// How a file is cut: bytes read at a time, and bytes of records one parallel task parses
/// (small enough that every core gets several pieces of a block, large enough that a piece's
/// overhead vanishes). Tests cut files into tiny blocks and pieces to put boundaries everywhere.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cuts {
    pub block: usize,
    pub piece: usize,
}

const CUTS: Cuts = Cuts {
    block: 4 << 20,
    piece: 512 << 10,
};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where records end in a buffer that starts at the start of a record.
pub(super) struct RecordEnds<'a> {
    buf: &'a [u8],
    delimiter: u8,
    /// Everything before `pos` is scanned; `in_quotes` is the state at `pos`.
    pos: usize,
    in_quotes: bool,
    /// The next quote at or after `pos` (the buffer's length when there is none).
    next_quote: usize,
    /// Just past the last record boundary found so far (0: none).
    last: usize,
}

impl<'a> RecordEnds<'a> {
    pub(super) fn new(buf: &'a [u8], delimiter: u8) -> RecordEnds<'a> {
        let mut ends = RecordEnds {
            buf,
            delimiter,
            pos: 0,
            in_quotes: false,
            next_quote: 0,
            last: 0,
        };
        ends.next_quote = ends.find_quote(0);
        ends
    }

    fn find_quote(&self, from: usize) -> usize {
        memchr::memchr(b'"', &self.buf[from..]).map_or(self.buf.len(), |k| from + k)
    }

    /// A quote at `q` opens a quoted field when it is the first byte of a field.
    fn opens_field(&self, q: usize) -> bool {
        q == 0 || {
            let before = self.buf[q - 1];
            before == self.delimiter || before == b'\n' || before == b'\r'
        }
    }

    /// Move past the quote at `self.next_quote`. False when the buffer ends before the
    /// quote's meaning is known (a quote closing or doubling at the very last byte).
    fn pass_quote(&mut self) -> bool {
        let q = self.next_quote;
        if self.in_quotes {
            match self.buf.get(q + 1) {
                None => return false,
                Some(b'"') => self.pos = q + 2,
                Some(_) => {
                    self.in_quotes = false;
                    self.pos = q + 1;
                }
            }
        } else {
            self.in_quotes = self.opens_field(q);
            self.pos = q + 1;
        }
        self.next_quote = self.find_quote(self.pos);
        true
    }

    /// Just past the first record boundary at or after `min`.
    pub(super) fn next_at_or_after(&mut self, min: usize) -> Option<usize> {
        let len = self.buf.len();
        loop {
            if !self.in_quotes {
                let from = self.pos.max(min);
                if from < self.next_quote
                    && let Some(k) = memchr::memchr(b'\n', &self.buf[from..self.next_quote])
                {
                    let end = from + k + 1;
                    self.pos = end;
                    self.last = end;
                    return Some(end);
                }
            }
            if self.next_quote >= len || !self.pass_quote() {
                self.pos = len;
                return None;
            }
        }
    }

    /// Just past the last record boundary of the buffer (0 when it has none).
    pub(super) fn last(&mut self) -> usize {
        let len = self.buf.len();
        loop {
            if !self.in_quotes
                && self.pos < self.next_quote
                && let Some(k) = memchr::memrchr(b'\n', &self.buf[self.pos..self.next_quote])
            {
                self.last = self.pos + k + 1;
            }
            if self.next_quote >= len || !self.pass_quote() {
                self.pos = len;
                return self.last;
            }
        }
    }
}

/// The records of `buf` (which starts at a record start and ends at `end`, a record boundary
/// or the end of the file) cut into pieces of about `piece` bytes.
fn pieces(buf: &[u8], end: usize, delimiter: u8, piece: usize) -> Vec<(usize, usize)> {
    let mut ends = RecordEnds::new(&buf[..end], delimiter);
    let mut cuts = vec![0];
    while let Some(cut) = ends.next_at_or_after(cuts[cuts.len() - 1] + piece) {
        if cut >= end {
            break;
        }
        cuts.push(cut);
    }
    cuts.push(end);
    cuts.windows(2)
        .filter(|w| w[1] > w[0])
        .map(|w| (w[0], w[1]))
        .collect()
}

/// Rows split at a time before their cells are stored column after column: each column's
/// builder, rules and previous cell stay in registers over the batch, and the batch's field
/// ends (64 rows of a 45-column file: 23 KiB) stay in the first-level cache.
const BATCH_ROWS: usize = 64;

/// Where the fields of a batch row are.
#[derive(Clone, Copy, PartialEq)]
enum RowText {
    /// In the piece, delimiters included: field `k` starts one byte after field `k - 1` ends.
    Piece,
    /// In the batch's unquoted text (a record with quotes), fields one after the other.
    Unquoted,
    /// A row with the wrong number of fields or not UTF-8: every cell is null.
    Unusable,
}

/// Rows of a piece split into fields, waiting to be stored column after column.
#[derive(Default)]
struct Batch {
    /// Each row's text and where its first field starts in it.
    rows: Vec<(RowText, usize)>,
    /// `n_fields` field ends a row, in the row's text.
    ends: Vec<usize>,
    unquoted: Vec<u8>,
}

impl Batch {
    fn clear(&mut self) {
        self.rows.clear();
        self.ends.clear();
        self.unquoted.clear();
    }
}

/// The records of a piece, split exactly as the `csv` crate splits them (its default dialect:
/// `"` quotes, `""` inside quotes, CR, LF or CRLF ends a record, blank lines are no records).
/// A record without a quote, most of a survey file, is split here at its delimiters without
/// copying; a record with a quote goes through `csv_core`, the `csv` crate's own parser.
struct Records<'a> {
    bytes: &'a [u8],
    pos: usize,
    delimiter: u8,
    /// The delimiters, line breaks and quotes of the eight bytes from `word_start` not yet
    /// visited, as the high bit of their byte (see [`structural_bytes`]).
    word_start: usize,
    word_hits: u64,
    /// Built at the first record with a quote (building it costs more than splitting a
    /// piece's records without quotes).
    core: Option<csv_core::Reader>,
    /// False until `core` has read its first byte (see [`Records::quoted`]).
    core_started: bool,
    /// A quoted record's unquoted text and field ends, as `csv_core` writes them.
    core_text: Vec<u8>,
    core_ends: Vec<usize>,
}

fn ends_record(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

/// Every byte of a word set to `b`.
const fn splat(b: u8) -> u64 {
    u64::from_le_bytes([b; 8])
}

/// The high bit of each byte of `word` that is zero, and no other bit (exact: no carry crosses a
/// byte, unlike the shorter test that only says whether some byte is zero).
#[inline]
fn zero_bytes(word: u64) -> u64 {
    const LOW7: u64 = splat(0x7F);
    !(((word & LOW7).wrapping_add(LOW7)) | word | LOW7)
}

/// The high bit of each byte of the eight from `start` (fewer at the end of `bytes`) that is a
/// delimiter, a line break or a quote: the bytes where a field or a record may end. Eight bytes
/// are tested at once without a branch per byte, whose outcome (a delimiter every two or three
/// bytes in a file of codes) cannot be predicted.
#[inline]
fn structural_bytes(bytes: &[u8], start: usize, delimiter: u8) -> u64 {
    let rest = bytes.get(start..).unwrap_or_default();
    let (word, len) = match rest.first_chunk::<8>() {
        Some(eight) => (u64::from_le_bytes(*eight), 8),
        None => {
            let mut eight = [0; 8];
            eight[..rest.len()].copy_from_slice(rest);
            (u64::from_le_bytes(eight), rest.len())
        }
    };
    let hits = zero_bytes(word ^ splat(delimiter))
        | zero_bytes(word ^ splat(b'\n'))
        | zero_bytes(word ^ splat(b'\r'))
        | zero_bytes(word ^ splat(b'"'));
    if len == 8 {
        hits
    } else {
        hits & ((1u64 << (8 * len)) - 1)
    }
}

impl<'a> Records<'a> {
    fn new(bytes: &'a [u8], delimiter: u8) -> Records<'a> {
        Records {
            bytes,
            pos: 0,
            delimiter,
            word_start: 0,
            word_hits: 0,
            core: None,
            core_started: false,
            core_text: vec![0; 256],
            core_ends: vec![0; 64],
        }
    }

    /// The next record: its field ends appended to `batch.ends`, its text and first field's
    /// start returned; `None` at the end of the piece.
    fn next_into(&mut self, batch: &mut Batch) -> Option<(RowText, usize)> {
        let bytes = self.bytes;
        // Line breaks between records are skipped, as `csv_core` does: a blank line is no record.
        while self.pos < bytes.len() && ends_record(bytes[self.pos]) {
            self.pos += 1;
        }
        if self.pos == bytes.len() {
            return None;
        }
        let start = self.pos;
        let first_end = batch.ends.len();
        self.word_start = start;
        self.word_hits = structural_bytes(bytes, start, self.delimiter);
        let end = loop {
            let Some(i) = self.next_structural() else {
                break bytes.len();
            };
            let b = bytes[i];
            if b == self.delimiter {
                batch.ends.push(i);
            } else if ends_record(b) {
                break i;
            } else {
                batch.ends.truncate(first_end);
                return Some(self.quoted(start, batch));
            }
        };
        batch.ends.push(end);
        self.pos = end;
        Some((RowText::Piece, start))
    }

    /// The next delimiter, line break or quote of the piece from the record's start, visited.
    #[inline]
    fn next_structural(&mut self) -> Option<usize> {
        while self.word_hits == 0 {
            self.word_start += 8;
            if self.word_start >= self.bytes.len() {
                return None;
            }
            self.word_hits = structural_bytes(self.bytes, self.word_start, self.delimiter);
        }
        let at = self.word_start + (self.word_hits.trailing_zeros() / 8) as usize;
        self.word_hits &= self.word_hits - 1;
        Some(at)
    }

    /// The record at `start`, which has a quote before its first line break, read by `csv_core`.
    fn quoted(&mut self, start: usize, batch: &mut Batch) -> (RowText, usize) {
        use csv_core::ReadRecordResult as R;
        let delimiter = self.delimiter;
        let core = self
            .core
            .get_or_insert_with(|| csv_core::ReaderBuilder::new().delimiter(delimiter).build());
        let (mut read, mut text_len, mut n_ends) = (0, 0, 0);
        loop {
            let rest = &self.bytes[start + read..];
            // `csv_core` strips a byte-order mark from the first bytes it is given; here, in
            // the middle of the file, those bytes are data: the first call gets one byte.
            let input = if self.core_started {
                rest
            } else {
                &rest[..rest.len().min(1)]
            };
            self.core_started = true;
            let (result, n_in, n_out, n_end) = core.read_record(
                input,
                &mut self.core_text[text_len..],
                &mut self.core_ends[n_ends..],
            );
            read += n_in;
            text_len += n_out;
            n_ends += n_end;
            match result {
                R::InputEmpty => {}
                R::OutputFull => self.core_text.resize(self.core_text.len() * 2, 0),
                R::OutputEndsFull => self.core_ends.resize(self.core_ends.len() * 2, 0),
                R::Record | R::End => break,
            }
        }
        self.pos = start + read;
        let base = batch.unquoted.len();
        batch
            .unquoted
            .extend_from_slice(&self.core_text[..text_len]);
        batch
            .ends
            .extend(self.core_ends[..n_ends].iter().map(|&e| base + e));
        (RowText::Unquoted, base)
    }
}

/// One piece of the file, parsed.
struct Piece {
    slots: Vec<Slot>,
    n_rows: usize,
    /// Rows within the piece.
    cell_problems: CellProblems,
    row_problems: Vec<(usize, FindingKind, String)>,
}

/// A cell problem of a batch: row in the piece, field, value as written, problem.
type BatchProblem<'t> = (usize, usize, &'t str, CellProblem);

/// Parse the records of `bytes` into fresh column pieces shaped like `template`.
fn parse_piece(
    bytes: &[u8],
    delimiter: u8,
    n_fields: usize,
    slot_of: &[Option<usize>],
    template: &[Slot],
) -> Piece {
    let capacity = memchr::memchr_iter(b'\n', bytes).count() + 1;
    let mut slots: Vec<Slot> = template
        .iter()
        .map(|s| match s {
            Slot::Typed(b) => Slot::Typed(Box::new(b.empty_like(capacity))),
            Slot::Auto(a) => Slot::Auto(AutoBuilder::new(&a.name)),
        })
        .collect();
    // The previous cell of each column: survey files repeat values down a column (region,
    // stratum, a PSU's weight), and a cell's outcome depends on its text only.
    let mut previous: Vec<Option<(String, Option<CellProblem>)>> = vec![None; slots.len()];
    // A piece is almost always UTF-8 as a whole (one check, at memory speed): then its rows need
    // no check of their own and its cells are cut from the text as they are.
    let piece_text = std::str::from_utf8(bytes).ok();
    let mut records = Records::new(bytes, delimiter);
    let mut batch = Batch::default();
    let mut cell_problems = CellProblems::default();
    let mut row_problems = Vec::new();
    let mut n_rows = 0usize;
    loop {
        batch.clear();
        let first_row = n_rows;
        let mut at_end = false;
        while batch.rows.len() < BATCH_ROWS {
            let first_end = batch.ends.len();
            let Some((text, start)) = records.next_into(&mut batch) else {
                at_end = true;
                break;
            };
            let row = n_rows;
            n_rows += 1;
            let n = batch.ends.len() - first_end;
            let usable = if n != n_fields {
                row_problems.push((
                    row,
                    FindingKind::MalformedRow,
                    format!("{n} fields where the header has {n_fields}"),
                ));
                false
            } else {
                let end = batch.ends[batch.ends.len() - 1];
                let record = match text {
                    RowText::Unquoted => &batch.unquoted[start..end],
                    _ => &bytes[start..end],
                };
                // Delimiters are ASCII: the record is UTF-8 exactly when its text is.
                let utf8 = (text == RowText::Piece && piece_text.is_some())
                    || std::str::from_utf8(record).is_ok();
                if !utf8 {
                    row_problems.push((
                        row,
                        FindingKind::InvalidEncoding,
                        "the row is not valid UTF-8".into(),
                    ));
                }
                utf8
            };
            if usable {
                batch.rows.push((text, start));
            } else {
                batch.ends.resize(first_end + n_fields, 0);
                batch.rows.push((RowText::Unusable, 0));
            }
        }
        let mut problems: Vec<BatchProblem> = Vec::new();
        for (k, slot) in slot_of.iter().enumerate() {
            let Some(i) = *slot else { continue };
            let cells = Cells {
                batch: &batch,
                piece: bytes,
                piece_text,
                field: k,
                n_fields,
            };
            match &mut slots[i] {
                Slot::Typed(b) => {
                    store_cells(b, &mut previous[i], &cells, first_row, &mut problems)
                }
                Slot::Auto(a) => {
                    for r in 0..batch.rows.len() {
                        a.push(cells.text(r));
                    }
                }
            }
        }
        // Problems in the order of the file: row after row, field after field.
        problems.sort_by_key(|p| (p.0, p.1));
        for (row, k, value, problem) in problems {
            if let Some(Slot::Typed(b)) = slot_of[k].map(|i| &slots[i]) {
                cell_problems.push(row, &b.name, value, problem);
            }
        }
        if at_end {
            break;
        }
    }
    Piece {
        slots,
        n_rows,
        cell_problems,
        row_problems,
    }
}

/// The cells of one field over the rows of a batch.
struct Cells<'t> {
    batch: &'t Batch,
    piece: &'t [u8],
    /// The piece, when it is UTF-8 as a whole.
    piece_text: Option<&'t str>,
    field: usize,
    n_fields: usize,
}

impl<'t> Cells<'t> {
    /// Where row `r`'s cell is; `None` for a row that is unusable.
    #[inline]
    fn span(&self, r: usize) -> Option<(RowText, std::ops::Range<usize>)> {
        let (text, start) = self.batch.rows[r];
        let ends = &self.batch.ends[r * self.n_fields..(r + 1) * self.n_fields];
        let from = match (text, self.field) {
            (RowText::Unusable, _) => return None,
            (_, 0) => start,
            (RowText::Piece, k) => ends[k - 1] + 1,
            (RowText::Unquoted, k) => ends[k - 1],
        };
        Some((text, from..ends[self.field]))
    }

    /// The bytes of row `r`'s cell; `None` for a row that is unusable.
    #[inline]
    fn bytes(&self, r: usize) -> Option<&'t [u8]> {
        let (text, span) = self.span(r)?;
        match text {
            RowText::Unquoted => self.batch.unquoted.get(span),
            _ => self.piece.get(span),
        }
    }

    /// Row `r`'s cell as text (its row was checked to be UTF-8).
    fn text(&self, r: usize) -> Option<&'t str> {
        let (text, span) = self.span(r)?;
        match (text, self.piece_text) {
            (RowText::Piece, Some(piece)) => piece.get(span),
            (RowText::Unquoted, _) => std::str::from_utf8(self.batch.unquoted.get(span)?).ok(),
            _ => std::str::from_utf8(self.piece.get(span)?).ok(),
        }
    }
}

/// Store one field of a batch in its column, problems noted with their rows in the piece.
fn store_cells<'t>(
    b: &mut ColumnBuilder,
    previous: &mut Option<(String, Option<CellProblem>)>,
    cells: &Cells<'t>,
    first_row: usize,
    problems: &mut Vec<BatchProblem<'t>>,
) {
    let n = cells.batch.rows.len();
    // Blanks and small codes only (most batches of an item): no cell can repeat the one before.
    if b.push_small_cells(n, |r| cells.bytes(r)) {
        *previous = None;
        return;
    }
    for r in 0..n {
        let row = first_row + r;
        let field = match cells.bytes(r) {
            // Blank cells (questions skipped) are common: no parsing, no comparison.
            None | Some([]) => {
                b.push_null();
                // The last cell is now a null: the next cell cannot repeat the one before.
                if previous.is_some() {
                    *previous = None;
                }
                continue;
            }
            Some(field) => field,
        };
        if let Some(problem) = b.push_whole_number(field) {
            if previous.is_some() {
                *previous = None;
            }
            if let Some(p) = problem {
                problems.push((row, cells.field, cells.text(r).unwrap_or_default(), p));
            }
            continue;
        }
        let field = cells.text(r).unwrap_or_default();
        let problem = match previous {
            Some((text, problem)) if text == field => {
                b.repeat_last();
                problem.clone()
            }
            _ => {
                let problem = b.push_str(field);
                let kept = previous.get_or_insert_with(|| (String::new(), None));
                kept.0.clear();
                kept.0.push_str(field);
                kept.1.clone_from(&problem);
                problem
            }
        };
        if let Some(p) = problem {
            problems.push((row, cells.field, field.trim(), p));
        }
    }
}

/// The file's columns and findings so far, and its rows.
struct Columns {
    slots: Vec<Slot>,
    cell_problems: CellProblems,
    row_problems: Vec<(usize, FindingKind, String)>,
    n_rows: usize,
}

impl Columns {
    /// Append the pieces of a block, in file order.
    fn append(&mut self, block: Vec<Piece>) {
        if block.is_empty() {
            return;
        }
        let mut by_column: Vec<Vec<Slot>> = self.slots.iter().map(|_| Vec::new()).collect();
        for piece in block {
            let offset = self.n_rows;
            self.cell_problems.append(&piece.cell_problems, offset);
            self.row_problems.extend(
                piece
                    .row_problems
                    .into_iter()
                    .map(|(row, kind, message)| (row + offset, kind, message)),
            );
            self.n_rows += piece.n_rows;
            for (k, slot) in piece.slots.into_iter().enumerate() {
                by_column[k].push(slot);
            }
        }
        // Every column on its own, so the result does not depend on the number of threads.
        self.slots
            .par_iter_mut()
            .zip(by_column.into_par_iter())
            .for_each(|(slot, pieces)| {
                for piece in pieces {
                    match (&mut *slot, piece) {
                        (Slot::Typed(b), Slot::Typed(p)) => b.append(*p),
                        (Slot::Auto(a), Slot::Auto(p)) => a.append(p),
                        _ => {}
                    }
                }
            });
    }
}

/// Read a delimited text file (header row, optional double quotes) written as `format` says,
/// with its SHA-256 (when `fingerprint`) and the delimiter it was read with.
pub(crate) fn read_csv(
    path: &Path,
    plan: &(dyn Fn(&str) -> ColumnPlan + Sync),
    na: &[String],
    format: &TextFormat,
    fingerprint: bool,
    progress: &dyn Progress,
) -> Result<(RawTable, u8), IngestError> {
    let io = |e: &dyn std::fmt::Display| IngestError::io(path, e);
    let mut file = File::open(path).map_err(|e| io(&e))?;
    let file_bytes = file.metadata().map_err(|e| io(&e))?.len();
    let read = match format.encoding {
        Some(encoding) if encoding != encoding_rs::UTF_8 => {
            // Another encoding is transcoded to UTF-8 while it is read, and the parse runs as
            // on a UTF-8 file of unknown length; the hash and the size are the file's own.
            // UTF-8 files, the usual case, never take this path.
            progress.start("ingest", file_bytes);
            let mut source = Transcoding::new(file, encoding);
            let (mut table, delimiter) = read_csv_from(
                path,
                &mut source,
                SourceSize::About(file_bytes),
                CUTS,
                plan,
                na,
                format,
                fingerprint,
                progress,
            )?;
            if source.raw_bytes != file_bytes {
                return Err(IngestError::ChangedWhileRead {
                    path: path.to_path_buf(),
                    before: file_bytes,
                    after: source.raw_bytes,
                });
            }
            if fingerprint {
                table.sha256 = super::hex_digest(source.raw_hash);
            }
            (table, delimiter)
        }
        _ => {
            progress.start("ingest", file_bytes);
            read_csv_from(
                path,
                &mut file,
                SourceSize::Exact(file_bytes),
                CUTS,
                plan,
                na,
                format,
                fingerprint,
                progress,
            )?
        }
    };
    // A file written to while it is read (a fieldwork export still running) gives a table
    // that matches no version of the file.
    let now = std::fs::metadata(path).map_err(|e| io(&e))?.len();
    if now != file_bytes {
        return Err(IngestError::ChangedWhileRead {
            path: path.to_path_buf(),
            before: file_bytes,
            after: now,
        });
    }
    Ok(read)
}

/// How many bytes a source to parse holds.
#[derive(Debug, Clone, Copy)]
pub(super) enum SourceSize {
    /// Exactly this many (the file's size when opened): any other count means the file
    /// changed while it was read.
    Exact(u64),
    /// About this many (a file transcoded while read); used for the progress and the room
    /// reserved for the rows.
    About(u64),
}

/// Bytes read from the file per transcoding step.
const TRANSCODE_CHUNK: usize = 1 << 20;

/// A file in another encoding read as UTF-8 (a byte-order mark, of any Unicode encoding, wins
/// over the encoding and is dropped), its own bytes counted and hashed on the way. A byte
/// sequence the encoding does not define becomes a byte that is not UTF-8, so its row is an
/// `invalid_encoding` finding as in a UTF-8 file. Memory is a chunk, not the file.
struct Transcoding<R> {
    file: R,
    decoder: encoding_rs::Decoder,
    raw: Vec<u8>,
    text: Vec<u8>,
    /// Bytes of `text` already given out.
    given: usize,
    at_end: bool,
    /// Bytes read from the file.
    raw_bytes: u64,
    raw_hash: sha2::Sha256,
}

impl<R: Read> Transcoding<R> {
    fn new(file: R, encoding: &'static encoding_rs::Encoding) -> Transcoding<R> {
        Transcoding::with_chunk(file, encoding, TRANSCODE_CHUNK)
    }

    fn with_chunk(
        file: R,
        encoding: &'static encoding_rs::Encoding,
        chunk: usize,
    ) -> Transcoding<R> {
        Transcoding {
            file,
            decoder: encoding.new_decoder(),
            raw: vec![0; chunk.max(1)],
            text: Vec::new(),
            given: 0,
            at_end: false,
            raw_bytes: 0,
            raw_hash: sha2::Sha256::new(),
        }
    }

    /// The next chunk of the file as UTF-8 in `text` (empty only at the end).
    fn transcode_chunk(&mut self) -> std::io::Result<()> {
        use encoding_rs::DecoderResult;
        self.text.clear();
        self.given = 0;
        let n = loop {
            match self.file.read(&mut self.raw) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        self.raw_bytes += n as u64;
        self.raw_hash.update(&self.raw[..n]);
        // At the end, the decoder is told so: a sequence it holds unfinished is malformed.
        let last = n == 0;
        self.at_end = last;
        let mut input = &self.raw[..n];
        loop {
            let room = self
                .decoder
                .max_utf8_buffer_length_without_replacement(input.len())
                .unwrap_or(input.len().saturating_mul(3))
                .max(16);
            let start = self.text.len();
            self.text.resize(start + room, 0);
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                input,
                &mut self.text[start..],
                last,
            );
            self.text.truncate(start + written);
            input = &input[read..];
            match result {
                DecoderResult::InputEmpty => return Ok(()),
                DecoderResult::OutputFull => {}
                DecoderResult::Malformed(..) => self.text.push(0xFF),
            }
        }
    }
}

impl<R: Read> Read for Transcoding<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        // A chunk of the file can decode to nothing (a byte-order mark alone): read on.
        while self.given == self.text.len() {
            if self.at_end {
                return Ok(0);
            }
            self.transcode_chunk()?;
        }
        let n = out.len().min(self.text.len() - self.given);
        out[..n].copy_from_slice(&self.text[self.given..self.given + n]);
        self.given += n;
        Ok(n)
    }
}

/// Fill `buf` from `source` with up to `want` more bytes; the number read (0 at the end).
fn read_more(
    source: &mut (dyn Read + Send),
    buf: &mut Vec<u8>,
    want: usize,
) -> std::io::Result<usize> {
    let start = buf.len();
    buf.resize(start + want, 0);
    let mut filled = start;
    while filled < buf.len() {
        match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(filled);
                return Err(e);
            }
        }
    }
    buf.truncate(filled);
    Ok(filled - start)
}

/// [`read_csv`] on an open UTF-8 source holding `size` bytes.
#[allow(clippy::too_many_arguments)]
pub(super) fn read_csv_from(
    path: &Path,
    source: &mut (dyn Read + Send),
    size: SourceSize,
    cuts: Cuts,
    plan: &(dyn Fn(&str) -> ColumnPlan + Sync),
    na: &[String],
    format: &TextFormat,
    fingerprint: bool,
    progress: &dyn Progress,
) -> Result<(RawTable, u8), IngestError> {
    let io = |e: &dyn std::fmt::Display| IngestError::io(path, e);
    let too_long = |row: usize| IngestError::Malformed {
        path: path.to_path_buf(),
        format: "CSV",
        message: format!(
            "{}a record is longer than {} MiB (one line, or a quoted field whose closing \
             quote is missing): this does not look like a CSV file of survey records (check \
             the file, its line breaks and quotes, or that it is not compressed)",
            if row == 0 {
                String::new()
            } else {
                format!("data row {row}: ")
            },
            MAX_LINE_BYTES >> 20
        ),
    };
    let mut hasher = fingerprint.then(sha2::Sha256::new);
    let mut total_read = 0u64;
    let mut buf: Vec<u8> = Vec::new();
    let mut spare: Vec<u8> = Vec::new();
    let mut at_end;

    // The header: the first record, after an optional byte-order mark. Where it ends depends
    // on the delimiter (a quote opens a field only after one), so it is found for each.
    let candidates: Vec<u8> =
        format
            .delimiter
            .into_iter()
            .chain(DELIMITERS)
            .fold(Vec::new(), |mut v, d| {
                if !v.contains(&d) {
                    v.push(d);
                }
                v
            });
    let mut header_start;
    // `None`: the header would be longer than a record may be with that delimiter (a quote
    // opening a field only after it, never closed): not the file's delimiter.
    let header_ends: Vec<Option<usize>> = loop {
        let n = read_more(source, &mut buf, cuts.block).map_err(|e| io(&e))?;
        total_read += n as u64;
        at_end = n == 0;
        let body = buf.strip_prefix(UTF8_BOM).unwrap_or(&buf);
        header_start = buf.len() - body.len();
        let ends: Vec<Option<usize>> = candidates
            .iter()
            .map(|&d| RecordEnds::new(body, d).next_at_or_after(0))
            .collect();
        if at_end || ends.iter().all(Option::is_some) {
            break ends
                .iter()
                .map(|e| Some(e.map_or(buf.len(), |e| header_start + e)))
                .collect();
        }
        if buf.len() as u64 > MAX_LINE_BYTES {
            let given_unfinished = format.delimiter.is_some() && ends[0].is_none();
            if given_unfinished || ends.iter().all(Option::is_none) {
                return Err(too_long(0));
            }
            break ends.iter().map(|e| e.map(|e| header_start + e)).collect();
        }
    };
    let mut headers = Vec::with_capacity(candidates.len());
    for (&d, &end) in candidates.iter().zip(&header_ends) {
        let Some(end) = end else {
            headers.push(Vec::new());
            continue;
        };
        let fields = header_fields(&buf[header_start..end], d).map_err(|message| {
            IngestError::Malformed {
                path: path.to_path_buf(),
                format: "CSV",
                message,
            }
        })?;
        match fields {
            Some(fields) => headers.push(fields),
            None => {
                return Err(IngestError::Empty {
                    path: path.to_path_buf(),
                    message: "the file is empty; expected a header row and data rows".into(),
                });
            }
        }
    }
    let expected = |header: &[String]| {
        header
            .iter()
            .filter(|name| !matches!(plan(name), ColumnPlan::Ignore))
            .count()
    };
    let chosen = choose_delimiter(path, format, &candidates, &headers, &expected)?;
    let delimiter = candidates[chosen];
    let header_end = header_ends[chosen].unwrap_or(buf.len());
    let header = std::mem::take(&mut headers[chosen]);
    check_header(path, &header)?;
    let decimal_comma = format.decimal_comma;
    let plan = |name: &str| match plan(name) {
        ColumnPlan::Declared(rules) => {
            ColumnPlan::Declared(rules.with_decimal_comma(decimal_comma))
        }
        other => other,
    };
    let (slot_of, template, ignored) = plan_slots(&header, &plan);
    if let Some(hasher) = &mut hasher {
        hasher.update(&buf[..header_end]);
    }
    buf.drain(..header_end);
    // Bytes of `buf` from here on are not hashed yet: they are hashed while they are parsed.
    let mut unhashed = 0;

    // The file's columns: each block's pieces are appended while the next block is parsed, so
    // two blocks' pieces are the only memory beside the columns.
    let slots: Vec<Slot> = template
        .iter()
        .map(|s| match s {
            Slot::Typed(b) => Slot::Typed(Box::new(b.empty_like(0))),
            Slot::Auto(a) => Slot::Auto(AutoBuilder::new(&a.name)),
        })
        .collect();
    let mut columns = Columns {
        slots,
        cell_problems: CellProblems::default(),
        row_problems: Vec::new(),
        n_rows: 0,
    };
    // The previous block's pieces: appended to the columns while the next block is parsed.
    let mut parsed: Vec<Piece> = Vec::new();
    let mut parsed_rows = 0usize;
    let mut reported = 0u64;
    let mut reserved = false;
    loop {
        let end = if at_end {
            buf.len()
        } else {
            RecordEnds::new(&buf, delimiter).last()
        };
        if end == 0 && !at_end && buf.len() as u64 > MAX_LINE_BYTES {
            return Err(too_long(parsed_rows + 1));
        }
        let ranges = pieces(&buf, end, delimiter, cuts.piece);
        // The next block is read while this one is parsed, beside the hashing and the previous
        // block's append (both quicker than the parse): it starts with this block's unfinished
        // record, already hashed.
        spare.clear();
        spare.extend_from_slice(&buf[end..]);
        let previous = std::mem::take(&mut parsed);
        let (read, block) = rayon::join(
            || {
                if let Some(hasher) = &mut hasher {
                    hasher.update(&buf[unhashed..]);
                }
                columns.append(previous);
                if at_end {
                    Ok(0)
                } else {
                    read_more(source, &mut spare, cuts.block)
                }
            },
            || -> Vec<Piece> {
                ranges
                    .par_iter()
                    .map(|&(from, to)| {
                        parse_piece(&buf[from..to], delimiter, header.len(), &slot_of, &template)
                    })
                    .collect()
            },
        );
        let block_rows: usize = block.iter().map(|p| p.n_rows).sum();
        parsed_rows += block_rows;
        if !reserved && block_rows > 0 {
            // The whole file's columns, sized once from the first block's bytes per row
            // (before the first block is appended).
            reserved = true;
            let (SourceSize::Exact(bytes) | SourceSize::About(bytes)) = size;
            let rows = bytes.saturating_mul(block_rows as u64) / end.max(1) as u64;
            // A little more than the estimate, so that a file whose later rows are shorter
            // than the first block's does not double its columns at the end.
            let capacity = usize::try_from(rows.saturating_add(rows / 64)).unwrap_or(usize::MAX);
            reserve_columns(path, &mut columns.slots, rows, capacity)?;
        }
        parsed = block;
        if at_end {
            columns.append(parsed);
            break;
        }
        let n = read.map_err(|e| io(&e))?;
        unhashed = buf.len() - end;
        std::mem::swap(&mut buf, &mut spare);
        total_read += n as u64;
        at_end = n == 0;
        progress.advance(total_read.saturating_sub(reported));
        reported = total_read;
    }
    let Columns {
        slots,
        cell_problems,
        row_problems,
        n_rows,
    } = columns;
    if let SourceSize::Exact(expected) = size
        && total_read != expected
    {
        return Err(IngestError::ChangedWhileRead {
            path: path.to_path_buf(),
            before: expected,
            after: total_read,
        });
    }
    if n_rows == 0 {
        return Err(IngestError::Empty {
            path: path.to_path_buf(),
            message: "the file has a header but no data rows".into(),
        });
    }
    let table = RawTable {
        builders: finish_slots(slots, na, format.decimal_comma),
        n_rows,
        cell_problems,
        row_problems,
        sha256: hasher.map(super::hex_digest).unwrap_or_default(),
        ignored,
        header,
        file_findings: Vec::new(),
        sheet: None,
    };
    Ok((table, delimiter))
}

/// The header's column names split at `delimiter` (`None`: no record at all).
fn header_fields(bytes: &[u8], delimiter: u8) -> Result<Option<Vec<String>>, String> {
    let record = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(bytes)
        .byte_records()
        .next();
    let Some(record) = record else {
        return Ok(None);
    };
    let record = record.map_err(|e| e.to_string())?;
    Ok(Some(
        record
            .iter()
            .map(|f| {
                String::from_utf8_lossy(f)
                    .trim()
                    .trim_start_matches('\u{feff}')
                    .to_string()
            })
            .collect(),
    ))
}

/// A delimited file's header (its first record) split as detection splits it when no column
/// names are expected: with the delimiter of [`DELIMITERS`] that gives the most columns, ties
/// to the earlier one, as [`choose_delimiter`] decides without expected names.
pub(crate) fn detected_header(first_record: &[u8]) -> Result<Vec<String>, String> {
    let mut best: Vec<String> = Vec::new();
    for d in DELIMITERS {
        let header = header_fields(first_record, d)?.unwrap_or_default();
        if header.len() > best.len() {
            best = header;
        }
    }
    Ok(best)
}

/// Which of `candidates` the file is read with (an index), given each one's header.
///
/// A delimiter given (first candidate) is used unless the header does not contain it while
/// another delimiter splits it: then the file is refused, as its columns would read as one.
/// Otherwise the delimiter that splits the header into the most columns the run expects wins,
/// then the one that splits it into the most columns; ties go to the earlier candidate (the
/// comma first).
fn choose_delimiter(
    path: &Path,
    format: &TextFormat,
    candidates: &[u8],
    headers: &[Vec<String>],
    expected: &dyn Fn(&[String]) -> usize,
) -> Result<usize, IngestError> {
    let shown = |header: &[String]| {
        let text = header.join(" | ");
        match text.char_indices().nth(120) {
            Some((at, _)) => format!("{}…", &text[..at]),
            None => text,
        }
    };
    let mut best = 0;
    let mut best_key = (0, 0);
    for (k, header) in headers.iter().enumerate() {
        let key = (expected(header), header.len());
        if key > best_key {
            best = k;
            best_key = key;
        }
    }
    let chosen = match format.delimiter {
        Some(given) => {
            if headers[0].len() == 1 && headers[best].len() > 1 {
                let (name, other) = (delimiter_name(given), delimiter_name(candidates[best]));
                return Err(IngestError::TextFormat {
                    path: path.to_path_buf(),
                    message: format!(
                        "the delimiter is {name} but the header has no {name}: it reads as one \
                         column \"{}\"; split at {other} it has {} columns ({}): set [data] \
                         delimiter = {other}, or leave the key out to detect the delimiter",
                        shown(&headers[0]),
                        headers[best].len(),
                        shown(&headers[best]),
                    ),
                });
            }
            0
        }
        None => best,
    };
    if format.decimal_comma && candidates[chosen] == b',' {
        return Err(IngestError::TextFormat {
            path: path.to_path_buf(),
            message: format!(
                "[data] decimal = \",\" needs a delimiter other than the comma, but the header \
                 is comma-separated ({}): set [data] delimiter (\";\", \"tab\" or \"|\") to \
                 the file's delimiter, or decimal = \".\" if its numbers use a point",
                shown(&headers[chosen])
            ),
        });
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record boundary of `text` found one at a time.
    fn boundaries(text: &str) -> Vec<usize> {
        let mut ends = RecordEnds::new(text.as_bytes(), b',');
        let mut out = Vec::new();
        while let Some(end) = ends.next_at_or_after(0) {
            out.push(end);
        }
        out
    }

    #[test]
    fn line_breaks_inside_quoted_fields_do_not_end_records() {
        let text = "1,\"a\nb\",2\n2,\"say \"\"hi\"\"\n\",3\n3,x,4\n";
        assert_eq!(boundaries(text), vec![10, 28, 34]);
        assert_eq!(RecordEnds::new(text.as_bytes(), b',').last(), 34);
    }

    #[test]
    fn a_quote_inside_an_unquoted_field_is_a_literal() {
        // 5" tall: csv reads the quote as text, so the line break ends the record.
        let text = "1,5\" tall\n2,\"x\ny\"\n";
        assert_eq!(boundaries(text), vec![10, 18]);
    }

    #[test]
    fn crlf_and_lone_cr_before_a_quoted_field() {
        let text = "a,b\r\n\"q\r\nq\",1\r\n";
        assert_eq!(boundaries(text), vec![5, 15]);
    }

    #[test]
    fn an_open_quote_at_the_end_leaves_the_record_unfinished() {
        let text = "1,2\n3,\"open\nstill open";
        assert_eq!(RecordEnds::new(text.as_bytes(), b',').last(), 4);
        // A closing quote as the very last byte: its meaning depends on the next byte.
        let text = "1,2\n3,\"x\"";
        assert_eq!(RecordEnds::new(text.as_bytes(), b',').last(), 4);
    }

    /// The records of `bytes` as [`Records`] splits them, each as its fields.
    fn split(bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let mut records = Records::new(bytes, b',');
        let mut batch = Batch::default();
        let mut out = Vec::new();
        loop {
            batch.clear();
            let Some((text, start)) = records.next_into(&mut batch) else {
                return out;
            };
            let (text, gap) = match text {
                RowText::Unquoted => (batch.unquoted.as_slice(), 0),
                _ => (bytes, 1),
            };
            let mut from = start;
            let mut fields = Vec::new();
            for &end in &batch.ends {
                fields.push(text[from..end].to_vec());
                from = end + gap;
            }
            out.push(fields);
        }
    }

    /// The records of `bytes` as the `csv` crate reads them.
    fn split_by_csv(bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes)
            .byte_records()
            .map(|r| r.expect("record").iter().map(<[u8]>::to_vec).collect())
            .collect()
    }

    #[test]
    fn structural_bytes_are_the_delimiters_line_breaks_and_quotes_byte_by_byte() {
        // Every byte value at every place of a word, words cut short by the end, and
        // delimiters next to the bytes whose tests share bits with theirs.
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for delimiter in [b',', b';', b'\t', b'|', 0, 0x80, 0xFF, b'"'] {
            for start in 0..all.len() + 2 {
                let hits = structural_bytes(&all, start, delimiter);
                for k in 0..8 {
                    let byte = all.get(start + k);
                    let expected =
                        byte.is_some_and(|&b| b == delimiter || ends_record(b) || b == b'"');
                    let bit = hits >> (8 * k + 7) & 1 == 1;
                    assert_eq!(bit, expected, "delimiter {delimiter}, byte {byte:?} at {k}");
                }
                assert_eq!(hits & !splat(0x80), 0, "only high bits");
            }
        }
    }

    #[test]
    fn records_are_split_as_the_csv_crate_splits_them() {
        let cases: [&[u8]; 9] = [
            b"a,b\r\nc,d\n\n\r\ne,\"f\r\ng\"\rh,i",
            b"x,5\" tall,\"q\"\"q\"tail,y\n",
            b",,\n , \n\"\"\n\"\",\"\"",
            b"1,\"open\nstill open",
            b"1,2\n3,\"x\"",
            b"\r\n\r\n",
            b"",
            b"a,\"\xC3\xA9\"\"\n\",\xFF\n",
            // Bytes of a byte-order mark in the middle of a file are data, quoted or not.
            b"x\n\xEF\xBB\xBFa,b\n\xEF\xBB\xBF\"q\",c\n",
        ];
        for text in cases {
            assert_eq!(
                split(text),
                split_by_csv(text),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        // And the same on the records of the last case cut after its first line: a piece that
        // starts with those bytes.
        let piece = &cases[8][2..];
        assert_eq!(split(piece)[0][0], b"\xEF\xBB\xBFa".to_vec());
        // (The quote after them is not at the start of the field: it is a literal.)
        assert_eq!(split(&piece[6..])[0][0], b"\xEF\xBB\xBF\"q\"".to_vec());
        // Random texts over the bytes that matter.
        let alphabet: &[u8] = b"a1,,\"\"\r\n \xC3\xA9";
        let mut state = 99u64;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (state >> 58) as usize;
            let text: Vec<u8> = (0..len)
                .map(|j| alphabet[((state >> (j % 50)) as usize + j * 7) % alphabet.len()])
                .collect();
            assert_eq!(
                split(&text),
                split_by_csv(&text),
                "{:?}",
                String::from_utf8_lossy(&text)
            );
        }
    }

    use crate::ingest::builder::CellRules;
    use crate::progress::Silent;

    fn plan(name: &str) -> ColumnPlan {
        match name {
            "id" | "amount" | "code" => ColumnPlan::Declared(CellRules::free(true)),
            "region" => ColumnPlan::Declared(CellRules::free(false)),
            "note" => ColumnPlan::Inferred,
            _ => ColumnPlan::Ignore,
        }
    }

    /// A file with everything the cuts must not break: a byte-order mark, quoted fields with
    /// line breaks, commas and doubled quotes, CRLF and LF line endings, blank and invalid
    /// cells, a short row and a row that is not UTF-8.
    fn hostile_file() -> Vec<u8> {
        let mut out = b"\xEF\xBB\xBF\"id\",region,amount,code,note,skipped\r\n".to_vec();
        let mut state = 12345u64;
        for i in 0..400u64 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = state >> 33;
            let note = match r % 5 {
                0 => format!("\"line one\r\nline two {i}\""),
                1 => format!("\"said \"\"no\"\", twice\n{i}\""),
                2 => String::new(),
                3 => format!("plain {i}"),
                _ => "\"\"".to_string(),
            };
            let code = if r.is_multiple_of(11) {
                "x".to_string()
            } else {
                (r % 4).to_string()
            };
            let line = match r % 37 {
                0 => format!("{i},R{}\n", r % 3),
                1 => format!("{i},R\u{0}{},1.5,1,\"{}\",z\n", r % 3, i),
                // The bytes of a byte-order mark inside the file are data (an invalid id here),
                // wherever a piece starts.
                _ if i % 50 == 7 => format!("\u{feff}{i},R1,3.25,{code},{note},z"),
                _ => format!("{i},R{},{}.25,{code},{note},z", r % 3, r % 100),
            };
            out.extend_from_slice(line.as_bytes());
            if r % 37 == 1 {
                // Replace the NUL with a byte that is not UTF-8.
                let at = out.len() - line.len() + line.find('\u{0}').expect("nul");
                out[at] = 0xFF;
                continue;
            }
            if !r.is_multiple_of(37) {
                out.extend_from_slice(if r.is_multiple_of(2) { b"\r\n" } else { b"\n" });
            }
        }
        out
    }

    fn read(bytes: &[u8], expected: u64, cuts: Cuts) -> Result<RawTable, IngestError> {
        read_as(bytes, expected, cuts, &TextFormat::default()).map(|(table, _)| table)
    }

    fn read_as(
        bytes: &[u8],
        expected: u64,
        cuts: Cuts,
        format: &TextFormat,
    ) -> Result<(RawTable, u8), IngestError> {
        let mut source = bytes;
        read_csv_from(
            Path::new("hostile.csv"),
            &mut source,
            SourceSize::Exact(expected),
            cuts,
            &plan,
            &[],
            format,
            true,
            &Silent,
        )
    }

    #[test]
    fn the_same_table_wherever_blocks_and_pieces_are_cut() {
        let bytes = hostile_file();
        let whole = read(&bytes, bytes.len() as u64, CUTS).expect("read");
        assert_eq!(whole.n_rows, 400);
        assert_eq!(whole.header[0], "id");
        // The short rows and the rows that are not UTF-8, found at their own rows.
        assert!(
            whole
                .row_problems
                .iter()
                .any(|p| p.1 == FindingKind::MalformedRow)
        );
        assert!(
            whole
                .row_problems
                .iter()
                .any(|p| p.1 == FindingKind::InvalidEncoding)
        );
        assert!(
            whole
                .cell_problems
                .iter()
                .any(|p| p.1 == "code" && p.2 == "x")
        );
        assert!(
            whole
                .cell_problems
                .iter()
                .any(|p| p.1 == "id" && p.2 == "\u{feff}57")
        );
        // Every cell as written back, with its state (NaN cells compare equal this way).
        type Cells = Vec<(Option<String>, crate::frame::CellState)>;
        let columns = |t: RawTable| -> Vec<(String, Cells)> {
            t.builders
                .into_iter()
                .map(|b| {
                    let c = b.finish();
                    let cells = (0..c.len()).map(|r| (c.display(r), c.state[r])).collect();
                    (c.name, cells)
                })
                .collect()
        };
        let problems = |t: &RawTable| {
            let cells: Vec<(usize, String, String, CellProblem)> = t
                .cell_problems
                .iter()
                .map(|(r, c, v, p)| (r, c.to_string(), v.to_string(), p.clone()))
                .collect();
            (cells, t.row_problems.clone())
        };
        let expected_problems = problems(&whole);
        let sha = whole.sha256.clone();
        let mut direct = sha2::Sha256::new();
        direct.update(&bytes);
        assert_eq!(
            sha,
            crate::ingest::hex_digest(direct),
            "the hash is of the file's bytes"
        );
        let expected = columns(whole);
        let notes = &expected.iter().find(|c| c.0 == "note").expect("note").1;
        assert!(
            notes.iter().any(|c| c
                .0
                .as_deref()
                .is_some_and(|t| t.contains("line one\r\nline two"))),
            "quoted line breaks are kept in the value"
        );
        // The same notes as the `csv` crate reading the whole file in one go.
        let mut plain = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(bytes.as_slice());
        let mut n = 0;
        for (r, record) in plain.byte_records().enumerate() {
            let record = record.expect("record");
            let note = match std::str::from_utf8(record.get(4).unwrap_or_default()) {
                Ok(t)
                    if record.len() == 6
                        && std::str::from_utf8(record.as_slice()).is_ok()
                        && !t.trim().is_empty() =>
                {
                    Some(t.trim().to_string())
                }
                _ => None,
            };
            assert_eq!(notes[r].0, note, "row {r}");
            n += 1;
        }
        assert_eq!(n, 400);
        for (block, piece) in [(1, 1), (7, 3), (64, 16), (300, 50), (4096, 700)] {
            let cut = read(&bytes, bytes.len() as u64, Cuts { block, piece }).expect("read");
            assert_eq!(
                problems(&cut),
                expected_problems,
                "block {block}, piece {piece}"
            );
            assert_eq!(cut.sha256, sha);
            assert_eq!(columns(cut), expected, "block {block}, piece {piece}");
        }
    }

    #[test]
    fn a_file_that_shrinks_or_grows_while_read_is_refused() {
        let bytes = hostile_file();
        for expected in [bytes.len() as u64 + 100, bytes.len() as u64 - 10] {
            let e = read(
                &bytes,
                expected,
                Cuts {
                    block: 64,
                    piece: 16,
                },
            )
            .err();
            assert!(
                matches!(e, Some(IngestError::ChangedWhileRead { before, after, .. })
                    if before == expected && after == bytes.len() as u64),
                "{e:?}"
            );
        }
    }

    #[test]
    fn a_quote_left_open_stops_the_read_at_its_row() {
        let mut bytes = b"id,region\n1,R1\n2,R2\n3,\"open\n".to_vec();
        bytes.extend(std::iter::repeat_n(b"x\n".as_slice(), 9 << 20).flatten());
        let cuts = Cuts {
            block: 1 << 20,
            piece: 1 << 18,
        };
        let e = read(&bytes, bytes.len() as u64, cuts)
            .err()
            .map(|e| e.to_string());
        let e = e.unwrap_or_default();
        assert!(
            e.contains("data row 3") && e.contains("longer than 16 MiB"),
            "{e}"
        );
    }

    #[test]
    fn pieces_cover_the_records_in_order() {
        let mut text = String::new();
        for i in 0..200_000 {
            text.push_str(&format!("{i},\"multi\nline {i}\",x\n"));
        }
        let bytes = text.as_bytes();
        let cuts = pieces(bytes, bytes.len(), b',', 1 << 20);
        assert!(cuts.len() > 2, "{cuts:?}");
        assert_eq!(cuts[0].0, 0);
        assert_eq!(cuts[cuts.len() - 1].1, bytes.len());
        for w in cuts.windows(2) {
            assert_eq!(w[0].1, w[1].0);
            // Every cut is at the start of a record "<digits>,".
            let next = &bytes[w[1].0..];
            assert!(next[0].is_ascii_digit(), "{:?}", &next[..20]);
            assert_eq!(bytes[w[1].0 - 1], b'\n');
            assert_eq!(bytes[w[1].0 - 2], b'x');
        }
    }

    /// The same survey records written with `delimiter` and a decimal comma or point: text
    /// cells with accents and every delimiter inside quotes, numbers with decimals in a
    /// declared column (`amount`) and in an undeclared one (`note`), CRLF and LF.
    fn locale_file(delimiter: u8, decimal_comma: bool) -> Vec<u8> {
        let d = char::from(delimiter).to_string();
        let number = |x: f64| {
            let t = format!("{x:.2}");
            if decimal_comma {
                t.replace('.', ",")
            } else {
                t
            }
        };
        let mut out = ["id", "region", "amount", "code", "note"].join(&d);
        out.push_str("\r\n");
        for i in 0..300u32 {
            let region = match i % 4 {
                0 => "R1",
                1 => "Łódź",
                2 => "\"Zagreb; centar, | \t \"\"staro\"\"\"",
                _ => "",
            };
            let amount = number(f64::from(i) * 0.25 - 10.0);
            let note = if i % 5 == 0 {
                String::new()
            } else {
                number(f64::from(i % 7) / 8.0)
            };
            let code = (i % 4).to_string();
            out.push_str(&[i.to_string(), region.into(), amount, code, note].join(&d));
            out.push_str(if i % 2 == 0 { "\n" } else { "\r\n" });
        }
        out.into_bytes()
    }

    type TableCells = Vec<(String, Vec<(Option<String>, crate::frame::CellState)>)>;

    fn cells_of(t: RawTable) -> TableCells {
        t.builders
            .into_iter()
            .map(|b| {
                let c = b.finish();
                let cells = (0..c.len()).map(|r| (c.display(r), c.state[r])).collect();
                (c.name, cells)
            })
            .collect()
    }

    #[test]
    fn every_delimiter_and_decimal_mark_reads_the_same_table_as_the_comma_file() {
        let plain = locale_file(b',', false);
        let (table, delimiter) =
            read_as(&plain, plain.len() as u64, CUTS, &TextFormat::default()).expect("read");
        assert_eq!(delimiter, b',');
        assert!((table.cell_problems.len() == 0) && table.row_problems.is_empty());
        let expected = cells_of(table);
        let amounts = &expected[2].1;
        assert_eq!(amounts[1].0.as_deref(), Some("-9.75"));
        for delimiter in [b';', b'\t', b'|'] {
            for decimal_comma in [false, true] {
                let bytes = locale_file(delimiter, decimal_comma);
                for given in [None, Some(delimiter)] {
                    let format = TextFormat {
                        delimiter: given,
                        decimal_comma,
                        encoding: None,
                    };
                    for cuts in [CUTS, Cuts { block: 7, piece: 3 }] {
                        let (table, used) =
                            read_as(&bytes, bytes.len() as u64, cuts, &format).expect("read");
                        let case = format!("{:?} {format:?} {cuts:?}", char::from(delimiter));
                        assert_eq!(used, delimiter, "{case}");
                        assert!((table.cell_problems.len() == 0), "{case}");
                        assert!(table.row_problems.is_empty(), "{case}");
                        assert_eq!(cells_of(table), expected, "{case}");
                    }
                }
            }
        }
    }

    #[test]
    fn with_a_decimal_comma_a_point_is_no_number_and_its_cell_is_named() {
        let bytes = "id;amount;note\n1;1,5;x\n2;1.234;y\n3;-0,25;z\n".as_bytes();
        let format = TextFormat {
            delimiter: None,
            decimal_comma: true,
            encoding: None,
        };
        let (table, _) = read_as(bytes, bytes.len() as u64, CUTS, &format).expect("read");
        let problems: Vec<(usize, String, String, CellProblem)> = table
            .cell_problems
            .iter()
            .map(|(r, c, v, p)| (r, c.to_string(), v.to_string(), p.clone()))
            .collect();
        assert_eq!(
            problems,
            vec![(1, "amount".into(), "1.234".into(), CellProblem::NotANumber)]
        );
        let cells = cells_of(table);
        let amounts: Vec<Option<String>> = cells[1].1.iter().map(|c| c.0.clone()).collect();
        assert_eq!(amounts[0].as_deref(), Some("1.5"));
        assert_eq!(amounts[2].as_deref(), Some("-0.25"));
        // A text column keeps its commas and points as written.
        let bytes = "id;note\n1;a,b\n2;1.5\n".as_bytes();
        let (table, _) = read_as(bytes, bytes.len() as u64, CUTS, &format).expect("read");
        let notes: Vec<Option<String>> = cells_of(table)[1].1.iter().map(|c| c.0.clone()).collect();
        assert_eq!(
            notes,
            vec![Some("a,b".to_string()), Some("1.5".to_string())]
        );
    }

    #[test]
    fn a_delimiter_the_header_contradicts_is_refused_with_the_header() {
        let bytes = locale_file(b',', false);
        let format = TextFormat {
            delimiter: Some(b';'),
            ..TextFormat::default()
        };
        let e = read_as(&bytes, bytes.len() as u64, CUTS, &format)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("hostile.csv")
                && e.contains("the delimiter is \";\"")
                && e.contains("id,region,amount,code,note")
                && e.contains("delimiter = \",\""),
            "{e}"
        );
        // A decimal comma in a file the header shows to be comma-separated.
        let format = TextFormat {
            decimal_comma: true,
            ..TextFormat::default()
        };
        let e = read_as(&bytes, bytes.len() as u64, CUTS, &format)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("hostile.csv") && e.contains("decimal = \",\"") && e.contains("id | region"),
            "{e}"
        );
    }

    #[test]
    fn a_quote_left_open_under_another_delimiter_does_not_stop_detection() {
        // At ";" the quote would open a field that never closes: the header would be the whole
        // file, longer than a record may be. At "," it is a literal.
        let mut bytes = b"id,amount;\"x\n".to_vec();
        let rows = (MAX_LINE_BYTES as usize) / 4 + 1000;
        for _ in 0..rows {
            bytes.extend_from_slice(b"1,2\n");
        }
        let cuts = Cuts {
            block: 1 << 20,
            piece: 1 << 18,
        };
        let (table, used) =
            read_as(&bytes, bytes.len() as u64, cuts, &TextFormat::default()).expect("read");
        assert_eq!(used, b',');
        assert_eq!(table.n_rows, rows);
        // Given, that delimiter's header is too long to be one.
        let format = TextFormat {
            delimiter: Some(b';'),
            ..TextFormat::default()
        };
        let e = read_as(&bytes, bytes.len() as u64, cuts, &format)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("longer than 16 MiB"), "{e}");
    }

    #[test]
    fn a_header_alone_splits_at_the_delimiter_giving_the_most_columns() {
        // KoboToolbox's semicolons, with a comma inside a quoted name and a byte-order mark.
        let header =
            detected_header(b"\xEF\xBB\xBFstart;\"a, b\";grp/q1;grp/q2\r\n").expect("header");
        assert_eq!(header, ["start", "a, b", "grp/q1", "grp/q2"]);
        assert_eq!(detected_header(b"a\tb\tc\n").expect("tab"), ["a", "b", "c"]);
        // One column: every delimiter gives one, the first (the comma) is kept.
        assert_eq!(detected_header(b"only\n").expect("one"), ["only"]);
    }

    #[test]
    fn detection_prefers_the_expected_columns_and_ties_go_to_the_comma() {
        // Split at ";" the header has more columns, but only "," gives expected names.
        let bytes = b"id,amount;x;y;z\n1,2;3;4;5\n";
        let (_, used) =
            read_as(bytes, bytes.len() as u64, CUTS, &TextFormat::default()).expect("read");
        assert_eq!(used, b',');
        // One column: every delimiter splits it alike.
        let bytes = b"id\n1\n";
        let (_, used) =
            read_as(bytes, bytes.len() as u64, CUTS, &TextFormat::default()).expect("read");
        assert_eq!(used, b',');
    }

    /// `raw` read as UTF-8 through [`Transcoding`], `chunk` file bytes at a time.
    fn to_utf8(raw: &[u8], encoding: &'static encoding_rs::Encoding, chunk: usize) -> Vec<u8> {
        let mut source = Transcoding::with_chunk(raw, encoding, chunk);
        let mut out = Vec::new();
        source.read_to_end(&mut out).expect("in memory");
        assert_eq!(source.raw_bytes, raw.len() as u64);
        out
    }

    #[test]
    fn bytes_an_encoding_does_not_define_stay_invalid_utf8() {
        // 0xFF is no Shift_JIS byte: its row must be an invalid_encoding finding, not text.
        // Whatever the chunks, a two-byte character cut between them included.
        let mut want = b"a;\xFF".to_vec();
        want.extend_from_slice(";あ\n".as_bytes());
        for chunk in [1, 2, 3, 4, 5, 64] {
            let out = to_utf8(b"a;\xFF;\x82\xA0\n", encoding_rs::SHIFT_JIS, chunk);
            assert_eq!(out, want, "chunk {chunk}");
            assert!(std::str::from_utf8(&out).is_err());
            // A character the file ends in the middle of is malformed too.
            assert_eq!(to_utf8(b"a\x82", encoding_rs::SHIFT_JIS, chunk), b"a\xFF");
            // A byte-order mark wins over the label, and is dropped.
            assert_eq!(
                to_utf8(b"\xEF\xBB\xBFid\n", encoding_rs::WINDOWS_1250, chunk),
                b"id\n"
            );
        }
        assert_eq!(to_utf8(b"", encoding_rs::WINDOWS_1250, 4), b"");
    }

    #[test]
    fn a_windows_1250_file_reads_as_its_utf8_text_and_keeps_its_own_hash() {
        let utf8 = locale_file(b';', true);
        let text = std::str::from_utf8(&utf8).expect("utf-8");
        let (legacy, _, lossy) = encoding_rs::WINDOWS_1250.encode(text);
        assert!(!lossy);
        let legacy = legacy.into_owned();
        let dir = std::env::temp_dir().join(format!("cvsurvey-csvlocale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        let path = dir.join("returns-1250.csv");
        std::fs::write(&path, &legacy).expect("write");
        let format = TextFormat {
            delimiter: Some(b';'),
            decimal_comma: true,
            encoding: Some(encoding_rs::WINDOWS_1250),
        };
        let (table, _) = read_csv(&path, &plan, &[], &format, true, &Silent).expect("read");
        assert_eq!(
            table.sha256,
            crate::ingest::hex_digest(sha2::Sha256::new_with_prefix(&legacy))
        );
        assert!(table.row_problems.is_empty(), "{:?}", table.row_problems);
        assert!(table.cell_problems.len() == 0);
        let legacy_cells = cells_of(table);
        let (expected, _) = read_as(&utf8, utf8.len() as u64, CUTS, &format).expect("utf-8 read");
        assert_eq!(legacy_cells, cells_of(expected));
        assert_eq!(legacy_cells[1].1[1].0.as_deref(), Some("Łódź"));
        // Without its fingerprint (`validate`): the same cells, no SHA-256, from either path.
        let (unhashed, _) = read_csv(&path, &plan, &[], &format, false, &Silent).expect("read");
        assert_eq!(unhashed.sha256, "");
        assert_eq!(cells_of(unhashed), legacy_cells);
        let utf8_path = dir.join("returns-utf8.csv");
        std::fs::write(&utf8_path, &utf8).expect("write");
        let utf8_format = TextFormat {
            encoding: None,
            ..format
        };
        let (unhashed, _) =
            read_csv(&utf8_path, &plan, &[], &utf8_format, false, &Silent).expect("read");
        assert_eq!(unhashed.sha256, "");
        assert_eq!(cells_of(unhashed), legacy_cells);
        // Read as UTF-8 (no key), the same file's accented rows are not text.
        let plain = TextFormat {
            encoding: None,
            ..format
        };
        let (table, _) = read_csv(&path, &plan, &[], &plain, true, &Silent).expect("read");
        assert!(table.row_problems.len() > 50);
        std::fs::remove_dir_all(&dir).ok();
    }
}
