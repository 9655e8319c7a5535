//! The zlib layer of `.zsav` files: the trailer that lists the compressed blocks, checked
//! against the format before any block is inflated, and a reader that inflates every block to
//! exactly the size the trailer declares for it.
//!
//! Layout ("ZLIB Compressed Data" in the PSPP developers' guide): after the dictionary, a
//! 24-byte zlib header (`zheader_ofs`, `ztrailer_ofs`, `ztrailer_len`), the compressed blocks
//! back to back, then the trailer: `bias`, `zero`, `block_size`, `n_blocks` and one 24-byte
//! descriptor per block (`uncompressed_ofs`, `compressed_ofs`, `uncompressed_size`,
//! `compressed_size`). The first block starts right after the zlib header, each next one where
//! the previous one ends, and the last one ends where the trailer starts; the uncompressed
//! offsets count the same way from `zheader_ofs`. Every block but the last holds `block_size`
//! bytes once inflated; the last may hold fewer.
//!
//! Why each check: a trailer that lists one block many times, or declares sizes the blocks do
//! not have, turned a few megabytes into hours of inflating or gigabytes of memory. Blocks that
//! must follow one another are read once each; a block is inflated no further than its declared
//! size; and a declared size beyond what deflate can produce from the block's bytes is refused
//! before anything is inflated.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Take};

use flate2::read::ZlibDecoder;

use super::{Input, Layout, Res, SavError};

/// Deflate's largest expansion: a 258-byte match coded in two bits (one for its length, one for
/// its distance), so at most 1032 bytes out per byte in (zlib's technical notes: "the limit
/// being 1032:1"); the zlib wrapper's 6 bytes only lower it.
pub(super) const DEFLATE_MAX_EXPANSION: u64 = 1032;

/// One block of the trailer, checked.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Block {
    compressed_ofs: u64,
    compressed_size: u64,
    uncompressed_size: u64,
}

/// A block descriptor as stored.
#[derive(Debug, Clone, Copy)]
struct Descriptor {
    uncompressed_ofs: i64,
    compressed_ofs: i64,
    uncompressed_size: u64,
    compressed_size: u64,
}

/// The checked trailer: the blocks in file order and their totals.
#[derive(Debug)]
pub(super) struct Trailer {
    blocks: Vec<Block>,
    /// Bytes of compressed case data (the blocks' compressed sizes).
    pub compressed: u64,
    /// Bytes of case data once inflated (the blocks' declared sizes).
    pub uncompressed: u64,
}

/// Read the zlib header and trailer that follow the dictionary, and check the block list.
pub(super) fn read_trailer(layout: &Layout, file: &mut BufReader<File>, len: u64) -> Res<Trailer> {
    file.seek(SeekFrom::Start(layout.data_start))
        .map_err(|e| SavError(format!("zlib header: {e}")))?;
    let mut input = Input {
        inner: &mut *file,
        pos: layout.data_start,
        len,
        big_endian: layout.big_endian,
        in_file: true,
    };
    let zheader_ofs = input.i64("zlib header")?;
    let ztrailer_ofs = input.i64("zlib header")?;
    let ztrailer_len = input.i64("zlib header")?;
    if zheader_ofs as u64 != layout.data_start
        || ztrailer_ofs < 0
        || ztrailer_len < 24
        || (ztrailer_ofs as u64).saturating_add(ztrailer_len as u64) > len
    {
        return Err(SavError(format!(
            "corrupt or truncated zlib header at byte {} (trailer at {ztrailer_ofs}, {ztrailer_len} bytes; the file has {len})",
            layout.data_start
        )));
    }
    let (zheader_ofs, ztrailer_ofs, ztrailer_len) =
        (zheader_ofs as u64, ztrailer_ofs as u64, ztrailer_len as u64);
    file.seek(SeekFrom::Start(ztrailer_ofs))
        .map_err(|e| SavError(format!("zlib trailer: {e}")))?;
    let mut input = Input {
        inner: &mut *file,
        pos: ztrailer_ofs,
        len,
        big_endian: layout.big_endian,
        in_file: true,
    };
    let _bias = input.i64("zlib trailer")?;
    let _zero = input.i64("zlib trailer")?;
    let at = input.pos;
    let block_size = input.i32("zlib trailer")?;
    // The trailer's length bounds the count, and the file's length bounds the trailer's.
    let n_blocks = input.count("zlib block count", (ztrailer_len - 24) / 24)?;
    if ztrailer_len != 24 * (n_blocks as u64 + 1) {
        return Err(SavError(format!(
            "zlib trailer at byte {ztrailer_ofs}: {n_blocks} block descriptors take 24 + 24 × \
             {n_blocks} = {} bytes, but the zlib header gives the trailer {ztrailer_len} bytes",
            24 * (n_blocks as u64 + 1)
        )));
    }
    if n_blocks > 0 && block_size <= 0 {
        return Err(SavError(format!(
            "zlib trailer: the block size at byte {at} is {block_size}, which is impossible"
        )));
    }
    let mut descriptors = Vec::with_capacity(n_blocks);
    for _ in 0..n_blocks {
        descriptors.push(Descriptor {
            uncompressed_ofs: input.i64("zlib block descriptor")?,
            compressed_ofs: input.i64("zlib block descriptor")?,
            uncompressed_size: input.count("zlib block size", i32::MAX as u64)? as u64,
            compressed_size: input.count("zlib block size", len)? as u64,
        });
    }
    check_blocks(
        &descriptors,
        zheader_ofs,
        ztrailer_ofs,
        block_size.max(0) as u64,
    )
}

/// Check the block descriptors against the format (see the module documentation).
fn check_blocks(
    descriptors: &[Descriptor],
    zheader_ofs: u64,
    ztrailer_ofs: u64,
    block_size: u64,
) -> Res<Trailer> {
    let n = descriptors.len();
    let mut blocks = Vec::with_capacity(n);
    // Where the next block must start, in the file and in the case data.
    let mut next_compressed = zheader_ofs + 24;
    let mut next_uncompressed = zheader_ofs;
    for (i, d) in descriptors.iter().enumerate() {
        let name = format!("block {} of {n}", i + 1);
        let previous = if i == 0 {
            "the zlib header".to_string()
        } else {
            format!("block {i}")
        };
        if d.compressed_ofs < 0 || d.compressed_ofs as u64 != next_compressed {
            return Err(SavError(format!(
                "zlib trailer: {name} starts at byte {}, but {previous} ends at byte \
                 {next_compressed}; blocks must follow one another without gap or overlap, so \
                 that no compressed data is read twice",
                d.compressed_ofs
            )));
        }
        if d.uncompressed_ofs < 0 || d.uncompressed_ofs as u64 != next_uncompressed {
            return Err(SavError(format!(
                "zlib trailer: {name} gives its data the uncompressed offset {}, but {previous} \
                 ends at offset {next_uncompressed}; each block's data must follow the \
                 previous block's",
                d.uncompressed_ofs
            )));
        }
        if d.compressed_size == 0 {
            return Err(SavError(format!(
                "zlib trailer: {name} (at byte {next_compressed}) has no compressed bytes"
            )));
        }
        let end = next_compressed + d.compressed_size;
        if end > ztrailer_ofs {
            return Err(SavError(format!(
                "zlib trailer: {name} ({} bytes at byte {next_compressed}) runs past the start \
                 of the trailer at byte {ztrailer_ofs}",
                d.compressed_size
            )));
        }
        let last = i + 1 == n;
        if d.uncompressed_size > block_size || (!last && d.uncompressed_size != block_size) {
            return Err(SavError(format!(
                "zlib trailer: {name} declares {} bytes once inflated, but the trailer's block \
                 size is {block_size}: every block but the last holds exactly that many, the \
                 last at most that many",
                d.uncompressed_size
            )));
        }
        if d.uncompressed_size > DEFLATE_MAX_EXPANSION * d.compressed_size {
            return Err(SavError(format!(
                "zlib trailer: {name} declares {} bytes once inflated from {} compressed \
                 bytes, more than zlib can produce ({DEFLATE_MAX_EXPANSION} bytes per \
                 compressed byte at most)",
                d.uncompressed_size, d.compressed_size
            )));
        }
        blocks.push(Block {
            compressed_ofs: next_compressed,
            compressed_size: d.compressed_size,
            uncompressed_size: d.uncompressed_size,
        });
        next_compressed = end;
        next_uncompressed += d.uncompressed_size;
    }
    if next_compressed != ztrailer_ofs {
        return Err(SavError(format!(
            "zlib trailer: the {n} compressed block(s) end at byte {next_compressed}, but the \
             trailer starts at byte {ztrailer_ofs}; the bytes between belong to no block"
        )));
    }
    Ok(Trailer {
        compressed: next_compressed - (zheader_ofs + 24),
        uncompressed: next_uncompressed - zheader_ofs,
        blocks,
    })
}

/// The block being inflated.
struct Current {
    decoder: ZlibDecoder<Take<BufReader<File>>>,
    /// Index into the blocks.
    block: usize,
    /// Bytes it produced so far.
    produced: u64,
}

/// The case data of a `.zsav` file: its blocks inflated one after the other, each to exactly
/// its declared size. Memory stays at the inflater's buffers, whatever the sizes declared.
pub(super) struct ZlibBlocks {
    blocks: Vec<Block>,
    /// The next block to start.
    next: usize,
    /// The file between blocks (the inflater owns it while a block is read).
    file: Option<BufReader<File>>,
    current: Option<Current>,
}

impl ZlibBlocks {
    /// Read the blocks of `trailer` from `file`.
    pub(super) fn new(trailer: Trailer, file: BufReader<File>) -> ZlibBlocks {
        ZlibBlocks {
            blocks: trailer.blocks,
            next: 0,
            file: Some(file),
            current: None,
        }
    }

    /// `zlib block 2 of 5 (4096 compressed bytes at byte 9334)`.
    fn describe(&self, index: usize) -> String {
        let b = &self.blocks[index];
        format!(
            "zlib block {} of {} ({} compressed bytes at byte {})",
            index + 1,
            self.blocks.len(),
            b.compressed_size,
            b.compressed_ofs
        )
    }
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

impl Read for ZlibBlocks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(cur) = &mut self.current {
                let declared = self.blocks[cur.block].uncompressed_size;
                let left = declared - cur.produced;
                let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                let got = if want == 0 {
                    0
                } else {
                    cur.decoder.read(&mut buf[..want])?
                };
                cur.produced += got as u64;
                let (index, produced) = (cur.block, cur.produced);
                if got == 0 && left > 0 {
                    return Err(invalid(format!(
                        "{} inflates to {produced} bytes, but the zlib trailer declares \
                         {declared} for it",
                        self.describe(index)
                    )));
                }
                if produced == declared {
                    // The block must end here: one byte more is one byte more than declared.
                    let mut probe = [0u8; 1];
                    if cur.decoder.read(&mut probe)? > 0 {
                        return Err(invalid(format!(
                            "{} inflates to more than the {declared} bytes the zlib trailer \
                             declares for it",
                            self.describe(index)
                        )));
                    }
                    if let Some(done) = self.current.take() {
                        self.file = Some(done.decoder.into_inner().into_inner());
                    }
                }
                if got > 0 {
                    return Ok(got);
                }
                continue;
            }
            let Some(block) = self.blocks.get(self.next) else {
                return Ok(0);
            };
            let mut file = self
                .file
                .take()
                .ok_or_else(|| invalid("the zlib data cannot be read after an error".into()))?;
            file.seek(SeekFrom::Start(block.compressed_ofs))?;
            self.current = Some(Current {
                decoder: ZlibDecoder::new(file.take(block.compressed_size)),
                block: self.next,
                produced: 0,
            });
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three blocks of block size 100 (the last holds 40) after a zlib header at byte 1000.
    fn valid() -> Vec<Descriptor> {
        vec![
            Descriptor {
                uncompressed_ofs: 1000,
                compressed_ofs: 1024,
                uncompressed_size: 100,
                compressed_size: 30,
            },
            Descriptor {
                uncompressed_ofs: 1100,
                compressed_ofs: 1054,
                uncompressed_size: 100,
                compressed_size: 20,
            },
            Descriptor {
                uncompressed_ofs: 1200,
                compressed_ofs: 1074,
                uncompressed_size: 40,
                compressed_size: 10,
            },
        ]
    }

    fn check(d: &[Descriptor], trailer_at: u64) -> Result<Trailer, String> {
        check_blocks(d, 1000, trailer_at, 100).map_err(|e| e.0)
    }

    #[test]
    fn contiguous_blocks_are_accepted_with_their_totals() {
        let t = check(&valid(), 1084).expect("valid");
        assert_eq!((t.compressed, t.uncompressed), (60, 240));
        assert_eq!(t.blocks.len(), 3);
        assert_eq!(t.blocks[2].compressed_ofs, 1074);
        let none = check(&[], 1024).expect("no blocks");
        assert_eq!((none.compressed, none.uncompressed), (0, 0));
    }

    #[test]
    fn a_block_listed_twice_or_out_of_place_is_refused() {
        let mut twice = valid();
        twice[1] = twice[0];
        let e = check(&twice, 1084).expect_err("twice");
        assert!(
            e.contains("block 2 of 3 starts at byte 1024, but block 1 ends at byte 1054"),
            "{e}"
        );
        let mut gap = valid();
        gap[2].compressed_ofs += 1;
        let e = check(&gap, 1085).expect_err("gap");
        assert!(e.contains("block 3 of 3 starts at byte 1075"), "{e}");
        let mut first = valid();
        first[0].compressed_ofs = 1000;
        let e = check(&first, 1084).expect_err("over the header");
        assert!(e.contains("but the zlib header ends at byte 1024"), "{e}");
        let mut shifted = valid();
        shifted[1].uncompressed_ofs = 1000;
        let e = check(&shifted, 1084).expect_err("same data twice");
        assert!(e.contains("uncompressed offset 1000"), "{e}");
        // The trailer must start where the blocks end.
        let e = check(&valid(), 1090).expect_err("bytes after the blocks");
        assert!(e.contains("end at byte 1084"), "{e}");
        let e = check(&valid(), 1080).expect_err("trailer inside a block");
        assert!(e.contains("runs past the start of the trailer"), "{e}");
    }

    #[test]
    fn declared_sizes_follow_the_block_size_and_what_deflate_can_do() {
        let mut short = valid();
        short[1].uncompressed_size = 99;
        let e = check(&short, 1084).expect_err("short middle block");
        assert!(e.contains("block 2 of 3 declares 99 bytes"), "{e}");
        let mut long = valid();
        long[2].uncompressed_size = 101;
        let e = check(&long, 1084).expect_err("last block over the block size");
        assert!(e.contains("block 3 of 3 declares 101 bytes"), "{e}");
        // 1000 compressed bytes inflate to 1032000 at most.
        let bomb = Descriptor {
            uncompressed_ofs: 1000,
            compressed_ofs: 1024,
            uncompressed_size: 1_032_001,
            compressed_size: 1000,
        };
        let e = check_blocks(&[bomb], 1000, 2024, 0x3ff000)
            .map(|_| ())
            .expect_err("a million bytes from a thousand");
        assert!(e.0.contains("more than zlib can produce"), "{}", e.0);
        let fits = Descriptor {
            uncompressed_size: 1_032_000,
            ..bomb
        };
        assert!(check_blocks(&[fits], 1000, 2024, 0x3ff000).is_ok());
        let mut empty = valid();
        empty[2].compressed_size = 0;
        let e = check(&empty, 1074).expect_err("no compressed bytes");
        assert!(e.contains("has no compressed bytes"), "{e}");
    }
}
