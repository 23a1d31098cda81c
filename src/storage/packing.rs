//! Packed minutes: a matrix of `bigint` values (one row per snapshot interval, one column per
//! counter) encoded column by column into a `bytea`, so that an hour of a statement's per-minute
//! deltas is one row of `statement_stats_packed` / `statement_latency_packed` (docs/storage.md).
//!
//! Each column is stored as the smallest of a few transforms of its non-NULL values: the values
//! themselves, or their first or second differences (regular interval ends and lengths become
//! runs of zeros), optionally divided first by their greatest common divisor (times stored in
//! nanoseconds that are whole microseconds). The transformed values are written as tokens, each a
//! LEB128 varint: 0 then a count for a run of NULLs, 1 then a count for a run of zeros, and
//! `zigzag(x) + 1` for any other value `x`. Decoding checks every length and range and fails on a
//! damaged value instead of returning wrong numbers.
//!
//! Layout: format byte (1, 2 for a matrix of intervals, 3 for a matrix of intervals on a
//! clock), columns, rows, for format 3 the clock's length, then per column a mode byte (bits
//! 0–1: order of the differences, bit 4: a divisor varint follows) and its tokens. In a matrix
//! of intervals, columns 0 and 1 are each interval's end and length, and the length is stored
//! as its difference from the time since the previous row's end: 0 for back-to-back intervals,
//! whose ends jitter by the collector's scheduling. On a clock (the ascending interval ends of
//! an hour's snapshots, which every statement of the hour shares and `packed_hours` stores once),
//! the end is stored as its position in the clock, so the jitter costs nothing per row.
//!
//! Histograms (format flag 0x10; header: the column `at` of the number n of buckets, the width
//! of the sparse part and the core buckets): from column `at` on, each row holds n, then n
//! bucket numbers ascending and their n counts, each padded with NULLs to one width. Packed,
//! each bucket that at least `CORE_ROWS` rows have (the core, listed once in the header) gets a
//! column of its own holding its count in each row (NULL in a row without it), and the other
//! buckets of a row follow as their number, the buckets and their counts: a bucket number is
//! not stored per row, and a count sits in a column of counts of the same bucket. A matrix
//! whose histograms are not in that form is packed as it is.

use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

const FORMAT: u8 = 1;
const FORMAT_INTERVALS: u8 = 2;
const FORMAT_CLOCKED: u8 = 3;
/// Format flag: the matrix's histograms are packed by core bucket (module comment).
const FORMAT_HISTOGRAMS: u8 = 0x10;
/// Buckets found in at least this many rows of a matrix get a column of their own.
const CORE_ROWS: usize = 3;
/// The most values one packed matrix may hold (an hour of minutes needs a few thousand).
pub const MAX_VALUES: usize = 1 << 20;
const SCALED: u8 = 0x10;
const TOKEN_NULLS: u128 = 0;
const TOKEN_ZEROS: u128 = 1;

fn put_varint(out: &mut Vec<u8>, mut value: u128) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn get_varint(input: &[u8], pos: &mut usize) -> Result<u128, String> {
    let mut value: u128 = 0;
    for shift in (0..128).step_by(7) {
        let byte = *input
            .get(*pos)
            .ok_or_else(|| format!("truncated at byte {}", *pos))?;
        *pos += 1;
        let bits = u128::from(byte & 0x7f);
        if shift == 126 && bits > 3 {
            return Err(format!("varint overflows at byte {}", *pos - 1));
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(format!("varint too long at byte {}", *pos))
}

fn zigzag(value: i128) -> u128 {
    ((value << 1) ^ (value >> 127)) as u128
}

fn unzigzag(value: u128) -> i128 {
    ((value >> 1) as i128) ^ -((value & 1) as i128)
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `order` rounds of "each value minus the one before it" (the first minus 0).
fn differences(values: &mut [i128], order: u8) {
    for _ in 0..order {
        for i in (1..values.len()).rev() {
            values[i] -= values[i - 1];
        }
    }
}

/// Undoes `differences` (running sums); None when a sum leaves the range of i128.
fn running_sums(values: &mut [i128], order: u8) -> Option<()> {
    for _ in 0..order {
        for i in 1..values.len() {
            values[i] = values[i].checked_add(values[i - 1])?;
        }
    }
    Some(())
}

/// The tokens of one transformed column: `present` holds the transformed non-NULL values in
/// order, `column` says where the NULLs are.
fn put_tokens(out: &mut Vec<u8>, column: &[Option<i64>], present: &[i128]) {
    let mut next = present.iter();
    let mut run: Option<(u128, u128)> = None; // (token, length)
    let flush = |out: &mut Vec<u8>, run: &mut Option<(u128, u128)>| {
        if let Some((token, length)) = run.take() {
            put_varint(out, token);
            put_varint(out, length);
        }
    };
    for value in column {
        let token = match value {
            None => TOKEN_NULLS,
            Some(_) => match *next
                .next()
                .expect("one transformed value per present value")
            {
                0 => TOKEN_ZEROS,
                x => {
                    flush(out, &mut run);
                    put_varint(out, zigzag(x) + 1);
                    continue;
                }
            },
        };
        match &mut run {
            Some((t, length)) if *t == token => *length += 1,
            _ => {
                flush(out, &mut run);
                run = Some((token, 1));
            }
        }
    }
    flush(out, &mut run);
}

/// Appends the smallest encoding of one column.
fn put_column(out: &mut Vec<u8>, column: &[Option<i64>]) {
    let present: Vec<i128> = column.iter().flatten().map(|&v| i128::from(v)).collect();
    let divisor = present.iter().fold(0u128, |g, &v| gcd(g, v.unsigned_abs()));
    let mut best: Option<Vec<u8>> = None;
    for scaled in [false, true] {
        if scaled && divisor < 2 {
            continue;
        }
        for order in 0..=2u8 {
            let mut encoded = vec![order | if scaled { SCALED } else { 0 }];
            let mut values = present.clone();
            if scaled {
                put_varint(&mut encoded, divisor);
                values.iter_mut().for_each(|v| *v /= divisor as i128);
            }
            differences(&mut values, order);
            put_tokens(&mut encoded, column, &values);
            if best.as_ref().is_none_or(|b| encoded.len() < b.len()) {
                best = Some(encoded);
            }
        }
    }
    out.extend_from_slice(&best.expect("at least one encoding"));
}

/// In a matrix of intervals, each row's (end, length) to (end, length - (end - previous end))
/// (`forward`), or back; rows with a NULL among them are left alone. Wrapping arithmetic, so
/// that any bigint values round-trip.
fn interval_lengths(columns: usize, values: &mut [Option<i64>], forward: bool) {
    let rows = values.len() / columns;
    // backwards when encoding, so that each row still sees the previous row's end
    let order: Vec<usize> = if forward {
        (1..rows).rev().collect()
    } else {
        (1..rows).collect()
    };
    for r in order {
        let (previous, end, length) = (
            values[(r - 1) * columns],
            values[r * columns],
            values[r * columns + 1],
        );
        if let (Some(previous), Some(end), Some(length)) = (previous, end, length) {
            let since_previous = end.wrapping_sub(previous);
            values[r * columns + 1] = Some(if forward {
                length.wrapping_sub(since_previous)
            } else {
                length.wrapping_add(since_previous)
            });
        }
    }
}

/// A row's histogram from column `at` of a row of `width`-wide histograms: its (bucket,
/// count) pairs, or None unless n is in 0..=width, the n buckets ascending, the n counts
/// present and the padding NULL.
fn histogram_pairs(row: &[Option<i64>], at: usize, width: usize) -> Option<Vec<(i64, i64)>> {
    let n = usize::try_from(row[at]?).ok().filter(|&n| n <= width)?;
    let (buckets, counts) = row[at + 1..].split_at(width);
    if buckets[n..].iter().chain(&counts[n..]).any(Option::is_some) {
        return None;
    }
    let pairs: Vec<(i64, i64)> = (0..n)
        .map(|i| Some((buckets[i]?, counts[i]?)))
        .collect::<Option<_>>()?;
    pairs.windows(2).all(|w| w[0].0 < w[1].0).then_some(pairs)
}

/// The histograms of a matrix (columns `at`..) by core bucket (module comment): (core buckets,
/// sparse width, the rewritten rows), or None when a row's histogram is not in the form
/// `histogram_pairs` reads or the result would be too large.
fn histograms_by_core(
    columns: usize,
    values: &[Option<i64>],
    at: usize,
) -> Option<(Vec<i64>, usize, Vec<Option<i64>>)> {
    if at >= columns || !(columns - at - 1).is_multiple_of(2) {
        return None;
    }
    let width = (columns - at - 1) / 2;
    let histograms: Vec<Vec<(i64, i64)>> = values
        .chunks(columns)
        .map(|row| histogram_pairs(row, at, width))
        .collect::<Option<_>>()?;
    let mut rows_with: std::collections::BTreeMap<i64, usize> = Default::default();
    for (bucket, _) in histograms.iter().flatten() {
        *rows_with.entry(*bucket).or_default() += 1;
    }
    let core: Vec<i64> = rows_with
        .into_iter()
        .filter(|&(_, rows)| rows >= CORE_ROWS)
        .map(|(bucket, _)| bucket)
        .collect();
    let sparse_width = histograms
        .iter()
        .map(|h| {
            h.iter()
                .filter(|(b, _)| core.binary_search(b).is_err())
                .count()
        })
        .max()
        .unwrap_or(0);
    let packed_columns = at + core.len() + 1 + 2 * sparse_width;
    if packed_columns.saturating_mul(histograms.len()) > MAX_VALUES {
        return None;
    }
    let mut out = Vec::with_capacity(packed_columns * histograms.len());
    for (row, pairs) in values.chunks(columns).zip(&histograms) {
        out.extend_from_slice(&row[..at]);
        let mut dense = vec![None; core.len()];
        let mut sparse = Vec::new();
        for &(bucket, count) in pairs {
            match core.binary_search(&bucket) {
                Ok(i) => dense[i] = Some(count),
                Err(_) => sparse.push((bucket, count)),
            }
        }
        out.extend(dense);
        out.push(Some(sparse.len() as i64));
        out.extend((0..sparse_width).map(|i| sparse.get(i).map(|p| p.0)));
        out.extend((0..sparse_width).map(|i| sparse.get(i).map(|p| p.1)));
    }
    Some((core, sparse_width, out))
}

/// Undoes `histograms_by_core` for a matrix of `columns` columns; an error names a row that
/// does not decode.
fn histograms_from_core(
    columns: usize,
    at: usize,
    core: &[i64],
    sparse_width: usize,
    packed: &[Option<i64>],
) -> Result<Vec<Option<i64>>, String> {
    let width = (columns - at - 1) / 2;
    let packed_columns = at + core.len() + 1 + 2 * sparse_width;
    let mut out = Vec::with_capacity(packed.len() / packed_columns.max(1) * columns);
    for (r, row) in packed.chunks(packed_columns).enumerate() {
        let bad = || format!("the histogram of row {} does not decode", r + 1);
        out.extend_from_slice(&row[..at]);
        let (dense, rest) = row[at..].split_at(core.len());
        let k = rest[0]
            .and_then(|k| usize::try_from(k).ok())
            .filter(|&k| k <= sparse_width)
            .ok_or_else(bad)?;
        let (buckets, counts) = rest[1..].split_at(sparse_width);
        if buckets[k..].iter().chain(&counts[k..]).any(Option::is_some) {
            return Err(bad());
        }
        let mut pairs: Vec<(i64, i64)> = core
            .iter()
            .zip(dense)
            .filter_map(|(&b, c)| Some((b, (*c)?)))
            .collect();
        for i in 0..k {
            let bucket = buckets[i].ok_or_else(bad)?;
            let ascending = i == 0 || buckets[i - 1].is_some_and(|p| p < bucket);
            if !ascending || core.binary_search(&bucket).is_ok() {
                return Err(bad());
            }
            pairs.push((bucket, counts[i].ok_or_else(bad)?));
        }
        if pairs.len() > width {
            return Err(bad());
        }
        pairs.sort_unstable_by_key(|p| p.0);
        out.push(Some(pairs.len() as i64));
        out.extend((0..width).map(|i| pairs.get(i).map(|p| p.0)));
        out.extend((0..width).map(|i| pairs.get(i).map(|p| p.1)));
    }
    Ok(out)
}

/// Positions of the interval ends (column 0) in `clock`; an error names an end that is not
/// one of its times.
fn clock_positions(
    columns: usize,
    values: &mut [Option<i64>],
    clock: &[i64],
) -> Result<(), String> {
    if clock.windows(2).any(|w| w[0] >= w[1]) {
        return Err("the clock's times are not strictly ascending".to_string());
    }
    for end in values.iter_mut().step_by(columns) {
        let position = end
            .and_then(|e| clock.binary_search(&e).ok())
            .ok_or_else(|| match end {
                Some(e) => format!("interval end {e} is not one of the clock's times"),
                None => "an interval end is NULL".to_string(),
            })?;
        *end = Some(position as i64);
    }
    Ok(())
}

/// How a matrix is laid out (module comment): `intervals`: columns 0 and 1 are interval ends
/// and lengths; `clock`: the times every end is one of; `histogram`: the column of the number
/// of buckets of each row's histogram, which fills the columns after it.
#[derive(Clone, Copy, Default)]
pub struct Layout<'a> {
    pub intervals: bool,
    pub clock: Option<&'a [i64]>,
    pub histogram: Option<usize>,
}

/// Encodes a row-major matrix of `columns` columns laid out as `layout` says.
pub fn pack(columns: usize, values: &[Option<i64>], layout: Layout) -> Result<Vec<u8>, String> {
    let Layout {
        intervals,
        clock,
        histogram,
    } = layout;
    if clock.is_some() && !intervals {
        return Err("only a matrix of intervals is packed on a clock".to_string());
    }
    if intervals && columns < 2 {
        return Err(format!(
            "a matrix of intervals needs at least 2 columns, got {columns}"
        ));
    }
    if columns == 0 || !values.len().is_multiple_of(columns) {
        return Err(format!(
            "{} values do not make rows of {columns} columns",
            values.len()
        ));
    }
    if values.len() > MAX_VALUES {
        return Err(format!(
            "{} values are more than the {MAX_VALUES} one matrix may hold",
            values.len()
        ));
    }
    let rows = values.len() / columns;
    let format = match (intervals, clock) {
        (false, _) => FORMAT,
        (true, None) => FORMAT_INTERVALS,
        (true, Some(_)) => FORMAT_CLOCKED,
    };
    let mut out = vec![format];
    put_varint(&mut out, columns as u128);
    put_varint(&mut out, rows as u128);
    let mut owned;
    let mut values = if intervals {
        owned = values.to_vec();
        interval_lengths(columns, &mut owned, true);
        if let Some(clock) = clock {
            put_varint(&mut out, clock.len() as u128);
            clock_positions(columns, &mut owned, clock)?;
        }
        &owned[..]
    } else {
        values
    };
    let by_core;
    let mut packed_columns = columns;
    if let Some((at, (core, sparse_width, rewritten))) =
        histogram.and_then(|at| Some((at, histograms_by_core(columns, values, at)?)))
    {
        out[0] |= FORMAT_HISTOGRAMS;
        put_varint(&mut out, at as u128);
        put_varint(&mut out, sparse_width as u128);
        put_varint(&mut out, core.len() as u128);
        let mut previous = 0i128;
        for &bucket in &core {
            put_varint(&mut out, zigzag(i128::from(bucket) - previous));
            previous = i128::from(bucket);
        }
        packed_columns = at + core.len() + 1 + 2 * sparse_width;
        by_core = rewritten;
        values = &by_core[..];
    }
    let (columns, values) = (packed_columns, values);
    let mut column = Vec::with_capacity(rows);
    for c in 0..columns {
        column.clear();
        column.extend((0..rows).map(|r| values[r * columns + c]));
        put_column(&mut out, &column);
    }
    Ok(out)
}

fn get_column(input: &[u8], pos: &mut usize, rows: usize) -> Result<Vec<Option<i64>>, String> {
    let mode = *input
        .get(*pos)
        .ok_or_else(|| format!("truncated at byte {}", *pos))?;
    *pos += 1;
    let order = mode & 0x03;
    if order > 2 || mode & !(0x03 | SCALED) != 0 {
        return Err(format!("unknown column mode {mode}"));
    }
    let divisor: i128 = if mode & SCALED != 0 {
        let d = get_varint(input, pos)?;
        if !(2..=u128::from(u64::MAX)).contains(&d) {
            return Err(format!("bad divisor {d}"));
        }
        d as i128
    } else {
        1
    };
    // where the NULLs are, and the transformed values of the others
    let mut nulls = Vec::with_capacity(rows);
    let mut present = Vec::with_capacity(rows);
    while nulls.len() < rows {
        let token = get_varint(input, pos)?;
        if token == TOKEN_NULLS || token == TOKEN_ZEROS {
            let length = get_varint(input, pos)?;
            if length == 0 || length > (rows - nulls.len()) as u128 {
                return Err(format!("run of {length} past the {rows} rows"));
            }
            for _ in 0..length {
                nulls.push(token == TOKEN_NULLS);
                if token == TOKEN_ZEROS {
                    present.push(0);
                }
            }
        } else {
            let value = token - 1;
            if value > zigzag(i128::MIN >> 2) {
                return Err(format!("value token {token} out of range"));
            }
            nulls.push(false);
            present.push(unzigzag(value));
        }
    }
    running_sums(&mut present, order).ok_or("running sum out of range")?;
    let mut values = present.into_iter();
    nulls
        .into_iter()
        .map(|null| {
            if null {
                return Ok(None);
            }
            let value = values.next().expect("one value per non-NULL row");
            value
                .checked_mul(divisor)
                .and_then(|v| i64::try_from(v).ok())
                .map(Some)
                .ok_or_else(|| format!("value {value} × {divisor} is not a bigint"))
        })
        .collect()
}

/// Decodes a matrix: (columns, row-major values); `clock`: the times of a matrix packed on a
/// clock (module comment), the same as when packed.
pub fn unpack(input: &[u8], clock: Option<&[i64]>) -> Result<(usize, Vec<Option<i64>>), String> {
    let format = input.first().copied();
    let histograms = format.is_some_and(|f| f & FORMAT_HISTOGRAMS != 0);
    let (intervals, clocked) = match format.map(|f| f & !FORMAT_HISTOGRAMS) {
        Some(FORMAT) => (false, false),
        Some(FORMAT_INTERVALS) => (true, false),
        Some(FORMAT_CLOCKED) => (true, true),
        _ => return Err(format!("unknown format {format:?}")),
    };
    let mut pos = 1;
    let columns = get_varint(input, &mut pos)?;
    let rows = get_varint(input, &mut pos)?;
    if columns < 1 + u128::from(intervals) || columns.saturating_mul(rows) > MAX_VALUES as u128 {
        return Err(format!("{rows} rows of {columns} columns"));
    }
    let (columns, rows) = (columns as usize, rows as usize);
    let clock = if clocked {
        let length = get_varint(input, &mut pos)?;
        match clock {
            Some(clock) if clock.len() as u128 == length => Some(clock),
            Some(clock) => {
                return Err(format!(
                    "packed on a clock of {length} times, given one of {}",
                    clock.len()
                ))
            }
            None => return Err(format!("packed on a clock of {length} times, given none")),
        }
    } else {
        None
    };
    // the histograms' header: (at, sparse width, core buckets)
    let by_core = if histograms {
        let at = get_varint(input, &mut pos)?;
        let sparse_width = get_varint(input, &mut pos)?;
        let core_len = get_varint(input, &mut pos)?;
        if at >= columns as u128
            || !(columns as u128 - at - 1).is_multiple_of(2)
            || core_len.saturating_add(sparse_width) > MAX_VALUES as u128
        {
            return Err(format!(
                "histograms at column {at} of {columns} with {core_len} core buckets and {sparse_width} others"
            ));
        }
        let mut core = Vec::with_capacity(core_len as usize);
        let mut previous = 0i128;
        for _ in 0..core_len {
            let bucket = previous
                .checked_add(unzigzag(get_varint(input, &mut pos)?))
                .ok_or("core bucket out of range")?;
            if !core.is_empty() && bucket <= previous {
                return Err("core buckets not ascending".to_string());
            }
            core.push(i64::try_from(bucket).map_err(|_| "core bucket out of range")?);
            previous = bucket;
        }
        Some((at as usize, sparse_width as usize, core))
    } else {
        None
    };
    let packed_columns = by_core
        .as_ref()
        .map_or(columns, |(at, sparse_width, core)| {
            at + core.len() + 1 + 2 * sparse_width
        });
    if packed_columns.saturating_mul(rows) > MAX_VALUES {
        return Err(format!("{rows} rows of {packed_columns} packed columns"));
    }
    let mut values = vec![None; packed_columns * rows];
    for c in 0..packed_columns {
        for (r, value) in get_column(input, &mut pos, rows)?.into_iter().enumerate() {
            values[r * packed_columns + c] = value;
        }
    }
    if pos != input.len() {
        return Err(format!("{} bytes after the last column", input.len() - pos));
    }
    if let Some((at, sparse_width, core)) = by_core {
        values = histograms_from_core(columns, at, &core, sparse_width, &values)?;
    }
    if let Some(clock) = clock {
        for end in values.iter_mut().step_by(columns) {
            *end = Some(
                end.and_then(|p| clock.get(usize::try_from(p).ok()?).copied())
                    .ok_or_else(|| match end {
                        Some(p) => format!("clock position {p} out of range"),
                        None => "a NULL clock position".to_string(),
                    })?,
            );
        }
    }
    if intervals {
        interval_lengths(columns, &mut values, false);
    }
    Ok((columns, values))
}

/// The times of a clock passed from SQL; an error for a NULL among them.
fn clock_times(clock: Option<Vec<Option<i64>>>) -> Option<Vec<i64>> {
    clock.map(|times| {
        times.into_iter().collect::<Option<Vec<i64>>>().unwrap_or_else(|| {
            crate::api::raise(
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                "dbanalytics: a clock holds a NULL time".to_string(),
                "Pass the interval ends of the hour, ascending, as packed_hours.interval_ends holds them.",
            )
        })
    })
}

/// The matrix of `values` (row-major, any dimensions: an array of rows works) with `columns`
/// columns, packed; `intervals`: its columns 1 and 2 are interval ends and lengths, in time
/// order (the module comment says what that saves); `clock`: the ascending times every interval
/// end is one of (stored once elsewhere: each end is packed as its position among them);
/// `histogram`: the column (from 1) of the number n of buckets of each row's histogram, followed
/// by n buckets ascending and their n counts, each padded with NULLs to one width (packed by
/// core bucket). NULL when `columns`, `values` or `intervals` is NULL. Internal: `_pack_minutes` packs the
/// minutes of an hour with it.
#[pg_extern(immutable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
pub fn _pack_columns(
    columns: Option<i32>,
    values: Option<pgrx::Array<i64>>,
    intervals: default!(Option<bool>, false),
    clock: default!(Option<Vec<Option<i64>>>, "NULL"),
    histogram: default!(Option<i32>, "NULL"),
) -> Option<Vec<u8>> {
    let (columns, values, intervals) = (columns?, values?, intervals?);
    let clock = clock_times(clock);
    // the length is known before anything is copied
    let checked = if columns < 1 {
        Err(format!("columns must be at least 1, got {columns}"))
    } else if values.len() > MAX_VALUES {
        Err(format!(
            "{} values are more than the {MAX_VALUES} one matrix may hold",
            values.len()
        ))
    } else {
        let values: Vec<Option<i64>> = values.iter().collect();
        let histogram = histogram.map(|h| usize::try_from(h - 1).map_err(|_| h));
        match histogram.transpose() {
            Err(h) => Err(format!("histogram must be a column from 1, got {h}")),
            Ok(histogram) => pack(
                columns as usize,
                &values,
                Layout {
                    intervals,
                    clock: clock.as_deref(),
                    histogram,
                },
            ),
        }
    };
    Some(checked.unwrap_or_else(|message| {
        crate::api::raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("dbanalytics: cannot pack: {message}"),
            "Pass the rows of the matrix one after the other, each with the same number of columns (on a clock, intervals whose ends are among its times).",
        )
    }))
}

/// A row of a packed matrix: its number (from 1) and its values.
pub type Row = (i32, Vec<Option<i64>>);

/// The rows of `packed` (on `clock`, if packed on one) whose first column lies in (`after`,
/// `upto`] (a NULL bound does not limit), numbered from 1.
pub fn select_rows(
    packed: &[u8],
    after: Option<i64>,
    upto: Option<i64>,
    clock: Option<&[i64]>,
) -> Result<Vec<Row>, String> {
    let (columns, values) = unpack(packed, clock)?;
    Ok(values
        .chunks(columns)
        .enumerate()
        .filter(|(_, row)| {
            let first = row[0];
            after.is_none_or(|a| first.is_some_and(|v| v > a))
                && upto.is_none_or(|u| first.is_some_and(|v| v <= u))
        })
        .map(|(n, row)| (n as i32 + 1, row.to_vec()))
        .collect())
}

/// select_rows (`clock` as passed from SQL), or an error naming the damage when the value
/// cannot be decoded.
fn selected_rows(
    packed: &[u8],
    after: Option<i64>,
    upto: Option<i64>,
    clock: Option<Vec<Option<i64>>>,
) -> Vec<Row> {
    let clock = clock_times(clock);
    select_rows(packed, after, upto, clock.as_deref()).unwrap_or_else(|message| {
        crate::api::raise(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            format!("dbanalytics: a packed value is damaged: {message}"),
            "The value was not written by _pack_columns or was changed since, or is read with another clock than the packed_hours row of its hour; restore the table from a backup or delete the row.",
        )
    })
}

/// The rows of a packed matrix (row `n`, from 1, and its values) whose first column lies in
/// (`after`, `upto`] (a NULL bound does not limit); `clock`: the times it was packed on, if
/// any. NULL `packed` gives no row. Internal: `_packed_statement_minutes` and
/// `_packed_latency_minutes` read the packed minutes with it.
#[pg_extern(immutable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
pub fn _unpack_columns(
    packed: Option<&[u8]>,
    after: default!(Option<i64>, "NULL"),
    upto: default!(Option<i64>, "NULL"),
    clock: default!(Option<Vec<Option<i64>>>, "NULL"),
) -> TableIterator<'static, (name!(n, i32), name!(row_values, Vec<Option<i64>>))> {
    TableIterator::new(packed.map_or_else(Vec::new, |p| selected_rows(p, after, upto, clock)))
}

/// Totals of the selected rows of a packed matrix.
#[derive(Debug, PartialEq)]
pub struct Totals {
    pub rows: i32,
    /// per column: the sum of its non-NULL values (NULL when all are NULL)
    pub sums: Vec<Option<i64>>,
    pub first: Vec<Option<i64>>,
    pub last: Vec<Option<i64>>,
    /// the largest `row[ratio_column] / max(divisor, 1)` over the rows whose first column is one
    /// of `ratio_keys` (with that key's divisor)
    pub peak_ratio: Option<f64>,
}

/// Sums the columns of `rows`; None when a sum leaves the range of bigint.
pub fn totals(
    rows: &[Row],
    ratio_column: Option<usize>,
    ratio_keys: &[(i64, i64)],
) -> Option<Totals> {
    let (first, last) = (rows.first()?, rows.last()?);
    let columns = first.1.len();
    let mut sums: Vec<Option<i128>> = vec![None; columns];
    let mut peak_ratio: Option<f64> = None;
    for (_, row) in rows {
        for (sum, value) in sums.iter_mut().zip(row) {
            if let Some(v) = value {
                *sum = Some(sum.unwrap_or(0) + i128::from(*v));
            }
        }
        let ratio = ratio_column.and_then(|c| {
            let value = row.get(c).copied().flatten()?;
            let key = row[0]?;
            let (_, divisor) = ratio_keys.iter().find(|(k, _)| *k == key)?;
            Some(value as f64 / (*divisor).max(1) as f64)
        });
        if let Some(r) = ratio {
            peak_ratio = Some(peak_ratio.map_or(r, |p| p.max(r)));
        }
    }
    let sums = sums
        .into_iter()
        .map(|s| s.map(i64::try_from).transpose())
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    Some(Totals {
        rows: rows.len() as i32,
        sums,
        first: first.1.clone(),
        last: last.1.clone(),
        peak_ratio,
    })
}

/// The rows of a packed matrix whose first column lies in (`after`, `upto`], in one row: how
/// many, the sum of each column, the first and the last of them, and the largest value of
/// column `ratio_column` (from 1) divided by the divisor given for its row's first column
/// (`ratio_keys`, `ratio_divisors`: parallel arrays; at least 1); `clock`: the times it was
/// packed on, if any. No row when none is selected. Internal: `_packed_statement_totals` sums
/// the packed minutes of each statement with it.
#[allow(clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
pub fn _unpack_totals(
    packed: Option<&[u8]>,
    after: Option<i64>,
    upto: Option<i64>,
    ratio_column: default!(Option<i32>, "NULL"),
    ratio_keys: default!(Option<Vec<Option<i64>>>, "NULL"),
    ratio_divisors: default!(Option<Vec<Option<i64>>>, "NULL"),
    clock: default!(Option<Vec<Option<i64>>>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(rows, i32),
        name!(sums, Vec<Option<i64>>),
        name!(first_row, Vec<Option<i64>>),
        name!(last_row, Vec<Option<i64>>),
        name!(peak_ratio, Option<f64>),
    ),
> {
    let Some(packed) = packed else {
        return TableIterator::new(Vec::new());
    };
    let rows = selected_rows(packed, after, upto, clock);
    let keys: Vec<(i64, i64)> = ratio_keys
        .unwrap_or_default()
        .into_iter()
        .zip(ratio_divisors.unwrap_or_default())
        .filter_map(|(k, d)| Some((k?, d?)))
        .collect();
    let column = ratio_column.and_then(|c| usize::try_from(c).ok()?.checked_sub(1));
    let result = if rows.is_empty() {
        None
    } else {
        let t = totals(&rows, column, &keys).unwrap_or_else(|| {
            crate::api::raise(
                PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
                "dbanalytics: a sum of packed values is out of range for bigint".to_string(),
                "Sum fewer rows at a time.",
            )
        });
        Some((t.rows, t.sums, t.first, t.last, t.peak_ratio))
    };
    TableIterator::new(result)
}

/// Columns of the matrix of `statement_latency_packed` (sql/schema.sql), from 0.
mod latency_column {
    pub const RESET: usize = 2;
    pub const EXECUTIONS: usize = 3;
    pub const RUNS: usize = 4;
    pub const RUN_EXECUTIONS: usize = 5;
    pub const RUN_MAX_LENGTH: usize = 6;
    pub const RUN_PARENT: usize = 7;
    pub const CPU_USER: usize = 8;
    pub const CPU_SYSTEM: usize = 9;
    pub const DISK_READ: usize = 10;
    pub const DISK_WRITE: usize = 11;
    pub const BUCKETS: usize = 12;
    pub const HISTOGRAM: usize = 13;
}

/// The merged latency rows of one run parent (None: rows without one) and, when the rows'
/// run applications are given, one run application.
#[derive(Debug, Default, PartialEq)]
pub struct LatencyTotals {
    pub parent: Option<i64>,
    pub application: Option<String>,
    pub reset: bool,
    pub executions: i64,
    pub histogram: std::collections::BTreeMap<i64, i64>,
    pub runs: Option<i64>,
    pub run_executions: Option<i64>,
    pub run_max_length: Option<i64>,
    pub cpu_user_ns: Option<i64>,
    pub cpu_system_ns: Option<i64>,
    pub disk_read: Option<i64>,
    pub disk_write: Option<i64>,
}

/// Merges latency matrix rows per run parent, as the readers of `_latency_parts` merge rows:
/// counts, runs, times and bytes add up, the longest run is kept, bucket counts add up; also
/// per run application when `applications` gives each row's (by row number). An error names a
/// row that does not have the layout or a sum out of range.
pub fn latency_totals(
    rows: &[Row],
    applications: Option<&[Option<String>]>,
) -> Result<Vec<LatencyTotals>, String> {
    use latency_column as c;
    fn add(total: &mut Option<i64>, value: Option<i64>) -> Result<(), String> {
        if let Some(v) = value {
            *total = Some(
                total
                    .unwrap_or(0)
                    .checked_add(v)
                    .ok_or("a sum is out of range for bigint")?,
            );
        }
        Ok(())
    }
    type Key = (Option<i64>, Option<String>);
    let mut groups: std::collections::BTreeMap<Key, LatencyTotals> = Default::default();
    for (n, row) in rows {
        let bad = || format!("row {n} does not have the layout of statement_latency_packed");
        if row.len() < c::HISTOGRAM || !(row.len() - c::HISTOGRAM).is_multiple_of(2) {
            return Err(bad());
        }
        let width = (row.len() - c::HISTOGRAM) / 2;
        let buckets = usize::try_from(row[c::BUCKETS].ok_or_else(bad)?).map_err(|_| bad())?;
        if buckets > width {
            return Err(bad());
        }
        let parent = row[c::RUN_PARENT];
        let application = applications
            .and_then(|a| a.get(usize::try_from(*n).ok()?.checked_sub(1)?).cloned())
            .flatten();
        let g = groups
            .entry((parent, application.clone()))
            .or_insert_with(|| LatencyTotals {
                parent,
                application,
                ..Default::default()
            });
        g.reset |= row[c::RESET].is_some_and(|r| r != 0);
        let mut executions = Some(g.executions);
        add(&mut executions, row[c::EXECUTIONS])?;
        g.executions = executions.unwrap_or(0);
        add(&mut g.runs, row[c::RUNS])?;
        add(&mut g.run_executions, row[c::RUN_EXECUTIONS])?;
        if let Some(length) = row[c::RUN_MAX_LENGTH] {
            g.run_max_length = Some(g.run_max_length.map_or(length, |m| m.max(length)));
        }
        add(&mut g.cpu_user_ns, row[c::CPU_USER])?;
        add(&mut g.cpu_system_ns, row[c::CPU_SYSTEM])?;
        add(&mut g.disk_read, row[c::DISK_READ])?;
        add(&mut g.disk_write, row[c::DISK_WRITE])?;
        for i in 0..buckets {
            let bucket = row[c::HISTOGRAM + i]
                .filter(|b| (0..=i64::from(i16::MAX)).contains(b))
                .ok_or_else(bad)?;
            let count = row[c::HISTOGRAM + width + i].ok_or_else(bad)?;
            let mut total = Some(*g.histogram.get(&bucket).unwrap_or(&0));
            add(&mut total, Some(count))?;
            g.histogram.insert(bucket, total.unwrap_or(0));
        }
    }
    Ok(groups.into_values().collect())
}

/// The rows of a packed latency matrix (`statement_latency_packed.intervals`) whose interval
/// ends in (`after`, `upto`] (µs since the epoch), merged per run parent: one row per parent
/// (and one for the rows without runs), with the merged histogram (buckets ascending) and the
/// run, CPU (ns) and disk totals; also per run application when `applications` (the row's
/// `run_applications`) is given; `clock`: the times it was packed on, if any. Internal:
/// `_latency_parts` reads the packed minutes with it, `_n_plus_one` the runs of each
/// application.
#[allow(clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
pub fn _unpack_latency_totals(
    packed: Option<&[u8]>,
    after: Option<i64>,
    upto: Option<i64>,
    applications: default!(Option<Vec<Option<String>>>, "NULL"),
    clock: default!(Option<Vec<Option<i64>>>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(reset, bool),
        name!(executions, i64),
        name!(buckets, Vec<i16>),
        name!(counts, Vec<i64>),
        name!(runs, Option<i64>),
        name!(run_executions, Option<i64>),
        name!(run_max_length, Option<i64>),
        name!(run_parent_queryid, Option<i64>),
        name!(cpu_user_ns, Option<i64>),
        name!(cpu_system_ns, Option<i64>),
        name!(disk_read_bytes, Option<i64>),
        name!(disk_write_bytes, Option<i64>),
        name!(run_application, Option<String>),
    ),
> {
    let Some(packed) = packed else {
        return TableIterator::new(Vec::new());
    };
    let rows = selected_rows(packed, after, upto, clock);
    let groups = latency_totals(&rows, applications.as_deref()).unwrap_or_else(|message| {
        crate::api::raise(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            format!("dbanalytics: a packed latency value is damaged: {message}"),
            "The value was not written by _pack_minutes or was changed since; restore the table from a backup or delete the row.",
        )
    });
    TableIterator::new(groups.into_iter().map(|g| {
        (
            g.reset,
            g.executions,
            g.histogram.keys().map(|&b| b as i16).collect(),
            g.histogram.into_values().collect(),
            g.runs,
            g.run_executions,
            g.run_max_length,
            g.parent,
            g.cpu_user_ns,
            g.cpu_system_ns,
            g.disk_read,
            g.disk_write,
            g.application,
        )
    }))
}

#[cfg(test)]
mod unit {
    use super::*;

    /// Packs as a plain matrix and, with 2 columns or more, as a matrix of intervals; both
    /// unpack to `values`. Returns the size of the one asked for.
    fn round_trip_as(columns: usize, values: &[Option<i64>], intervals: bool) -> usize {
        let mut sizes = [0, 0];
        for as_intervals in [false, true] {
            if as_intervals && columns < 2 {
                continue;
            }
            let packed = pack(
                columns,
                values,
                Layout {
                    intervals: as_intervals,
                    ..Default::default()
                },
            )
            .expect("packs");
            assert_eq!(
                unpack(&packed, None).expect("unpacks"),
                (columns, values.to_vec())
            );
            sizes[usize::from(as_intervals)] = packed.len();
        }
        sizes[usize::from(intervals)]
    }

    fn round_trip(columns: usize, values: &[Option<i64>]) -> usize {
        round_trip_as(columns, values, false)
    }

    #[test]
    fn varints_and_zigzag_round_trip() {
        for v in [0u128, 1, 127, 128, 300, u128::from(u64::MAX), u128::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut pos = 0;
            assert_eq!(get_varint(&out, &mut pos), Ok(v));
            assert_eq!(pos, out.len());
        }
        for v in [
            0i128,
            1,
            -1,
            i128::from(i64::MIN) * 4,
            i128::from(i64::MAX) * 4,
        ] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn matrices_round_trip_with_nulls_zeros_and_extremes() {
        round_trip(1, &[]);
        round_trip(3, &[Some(1), None, Some(0), None, None, Some(0)]);
        let extremes = [
            Some(i64::MIN),
            Some(i64::MAX),
            Some(0),
            Some(i64::MIN),
            None,
            Some(-1),
        ];
        round_trip(1, &extremes);
        round_trip(2, &extremes);
        round_trip(3, &extremes);
    }

    #[test]
    fn regular_series_cost_a_few_bytes() {
        // an hour of minute ends in µs, constant lengths, a mostly-zero counter, ns times that
        // are whole µs: 60 rows × 4 columns
        let mut values = Vec::new();
        for minute in 0..60i64 {
            values.push(Some(1_780_000_000_000_000 + minute * 60_000_000));
            values.push(Some(60_000_000));
            values.push(Some(if minute == 30 { 7 } else { 0 }));
            values.push(Some(1000 * (1234 + minute % 3)));
        }
        let size = round_trip(4, &values);
        assert!(size < 120, "{size} bytes");
        // the collector's snapshots jitter: back-to-back intervals whose ends wander by up to a
        // few ms cost next to nothing more as intervals, several bytes a row otherwise
        let mut jittered = Vec::new();
        let mut end = 1_780_000_000_000_000i64;
        for minute in 0..60i64 {
            let next = end + 60_000_000 + (minute * 7919) % 5000;
            jittered.extend([Some(next), Some(next - end)]);
            end = next;
        }
        let plain = round_trip_as(2, &jittered, false);
        let intervals = round_trip_as(2, &jittered, true);
        assert!(
            intervals + 60 < plain,
            "{intervals} as intervals, {plain} plain"
        );
        assert!(pack(
            1,
            &[Some(1)],
            Layout {
                intervals: true,
                ..Default::default()
            }
        )
        .is_err());
    }

    #[test]
    fn intervals_on_a_clock_store_positions() {
        // an hour of 60 jittered snapshots; one statement in every one of them, another in
        // four, one interval of which follows a gap
        let mut clock = Vec::new();
        let mut end = 1_780_000_000_000_000i64;
        for minute in 0..60i64 {
            end += 60_000_000 + (minute * 7919) % 5000;
            clock.push(end);
        }
        let every: Vec<Option<i64>> = clock
            .iter()
            .enumerate()
            .flat_map(|(i, &e)| {
                let length = e - if i == 0 { e - 60_000_000 } else { clock[i - 1] };
                [Some(e), Some(length), Some(i as i64 % 3)]
            })
            .collect();
        let some: Vec<Option<i64>> = [3usize, 4, 9, 59]
            .iter()
            .flat_map(|&i| [Some(clock[i]), Some(clock[i] - clock[i - 1]), None])
            .collect();
        for values in [&every, &some] {
            let on_clock = pack(
                3,
                values,
                Layout {
                    intervals: true,
                    clock: Some(&clock),
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(on_clock[0], FORMAT_CLOCKED);
            assert_eq!(
                unpack(&on_clock, Some(&clock)).unwrap(),
                (3, values.to_vec())
            );
            let rows =
                select_rows(&on_clock, Some(clock[3]), Some(clock[9]), Some(&clock)).unwrap();
            assert!(rows
                .iter()
                .all(|(_, r)| r[0] > Some(clock[3]) && r[0] <= Some(clock[9])));
            // the same clock is needed to read it back
            assert!(unpack(&on_clock, None).is_err());
            assert!(unpack(&on_clock, Some(&clock[1..])).is_err());
            for cut in 0..on_clock.len() {
                assert!(
                    unpack(&on_clock[..cut], Some(&clock)).is_err(),
                    "cut at {cut}"
                );
            }
        }
        // the jitter costs nothing per row on the clock
        let on_clock = pack(
            3,
            &every,
            Layout {
                intervals: true,
                clock: Some(&clock),
                ..Default::default()
            },
        )
        .unwrap()
        .len();
        let intervals = pack(
            3,
            &every,
            Layout {
                intervals: true,
                ..Default::default()
            },
        )
        .unwrap()
        .len();
        assert!(
            on_clock + 100 < intervals,
            "{on_clock} on the clock, {intervals} without"
        );
        // every end must be one of the clock's times, the clock ascending, the matrix intervals
        assert!(pack(
            3,
            &every,
            Layout {
                intervals: true,
                clock: Some(&clock[1..]),
                ..Default::default()
            }
        )
        .is_err());
        assert!(pack(
            3,
            &[None, Some(1), Some(1)],
            Layout {
                intervals: true,
                clock: Some(&clock),
                ..Default::default()
            }
        )
        .is_err());
        let mut descending = clock.clone();
        descending.swap(0, 1);
        assert!(pack(
            3,
            &every,
            Layout {
                intervals: true,
                clock: Some(&descending),
                ..Default::default()
            }
        )
        .is_err());
        assert!(pack(
            3,
            &every,
            Layout {
                intervals: false,
                clock: Some(&clock),
                ..Default::default()
            }
        )
        .is_err());
    }

    /// A row of 1 fixed column then a histogram of `width`: n, buckets, counts.
    fn histogram_row(fixed: i64, pairs: &[(i64, i64)], width: usize) -> Vec<Option<i64>> {
        let mut row = vec![Some(fixed), Some(pairs.len() as i64)];
        row.extend((0..width).map(|i| pairs.get(i).map(|p| p.0)));
        row.extend((0..width).map(|i| pairs.get(i).map(|p| p.1)));
        row
    }

    #[test]
    fn histograms_pack_by_core_bucket() {
        // 60 rows: buckets 4..=9 in most rows, a few rare outliers, zero counts kept as such
        let mut values = Vec::new();
        for r in 0..60i64 {
            let mut pairs: Vec<(i64, i64)> = (4..=9)
                .filter(|b| (r + b) % 7 != 0)
                .map(|b| (b, (r * b) % 50))
                .collect();
            if r % 17 == 0 {
                pairs.push((40 + r, 1));
            }
            values.extend(histogram_row(r, &pairs, 8));
        }
        let histogram = Layout {
            histogram: Some(1),
            ..Default::default()
        };
        let by_core = pack(18, &values, histogram).unwrap();
        assert_eq!(by_core[0], FORMAT | FORMAT_HISTOGRAMS);
        assert_eq!(unpack(&by_core, None).unwrap(), (18, values.clone()));
        let as_is = pack(18, &values, Layout::default()).unwrap();
        assert!(
            by_core.len() + 60 < as_is.len(),
            "{} by core, {} as is",
            by_core.len(),
            as_is.len()
        );
        for cut in 0..by_core.len() {
            assert!(unpack(&by_core[..cut], None).is_err(), "cut at {cut}");
        }
        // on a clock too
        let clock: Vec<i64> = (0..60).collect();
        let both = Layout {
            intervals: true,
            clock: Some(&clock),
            histogram: Some(2),
        };
        let mut intervals = Vec::new();
        for (r, row) in values.chunks(18).enumerate() {
            intervals.push(Some(r as i64));
            intervals.push(Some(1));
            intervals.extend_from_slice(&row[1..]);
        }
        let packed = pack(19, &intervals, both).unwrap();
        assert_eq!(packed[0], FORMAT_CLOCKED | FORMAT_HISTOGRAMS);
        assert_eq!(unpack(&packed, Some(&clock)).unwrap(), (19, intervals));
        // histograms not in the form (descending buckets, a count missing, padding not NULL,
        // n beyond the width, no whole histogram) are packed as they are, and round-trip
        for odd in [
            vec![Some(1), Some(2), Some(5), Some(4), Some(1), Some(1)],
            vec![Some(1), Some(2), Some(4), Some(5), Some(1), None],
            vec![Some(1), Some(1), Some(4), Some(5), Some(1), Some(1)],
            vec![Some(1), Some(3), Some(4), Some(5), Some(1), Some(1)],
            vec![Some(1), None, None, None, None, None],
        ] {
            let mut rows = odd.clone();
            rows.extend(histogram_row(2, &[(4, 1), (5, 2)], 2));
            let packed = pack(6, &rows, histogram).unwrap();
            assert_eq!(packed[0], FORMAT);
            assert_eq!(unpack(&packed, None).unwrap(), (6, rows));
        }
        assert_eq!(pack(5, &[Some(1); 5], histogram).unwrap()[0], FORMAT);
        // core buckets beyond i64 (or i128) in a damaged header are an error
        for deltas in [
            [zigzag(i128::from(i64::MAX)), 2],
            [zigzag(i128::from(i64::MAX)), u128::MAX - 1],
        ] {
            let mut header = vec![FORMAT | FORMAT_HISTOGRAMS];
            for v in [4, 0, 1, 0, 2] {
                put_varint(&mut header, v);
            }
            for d in deltas {
                put_varint(&mut header, d);
            }
            assert!(unpack(&header, None).is_err());
        }
    }

    #[test]
    fn damaged_input_is_an_error_not_wrong_numbers() {
        let packed = pack(2, &[Some(5), Some(-3), Some(8), None], Layout::default()).unwrap();
        for cut in 0..packed.len() {
            assert!(unpack(&packed[..cut], None).is_err(), "cut at {cut}");
        }
        let mut longer = packed.clone();
        longer.push(0);
        assert!(unpack(&longer, None).is_err());
        let mut unknown_mode = packed.clone();
        unknown_mode[3] = 0x07;
        assert!(unpack(&unknown_mode, None).is_err());
        assert!(unpack(&[1, 0x80, 0x80, 0x80, 0x80, 0x80], None).is_err());
        // a huge claimed size is refused before anything is allocated
        let mut huge = vec![FORMAT];
        put_varint(&mut huge, 1 << 40);
        put_varint(&mut huge, 1 << 40);
        assert!(unpack(&huge, None).is_err());
    }

    #[test]
    fn totals_sum_columns_and_find_the_peak_ratio() {
        let packed = pack(
            3,
            &[
                Some(60),
                Some(4),
                Some(1),
                Some(120),
                None,
                Some(8),
                Some(180),
                Some(6),
                Some(3),
            ],
            Layout::default(),
        )
        .unwrap();
        let rows = select_rows(&packed, Some(60), None, None).unwrap();
        assert_eq!(rows.len(), 2);
        // column 3 over the divisors of keys 120 (4) and 180 (0, counted as 1)
        let t = totals(&rows, Some(2), &[(120, 4), (180, 0), (999, 1)]).unwrap();
        assert_eq!(
            t,
            Totals {
                rows: 2,
                sums: vec![Some(300), Some(6), Some(11)],
                first: vec![Some(120), None, Some(8)],
                last: vec![Some(180), Some(6), Some(3)],
                peak_ratio: Some(3.0),
            }
        );
        assert_eq!(totals(&[], None, &[]), None);
        let huge = vec![(1, vec![Some(i64::MAX)]), (2, vec![Some(1)])];
        assert_eq!(totals(&huge, None, &[]), None);
    }

    #[test]
    fn latency_rows_merge_per_run_parent() {
        // two intervals with parent 7 (one histogram of 2 buckets, one of 1), one without runs
        let row = |end: i64,
                   runs: Option<i64>,
                   parent: Option<i64>,
                   hist: &[(i64, i64)],
                   width: usize| {
            let mut v = vec![
                Some(end),
                Some(60),
                Some(0),
                Some(hist.iter().map(|h| h.1).sum()),
                runs,
                runs.map(|r| r * 3),
                runs.map(|r| r + 1),
                parent,
                Some(1000),
                None,
                Some(8192),
                Some(0),
                Some(hist.len() as i64),
            ];
            for i in 0..width {
                v.push(hist.get(i).map(|h| h.0));
            }
            for i in 0..width {
                v.push(hist.get(i).map(|h| h.1));
            }
            v
        };
        let rows = vec![
            (1, row(60, Some(2), Some(7), &[(3, 4), (9, 1)], 2)),
            (2, row(120, None, None, &[(3, 2)], 2)),
            (3, row(180, Some(5), Some(7), &[(9, 6)], 2)),
        ];
        let merged = latency_totals(&rows, None).unwrap();
        assert_eq!(merged.len(), 2);
        assert_eq!(
            (merged[0].parent, merged[0].executions, merged[0].runs),
            (None, 2, None)
        );
        let g = &merged[1];
        assert_eq!(g.parent, Some(7));
        assert_eq!(g.executions, 11);
        assert_eq!(
            g.histogram
                .iter()
                .map(|(b, c)| (*b, *c))
                .collect::<Vec<_>>(),
            vec![(3, 4), (9, 7)]
        );
        assert_eq!(
            (g.runs, g.run_executions, g.run_max_length),
            (Some(7), Some(21), Some(6))
        );
        assert_eq!(
            (g.cpu_user_ns, g.cpu_system_ns, g.disk_read),
            (Some(2000), None, Some(16384))
        );
        // a row without the layout is an error
        assert!(latency_totals(&[(1, vec![Some(1); 14])], None).is_err());
        let mut wide = row(60, None, None, &[(3, 4)], 1);
        wide[12] = Some(2);
        assert!(latency_totals(&[(1, wide)], None).is_err());
        // per run application: rows 1 and 3 ran in two applications, row 2 had no run
        let apps = [Some("a".to_string()), None, Some("b".to_string())];
        let per_app = latency_totals(&rows, Some(&apps)).unwrap();
        assert_eq!(
            per_app
                .iter()
                .map(|g| (g.parent, g.application.as_deref(), g.runs))
                .collect::<Vec<_>>(),
            vec![
                (None, None, None),
                (Some(7), Some("a"), Some(2)),
                (Some(7), Some("b"), Some(5))
            ]
        );
    }

    #[test]
    fn bad_shapes_are_refused() {
        assert!(pack(0, &[], Layout::default()).is_err());
        assert!(pack(2, &[Some(1)], Layout::default()).is_err());
        assert!(pack(1, &vec![Some(0); MAX_VALUES + 1], Layout::default()).is_err());
    }
}
