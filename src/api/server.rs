//! What the server and its host say about themselves, read once per snapshot into
//! `server_stats` (the collector's "server" source, `_snapshot_server()`): the transaction-ID
//! and multixact counters (for the wraparound forecast), the space of the file systems holding
//! the data directory and pg_wal (statvfs), and on Linux the host's CPU time, memory, load and
//! paging from /proc. Nothing here fails: what cannot be read is NULL, and `host_status` says
//! why the /proc part is missing.

use pgrx::prelude::*;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Used and available bytes of the file system holding `path` (relative paths are relative to
/// the data directory, every backend's working directory). "Available" is what an unprivileged
/// process such as PostgreSQL may still write (`f_bavail`); blocks reserved for root are neither.
fn filesystem_space(path: &Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; the path is NUL-terminated.
    let mut fs: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut fs) } != 0 {
        return None;
    }
    let block = fs.f_frsize as i64;
    let used = (fs.f_blocks as i64 - fs.f_bfree as i64) * block;
    Some((used, fs.f_bavail as i64 * block))
}

/// The host's cumulative CPU seconds, memory, load and paging, as /proc shows them on Linux.
#[derive(Debug, Default, PartialEq)]
struct HostCounters {
    boot_time: i64,
    cpus: i32,
    cpu_user_s: f64,
    cpu_system_s: f64,
    cpu_iowait_s: f64,
    cpu_idle_s: f64,
    cpu_other_s: f64,
    mem_total_bytes: i64,
    mem_available_bytes: i64,
    load1: f64,
    read_bytes: i64,
    write_bytes: i64,
}

/// /proc/stat: the aggregate "cpu" line (ticks of `ticks_per_second`), the per-CPU lines and
/// the boot time. user and nice count as user time; system, irq and softirq as system time;
/// steal (time a hypervisor gave to others) as other time. guest time is already in user.
fn parse_proc_stat(text: &str, ticks_per_second: f64, host: &mut HostCounters) -> Option<()> {
    let mut seen_total = false;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("cpu") => {
                let ticks: Vec<f64> = fields.map(|f| f.parse().unwrap_or(0.0)).collect();
                let tick = |i: usize| ticks.get(i).copied().unwrap_or(0.0) / ticks_per_second;
                host.cpu_user_s = tick(0) + tick(1);
                host.cpu_system_s = tick(2) + tick(5) + tick(6);
                host.cpu_idle_s = tick(3);
                host.cpu_iowait_s = tick(4);
                host.cpu_other_s = tick(7);
                seen_total = ticks.len() >= 4;
            }
            Some(name) if name.starts_with("cpu") => host.cpus += 1,
            Some("btime") => host.boot_time = fields.next()?.parse().ok()?,
            _ => {}
        }
    }
    seen_total.then_some(())
}

/// The value of `key` in a "key value" or "key: value kB" listing (/proc/meminfo, /proc/vmstat).
fn proc_value(text: &str, key: &str) -> Option<i64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?;
        let rest = rest.strip_prefix(':').unwrap_or(rest);
        if !rest.starts_with(char::is_whitespace) {
            return None; // a longer key with the same beginning
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The host's counters, or why they cannot be read.
fn host_counters(proc_dir: &Path) -> Result<HostCounters, String> {
    let read = |name: &str| {
        std::fs::read_to_string(proc_dir.join(name)).map_err(|e| {
            format!(
                "unavailable: {} not readable ({e})",
                proc_dir.join(name).display()
            )
        })
    };
    // SAFETY: sysconf reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks_per_second = if ticks > 0 { ticks as f64 } else { 100.0 };
    let mut host = HostCounters::default();
    parse_proc_stat(&read("stat")?, ticks_per_second, &mut host)
        .ok_or_else(|| "unavailable: /proc/stat has no cpu line".to_string())?;
    let meminfo = read("meminfo")?;
    host.mem_total_bytes = proc_value(&meminfo, "MemTotal").unwrap_or(0) * 1024;
    host.mem_available_bytes = proc_value(&meminfo, "MemAvailable").unwrap_or(0) * 1024;
    host.load1 = read("loadavg")?
        .split_whitespace()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0.0);
    // pgpgin/pgpgout: KiB read from and written to block devices, all of them
    let vmstat = read("vmstat")?;
    host.read_bytes = proc_value(&vmstat, "pgpgin").unwrap_or(0) * 1024;
    host.write_bytes = proc_value(&vmstat, "pgpgout").unwrap_or(0) * 1024;
    Ok(host)
}

/// One row: everything `server_stats` keeps of this moment besides the WAL position.
// pgrx reads the SQL signature from the inline type, so it cannot be a type alias
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
pub fn _server_now() -> TableIterator<
    'static,
    (
        name!(next_xid, i64),
        name!(next_multixact, i64),
        name!(disk_used_bytes, Option<i64>),
        name!(disk_available_bytes, Option<i64>),
        name!(wal_disk_used_bytes, Option<i64>),
        name!(wal_disk_available_bytes, Option<i64>),
        name!(host_status, String),
        name!(boot_time, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(cpus, Option<i32>),
        name!(cpu_user_seconds, Option<f64>),
        name!(cpu_system_seconds, Option<f64>),
        name!(cpu_iowait_seconds, Option<f64>),
        name!(cpu_idle_seconds, Option<f64>),
        name!(cpu_other_seconds, Option<f64>),
        name!(mem_total_bytes, Option<i64>),
        name!(mem_available_bytes, Option<i64>),
        name!(load1, Option<f64>),
        name!(disk_read_bytes, Option<i64>),
        name!(disk_write_bytes, Option<i64>),
    ),
> {
    // SAFETY: both read shared counters under their own locks.
    let (next_xid, next_multixact) = unsafe {
        (
            pg_sys::ReadNextFullTransactionId().value as i64,
            i64::from(pg_sys::ReadNextMultiXactId().into_inner()),
        )
    };
    let data = Path::new(".");
    let wal = Path::new("pg_wal");
    let disk = filesystem_space(data);
    // pg_wal's own file system only where it is another one (a symlink to another disk)
    let wal_elsewhere = match (std::fs::metadata(data), std::fs::metadata(wal)) {
        (Ok(d), Ok(w)) => d.dev() != w.dev(),
        _ => false,
    };
    let wal_disk = wal_elsewhere.then(|| filesystem_space(wal)).flatten();
    let host = host_counters(Path::new("/proc"));
    let status = match &host {
        Ok(_) => "ok".to_string(),
        Err(why) => why.clone(),
    };
    let host = host.ok();
    let boot_time = host
        .as_ref()
        .and_then(|h| pgrx::datum::TimestampWithTimeZone::try_from(to_pg_epoch(h.boot_time)).ok());
    let field = |f: fn(&HostCounters) -> f64| host.as_ref().map(f);
    let count = |f: fn(&HostCounters) -> i64| host.as_ref().map(f);
    TableIterator::once((
        next_xid,
        next_multixact,
        disk.map(|d| d.0),
        disk.map(|d| d.1),
        wal_disk.map(|d| d.0),
        wal_disk.map(|d| d.1),
        status,
        boot_time,
        host.as_ref().map(|h| h.cpus),
        field(|h| h.cpu_user_s),
        field(|h| h.cpu_system_s),
        field(|h| h.cpu_iowait_s),
        field(|h| h.cpu_idle_s),
        field(|h| h.cpu_other_s),
        count(|h| h.mem_total_bytes),
        count(|h| h.mem_available_bytes),
        field(|h| h.load1),
        count(|h| h.read_bytes),
        count(|h| h.write_bytes),
    ))
}

/// Microseconds since 2000-01-01 (PostgreSQL's timestamp epoch) of a Unix time in seconds.
fn to_pg_epoch(unix_seconds: i64) -> i64 {
    (unix_seconds - 946_684_800) * 1_000_000
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    const STAT: &str = "cpu  100 20 30 400 50 6 4 10 0 0\n\
                        cpu0 50 10 15 200 25 3 2 5 0 0\n\
                        cpu1 50 10 15 200 25 3 2 5 0 0\n\
                        intr 1 2 3\nbtime 1764800000\nprocesses 10\n";

    #[test]
    fn proc_stat_sums_cpu_time_by_kind() {
        let mut host = HostCounters::default();
        assert_eq!(parse_proc_stat(STAT, 10.0, &mut host), Some(()));
        assert_eq!(host.cpus, 2);
        assert_eq!(host.boot_time, 1_764_800_000);
        assert_eq!(host.cpu_user_s, 12.0); // (user 100 + nice 20) / 10
        assert_eq!(host.cpu_system_s, 4.0); // (system 30 + irq 6 + softirq 4) / 10
        assert_eq!(host.cpu_idle_s, 40.0);
        assert_eq!(host.cpu_iowait_s, 5.0);
        assert_eq!(host.cpu_other_s, 1.0);
    }

    #[test]
    fn proc_stat_without_cpu_line_is_refused() {
        let mut host = HostCounters::default();
        assert_eq!(parse_proc_stat("btime 5\n", 100.0, &mut host), None);
    }

    #[test]
    fn proc_values_match_whole_keys() {
        let meminfo = "MemTotal:       16384 kB\nMemFree:   100 kB\nMemAvailable:    8192 kB\n";
        assert_eq!(proc_value(meminfo, "MemTotal"), Some(16384));
        assert_eq!(proc_value(meminfo, "MemAvailable"), Some(8192));
        assert_eq!(proc_value(meminfo, "Mem"), None);
        let vmstat = "pgpgin 500\npgpgout 700\npgpgoutclean 3\n";
        assert_eq!(proc_value(vmstat, "pgpgout"), Some(700));
        assert_eq!(proc_value(vmstat, "pgpgin"), Some(500));
    }

    #[test]
    fn missing_proc_says_why() {
        let err = host_counters(Path::new("/nonexistent-proc")).unwrap_err();
        assert!(err.starts_with("unavailable: /nonexistent-proc/stat not readable"));
    }

    #[test]
    fn boot_time_converts_to_the_postgres_epoch() {
        assert_eq!(to_pg_epoch(946_684_800), 0);
        assert_eq!(to_pg_epoch(946_684_801), 1_000_000);
    }
}
