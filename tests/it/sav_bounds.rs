//! Hostile SPSS files, made here from the shipped fixtures by editing the zlib trailer, the
//! header's case count or the bytecode: decompression bombs and files whose data go on past
//! what they declare. Each must be refused at once with a one-line message naming the file and
//! the block or case, and a valid file cut into many blocks must still read as the original
//! (docs/reliability.md, "Bounds").

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use cvsurvey::ingest::statfile::observe;
use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;

use crate::common::{cvs_core, demo_ingest_spec, root, scratch};

/// The block size SPSS and ReadStat write (4 MiB less 4 KiB).
const SPSS_BLOCK_SIZE: usize = 0x3ff000;

fn i64_at(bytes: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn i32_at(bytes: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(data).expect("deflate");
    z.finish().expect("deflate")
}

/// One block descriptor of a zlib trailer.
#[derive(Debug, Clone, Copy)]
struct Descriptor {
    uncompressed_ofs: i64,
    compressed_ofs: i64,
    uncompressed_size: i32,
    compressed_size: i32,
}

/// A `.zsav` fixture taken apart: the bytes before its zlib header (file header and
/// dictionary) and its case data inflated (the bytecode stream).
#[derive(Clone)]
struct Spss {
    head: Vec<u8>,
    data: Vec<u8>,
}

impl Spss {
    fn open(name: &str) -> Spss {
        let bytes = std::fs::read(root().join("fixtures/statfiles").join(name)).expect(name);
        assert_eq!(&bytes[..4], b"$FL3", "{name} is a .zsav");
        assert_eq!(i32_at(&bytes, 64), 2, "{name} is little-endian");
        // The zlib header is the only place where an offset points at itself, followed by a
        // trailer that ends the file.
        let zheader = (176..bytes.len() - 24)
            .find(|&i| {
                i64_at(&bytes, i) == i as i64
                    && i64_at(&bytes, i + 8) + i64_at(&bytes, i + 16) == bytes.len() as i64
            })
            .expect("zlib header");
        let trailer = i64_at(&bytes, zheader + 8) as usize;
        let n_blocks = i32_at(&bytes, trailer + 20) as usize;
        let mut data = Vec::new();
        for k in 0..n_blocks {
            let at = trailer + 24 + 24 * k;
            let offset = i64_at(&bytes, at + 8) as usize;
            let size = i32_at(&bytes, at + 20) as usize;
            ZlibDecoder::new(&bytes[offset..offset + size])
                .read_to_end(&mut data)
                .expect("inflate");
        }
        Spss {
            head: bytes[..zheader].to_vec(),
            data,
        }
    }

    /// The same with another case count in the header (-1: unknown).
    fn with_cases(mut self, n: i32) -> Spss {
        self.head[80..84].copy_from_slice(&n.to_le_bytes());
        self
    }

    /// The same with other case data.
    fn with_data(mut self, data: Vec<u8>) -> Spss {
        self.data = data;
        self
    }

    /// The case data cut into blocks of `block_size`, deflated, and their valid descriptors.
    fn blocks(&self, block_size: usize) -> (Vec<u8>, Vec<Descriptor>) {
        self.blocks_with(block_size, |_, chunk| chunk.to_vec())
    }

    /// The same, but block `k` holds `content(k, chunk)` while its descriptor still declares
    /// the chunk's size.
    fn blocks_with(
        &self,
        block_size: usize,
        content: impl Fn(usize, &[u8]) -> Vec<u8>,
    ) -> (Vec<u8>, Vec<Descriptor>) {
        let zheader = self.head.len() as i64;
        let mut payload = Vec::new();
        let mut descriptors = Vec::new();
        let mut uncompressed_ofs = zheader;
        for (k, chunk) in self.data.chunks(block_size).enumerate() {
            let z = deflate(&content(k, chunk));
            descriptors.push(Descriptor {
                uncompressed_ofs,
                compressed_ofs: zheader + 24 + payload.len() as i64,
                uncompressed_size: chunk.len() as i32,
                compressed_size: z.len() as i32,
            });
            uncompressed_ofs += chunk.len() as i64;
            payload.extend(z);
        }
        (payload, descriptors)
    }

    /// A `.zsav` file: zlib header, `payload`, then a trailer listing `descriptors`.
    fn assemble(&self, payload: &[u8], descriptors: &[Descriptor], block_size: usize) -> Vec<u8> {
        let zheader = self.head.len() as i64;
        let trailer_ofs = zheader + 24 + payload.len() as i64;
        let trailer_len = 24 + 24 * descriptors.len() as i64;
        let mut out = self.head.clone();
        for x in [zheader, trailer_ofs, trailer_len] {
            out.extend(x.to_le_bytes());
        }
        out.extend(payload);
        out.extend((-100i64).to_le_bytes());
        out.extend(0i64.to_le_bytes());
        out.extend((block_size as i32).to_le_bytes());
        out.extend((descriptors.len() as i32).to_le_bytes());
        for d in descriptors {
            out.extend(d.uncompressed_ofs.to_le_bytes());
            out.extend(d.compressed_ofs.to_le_bytes());
            out.extend(d.uncompressed_size.to_le_bytes());
            out.extend(d.compressed_size.to_le_bytes());
        }
        out
    }

    /// A valid `.zsav` file of these cases in blocks of `block_size`.
    fn zsav(&self, block_size: usize) -> Vec<u8> {
        let (payload, descriptors) = self.blocks(block_size);
        self.assemble(&payload, &descriptors, block_size)
    }

    /// A bytecode-compressed `.sav` file of the same dictionary and cases.
    fn sav(&self) -> Vec<u8> {
        let mut out = self.head.clone();
        out[..4].copy_from_slice(b"$FL2");
        out[72..76].copy_from_slice(&1i32.to_le_bytes());
        out.extend(&self.data);
        out
    }
}

/// The bytecode stream of `data` without its end-of-data code 252 (turned into a no-op 0), so
/// that whatever is appended reads as more values.
fn without_end_code(data: &[u8]) -> Vec<u8> {
    let mut data = data.to_vec();
    let mut at = 0;
    while at + 8 <= data.len() {
        let block = at;
        at += 8;
        for k in 0..8 {
            match data[block + k] {
                252 => {
                    data[block + k] = 0;
                    return data;
                }
                253 => at += 8,
                _ => {}
            }
        }
    }
    panic!("no end-of-data code in the stream")
}

/// Write `bytes` as `name` in the scratch folder `dir`.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

/// The error reading `path` case by case (as `questionnaire import` does), checked to be one
/// line naming the file.
fn refusal(path: &Path) -> String {
    let e = observe(path)
        .map(|_| ())
        .expect_err("a hostile file must be refused");
    let message = e.to_string();
    let name = path.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(
        message.contains(name) && message.contains("not a readable SPSS file"),
        "{message}"
    );
    assert!(!message.contains('\n'), "one line: {message}");
    message
}

/// The same refusal when the file is ingested for a run (a demo-survey file, read with the
/// shipped questionnaire).
fn refusal_on_ingest(path: &Path) -> String {
    let message = refusal(path);
    let e = cvsurvey::ingest::read(&demo_ingest_spec(path.to_path_buf()), &cvs_core())
        .map(|_| ())
        .expect_err("refused when ingested too");
    assert_eq!(e.to_string(), message);
    message
}

#[test]
fn a_zsav_cut_into_many_small_blocks_reads_like_the_original() {
    let dir = scratch("sav-bounds-blocks");
    let demo = Spss::open("demo.zsav");
    // 28 blocks of 64 KiB, the last one shorter; a whole-block file and a bytecode .sav too.
    let many = write(&dir, "many.zsav", &demo.zsav(1 << 16));
    let one = write(&dir, "one.zsav", &demo.zsav(SPSS_BLOCK_SIZE));
    let sav = write(&dir, "bytecode.sav", &demo.sav());
    let q = cvs_core();
    let original = root().join("fixtures/statfiles/demo.zsav");
    let want = cvsurvey::ingest::read(&demo_ingest_spec(original.clone()), &q).expect("demo.zsav");
    for path in [many, one, sav] {
        let got = cvsurvey::ingest::read(&demo_ingest_spec(path.clone()), &q).expect("valid file");
        assert_eq!(got.rows_read, want.rows_read, "{}", path.display());
        for column in want.frame.columns() {
            let other = got.frame.column(&column.name).expect("same columns");
            assert_eq!(column.state, other.state, "{}", column.name);
            for r in 0..column.len() {
                assert_eq!(column.display(r), other.display(r), "{} {r}", column.name);
            }
        }
        assert_eq!(
            observe(&path).expect("observe").1,
            observe(&original).expect("observe").1
        );
    }
    // A header that does not give the number of cases (-1) reads the same rows.
    let unknown = write(
        &dir,
        "unknown.zsav",
        &demo.clone().with_cases(-1).zsav(1 << 16),
    );
    let got = cvsurvey::ingest::read(&demo_ingest_spec(unknown), &q).expect("unknown count");
    assert_eq!(got.rows_read, want.rows_read);
    let unknown_sav = write(&dir, "unknown.sav", &demo.with_cases(-1).sav());
    let got = cvsurvey::ingest::read(&demo_ingest_spec(unknown_sav), &q).expect("unknown count");
    assert_eq!(got.rows_read, want.rows_read);
}

#[test]
fn a_block_that_inflates_past_its_declared_size_is_refused() {
    let dir = scratch("sav-bounds-long");
    // small.zsav's one block declared 8 bytes short of the 520 it holds.
    let small = Spss::open("small.zsav");
    let (payload, mut d) = small.blocks(SPSS_BLOCK_SIZE);
    d[0].uncompressed_size -= 8;
    let e = refusal(&write(
        &dir,
        "short.zsav",
        &small.assemble(&payload, &d, SPSS_BLOCK_SIZE),
    ));
    assert!(
        e.contains(&format!(
            "case 3: zlib block 1 of 1 ({} compressed bytes at byte 2033) inflates to more than the 512 bytes the zlib trailer declares for it",
            d[0].compressed_size
        )),
        "{e}"
    );
    // The bomb: the third of 29 blocks of the demo holds its 64 KiB, then 16 MiB of zeros
    // (no-op codes), a few kB compressed; its descriptor still says 64 KiB.
    let demo = Spss::open("demo.zsav");
    let block = 1 << 16;
    let (payload, d) = demo.blocks_with(block, |k, chunk| {
        let mut content = chunk.to_vec();
        if k == 2 {
            content.resize(chunk.len() + (16 << 20), 0);
        }
        content
    });
    let e = refusal_on_ingest(&write(
        &dir,
        "bomb.zsav",
        &demo.assemble(&payload, &d, block),
    ));
    assert!(
        e.contains(&format!(
            "zlib block 3 of 29 ({} compressed bytes at byte {}) inflates to more than the 65536 bytes",
            d[2].compressed_size, d[2].compressed_ofs
        )),
        "{e}"
    );
    assert!(e.contains(": case "), "names the case being read: {e}");
}

#[test]
fn a_block_that_inflates_short_of_its_declared_size_is_refused() {
    let dir = scratch("sav-bounds-short");
    // The last block of small.zsav declared 8 bytes longer than it is.
    let small = Spss::open("small.zsav");
    let (payload, mut d) = small.blocks(SPSS_BLOCK_SIZE);
    d[0].uncompressed_size += 8;
    let e = refusal(&write(
        &dir,
        "long.zsav",
        &small.assemble(&payload, &d, SPSS_BLOCK_SIZE),
    ));
    assert!(
        e.contains(&format!(
            "after case 3: zlib block 1 of 1 ({} compressed bytes at byte 2033) inflates to 520 bytes, but the zlib trailer declares 528 for it",
            d[0].compressed_size
        )),
        "{e}"
    );
    // A middle block whose zlib stream holds 60,000 of the 65,536 bytes it declares.
    let demo = Spss::open("demo.zsav");
    let block = 1 << 16;
    let (payload, descriptors) = demo.blocks_with(block, |k, chunk| {
        if k == 1 {
            chunk[..60_000].to_vec()
        } else {
            chunk.to_vec()
        }
    });
    let e = refusal_on_ingest(&write(
        &dir,
        "cut.zsav",
        &demo.assemble(&payload, &descriptors, block),
    ));
    assert!(
        e.contains("zlib block 2 of 29 (")
            && e.contains("inflates to 60000 bytes, but the zlib trailer declares 65536 for it"),
        "{e}"
    );
}

#[test]
fn a_trailer_that_lists_a_block_twice_is_refused_before_anything_is_inflated() {
    let dir = scratch("sav-bounds-twice");
    let demo = Spss::open("demo.zsav");
    let block = 1 << 16;
    let (payload, valid) = demo.blocks(block);
    let mut twice = valid.clone();
    twice[1] = twice[0];
    let e = refusal_on_ingest(&write(
        &dir,
        "twice.zsav",
        &demo.assemble(&payload, &twice, block),
    ));
    assert!(
        e.contains(&format!(
            "zlib trailer: block 2 of 29 starts at byte {}, but block 1 ends at byte {}; blocks must follow one another",
            valid[0].compressed_ofs, valid[1].compressed_ofs
        )),
        "{e}"
    );
    // What ran for hours: one 4 MiB block of zeros (no-op codes), 4 kB compressed, listed
    // 2,000 times (8 GiB to inflate).
    let zeros = deflate(&vec![0u8; SPSS_BLOCK_SIZE]);
    let zheader = demo.head.len() as i64;
    let many: Vec<Descriptor> = (0..2000)
        .map(|k| Descriptor {
            uncompressed_ofs: zheader + k * SPSS_BLOCK_SIZE as i64,
            compressed_ofs: zheader + 24,
            uncompressed_size: SPSS_BLOCK_SIZE as i32,
            compressed_size: zeros.len() as i32,
        })
        .collect();
    let e = refusal_on_ingest(&write(
        &dir,
        "hours.zsav",
        &demo.assemble(&zeros, &many, SPSS_BLOCK_SIZE),
    ));
    assert!(
        e.contains("block 2 of 2000 starts at byte"),
        "refused at the first repeat: {e}"
    );
}

#[test]
fn bytecode_that_goes_on_past_the_announced_cases_is_refused_at_the_first_extra_case() {
    let dir = scratch("sav-bounds-rows");
    let small = Spss::open("small.zsav");
    // small.zsav holds 3 cases; a header that announces 1 (the .sav, and the .zsav in blocks
    // small enough that the trailer allows them).
    let e = refusal(&write(&dir, "one.sav", &small.clone().with_cases(1).sav()));
    assert!(
        e.contains("case 2: the header announces 1 cases, but the compressed data go on"),
        "{e}"
    );
    // The row bomb: 3 cases announced, then 8 MiB of code 255 (a missing value each, from
    // nothing). In a .sav the stream itself is refused at case 4.
    let mut endless = without_end_code(&small.data);
    endless.resize(endless.len() + (8 << 20), 255);
    let bomb = small.clone().with_data(endless);
    let e = refusal(&write(&dir, "bomb.sav", &bomb.sav()));
    assert!(
        e.contains("case 4: the header announces 3 cases, but the compressed data go on"),
        "{e}"
    );
    // In a .zsav the trailer already declares more than 3 cases can need (8 kB compressed).
    let e = refusal(&write(&dir, "bomb.zsav", &bomb.zsav(SPSS_BLOCK_SIZE)));
    assert!(
        e.contains(
            "the zlib blocks hold 8389128 bytes of case data, more than the 3 cases the header announces can need (43 values a case: at most 1208 bytes"
        ),
        "{e}"
    );
    // And one case more than announced, within what the trailer allows: refused at that case.
    let mut six = without_end_code(&small.data);
    six.extend(small.data.clone());
    let e = refusal(&write(
        &dir,
        "six.zsav",
        &small.with_data(six).zsav(SPSS_BLOCK_SIZE),
    ));
    assert!(
        e.contains("case 4: the header announces 3 cases, but the compressed data go on"),
        "{e}"
    );
}

#[test]
fn a_zsav_without_a_case_count_may_not_inflate_past_100_to_1() {
    let dir = scratch("sav-bounds-unknown");
    let small = Spss::open("small.zsav").with_cases(-1);
    // Its own 3 cases read as with the count.
    let fine = write(&dir, "fine.zsav", &small.zsav(SPSS_BLOCK_SIZE));
    let original = root().join("fixtures/statfiles/small.zsav");
    assert_eq!(
        observe(&fine).expect("3 cases").1,
        observe(&original).expect("3 cases").1
    );
    // 20 MB of code 255 in 20 kB: 20 million missing values without a count.
    let bomb = small.with_data(vec![255u8; 20_000_000]);
    let e = refusal(&write(&dir, "bomb.zsav", &bomb.zsav(20_000_000)));
    assert!(
        e.contains("the header does not give the number of cases, and the zlib blocks inflate")
            && e.contains("bytes of case data to 20000000, more than the 100:1 accepted"),
        "{e}"
    );
}

#[test]
fn a_header_announcing_more_cases_than_the_data_can_hold_is_refused_before_reading() {
    let dir = scratch("sav-bounds-count");
    let small = Spss::open("small.zsav").with_cases(i32::MAX);
    let e = refusal(&write(&dir, "count.sav", &small.sav()));
    assert!(
        e.contains("truncated: the file is")
            && e.contains("too short for the 2147483647 cases its header announces"),
        "{e}"
    );
    let e = refusal(&write(&dir, "count.zsav", &small.zsav(SPSS_BLOCK_SIZE)));
    assert!(
        e.contains("the zlib blocks hold 520 bytes of case data, too few for the 2147483647 cases"),
        "{e}"
    );
    let mut plain =
        std::fs::read(root().join("fixtures/statfiles/small_plain.sav")).expect("plain");
    plain[80..84].copy_from_slice(&i32::MAX.to_le_bytes());
    let e = refusal(&write(&dir, "count_plain.sav", &plain));
    assert!(
        e.contains("too short for the 2147483647 cases its header announces (43 values of 8 bytes"),
        "{e}"
    );
}

/// The demo pipeline on `data`, with every path absolute, written into `dir`.
fn demo_config(dir: &Path, data: &Path) -> PathBuf {
    let demo = root().join("fixtures/demo");
    let text = std::fs::read_to_string(demo.join("pipeline.toml")).expect("config");
    let abs = |p: &Path| p.to_str().expect("utf8").to_string();
    let text = text
        .replace(
            "\"../../questionnaires/cvs-core.toml\"",
            &format!("\"{}\"", abs(&root().join("questionnaires/cvs-core.toml"))),
        )
        .replace("\"data.csv\"", &format!("\"{}\"", abs(data)))
        .replace(
            "\"margins.csv\"",
            &format!("\"{}\"", abs(&demo.join("margins.csv"))),
        )
        .replace(
            "\"poststrata.csv\"",
            &format!("\"{}\"", abs(&demo.join("poststrata.csv"))),
        );
    let config = dir.join("pipeline.toml");
    std::fs::write(&config, text).expect("config");
    config
}

#[test]
fn cases_that_do_not_fit_in_memory_are_refused_before_they_are_read() {
    let dir = scratch("sav-bounds-memory");
    let demo = Spss::open("demo.zsav");
    let unknown = write(
        &dir,
        "unknown.zsav",
        &demo.clone().with_cases(-1).zsav(1 << 16),
    );
    for (data, rows) in [
        (root().join("fixtures/statfiles/demo.zsav"), "20028 rows"),
        (root().join("fixtures/statfiles/demo.sav"), "20028 rows"),
        // Without a count: the most its bytecode (about 1.87 MB) can hold, one value a byte.
        (unknown, "40688 rows"),
    ] {
        let config = demo_config(&dir, &data);
        let out = Command::new(env!("CARGO_BIN_EXE_cvsurvey"))
            .args(["validate", config.to_str().expect("utf8")])
            .env("CVSURVEY_MEMORY_LIMIT", "1M")
            .output()
            .expect("run cvsurvey");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(rows) && stderr.contains("needs about") && stderr.contains("available"),
            "{stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}
