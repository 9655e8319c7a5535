//! Validation findings, stored compactly.
//!
//! A file where most cells are invalid has more findings than rows (1.56 million in a 36,300-row
//! SPSS file), so a finding must not cost its texts. One finding is a 24-byte record: the row,
//! the column, the value and the reason as numbers into tables of distinct texts (a column has a
//! handful of distinct invalid values and reasons), kind and action as bytes. The id is a
//! property of the row, stored once per row with findings; the reason of a duplicate id, which
//! names the other rows, is written from the group of rows at write time.
//!
//! Why records in memory rather than a spill file: `findings.csv` is sorted by row, column and
//! kind, while validation finds them column by column (skip logic in parallel waves, design
//! checks, duplicate ids after a sort of all ids), so streaming them would need an external
//! sort; and `--strict`, the console, the run summary and the report read the first findings
//! and the counts before anything is written. 24 bytes per finding is 24 MB for a million.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use super::{Finding, FindingAction, FindingKind};

/// Marks a [`Record::reason`] that is an index into the duplicate-id groups, not a text.
const DUPLICATE_GROUP: u32 = 1 << 31;

/// Each reason of a duplicate id names at most this many other rows: one id on 50,000 rows
/// would otherwise write 50,000 row numbers into each of 50,000 reasons.
const LISTED: usize = 10;

/// One finding: texts as indexes into the tables of [`Findings`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Record {
    /// While validating: row index (0-based). Once finished: data row number (1-based; 0 for
    /// a finding about the file's dictionary).
    pub row: u64,
    /// Index into the column names.
    pub column: u32,
    /// Index into the texts.
    value: u32,
    /// Index into the texts, or a duplicate-id group when [`DUPLICATE_GROUP`] is set.
    reason: u32,
    pub kind: FindingKind,
    /// While validating, [`FindingAction::Blanked`] for a blanked cell and `Kept` otherwise;
    /// [`FindingsBuilder::finish`] sets the action of the rest from the kind.
    pub action: FindingAction,
}

/// Distinct texts numbered in order of first appearance.
#[derive(Debug, Clone, Default)]
struct Interner {
    index: HashMap<Box<str>, u32>,
}

impl Interner {
    fn intern(&mut self, text: &str) -> u32 {
        if let Some(&i) = self.index.get(text) {
            return i;
        }
        let i = u32::try_from(self.index.len())
            .ok()
            .filter(|&i| i < DUPLICATE_GROUP)
            .expect("fewer than 2^31 distinct finding texts (each finding is in memory)");
        self.index.insert(text.into(), i);
        i
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    /// The texts by number (the index is dropped: nothing is added any more).
    fn into_list(self) -> Vec<Box<str>> {
        let mut list: Vec<Option<Box<str>>> = vec![None; self.index.len()];
        for (text, i) in self.index {
            list[i as usize] = Some(text);
        }
        list.into_iter().map(Option::unwrap_or_default).collect()
    }

    /// Text by number, for the few look-ups made while validating.
    fn texts(&self) -> Vec<&str> {
        let mut list = vec![""; self.index.len()];
        for (text, &i) in &self.index {
            list[i as usize] = text;
        }
        list
    }
}

/// Findings as validation produces them, in any order.
#[derive(Debug, Default)]
pub(super) struct FindingsBuilder {
    pub records: Vec<Record>,
    columns: Interner,
    texts: Interner,
    /// Rows (0-based) of each group of duplicate ids, groups one after the other.
    duplicate_rows: Vec<u64>,
    /// End of each group in `duplicate_rows`.
    duplicate_ends: Vec<usize>,
}

impl FindingsBuilder {
    /// The number of a column name, for [`Record::column`].
    pub fn column(&mut self, name: &str) -> u32 {
        self.columns.intern(name)
    }

    /// The number of a reason, to push many findings with the same one.
    pub fn reason(&mut self, reason: &str) -> u32 {
        self.texts.intern(reason)
    }

    /// Column names by number.
    pub fn column_names(&self) -> Vec<&str> {
        self.columns.texts()
    }

    /// Room for `n` more findings.
    pub fn reserve(&mut self, n: usize) {
        self.records.reserve_exact(n);
    }

    /// A finding in row `row` (0-based) whose reason was numbered by [`FindingsBuilder::reason`].
    pub fn push_with(
        &mut self,
        row: usize,
        column: u32,
        value: &str,
        kind: FindingKind,
        reason: u32,
    ) {
        let value = self.texts.intern(value);
        if self.records.len() == self.records.capacity() {
            // Grow by an eighth, not double: a million findings would otherwise hold room for
            // two million at the run's peak memory.
            self.records
                .reserve_exact((self.records.len() / 8).max(1024));
        }
        self.records.push(Record {
            row: row as u64,
            column,
            value,
            reason,
            kind,
            action: FindingAction::Kept,
        });
    }

    /// A finding in row `row` (0-based).
    pub fn push(&mut self, row: usize, column: &str, value: &str, kind: FindingKind, reason: &str) {
        let (column, reason) = (self.column(column), self.reason(reason));
        self.push_with(row, column, value, kind, reason);
    }

    /// Mark the last finding pushed as a blanked cell.
    pub fn blank_last(&mut self) {
        if let Some(r) = self.records.last_mut() {
            r.action = FindingAction::Blanked;
        }
    }

    /// One group of rows (0-based, ascending) sharing the id `value`: a duplicate-id finding
    /// in each, whose reason names the other rows.
    pub fn push_duplicates(&mut self, rows: &[usize], column: &str, value: &str) {
        let group = u32::try_from(self.duplicate_ends.len())
            .ok()
            .filter(|&g| g < DUPLICATE_GROUP)
            .expect("fewer than 2^31 groups of duplicate ids");
        let column = self.column(column);
        for &r in rows {
            self.push_with(
                r,
                column,
                value,
                FindingKind::DuplicateId,
                DUPLICATE_GROUP | group,
            );
        }
        self.duplicate_rows.extend(rows.iter().map(|&r| r as u64));
        self.duplicate_ends.push(self.duplicate_rows.len());
    }

    /// Add `other`'s findings after these (renumbering its texts).
    pub fn append(&mut self, other: FindingsBuilder) {
        debug_assert!(other.duplicate_ends.is_empty(), "duplicates are found once");
        let columns: Vec<u32> = renumber(other.columns, &mut self.columns);
        let texts: Vec<u32> = renumber(other.texts, &mut self.texts);
        self.records.reserve_exact(other.records.len());
        self.records
            .extend(other.records.into_iter().map(|r| Record {
                column: columns[r.column as usize],
                value: texts[r.value as usize],
                reason: texts[r.reason as usize],
                ..r
            }));
    }

    /// The findings in row order (by column name and kind within a row, else in the order
    /// found), after `file_findings` (column, value, reason) about the file's dictionary, which
    /// keep their order; each row's id is written by `id_of` (row index, into).
    pub fn finish(
        mut self,
        file_findings: Vec<(String, String, String)>,
        mut id_of: impl FnMut(usize, &mut String),
    ) -> Findings {
        for r in &mut self.records {
            if r.action != FindingAction::Blanked && r.kind.quarantines() {
                r.action = FindingAction::Quarantined;
            }
        }
        // Rank of each column name, so that records sort by name as the file always did.
        let names = self.columns.texts();
        let mut by_name: Vec<u32> = (0..names.len() as u32).collect();
        by_name.sort_by_key(|&i| names[i as usize]);
        let mut rank = vec![0u32; names.len()];
        for (k, &i) in by_name.iter().enumerate() {
            rank[i as usize] = k as u32;
        }
        // Stable: findings of one row, column and kind keep the order they were found in.
        self.records
            .sort_by_key(|r| (r.row, rank[r.column as usize], r.kind));
        let mut ids = RowIds::default();
        let mut last = None;
        for r in &mut self.records {
            if last != Some(r.row) {
                last = Some(r.row);
                id_of(r.row as usize, &mut ids.text);
                ids.ends.push(ids.text.len());
            }
            r.row += 1;
        }
        let n_file = file_findings.len();
        let file: Vec<Record> = file_findings
            .into_iter()
            .map(|(column, value, reason)| Record {
                row: 0,
                column: self.columns.intern(&column),
                value: self.texts.intern(&value),
                reason: self.texts.intern(&reason),
                kind: FindingKind::UndeclaredLabel,
                action: FindingAction::Kept,
            })
            .collect();
        self.records.splice(0..0, file);
        let mut counts = BTreeMap::new();
        for r in &self.records {
            *counts.entry((r.kind, r.action)).or_insert(0) += 1;
        }
        self.records.shrink_to_fit();
        ids.text.shrink_to_fit();
        ids.ends.shrink_to_fit();
        Findings {
            records: self.records,
            n_file,
            columns: self.columns.into_list(),
            texts: self.texts.into_list(),
            ids,
            duplicate_rows: self.duplicate_rows,
            duplicate_ends: self.duplicate_ends,
            counts,
        }
    }

    /// Texts numbered so far.
    #[cfg(test)]
    fn n_texts(&self) -> usize {
        self.texts.len()
    }
}

/// Numbers in `to` of the texts of `from`, by their number in `from`.
fn renumber(from: Interner, to: &mut Interner) -> Vec<u32> {
    let mut map = vec![0u32; from.len()];
    for (text, i) in from.index {
        map[i as usize] = to.intern(&text);
    }
    map
}

/// The id of each row with findings, in row order.
#[derive(Debug, Clone, Default)]
struct RowIds {
    text: String,
    ends: Vec<usize>,
}

/// Every finding of a data file, in row order; those with action
/// [`FindingAction::Quarantined`] excluded their row.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    records: Vec<Record>,
    /// Findings about the file's dictionary, first (row 0, no id).
    n_file: usize,
    columns: Vec<Box<str>>,
    texts: Vec<Box<str>>,
    ids: RowIds,
    duplicate_rows: Vec<u64>,
    duplicate_ends: Vec<usize>,
    counts: BTreeMap<(FindingKind, FindingAction), usize>,
}

/// One finding, its texts borrowed from [`Findings`].
#[derive(Debug, Clone, PartialEq)]
pub struct FindingRef<'a> {
    /// Data row number, 1-based, header excluded; 0 for findings about the file's dictionary.
    pub row: u64,
    /// The row's id as written (empty when unreadable).
    pub id: &'a str,
    /// Column concerned (empty for whole-row problems).
    pub column: &'a str,
    /// The offending value as written.
    pub value: &'a str,
    /// What is wrong.
    pub kind: FindingKind,
    /// What is wrong, for a person: the valid codes or range, the skip rule, the other rows
    /// with the same id (made when read, hence owned for a duplicate id).
    pub reason: Cow<'a, str>,
    /// What was done: row kept, cell blanked, or row quarantined.
    pub action: FindingAction,
}

impl FindingRef<'_> {
    /// The finding with its own texts.
    pub fn into_owned(self) -> Finding {
        Finding {
            row: self.row,
            id: self.id.to_string(),
            column: self.column.to_string(),
            value: self.value.to_string(),
            kind: self.kind,
            reason: self.reason.into_owned(),
            action: self.action,
        }
    }
}

impl Findings {
    /// Number of findings.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when the file has no finding.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes held on the heap (records, texts, ids, duplicate groups), for the performance notes
    /// (`docs/performance.md`).
    pub fn heap_bytes(&self) -> usize {
        let texts = |list: &[Box<str>]| {
            std::mem::size_of_val(list) + list.iter().map(|t| t.len()).sum::<usize>()
        };
        self.records.capacity() * std::mem::size_of::<Record>()
            + texts(&self.columns)
            + texts(&self.texts)
            + self.ids.text.capacity()
            + self.ids.ends.capacity() * std::mem::size_of::<usize>()
            + self.duplicate_rows.capacity() * std::mem::size_of::<u64>()
            + self.duplicate_ends.capacity() * std::mem::size_of::<usize>()
    }

    /// Findings per kind and action (kept, blanked, quarantined).
    pub fn counts(&self) -> &BTreeMap<(FindingKind, FindingAction), usize> {
        &self.counts
    }

    /// The first finding.
    pub fn first(&self) -> Option<FindingRef<'_>> {
        self.iter().next()
    }

    /// The findings in order.
    pub fn iter(&self) -> impl Iterator<Item = FindingRef<'_>> + '_ {
        let mut row_index = 0usize;
        let mut last_row = 0u64;
        self.records.iter().enumerate().map(move |(i, r)| {
            let id = if i < self.n_file {
                ""
            } else {
                if i > self.n_file && r.row != last_row {
                    row_index += 1;
                }
                last_row = r.row;
                let start = if row_index == 0 {
                    0
                } else {
                    self.ids.ends[row_index - 1]
                };
                &self.ids.text[start..self.ids.ends[row_index]]
            };
            FindingRef {
                row: r.row,
                id,
                column: &self.columns[r.column as usize],
                value: &self.texts[r.value as usize],
                kind: r.kind,
                reason: self.reason(r),
                action: r.action,
            }
        })
    }

    fn reason(&self, r: &Record) -> Cow<'_, str> {
        if r.reason & DUPLICATE_GROUP == 0 {
            return Cow::Borrowed(&self.texts[r.reason as usize]);
        }
        let group = (r.reason & !DUPLICATE_GROUP) as usize;
        let start = if group == 0 {
            0
        } else {
            self.duplicate_ends[group - 1]
        };
        let rows = &self.duplicate_rows[start..self.duplicate_ends[group]];
        Cow::Owned(duplicate_reason(rows, r.row - 1))
    }
}

/// "id also on row(s) …": the other rows (0-based in `rows`, 1-based in the text) of `row`'s
/// group, at most [`LISTED`] of them.
fn duplicate_reason(rows: &[u64], row: u64) -> String {
    let mut others: Vec<String> = rows
        .iter()
        .filter(|&&o| o != row)
        .take(LISTED)
        .map(|o| (o + 1).to_string())
        .collect();
    let more = rows.len() - 1 - others.len();
    if more > 0 {
        others.push(format!("and {more} more"));
    }
    format!("id also on row(s) {}", others.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(row: usize, out: &mut String) {
        out.push_str(&format!("id{row}"));
    }

    #[test]
    fn findings_come_out_in_row_column_kind_order_with_their_row_ids() {
        let mut b = FindingsBuilder::default();
        b.push(2, "q2", "9", FindingKind::InvalidCode, "bad code");
        b.push(0, "w", "0", FindingKind::InvalidWeight, "bad weight");
        b.push(2, "q1", "7", FindingKind::InvalidCode, "bad code");
        b.push(2, "q1", "", FindingKind::ItemNonresponse, "blank");
        b.records[0].action = FindingAction::Blanked;
        let file = vec![("q1".to_string(), "5".to_string(), "label".to_string())];
        let f = b.finish(file, ids);
        let got: Vec<(u64, &str, &str, &str, FindingKind, FindingAction)> = f
            .iter()
            .map(|f| (f.row, f.id, f.column, f.value, f.kind, f.action))
            .collect();
        use FindingAction::*;
        use FindingKind::*;
        assert_eq!(
            got,
            [
                (0, "", "q1", "5", UndeclaredLabel, Kept),
                (1, "id0", "w", "0", InvalidWeight, Quarantined),
                (3, "id2", "q1", "7", InvalidCode, Quarantined),
                (3, "id2", "q1", "", ItemNonresponse, Kept),
                (3, "id2", "q2", "9", InvalidCode, Blanked),
            ]
        );
        assert_eq!(f.counts()[&(InvalidCode, Quarantined)], 1);
        assert_eq!(f.counts().values().sum::<usize>(), f.len());
    }

    #[test]
    fn repeated_values_and_reasons_are_stored_once() {
        let mut b = FindingsBuilder::default();
        for row in 0..1000 {
            b.push(
                row,
                "q1",
                "99",
                FindingKind::InvalidCode,
                "not a declared code",
            );
        }
        assert_eq!(b.n_texts(), 2);
        assert_eq!(std::mem::size_of::<Record>(), 24);
    }

    #[test]
    fn a_finding_costs_under_32_bytes_when_a_column_repeats_its_invalid_values() {
        // 100,000 findings, four per row in four columns, ids of six characters.
        let mut b = FindingsBuilder::default();
        for row in 0..25_000 {
            for (column, value) in [("q1", "7"), ("q2", "99"), ("age", "250"), ("q4", "")] {
                b.push(
                    row,
                    column,
                    value,
                    FindingKind::InvalidCode,
                    "not a declared code",
                );
            }
        }
        let f = b.finish(Vec::new(), |row, out| out.push_str(&format!("{:06}", row)));
        assert_eq!(f.len(), 100_000);
        let per_finding = f.heap_bytes() as f64 / f.len() as f64;
        assert!(per_finding < 32.0, "{per_finding} bytes per finding");
    }

    #[test]
    fn appended_findings_keep_their_texts() {
        let mut a = FindingsBuilder::default();
        a.push(0, "q1", "7", FindingKind::InvalidCode, "code");
        let mut b = FindingsBuilder::default();
        b.push(1, "q2", "", FindingKind::ItemNonresponse, "blank");
        b.push(2, "q1", "7", FindingKind::InvalidCode, "code");
        a.append(b);
        let f = a.finish(Vec::new(), ids);
        let got: Vec<(u64, &str, &str, String)> = f
            .iter()
            .map(|f| (f.row, f.column, f.value, f.reason.into_owned()))
            .collect();
        assert_eq!(
            got,
            [
                (1, "q1", "7", "code".to_string()),
                (2, "q2", "", "blank".to_string()),
                (3, "q1", "7", "code".to_string()),
            ]
        );
    }

    #[test]
    fn a_duplicate_id_names_at_most_ten_other_rows() {
        let mut b = FindingsBuilder::default();
        let rows: Vec<usize> = (0..13).collect();
        b.push_duplicates(&rows, "id", "A");
        b.push_duplicates(&[20, 30], "id", "B");
        let f = b.finish(Vec::new(), ids);
        let reasons: Vec<String> = f.iter().map(|f| f.reason.into_owned()).collect();
        assert_eq!(
            reasons[0],
            "id also on row(s) 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, and 2 more"
        );
        assert_eq!(reasons[13], "id also on row(s) 31");
        assert_eq!(reasons[14], "id also on row(s) 21");
        assert!(f.iter().all(|f| f.action == FindingAction::Quarantined));
    }
}
