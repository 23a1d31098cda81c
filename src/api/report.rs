//! The report's HTML pieces that run per value or per chart (issue 16): the escaping of every
//! value that comes from the database, and the SVG time-series chart. In SQL, eight charts took
//! about 90 ms of `report_html('7 days')`, mostly planning their grouping queries.

use pgrx::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Text made safe inside HTML element content and double- or single-quoted attribute values.
pub(crate) fn escape_html(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Text made safe inside HTML element content and double- or single-quoted attribute values
/// (`&`, `<`, `>`, `"` and `'` become entities); NULL becomes the empty string.
#[pg_extern(immutable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
pub fn _html_escape(value: Option<&str>) -> String {
    escape_html(value.unwrap_or(""))
}

/// The plot area inside the chart's 860-wide view box, and its buckets across the window.
const X0: f64 = 70.0;
const Y0: f64 = 20.0;
const WIDTH: f64 = 740.0;
const HEIGHT: f64 = 200.0;
const BUCKETS: usize = 240;
/// Series drawn at most; a stacked chart adds the others up as "other".
const MAX_SERIES: usize = 9;
const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// `value` rounded to `places` decimals as `round(value::numeric, places)` shows it: the float
/// is first read as a decimal of 15 significant digits (as PostgreSQL converts it to numeric),
/// then rounded half away from zero, so that 39.95 gives 39.95 and then 40.0, not 39.9.
fn rounded(value: f64, places: u32) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    // 15 significant digits: d.dddddddddddddde<exponent>
    let scientific = format!("{:.14e}", value.abs());
    let (digits, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let mantissa: i128 = digits.replace('.', "").parse().unwrap_or(0);
    let shift = exponent.parse::<i32>().unwrap_or(0) - 14 + places as i32;
    let scaled = if shift >= 0 {
        mantissa * 10i128.pow(shift.min(20) as u32)
    } else if -shift > 30 {
        0
    } else {
        let divisor = 10i128.pow((-shift) as u32);
        (mantissa + divisor / 2) / divisor
    };
    let unit = 10i128.pow(places);
    let sign = if value < 0.0 && scaled != 0 { "-" } else { "" };
    if places == 0 {
        format!("{sign}{scaled}")
    } else {
        format!(
            "{sign}{}.{:0width$}",
            scaled / unit,
            scaled % unit,
            width = places as usize
        )
    }
}

/// A number rounded to one decimal, as SQL's `round(x::numeric, 1)` shows it.
fn one_decimal(value: f64) -> String {
    rounded(value, 1)
}

/// A number for an axis label: at most 2 decimals, no trailing zeros.
fn axis_number(value: f64) -> String {
    let text = rounded(value, 2);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Orders series names as the database's default collation does.
fn collate(a: &str, b: &str) -> std::cmp::Ordering {
    // SAFETY: both slices are valid for their lengths; varstr_cmp only reads them
    let order = unsafe {
        pg_sys::varstr_cmp(
            a.as_ptr().cast(),
            a.len() as i32,
            b.as_ptr().cast(),
            b.len() as i32,
            pg_sys::DEFAULT_COLLATION_OID,
        )
    };
    order.cmp(&0)
}

/// Series ranked by the sum of their values, largest first, then by name: (name, rank from 1).
fn rank<'a>(values: impl Iterator<Item = (&'a str, f64)>) -> Vec<(&'a str, usize)> {
    let mut sums: HashMap<&str, f64> = HashMap::new();
    for (name, value) in values {
        *sums.entry(name).or_default() += value;
    }
    let mut sums: Vec<(&str, f64)> = sums.into_iter().collect();
    sums.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| collate(a.0, b.0)));
    sums.into_iter()
        .enumerate()
        .map(|(i, (name, _))| (name, i + 1))
        .collect()
}

/// `timestamptz` as `to_char` formats it in the session's time zone.
fn time_label(at: i64, format: &str) -> String {
    let Ok(at) = TimestampWithTimeZone::try_from(at) else {
        return String::new();
    };
    // SAFETY: timestamptz_to_char is PostgreSQL's to_char(timestamptz, text)
    unsafe {
        pgrx::fcinfo::direct_function_call::<String>(
            pg_sys::timestamptz_to_char,
            &[at.into_datum(), format.into_datum()],
        )
    }
    .unwrap_or_default()
}

/// The session's TimeZone setting.
fn session_time_zone() -> String {
    // SAFETY: GetConfigOption returns the setting's current value, or NULL if missing_ok
    unsafe {
        let value = pg_sys::GetConfigOption(c"TimeZone".as_ptr(), true, false);
        if value.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(value)
                .to_string_lossy()
                .into_owned()
        }
    }
}

/// A time-series chart as an inline SVG figure. The points are three parallel arrays (time,
/// series, value); they are averaged into 240 buckets across [from_time, to_time], so a week of
/// minutes draws as fast as an hour. Lines: each series' own average in a bucket. Stacked
/// (areas): each series' sum over the bucket's distinct times (a series absent at a time counts
/// as zero there), stacked in the order of the series' totals, largest at the bottom. Every
/// series is one `<polyline>` (lines) or `<polygon>` (areas) with `data-series` and
/// `data-points` attributes, and a `<title>` a browser shows on hover; the y axis starts at 0
/// and names the unit. At most 9 series are drawn (a stacked chart adds the others up as
/// "other"); NULL, NaN and infinite values are left out, negative ones drawn as 0. NULL when
/// from_time, to_time or stacked is NULL.
#[allow(clippy::too_many_arguments)]
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
pub fn _svg_chart(
    chart_id: Option<&str>,
    title: Option<&str>,
    unit: Option<&str>,
    from_time: Option<TimestampWithTimeZone>,
    to_time: Option<TimestampWithTimeZone>,
    stacked: Option<bool>,
    at: Option<Array<'_, TimestampWithTimeZone>>,
    series: Option<Array<'_, &str>>,
    value: Option<Array<'_, f64>>,
) -> Option<String> {
    let (from, to, stacked) = (from_time?.into_inner(), to_time?.into_inner(), stacked?);
    let at: Vec<Option<i64>> = at.map_or_else(Vec::new, |a| {
        a.iter().map(|t| t.map(|t| t.into_inner())).collect()
    });
    let series: Vec<Option<&str>> = series
        .as_ref()
        .map_or_else(Vec::new, |a| a.iter().collect());
    let value: Vec<Option<f64>> = value.map_or_else(Vec::new, |a| a.iter().collect());
    let span = ((to as f64 - from as f64) / 1e6).max(1.0);

    // the points of the window, in their buckets
    let mut times: BTreeMap<usize, HashSet<i64>> = BTreeMap::new();
    let mut per_series: HashMap<(usize, &str), (f64, usize)> = HashMap::new();
    for i in 0..at.len().max(series.len()).max(value.len()) {
        let (Some(Some(t)), Some(Some(name)), Some(Some(v))) =
            (at.get(i), series.get(i), value.get(i))
        else {
            continue;
        };
        if !v.is_finite() || *t < from || *t > to {
            continue;
        }
        let bucket = ((((*t - from) as f64 / 1e6) / span * BUCKETS as f64).floor() as usize)
            .min(BUCKETS - 1);
        times.entry(bucket).or_default().insert(*t);
        let sum = per_series.entry((bucket, name)).or_default();
        sum.0 += v.clamp(0.0, 1e300);
        sum.1 += 1;
    }
    let averaged: Vec<(usize, &str, f64)> = per_series
        .iter()
        .map(|(&(bucket, name), &(total, count))| {
            let v = if stacked {
                total / times[&bucket].len() as f64
            } else {
                total / count as f64
            };
            (bucket, name, v)
        })
        .collect();
    let ranks: HashMap<&str, usize> = rank(averaged.iter().map(|a| (a.1, a.2)))
        .into_iter()
        .collect();
    let left_out = if stacked {
        0
    } else {
        ranks.values().filter(|&&i| i > MAX_SERIES).count()
    };
    let mut kept: HashMap<(usize, &str), f64> = HashMap::new();
    for &(bucket, name, v) in &averaged {
        match (ranks[name] <= MAX_SERIES, stacked) {
            (true, _) => *kept.entry((bucket, name)).or_default() += v,
            (false, true) => *kept.entry((bucket, "other")).or_default() += v,
            (false, false) => {}
        }
    }
    let names = rank(kept.iter().map(|(&(_, name), &v)| (name, v)));

    // each drawn series' (bucket, upper, lower) values: stacked areas need every series in
    // every bucket that has data, each on top of the larger ones
    let mut layers: Vec<Vec<(usize, f64, f64)>> = vec![Vec::new(); names.len()];
    if stacked {
        for &bucket in times.keys() {
            let mut below = 0.0;
            for (k, &(name, _)) in names.iter().enumerate() {
                let v = kept.get(&(bucket, name)).copied().unwrap_or(0.0);
                layers[k].push((bucket, below + v, below));
                below += v;
            }
        }
    } else {
        for (k, &(name, _)) in names.iter().enumerate() {
            layers[k] = kept
                .iter()
                .filter(|((_, n), _)| *n == name)
                .map(|(&(bucket, _), &v)| (bucket, v, 0.0))
                .collect();
            layers[k].sort_by_key(|l| l.0);
        }
    }
    // y axis up to 4 steps of 1, 2 or 5 times a power of ten
    let top = layers
        .iter()
        .flatten()
        .map(|l| l.1)
        .filter(|&u| u > 0.0)
        .fold(None, |m: Option<f64>, u| Some(m.map_or(u, |m| m.max(u))));
    let ymax = top.map_or(1.0, |top| {
        let power = 10f64.powf((top / 4.0).log10().floor());
        [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|k| k * power * 4.0)
            .find(|&m| m >= top)
            .unwrap_or(10.0 * power * 4.0)
    });
    let y = |v: f64| Y0 + HEIGHT - (v / ymax).min(1.0) * HEIGHT;
    let legend_rows = names.len().div_ceil(3).max(1) + usize::from(left_out > 0);
    let height = 270 + 18 * legend_rows;

    let title = escape_html(title.unwrap_or(""));
    let unit = escape_html(unit.unwrap_or(""));
    let mut svg = format!(
        "<figure class=\"chart\" id=\"{}\"><figcaption>{title} <span class=\"unit\">({unit})</span></figcaption>\
         <svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 860 {height}\" width=\"860\" \
         height=\"{height}\"><title>{title}</title>",
        escape_html(chart_id.unwrap_or(""))
    );
    // grid and y labels
    for k in 0..=4 {
        let line_y = Y0 + HEIGHT - k as f64 * HEIGHT / 4.0;
        svg += &format!(
            "<line class=\"grid\" x1=\"{X0}\" x2=\"{}\" y1=\"{line_y}\" y2=\"{line_y}\"/>\
             <text class=\"ylabel\" x=\"{}\" y=\"{}\">{}</text>",
            X0 + WIDTH,
            X0 - 6.0,
            line_y + 4.0,
            axis_number(ymax * k as f64 / 4.0)
        );
    }
    svg += &format!(
        "<text class=\"unit\" transform=\"translate(14 {}) rotate(-90)\">{unit}</text>",
        Y0 + HEIGHT / 2.0
    );
    // time axis: 6 labelled ticks across the window
    let axis_y = Y0 + HEIGHT;
    svg += &format!(
        "<line class=\"axis\" x1=\"{X0}\" x2=\"{}\" y1=\"{axis_y}\" y2=\"{axis_y}\"/>",
        X0 + WIDTH
    );
    let label_format = if to - from <= 3_600_000_000 {
        "HH24:MI:SS"
    } else {
        "MM-DD HH24:MI"
    };
    for k in 0..=5i64 {
        let x = X0 + k as f64 * WIDTH / 5.0;
        svg += &format!(
            "<line class=\"axis\" x1=\"{x}\" x2=\"{x}\" y1=\"{axis_y}\" y2=\"{}\"/>\
             <text class=\"xlabel\" x=\"{x}\" y=\"{}\">{}</text>",
            axis_y + 5.0,
            axis_y + 18.0,
            escape_html(&time_label(from + (to - from) / 5 * k, label_format))
        );
    }
    svg += &format!(
        "<text class=\"xtitle\" x=\"{}\" y=\"{}\">time ({})</text>",
        X0 + WIDTH / 2.0,
        axis_y + 36.0,
        escape_html(&session_time_zone())
    );
    // the series, the smallest first
    if names.is_empty() {
        svg += &format!(
            "<text class=\"nodata\" x=\"{}\" y=\"{}\">no data in this window</text>",
            X0 + WIDTH / 2.0,
            Y0 + HEIGHT / 2.0
        );
    }
    let x = |bucket: usize| X0 + (bucket as f64 + 0.5) / BUCKETS as f64 * WIDTH;
    for (k, &(name, i)) in names.iter().enumerate().rev() {
        let color = PALETTE[(i - 1) % PALETTE.len()];
        let layer = &layers[k];
        let upper: Vec<String> = layer
            .iter()
            .map(|l| format!("{},{}", one_decimal(x(l.0)), one_decimal(y(l.1))))
            .collect();
        let name = escape_html(name);
        if stacked {
            let lower: Vec<String> = layer
                .iter()
                .rev()
                .map(|l| format!("{},{}", one_decimal(x(l.0)), one_decimal(y(l.2))))
                .collect();
            svg += &format!(
                "<polygon class=\"series\" data-series=\"{name}\" data-points=\"{}\" fill=\"{color}\" \
                 fill-opacity=\"0.75\" stroke=\"{color}\" points=\"{} {}\"><title>{name}</title></polygon>",
                layer.len(),
                upper.join(" "),
                lower.join(" ")
            );
        } else {
            svg += &format!(
                "<polyline class=\"series\" data-series=\"{name}\" data-points=\"{}\" fill=\"none\" \
                 stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"><title>{name}</title></polyline>",
                layer.len(),
                upper.join(" ")
            );
            // a lone point draws no line: a dot
            if let [only] = layer.as_slice() {
                svg += &format!(
                    "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{color}\"/>",
                    one_decimal(x(only.0)),
                    one_decimal(y(only.1))
                );
            }
        }
    }
    // legend, 3 per row
    for &(name, i) in &names {
        let (column, row) = ((i - 1) % 3, (i - 1) / 3);
        let legend_x = X0 + column as f64 * 260.0;
        let legend_y = 270 + row * 18;
        svg += &format!(
            "<rect x=\"{legend_x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text class=\"legend\" x=\"{}\" y=\"{}\">{}</text>",
            legend_y - 12,
            PALETTE[(i - 1) % PALETTE.len()],
            legend_x + 14.0,
            legend_y - 3,
            escape_html(&name.chars().take(40).collect::<String>())
        );
    }
    if left_out > 0 {
        svg += &format!(
            "<text class=\"legend\" x=\"{X0}\" y=\"{}\">{left_out} more series not drawn (the 9 largest are)</text>",
            270 + (legend_rows - 1) * 18 - 3
        );
    }
    svg += "</svg></figure>";
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_character_html_gives_meaning_to_becomes_an_entity() {
        assert_eq!(
            escape_html(r#"</script><img src=x onerror="alert('1')">&"#),
            "&lt;/script&gt;&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;"
        );
    }

    #[test]
    fn axis_numbers_have_at_most_two_decimals_and_no_trailing_zeros() {
        let shown: Vec<String> = [0.0, 0.5, 2.25, 1.0 / 3.0, 1000000.0, 12.10]
            .iter()
            .map(|&v| axis_number(v))
            .collect();
        assert_eq!(shown, ["0", "0.5", "2.25", "0.33", "1000000", "12.1"]);
        assert_eq!(one_decimal(71.54166), "71.5");
        assert_eq!(one_decimal(220.0), "220.0");
        // 39.95 is 39.9499999999999957 in binary; numeric reads it as 39.95 and rounds up
        assert_eq!(one_decimal(39.95), "40.0");
        assert_eq!(one_decimal(-0.04), "0.0");
        assert_eq!(one_decimal(-2.25), "-2.3");
        assert_eq!(one_decimal(0.0), "0.0");
    }
}
