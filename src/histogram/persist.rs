//! Latency counts that the collector has not stored yet survive a clean restart, as
//! pg_stat_statements' counters do: when the postmaster shuts down cleanly it writes them to
//! `pg_stat/dbanalytics_latency.stat` in the data directory, and when it starts it reads them
//! back into the table and removes the file. The next snapshot stores them (in its first
//! interval after the restart, which is marked as a reset). After a crash nothing is written:
//! the counts since the last snapshot are lost, as pg_stat_statements' are.
//!
//! The file holds the drained entries of the table (`table::Drained`), little-endian:
//! a header (magic, format version, number of buckets, number of entries), then per entry its
//! key, its runs (with the application name of the latest one, length-prefixed), its resource
//! usage and its non-zero buckets. Format 2 (before the application name) is still read; a file
//! of another format or bucket layout is ignored with a LOG line, never misread.

use super::buckets::BUCKETS;
use super::table::{self, Drained, Runs, Usage};
use pgrx::pg_sys;
use pgrx::prelude::*;

/// Relative to the data directory, the postmaster's working directory.
const FILE: &str = "pg_stat/dbanalytics_latency.stat";
const FILE_TMP: &str = "pg_stat/dbanalytics_latency.stat.tmp";
const MAGIC: u32 = 0x4442_414C; // "DBAL"
const VERSION: u32 = 3; // 2: with the resource usage; 3: with the runs' application
/// The previous format, still read (a clean shutdown of a build without the application name,
/// then a start of this one).
const VERSION_WITHOUT_APPLICATION: u32 = 2;

/// The postmaster, after it created the table: reads what the last clean shutdown saved and
/// arranges for the next one to save again.
///
/// # Safety
/// Only in the postmaster's shared-memory startup hook, after `table::attach`.
pub unsafe fn at_postmaster_start() {
    load();
    pg_sys::on_shmem_exit(Some(save_at_exit), pg_sys::Datum::from(0));
}

fn load() {
    let bytes = match std::fs::read(FILE) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            log!("dbanalytics: could not read {FILE}: {e}; latency counts from before the restart are lost");
            return;
        }
    };
    match (decode(&bytes), table::table()) {
        (Some(entries), Some(histograms)) => {
            let executions: u64 = entries
                .iter()
                .flat_map(|entry| entry.buckets.iter().map(|(_, count)| count))
                .sum();
            histograms.restore(&entries, true);
            log!(
                "dbanalytics: read back {executions} executions of {} statements not collected before the last shutdown",
                entries.len()
            );
        }
        (None, _) => {
            log!("dbanalytics: {FILE} is not a latency file of this version; ignored")
        }
        (_, None) => {}
    }
    if let Err(e) = std::fs::remove_file(FILE) {
        log!("dbanalytics: could not remove {FILE}: {e}");
    }
}

/// The postmaster's exit: on a clean shutdown (code 0) every backend has ended, so the table
/// holds its final counts.
#[pg_guard]
unsafe extern "C-unwind" fn save_at_exit(code: i32, _arg: pg_sys::Datum) {
    if code != 0 {
        return;
    }
    let Some(histograms) = table::table() else {
        return;
    };
    let entries = histograms.drain();
    if entries.is_empty() {
        return;
    }
    let written =
        std::fs::write(FILE_TMP, encode(&entries)).and_then(|()| std::fs::rename(FILE_TMP, FILE));
    if let Err(e) = written {
        log!("dbanalytics: could not write {FILE}: {e}; latency counts not yet collected are lost");
        let _ = std::fs::remove_file(FILE_TMP);
    }
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub fn encode(entries: &[Drained]) -> Vec<u8> {
    let mut out = Vec::new();
    put_u32(&mut out, MAGIC);
    put_u32(&mut out, VERSION);
    put_u32(&mut out, BUCKETS as u32);
    put_u64(&mut out, entries.len() as u64);
    for entry in entries {
        put_u32(&mut out, entry.dbid);
        put_u32(&mut out, entry.userid);
        put_u64(&mut out, entry.queryid as u64);
        let runs = entry.runs.as_ref();
        put_u64(&mut out, runs.map_or(0, |r| r.runs));
        put_u64(&mut out, runs.map_or(0, |r| r.executions));
        put_u64(&mut out, runs.map_or(0, |r| r.max_length));
        put_u64(&mut out, runs.map_or(0, |r| r.parent as u64));
        let application = runs.and_then(|r| r.application.as_deref()).unwrap_or("");
        put_u32(&mut out, application.len() as u32);
        out.extend_from_slice(application.as_bytes());
        put_u64(&mut out, entry.usage.executions);
        put_u64(&mut out, entry.usage.cpu_user_us);
        put_u64(&mut out, entry.usage.cpu_system_us);
        put_u64(&mut out, entry.usage.read_bytes);
        put_u64(&mut out, entry.usage.write_bytes);
        put_u32(&mut out, entry.buckets.len() as u32);
        for &(bucket, count) in &entry.buckets {
            put_u32(&mut out, bucket as u32);
            put_u64(&mut out, count);
        }
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(N)?)?;
        self.at += N;
        slice.try_into().ok()
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    fn text(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        let slice = self.bytes.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        String::from_utf8(slice.to_vec()).ok()
    }
}

/// Reads what `encode` wrote; None for anything else (another format, another bucket layout,
/// a bucket out of range, a truncated or longer file).
pub fn decode(bytes: &[u8]) -> Option<Vec<Drained>> {
    let mut r = Reader { bytes, at: 0 };
    if r.u32()? != MAGIC {
        return None;
    }
    let version = r.u32()?;
    if ![VERSION, VERSION_WITHOUT_APPLICATION].contains(&version) || r.u32()? != BUCKETS as u32 {
        return None;
    }
    let count = r.u64()?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let (dbid, userid, queryid) = (r.u32()?, r.u32()?, r.u64()? as i64);
        let (runs, executions, max_length, parent) =
            (r.u64()?, r.u64()?, r.u64()?, r.u64()? as i64);
        let application = if version == VERSION {
            Some(r.text()?).filter(|name| !name.is_empty())
        } else {
            None
        };
        let usage = Usage {
            executions: r.u64()?,
            cpu_user_us: r.u64()?,
            cpu_system_us: r.u64()?,
            read_bytes: r.u64()?,
            write_bytes: r.u64()?,
        };
        let mut buckets = Vec::new();
        for _ in 0..r.u32()? {
            let (bucket, count) = (r.u32()? as usize, r.u64()?);
            if bucket >= BUCKETS {
                return None;
            }
            buckets.push((bucket, count));
        }
        entries.push(Drained {
            dbid,
            userid,
            queryid,
            buckets,
            runs: (runs > 0).then_some(Runs {
                runs,
                executions,
                max_length,
                parent,
                application,
            }),
            usage,
        });
    }
    (r.at == bytes.len()).then_some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Drained> {
        vec![
            Drained {
                dbid: 5,
                userid: 10,
                queryid: -42,
                buckets: vec![(0, 3), (BUCKETS - 1, 1)],
                runs: Some(Runs {
                    runs: 2,
                    executions: 40,
                    max_length: 20,
                    parent: -7,
                    application: Some("shop".to_string()),
                }),
                usage: Usage {
                    executions: 3,
                    cpu_user_us: 1_500,
                    cpu_system_us: 20,
                    read_bytes: 8192,
                    write_bytes: 0,
                },
            },
            Drained {
                dbid: 5,
                userid: 0,
                queryid: 0,
                buckets: vec![(17, 123_456_789_012)],
                runs: None,
                usage: Usage::default(),
            },
        ]
    }

    #[test]
    fn what_is_saved_is_read_back_exactly() {
        assert_eq!(decode(&encode(&sample())), Some(sample()));
        assert_eq!(decode(&encode(&[])), Some(vec![]));
    }

    #[test]
    fn a_file_of_the_previous_format_is_read_without_the_application() {
        // version 2: the same entry with no application name
        let mut bytes = Vec::new();
        put_u32(&mut bytes, MAGIC);
        put_u32(&mut bytes, VERSION_WITHOUT_APPLICATION);
        put_u32(&mut bytes, BUCKETS as u32);
        put_u64(&mut bytes, 1);
        put_u32(&mut bytes, 5);
        put_u32(&mut bytes, 10);
        put_u64(&mut bytes, 42);
        for value in [2, 40, 20, 7, 3, 1_500, 20, 8192, 0] {
            put_u64(&mut bytes, value);
        }
        put_u32(&mut bytes, 1);
        put_u32(&mut bytes, 0);
        put_u64(&mut bytes, 3);
        let entries = decode(&bytes).expect("version 2 is read");
        assert_eq!(entries.len(), 1);
        let runs = entries[0].runs.as_ref().expect("its runs");
        assert_eq!(
            (runs.runs, runs.parent, runs.application.as_deref()),
            (2, 7, None)
        );
        assert_eq!(entries[0].buckets, vec![(0, 3)]);
    }

    #[test]
    fn anything_else_is_refused() {
        let bytes = encode(&sample());
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None, "truncated");
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), None, "longer");
        let mut other_layout = bytes.clone();
        other_layout[8..12].copy_from_slice(&(BUCKETS as u32 + 1).to_le_bytes());
        assert_eq!(decode(&other_layout), None, "another bucket layout");
        let mut other_magic = bytes;
        other_magic[0] ^= 1;
        assert_eq!(decode(&other_magic), None, "not ours");
        assert_eq!(decode(b""), None);
    }
}
