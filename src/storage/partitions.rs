//! Daily range partitions for every partitioned table of the extension, and their retention
//! tiers.
//!
//! A partition covers one UTC day, `[day 00:00+00, day+1 00:00+00)`, and is named
//! `<table>_pYYYYMMDD`. Naming and range maths are pure functions (unit-tested below);
//! the SPI part only lists, creates and drops. DDL runs under a short `lock_timeout`
//! so that a busy table never stalls the collector: what cannot be done now is retried
//! at the next snapshot.

use crate::gucs;
use crate::spi;
use pgrx::prelude::*;
use std::collections::HashSet;
use std::time::Duration;

/// The retention tier of a table: which `dbanalytics.retention_*` setting keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// 1 s samples and collector runs: `retention_raw`.
    Raw,
    /// Per-minute deltas whose volume grows with the number of statements or relations, rolled
    /// up into hours: `retention_minutes`.
    Minutes,
    /// Hourly rollups, and the per-minute rows whose volume does not (per database, pool, wait
    /// event): `retention_hours`.
    Hours,
    /// Daily statement rollups: `retention_days`.
    Days,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Raw => "raw",
            Tier::Minutes => "minutes",
            Tier::Hours => "hours",
            Tier::Days => "days",
        }
    }

    pub fn retention(self) -> Duration {
        match self {
            Tier::Raw => gucs::retention_raw(),
            Tier::Minutes => gucs::retention_minutes(),
            Tier::Hours => gucs::retention_hours(),
            Tier::Days => gucs::retention_days(),
        }
    }
}

/// A partitioned table of the extension.
pub struct PartitionedTable {
    pub name: &'static str,
    pub tier: Tier,
    /// The rollup (its `source_state` row) that reads this table: a partition is dropped only
    /// once that rollup has passed its end (or it holds no row), so that a collector stopped for
    /// longer than the retention never loses minutes that were not rolled up yet.
    pub rolled_up_by: Option<&'static str>,
    /// The table whose rows `_pack_minutes` packs into this one, hour by hour: this table also
    /// needs a partition for each day of that table's partitions (and the day after, which
    /// holds the hour ending at midnight), so that the minutes written before it existed
    /// (an upgrade) or while the collector was stopped can be packed.
    pub packs: Option<&'static str>,
}

const fn table(name: &'static str, tier: Tier) -> PartitionedTable {
    PartitionedTable {
        name,
        tier,
        rolled_up_by: None,
        packs: None,
    }
}

const fn rolled(name: &'static str, tier: Tier, rollup: &'static str) -> PartitionedTable {
    PartitionedTable {
        name,
        tier,
        rolled_up_by: Some(rollup),
        packs: None,
    }
}

const fn packed(name: &'static str, tier: Tier, staged: &'static str) -> PartitionedTable {
    PartitionedTable {
        name,
        tier,
        rolled_up_by: None,
        packs: Some(staged),
    }
}

/// Every partitioned table, with its tier (docs/storage.md).
pub const PARTITIONED_TABLES: &[PartitionedTable] = &[
    table("activity_raw", Tier::Raw),
    table("connection_samples", Tier::Raw),
    table("lock_waits", Tier::Raw),
    table("collector_runs", Tier::Raw),
    rolled("statement_stats", Tier::Minutes, "hours"),
    rolled("statement_latency", Tier::Minutes, "hours"),
    packed("statement_stats_packed", Tier::Minutes, "statement_stats"),
    packed(
        "statement_latency_packed",
        Tier::Minutes,
        "statement_latency",
    ),
    packed("packed_hours", Tier::Minutes, "statement_stats"),
    rolled("table_stats", Tier::Minutes, "hours"),
    rolled("index_stats", Tier::Minutes, "hours"),
    rolled("statement_hourly", Tier::Hours, "days"),
    rolled("statement_latency_hourly", Tier::Hours, "days"),
    table("table_hourly", Tier::Hours),
    table("index_hourly", Tier::Hours),
    rolled("activity_minute", Tier::Hours, "rollup"),
    table("wait_minute", Tier::Hours),
    rolled("wait_hourly", Tier::Hours, "rollup"),
    table("connection_minute", Tier::Hours),
    table("pool_minute", Tier::Hours),
    table("database_latency", Tier::Hours),
    table("database_stats", Tier::Hours),
    table("plan_sightings", Tier::Hours),
    table("bgwriter_stats", Tier::Hours),
    table("io_stats", Tier::Hours),
    table("replication_stats", Tier::Hours),
    table("replication_slot_stats", Tier::Hours),
    table("server_stats", Tier::Hours),
    table("health_history", Tier::Hours),
    table("statement_daily", Tier::Days),
    table("statement_latency_daily", Tier::Days),
    table("wait_daily", Tier::Days),
    table("size_daily", Tier::Days),
];

/// Days after today for which partitions must already exist.
pub const DAYS_AHEAD: i64 = 2;

/// How long partition DDL may wait for its lock before giving up until the next run.
const DDL_LOCK_TIMEOUT: &str = "200ms";

const SECONDS_PER_DAY: i64 = 86_400;

/// (year, month, day) of a day number counted from 1970-01-01 (proleptic Gregorian).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's algorithm, valid for any day number in range.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Day number (from 1970-01-01) of a civil date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `activity_raw_p20261123` for table `activity_raw` and that day.
pub fn partition_name(table: &str, day: i64) -> String {
    let (year, month, dom) = civil_from_days(day);
    format!("{table}_p{year:04}{month:02}{dom:02}")
}

/// The day a partition of `table` covers, if `name` follows our naming scheme.
pub fn parse_partition_name(table: &str, name: &str) -> Option<i64> {
    let digits = name.strip_prefix(table)?.strip_prefix("_p")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i64 = digits[0..4].parse().ok()?;
    let month: u32 = digits[4..6].parse().ok()?;
    let dom: u32 = digits[6..8].parse().ok()?;
    let day = days_from_civil(year, month, dom);
    // reject 20261131 and the like: the name must round-trip
    (partition_name(table, day) == name).then_some(day)
}

/// `('2026-11-23 00:00:00+00', '2026-11-24 00:00:00+00')`: the range bounds of a day.
pub fn partition_bounds(day: i64) -> (String, String) {
    let bound = |d: i64| {
        let (year, month, dom) = civil_from_days(d);
        format!("{year:04}-{month:02}-{dom:02} 00:00:00+00")
    };
    (bound(day), bound(day + 1))
}

/// The day containing a Unix time.
pub fn day_of(epoch_seconds: i64) -> i64 {
    epoch_seconds.div_euclid(SECONDS_PER_DAY)
}

/// Days that must have a partition: today and the next `DAYS_AHEAD`.
pub fn required_days(today: i64) -> impl Iterator<Item = i64> {
    today..=today + DAYS_AHEAD
}

/// Days of `table` that must have a partition: today and the days ahead, and for a table that
/// packs another one's rows, each day of that table's partitions and the day after, unless
/// past the retention (_pack_minutes leaves those hours alone).
pub fn days_needed(
    table: &PartitionedTable,
    today: i64,
    now_epoch_seconds: i64,
    existing: &HashSet<String>,
) -> Vec<i64> {
    let mut days: Vec<i64> = required_days(today).collect();
    if let Some(staged) = table.packs {
        for name in existing {
            if let Some(day) = parse_partition_name(staged, name) {
                days.extend([day, day + 1]);
            }
        }
        days.retain(|&day| !is_expired(day, now_epoch_seconds, table.tier.retention()));
    }
    days.sort_unstable();
    days.dedup();
    days
}

/// A partition is expired once every row it can hold is older than the retention:
/// its upper bound lies at or before `now - retention`.
pub fn is_expired(day: i64, now_epoch_seconds: i64, retention: Duration) -> bool {
    let upper_bound = (day + 1) * SECONDS_PER_DAY;
    upper_bound <= now_epoch_seconds - retention.as_secs() as i64
}

/// Server time as Unix seconds (the transaction's `now()`, as every row uses).
pub fn now_epoch_seconds() -> Result<i64, pgrx::spi::Error> {
    Ok(spi::select_one::<i64>(
        "SELECT pg_catalog.floor(EXTRACT(epoch FROM pg_catalog.now()))::bigint",
    )?
    .unwrap_or(0))
}

/// Names of the existing partitions of every extension table.
fn existing_partitions() -> Result<HashSet<String>, pgrx::spi::Error> {
    let names = spi::select_texts(
        "SELECT c.relname::text
           FROM pg_catalog.pg_inherits i
           JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
           JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
           JOIN pg_catalog.pg_namespace n ON n.oid = p.relnamespace
          WHERE n.nspname = 'dbanalytics'",
    )?;
    Ok(names.into_iter().collect())
}

/// Runs partition DDL with a short lock timeout, restoring the caller's setting afterwards
/// (on error the enclosing subtransaction's rollback restores it).
fn with_short_lock_timeout<R>(
    ddl: impl FnOnce() -> Result<R, pgrx::spi::Error>,
) -> Result<R, pgrx::spi::Error> {
    let previous = spi::select_one::<String>("SELECT pg_catalog.current_setting('lock_timeout')")?;
    let set_lock_timeout = "SELECT pg_catalog.set_config('lock_timeout', $1, true)";
    spi::execute_with_args(set_lock_timeout, &[DDL_LOCK_TIMEOUT.into()])?;
    let result = ddl()?;
    spi::execute_with_args(
        set_lock_timeout,
        &[previous.as_deref().unwrap_or("0").into()],
    )?;
    Ok(result)
}

/// Creates the missing partitions for today and the days ahead. Returns how many were created.
/// One process at a time: another one (the other worker) creating them right now is waited for
/// (within lock_timeout), so that a sampler right after CREATE EXTENSION finds them in place
/// instead of losing its first ticks.
pub fn ensure_partitions() -> Result<Option<i64>, pgrx::spi::Error> {
    let now = now_epoch_seconds()?;
    let today = day_of(now);
    let all_there = |existing: &HashSet<String>| {
        PARTITIONED_TABLES.iter().all(|t| {
            days_needed(t, today, now, existing)
                .into_iter()
                .all(|day| existing.contains(&partition_name(t.name, day)))
        })
    };
    // nothing to create (the usual case): no lock, so that a worker never waits for the other
    // one's transaction (a snapshot holds the lock until it commits) when there is nothing to do
    if all_there(&existing_partitions()?) {
        return Ok(Some(0));
    }
    spi::execute(
        "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('dbanalytics.partitions'))",
    )?;
    let existing = existing_partitions()?;
    let mut created = 0;
    with_short_lock_timeout(|| {
        for t in PARTITIONED_TABLES {
            let table = t.name;
            for day in days_needed(t, today, now, &existing) {
                let name = partition_name(table, day);
                if existing.contains(&name) {
                    continue;
                }
                create_partition(table, &name, day)?;
                created += 1;
            }
        }
        Ok(Some(created))
    })
}

/// Creates one day's partition of `table`. A relation that already has the partition's name but
/// is not attached (pg_inherits does not list it) is attached only when it is what a partition of
/// ours detached by hand would be: an ordinary table owned by the parent's owner. Anything else
/// (a table planted by another role, a view, a foreign table) is an error naming it; the
/// partition is never assumed to exist because its name is taken.
fn create_partition(table: &str, name: &str, day: i64) -> Result<(), pgrx::spi::Error> {
    let (from, to) = partition_bounds(day);
    let qualified = format!("dbanalytics.{name}");
    let (taken, attachable, what) = Spi::get_three_with_args::<bool, bool, String>(
        "SELECT c.oid IS NOT NULL,
                c.relkind OPERATOR(pg_catalog.=) 'r' AND NOT c.relispartition
                AND c.relowner OPERATOR(pg_catalog.=) p.relowner,
                pg_catalog.format('%s owned by %s',
                    CASE c.relkind WHEN 'r' THEN 'an ordinary table' WHEN 'p' THEN 'a partitioned table'
                                   WHEN 'v' THEN 'a view' WHEN 'f' THEN 'a foreign table'
                                   ELSE 'a relation of kind ' OPERATOR(pg_catalog.||) c.relkind::text END,
                    pg_catalog.pg_get_userbyid(c.relowner))
           FROM pg_catalog.pg_class p
           LEFT JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)
          WHERE p.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($2)",
        &[qualified.as_str().into(), format!("dbanalytics.{table}").as_str().into()],
    )?;
    match (taken, attachable) {
        (Some(true), Some(true)) => {
            spi::execute(&format!(
                "ALTER TABLE dbanalytics.{table} ATTACH PARTITION dbanalytics.{name}
                 FOR VALUES FROM ('{from}') TO ('{to}')"
            ))?;
            pgrx::warning!("dbanalytics: re-attached the detached partition {qualified}");
        }
        (Some(true), _) => pgrx::error!(
            "dbanalytics: {qualified} should be a partition of dbanalytics.{table}, but it is {}",
            what.unwrap_or_else(|| "something else".to_string())
        ),
        _ => spi::execute(&format!(
            "CREATE TABLE dbanalytics.{name} PARTITION OF dbanalytics.{table}
             FOR VALUES FROM ('{from}') TO ('{to}')"
        ))?,
    }
    // Its indexes, on the partition itself (sql/schema.sql, partition_indexes: the parents have
    // none, so that a restored dump's partitions attach without indexes of their own).
    Spi::get_one_with_args::<i32>(
        "SELECT dbanalytics._index_partition($1, $2)",
        &[table.into(), name.into()],
    )?;
    Ok(())
}

/// How far a rollup has got (`source_state`), as Unix seconds; None before its first run.
fn rolled_until(rollup: &str) -> Result<Option<i64>, pgrx::spi::Error> {
    spi::select_one_with_args::<i64>(
        "SELECT pg_catalog.floor(EXTRACT(epoch FROM s.updated_at))::bigint
           FROM dbanalytics.source_state s WHERE s.source OPERATOR(pg_catalog.=) $1",
        &[rollup.into()],
    )
}

/// Whether a partition holds no row (an expired partition of a table that was never rolled up
/// because it never had rows, e.g. without pg_stat_statements).
fn is_empty(name: &str) -> Result<bool, pgrx::spi::Error> {
    Ok(!spi::select_one::<bool>(&format!(
        "SELECT EXISTS (SELECT FROM ONLY dbanalytics.{name})"
    ))?
    .unwrap_or(false))
}

/// The partitions whose whole range is past the retention of their tier (and, for a table a
/// rollup reads, rolled up), per table in the order of PARTITIONED_TABLES, oldest first.
pub fn expired_partitions() -> Result<Vec<(&'static str, String)>, pgrx::spi::Error> {
    let now = now_epoch_seconds()?;
    let existing = existing_partitions()?;
    let mut expired = Vec::new();
    for t in PARTITIONED_TABLES {
        let retention = t.tier.retention();
        let rolled = match t.rolled_up_by {
            Some(rollup) => Some(rolled_until(rollup)?),
            None => None,
        };
        let mut days: Vec<(i64, &String)> = existing
            .iter()
            .filter_map(|name| parse_partition_name(t.name, name).map(|day| (day, name)))
            .filter(|(day, _)| is_expired(*day, now, retention))
            .collect();
        days.sort();
        for (day, name) in days {
            let rolled_past = match rolled {
                None => true,
                Some(until) => until.is_some_and(|u| u >= (day + 1) * SECONDS_PER_DAY),
            };
            if rolled_past || is_empty(name)? {
                expired.push((t.name, name.clone()));
            }
        }
    }
    Ok(expired)
}

/// Drops the given partitions (from expired_partitions). Returns how many were dropped.
pub fn drop_partitions(expired: &[(&'static str, String)]) -> Result<i64, pgrx::spi::Error> {
    with_short_lock_timeout(|| {
        for (_, name) in expired {
            spi::execute(&format!("DROP TABLE dbanalytics.{name}"))?;
        }
        Ok(expired.len() as i64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_415), (2025, 11, 23));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        for day in -1000..40_000 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn partition_names_and_bounds() {
        let day = days_from_civil(2026, 11, 23);
        assert_eq!(
            partition_name("activity_raw", day),
            "activity_raw_p20261123"
        );
        assert_eq!(
            partition_bounds(day),
            (
                "2026-11-23 00:00:00+00".to_string(),
                "2026-11-24 00:00:00+00".to_string()
            )
        );
        // month and year ends
        assert_eq!(
            partition_bounds(days_from_civil(2026, 12, 31)).1,
            "2027-01-01 00:00:00+00"
        );
        assert_eq!(
            partition_bounds(days_from_civil(2028, 2, 28)).1,
            "2028-02-29 00:00:00+00"
        );
    }

    #[test]
    fn partition_names_parse_back_and_reject_strangers() {
        let day = days_from_civil(2026, 11, 23);
        assert_eq!(
            parse_partition_name("lock_waits", "lock_waits_p20261123"),
            Some(day)
        );
        assert_eq!(
            parse_partition_name("lock_waits", "lock_waits_p20261131"),
            None
        );
        assert_eq!(
            parse_partition_name("lock_waits", "lock_waits_p2026112"),
            None
        );
        assert_eq!(parse_partition_name("lock_waits", "lock_waits_old"), None);
        assert_eq!(
            parse_partition_name("activity_minute", "activity_raw_p20261123"),
            None
        );
        // a table whose name is a prefix of another does not claim the other's partitions
        assert_eq!(
            parse_partition_name("replication", "replication_stats_p20261123"),
            None
        );
    }

    #[test]
    fn required_days_cover_today_and_two_ahead() {
        assert_eq!(required_days(100).collect::<Vec<_>>(), vec![100, 101, 102]);
    }

    #[test]
    fn packed_tables_need_the_days_of_the_staged_partitions() {
        let packed = PARTITIONED_TABLES
            .iter()
            .find(|t| t.name == "statement_stats_packed")
            .unwrap();
        let staged_at = PARTITIONED_TABLES
            .iter()
            .position(|t| Some(t.name) == packed.packs)
            .unwrap();
        assert!(
            staged_at
                < PARTITIONED_TABLES
                    .iter()
                    .position(|t| t.name == packed.name)
                    .unwrap()
        );
        let today = days_from_civil(2026, 11, 23);
        let now = today * 86_400 + 3600;
        // minutes of yesterday, of the day before (a partition already past a 1-day retention)
        // and of a month ago (kept because not rolled up yet): only the days within the
        // retention get a packed partition (yesterday, today and the days ahead)
        let existing: HashSet<String> = [today - 1, today - 2, today - 30]
            .iter()
            .map(|&d| partition_name("statement_stats", d))
            .collect();
        let retention = packed.tier.retention().as_secs() as i64;
        let days = days_needed(packed, today, now, &existing);
        assert!(days
            .iter()
            .all(|&d| !is_expired(d, now, Duration::from_secs(retention as u64))));
        assert!(
            days.contains(&(today - 1)) && days.contains(&today) && days.contains(&(today + 2))
        );
        assert!(!days.contains(&(today - 30)) && !days.contains(&(today - 29)));
        // other tables: today and the days ahead only
        let staged = &PARTITIONED_TABLES[staged_at];
        assert_eq!(
            days_needed(staged, today, now, &existing),
            vec![today, today + 1, today + 2]
        );
    }

    #[test]
    fn day_of_uses_utc_days() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(86_399), 0);
        assert_eq!(day_of(86_400), 1);
        assert_eq!(day_of(-1), -1);
    }

    #[test]
    fn expiry_needs_the_whole_day_past_retention() {
        let day = days_from_civil(2026, 11, 20);
        let day_end = (day + 1) * 86_400;
        let one_day = Duration::from_secs(86_400);
        assert!(!is_expired(day, day_end + 86_399, one_day));
        assert!(is_expired(day, day_end + 86_400, one_day));
        // today's partition never expires with any positive retention
        assert!(!is_expired(
            day,
            day * 86_400 + 10,
            Duration::from_secs(3600)
        ));
    }
}
