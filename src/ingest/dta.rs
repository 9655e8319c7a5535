//! Stata `.dta` files (releases 113–119, i.e. Stata 8 and later), read with the `dta` crate:
//! a pure-Rust streaming reader. Rows are decoded one at a time, only for the loaded columns.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::Path;

use dta::stata::dta::dta_error::{DtaError, FormatErrorKind, Section};
use dta::stata::dta::dta_reader::DtaReader;
use dta::stata::dta::long_string_table::LongStringTable;
use dta::stata::dta::record_reader::RecordReader;
use dta::stata::dta::value::Value;
use dta::stata::dta::value_label_table::ValueLabelTable;
use dta::stata::dta::variable_type::VariableType;
use dta::stata::missing_value::MissingValue;

use super::dictionary::{FileCode, FileDictionary, FileType, FileVariable, Observed};
use super::stat_sink::{StatCell, StatSink};
use super::{ColumnPlan, IngestError, RawTable, input_sha256};

/// Oldest release read: 113 (Stata 8 and 9), the first with extended missing values `.a`–`.z`
/// and the oldest that ReadStat-based tools (R haven, pyreadstat) still write, so the oldest this
/// reader is tested on. Releases 105–112 (Stata 5–7) are refused with the ways to convert them.
const OLDEST: u8 = 113;

/// Stata stores value labels of `.`, `.a`, … `.z` as these 32-bit integers.
const LONG_MISSING_SYSTEM: i32 = 2_147_483_621;

fn malformed(path: &Path, e: &DtaError) -> IngestError {
    let truncated_in = match e {
        DtaError::Io { section, source } if source.kind() == std::io::ErrorKind::UnexpectedEof => {
            Some(*section)
        }
        DtaError::Format(f) if matches!(f.kind(), FormatErrorKind::Truncated { .. }) => {
            Some(f.section())
        }
        _ => None,
    };
    let message = match truncated_in {
        Some(section) => {
            let size = std::fs::metadata(path)
                .map(|m| format!("{} bytes", m.len()))
                .unwrap_or_else(|_| "shorter than it says".into());
            format!(
                "truncated: the file is {size} and ends before the end of {}; it was cut short \
                 (an interrupted download or copy?): get the complete file again",
                section_name(section)
            )
        }
        None => e.to_string(),
    };
    IngestError::Malformed {
        path: path.to_path_buf(),
        format: "Stata .dta",
        message,
    }
}

/// The Stata version that wrote a release.
fn stata_of(release: u8) -> &'static str {
    match release {
        0..=104 => "Stata 4 or older",
        105..=107 => "Stata 5",
        108..=109 => "Stata 6",
        110..=111 => "Stata 7",
        _ => "Stata 8",
    }
}

/// A section of a `.dta` file, as a user can picture it.
fn section_name(section: Section) -> &'static str {
    match section {
        Section::Header => "the header (release, byte order, numbers of variables and rows)",
        Section::Schema => "the variable descriptions (types, names, formats, labels)",
        Section::Characteristics => "the characteristics (notes and other metadata)",
        Section::Records => "the data rows",
        Section::ValueLabels => "the value labels (after the data rows)",
        Section::LongStrings => "the long strings (strL)",
        _ => "a section of the file",
    }
}

fn letter(m: MissingValue) -> Option<char> {
    match m {
        MissingValue::System => None,
        other => Some(char::from(b'a' + other.code() - 1)),
    }
}

/// Open the file and read header, schema, value labels and (when present) strLs, leaving a
/// record reader positioned at the first row.
struct Opened {
    records: RecordReader<BufReader<File>>,
    dict: FileDictionary,
    long_strings: Option<LongStringTable>,
}

fn open(path: &Path, want_long_strings: bool) -> Result<Opened, IngestError> {
    let io = |e: std::io::Error| IngestError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut file = File::open(path).map_err(io)?;
    super::dta_lengths::check(&mut file).map_err(|message| IngestError::Malformed {
        path: path.to_path_buf(),
        format: "Stata .dta",
        message,
    })?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let header_reader = DtaReader::new().from_file(file);
    let schema_reader = header_reader
        .read_header()
        .map_err(|e| malformed(path, &e))?;
    let header = schema_reader.header().clone();
    let release: u8 = header.release().to_string().parse().unwrap_or(0);
    if release < OLDEST {
        return Err(IngestError::Malformed {
            path: path.to_path_buf(),
            format: "Stata .dta",
            message: format!(
                "format release {release} ({}) is older than cvsurvey reads (release 113, Stata 8, \
                 and later); convert the file: open it in Stata and `save` it again (Stata 14 \
                 and later write release 118; `saveold new.dta, version(13)` writes 117), or in \
                 R (value labels kept): `haven::write_dta(haven::read_dta(\"old.dta\"), \
                 \"new.dta\")`",
                stata_of(release)
            ),
        });
    }
    let mut characteristics = schema_reader
        .read_schema()
        .map_err(|e| malformed(path, &e))?;
    characteristics
        .skip_to_end()
        .map_err(|e| malformed(path, &e))?;
    let records = characteristics
        .into_record_reader()
        .map_err(|e| malformed(path, &e))?;
    let schema = records.schema().clone();

    let mut labels = ValueLabelTable::new();
    let mut label_reader = records
        .seek_value_labels()
        .map_err(|e| malformed(path, &e))?;
    label_reader
        .read_remaining_into(&mut labels)
        .map_err(|e| malformed(path, &e))?;
    let has_strl = schema
        .variables()
        .iter()
        .any(|v| v.variable_type() == VariableType::LongString);
    let (records, long_strings) = if want_long_strings && has_strl {
        let mut ls = label_reader
            .seek_long_strings()
            .map_err(|e| malformed(path, &e))?;
        let mut table = LongStringTable::for_reading();
        ls.read_remaining_into(&mut table)
            .map_err(|e| malformed(path, &e))?;
        (
            ls.seek_records().map_err(|e| malformed(path, &e))?,
            Some(table),
        )
    } else {
        (
            label_reader
                .seek_records()
                .map_err(|e| malformed(path, &e))?,
            None,
        )
    };

    let fix = |s: &str| -> String {
        if release < 118 {
            legacy_text(s).into_owned()
        } else {
            s.to_string()
        }
    };
    let variables = schema
        .variables()
        .iter()
        .map(|v| {
            let file_type = match v.variable_type() {
                VariableType::Byte | VariableType::Int | VariableType::Long => {
                    FileType::Numeric { integer: true }
                }
                VariableType::Float | VariableType::Double => FileType::Numeric { integer: false },
                VariableType::FixedString(w) => FileType::Text {
                    width: usize::from(w),
                },
                VariableType::LongString => FileType::Text {
                    width: 2_000_000_000,
                },
            };
            let value_labels = if v.value_label_name().is_empty() {
                Vec::new()
            } else {
                labels
                    .get(v.value_label_name())
                    .map(|set| {
                        set.entries()
                            .iter()
                            .filter_map(|e| {
                                let value = e.value();
                                let code = if value > LONG_MISSING_SYSTEM {
                                    let k = (value - LONG_MISSING_SYSTEM) as u8;
                                    FileCode::Extended(char::from(b'a' + k - 1))
                                } else if value == LONG_MISSING_SYSTEM {
                                    return None;
                                } else {
                                    FileCode::Num(f64::from(value))
                                };
                                Some((code, fix(e.label())))
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            };
            FileVariable {
                name: v.name().to_string(),
                label: fix(v.label()),
                file_type,
                value_labels,
                missing: Vec::new(),
            }
        })
        .collect();
    let dict = FileDictionary {
        format: "Stata",
        version: release.to_string(),
        label: fix(header.dataset_label()),
        variables,
        rows: Some(header.observation_count()),
    };
    Ok(Opened {
        records,
        dict,
        long_strings,
    })
}

/// Read the dictionary of a `.dta` file (no rows).
pub(crate) fn read_dictionary(path: &Path) -> Result<FileDictionary, IngestError> {
    open(path, false).map(|o| o.dict)
}

/// Read a Stata `.dta` file, streaming rows into the planned columns.
pub(crate) fn read_dta(
    path: &Path,
    plan: &dyn Fn(&str) -> ColumnPlan,
) -> Result<RawTable, IngestError> {
    let sha256 = input_sha256(path)?;
    let sink = stream(path, &|dict| StatSink::new(path, dict, plan))?;
    sink.finish(sha256)
}

/// Read every row of a `.dta` file and say what each variable holds.
pub(crate) fn observe(path: &Path) -> Result<Vec<Observed>, IngestError> {
    Ok(stream(path, &|dict| Ok(StatSink::observer(path, dict)))?.into_observed())
}

/// Read the rows of a file into the sink that `make_sink` sets up for its dictionary.
fn stream(
    path: &Path,
    make_sink: &dyn Fn(&FileDictionary) -> Result<StatSink, IngestError>,
) -> Result<StatSink, IngestError> {
    let Opened {
        mut records,
        dict,
        long_strings,
    } = open(path, true)?;
    let mut sink = make_sink(&dict)?;
    let wanted: Vec<usize> = (0..dict.variables.len())
        .filter(|&i| sink.wants(i))
        .collect();
    let expected = dict.rows.unwrap_or(0);
    let encoding = records.encoding();
    let legacy = dict.version.parse::<u8>().is_ok_and(|r| r < 118);
    loop {
        let row = sink.rows();
        let record = records.read_lazy_record().map_err(|e| {
            let mut err = malformed(path, &e);
            if let IngestError::Malformed { message, .. } = &mut err {
                *message = format!("row {}: {message}", row + 1);
            }
            err
        })?;
        let Some(record) = record else { break };
        for &i in &wanted {
            let value = record.value(i).map_err(|e| IngestError::Malformed {
                path: path.to_path_buf(),
                format: "Stata .dta",
                message: format!("row {}, variable {}: {e}", row + 1, dict.variables[i].name),
            })?;
            match value {
                Value::Byte(v) => push_num(&mut sink, i, v.present().map(f64::from), v),
                Value::Int(v) => push_num(&mut sink, i, v.present().map(f64::from), v),
                Value::Long(v) => push_num(&mut sink, i, v.present().map(f64::from), v),
                Value::Float(v) => push_num(&mut sink, i, v.present().map(f64::from), v),
                Value::Double(v) => push_num(&mut sink, i, v.present(), v),
                Value::String(s) if legacy => sink.push(i, StatCell::Str(&legacy_text(&s))),
                Value::String(s) => sink.push(i, StatCell::Str(&s)),
                Value::LongStringRef(r) => {
                    let text = long_strings
                        .as_ref()
                        .and_then(|t| t.get(&r))
                        .map(|ls| {
                            let (s, _, _) = encoding.decode(ls.data());
                            s.trim_end_matches('\0').to_string()
                        })
                        .unwrap_or_default();
                    sink.push(i, StatCell::Str(&text));
                }
            }
        }
        sink.end_row();
    }
    if (sink.rows() as u64) < expected {
        let size = std::fs::metadata(path)
            .map(|m| format!(" (the file is {} bytes)", m.len()))
            .unwrap_or_default();
        return Err(IngestError::Malformed {
            path: path.to_path_buf(),
            format: "Stata .dta",
            message: format!(
                "truncated: the header announces {expected} rows, the file holds {}{size}; it was \
                 cut short (an interrupted download or copy?): get the complete file again",
                sink.rows()
            ),
        });
    }
    Ok(sink)
}

/// Text of a pre-118 file. Stata wrote those in Windows-1252/Latin-1, which is how the reader
/// decodes them, but other writers (ReadStat, hence pyreadstat and haven) put UTF-8 there: when
/// the original bytes are valid UTF-8 with non-ASCII characters, they are read as UTF-8.
fn legacy_text(decoded: &str) -> std::borrow::Cow<'_, str> {
    if decoded.is_ascii() {
        return std::borrow::Cow::Borrowed(decoded);
    }
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(decoded);
    if !unmappable && let Ok(utf8) = std::str::from_utf8(&bytes) {
        return std::borrow::Cow::Owned(utf8.to_string());
    }
    std::borrow::Cow::Borrowed(decoded)
}

/// A Stata number or one of its missing values.
trait StataNumber {
    fn missing_value(&self) -> Option<MissingValue>;
}

macro_rules! stata_number {
    ($($t:ty),*) => {$(
        impl StataNumber for $t {
            fn missing_value(&self) -> Option<MissingValue> {
                match self {
                    Self::Missing(m) => Some(*m),
                    _ => None,
                }
            }
        }
    )*};
}
stata_number!(
    dta::stata::stata_byte::StataByte,
    dta::stata::stata_int::StataInt,
    dta::stata::stata_long::StataLong,
    dta::stata::stata_float::StataFloat,
    dta::stata::stata_double::StataDouble
);

fn push_num(sink: &mut StatSink, i: usize, present: Option<f64>, v: impl StataNumber) {
    let cell = match (present, v.missing_value()) {
        (Some(x), _) => StatCell::Num(x),
        (None, Some(m)) => match letter(m) {
            Some(c) => StatCell::Extended(c),
            None => StatCell::SysMissing,
        },
        (None, None) => StatCell::SysMissing,
    };
    sink.push(i, cell);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::builder::CellRules;

    fn demo() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/statfiles/demo.dta")
    }

    #[test]
    fn dictionary_of_the_demo_file() {
        let d = read_dictionary(&demo()).expect("dictionary");
        assert_eq!(d.format, "Stata");
        assert_eq!(d.rows, Some(20028));
        let v = d
            .variables
            .iter()
            .find(|v| v.name == "bribe_police")
            .expect("bribe_police");
        assert_eq!(v.label_of(&FileCode::Num(1.0)), Some("Yes"));
        assert_eq!(v.label_of(&FileCode::Num(8.0)), Some("Don't know"));
    }

    #[test]
    fn releases_114_and_113_are_read_and_112_refused() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/statfiles");
        let t = read_dta(&dir.join("small_v114.dta"), &|_| ColumnPlan::Inferred).expect("114");
        assert_eq!(t.n_rows, 3);
        let cols: Vec<_> = t.builders.into_iter().map(|b| b.finish()).collect();
        let show = |i: usize| -> Vec<Option<String>> {
            (0..cols[i].len()).map(|r| cols[i].display(r)).collect()
        };
        assert_eq!(show(1), [Some("1".into()), Some("8".into()), None]);
        assert_eq!(show(2)[0].as_deref(), Some("Zoë"));
        let t = read_dta(&dir.join("small_v113.dta"), &|_| ColumnPlan::Inferred).expect("113");
        let cols: Vec<_> = t.builders.into_iter().map(|b| b.finish()).collect();
        let show = |i: usize| -> Vec<Option<String>> {
            (0..cols[i].len()).map(|r| cols[i].display(r)).collect()
        };
        assert_eq!(show(1), [Some("1".into()), Some("8".into()), None]);
        assert_eq!(show(2)[0].as_deref(), Some("Zoë"));
        let d = read_dictionary(&dir.join("small_v113.dta")).expect("113 dictionary");
        assert_eq!(d.version, "113");
        assert_eq!(d.variables[1].label_of(&FileCode::Num(8.0)), Some("DK"));

        let mut bytes = std::fs::read(dir.join("small_v113.dta")).expect("113");
        bytes[0] = 112;
        let tmp = std::env::temp_dir().join(format!("cvsurvey-v112-{}.dta", std::process::id()));
        std::fs::write(&tmp, &bytes).expect("write");
        let e = read_dta(&tmp, &|_| ColumnPlan::Inferred)
            .err()
            .expect("112 refused");
        let _ = std::fs::remove_file(&tmp);
        assert!(
            e.to_string().contains("release 112") && e.to_string().contains("Stata 8"),
            "{e}"
        );
    }

    #[test]
    fn truncated_files_are_errors_not_panics() {
        let bytes = std::fs::read(demo()).expect("demo");
        let dir = std::env::temp_dir().join(format!("cvsurvey-dta-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        for cut in [
            0usize,
            10,
            100,
            1000,
            5000,
            bytes.len() / 2,
            bytes.len() - 30,
        ] {
            let p = dir.join(format!("cut{cut}.dta"));
            std::fs::write(&p, &bytes[..cut]).expect("write");
            let r = read_dta(&p, &|_| ColumnPlan::Declared(CellRules::free(true)));
            let e = r.err().unwrap_or_else(|| panic!("cut at {cut} must fail"));
            let msg = e.to_string();
            assert!(msg.contains(&format!("cut{cut}.dta")), "{msg}");
            // Said plainly, with the size, rather than as an I/O error.
            assert!(
                msg.contains("truncated") && msg.contains(&format!("{cut} bytes")),
                "{msg}"
            );
        }
        let mut bad = bytes.clone();
        bad[29] = b'0'; // release "118" -> "108"
        let p = dir.join("old.dta");
        std::fs::write(&p, &bad).expect("write");
        let e = read_dta(&p, &|_| ColumnPlan::Ignore).err().expect("fails");
        assert!(e.to_string().contains("old.dta"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
