//! The report's SVG time-series chart (issue 16). `report_html()` draws eight of them; in SQL
//! they took about 105 ms of `report_html('7 days')`, mostly planning and running their grouping
//! queries.
//!
//! Text is handled as the server encoding's bytes, never as Rust `str`: a series may be named
//! `café` in a LATIN1 database. Every server encoding is a superset of ASCII whose multibyte
//! characters hold no ASCII byte, so escaping `&<>"'` byte by byte is exact, and names are cut
//! at character boundaries by `pg_mbcharcliplen`. The function is declared by hand
//! (`sql/report.sql`) because its text arguments and result must not pass through `&str`.

use pgrx::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;

/// The plot area inside the chart's 860-wide view box, and its buckets across the window.
const X0: f64 = 70.0;
const Y0: f64 = 20.0;
const WIDTH: f64 = 740.0;
const HEIGHT: f64 = 200.0;
const BUCKETS: usize = 240;
/// Series drawn at most; a stacked chart adds the others up as "other".
const MAX_SERIES: usize = 9;
/// Characters of a series name shown in the legend.
const LEGEND_CHARACTERS: i32 = 40;
const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// Appends `value` made safe inside HTML element content and double- or single-quoted attribute
/// values (`&`, `<`, `>`, `"` and `'` become entities), as `_html_escape()` does in SQL.
fn push_escaped(out: &mut Vec<u8>, value: &[u8]) {
    for &byte in value {
        match byte {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            b'\'' => out.extend_from_slice(b"&#39;"),
            byte => out.push(byte),
        }
    }
}

/// `value` escaped as [`push_escaped`] does.
fn escaped(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    push_escaped(&mut out, value);
    out
}

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

/// A coordinate: one decimal, as SQL's `round(x::numeric, 1)` shows it.
fn coordinate(value: f64) -> String {
    rounded(value, 1)
}

/// A number for an axis label: at most 2 decimals, no trailing zeros.
fn axis_number(value: f64) -> String {
    let text = rounded(value, 2);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// The y axis' top: 4 steps of 1, 2 or 5 times a power of ten, at or above the highest value
/// drawn; 1 when nothing positive is drawn.
fn axis_top(highest: Option<f64>) -> f64 {
    highest.map_or(1.0, |top| {
        let power = 10f64.powf((top / 4.0).log10().floor());
        [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|k| k * power * 4.0)
            .find(|&m| m >= top)
            .unwrap_or(40.0 * power)
    })
}

/// A bucket, a series and the series' averaged value in the bucket.
type Averaged<'a> = (usize, &'a [u8], f64);

/// The points' buckets, and each series' averaged value per bucket: lines get each series'
/// own mean in the bucket; stacked areas each series' sum over the bucket's distinct times (a
/// series absent at a time counts as zero there). Returns the buckets that have data, and the
/// (bucket, series, value) triples. Points outside [from, to], without a series or a finite
/// value are left out; negative values count as 0.
fn bucketed<'a>(
    points: impl Iterator<Item = (i64, &'a [u8], f64)>,
    from: i64,
    to: i64,
    stacked: bool,
) -> (Vec<usize>, Vec<Averaged<'a>>) {
    let span = ((to as f64 - from as f64) / 1e6).max(1.0);
    let mut times: BTreeMap<usize, HashSet<i64>> = BTreeMap::new();
    let mut per_series: HashMap<(usize, &[u8]), (f64, usize)> = HashMap::new();
    for (at, name, value) in points {
        if !value.is_finite() || at < from || at > to {
            continue;
        }
        let bucket = ((((at - from) as f64 / 1e6) / span * BUCKETS as f64).floor() as usize)
            .min(BUCKETS - 1);
        times.entry(bucket).or_default().insert(at);
        let sum = per_series.entry((bucket, name)).or_default();
        sum.0 += value.clamp(0.0, 1e300);
        sum.1 += 1;
    }
    let averaged = per_series
        .iter()
        .map(|(&(bucket, name), &(total, count))| {
            let divisor = if stacked { times[&bucket].len() } else { count };
            (bucket, name, total / divisor as f64)
        })
        .collect();
    (times.into_keys().collect(), averaged)
}

/// Series ranked by the sum of their values, largest first, then by name in `order`:
/// (name, rank from 1).
fn ranked<'a>(
    values: impl Iterator<Item = (&'a [u8], f64)>,
    order: &impl Fn(&[u8], &[u8]) -> std::cmp::Ordering,
) -> Vec<(&'a [u8], usize)> {
    let mut sums: HashMap<&[u8], f64> = HashMap::new();
    for (name, value) in values {
        *sums.entry(name).or_default() += value;
    }
    let mut sums: Vec<(&[u8], f64)> = sums.into_iter().collect();
    sums.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| order(a.0, b.0)));
    sums.into_iter()
        .enumerate()
        .map(|(i, (name, _))| (name, i + 1))
        .collect()
}

/// One drawn series: its name, rank (from 1: colour and legend place) and its (bucket, upper,
/// lower) values in bucket order.
struct Layer<'a> {
    name: &'a [u8],
    rank: usize,
    values: Vec<(usize, f64, f64)>,
}

/// The series to draw, at most [`MAX_SERIES`]: a stacked chart adds the others up as `other`
/// and puts every series in every bucket with data, each on top of the larger ones; a line
/// chart leaves the others out and counts them (the second value).
fn layers<'a>(
    buckets: &[usize],
    averaged: &[Averaged<'a>],
    stacked: bool,
    order: &impl Fn(&[u8], &[u8]) -> std::cmp::Ordering,
) -> (Vec<Layer<'a>>, usize) {
    let ranks: HashMap<&[u8], usize> = ranked(averaged.iter().map(|a| (a.1, a.2)), order)
        .into_iter()
        .collect();
    let left_out = if stacked {
        0
    } else {
        ranks.values().filter(|&&i| i > MAX_SERIES).count()
    };
    let mut kept: HashMap<(usize, &[u8]), f64> = HashMap::new();
    for &(bucket, name, value) in averaged {
        match (ranks[name] <= MAX_SERIES, stacked) {
            (true, _) => *kept.entry((bucket, name)).or_default() += value,
            (false, true) => *kept.entry((bucket, b"other")).or_default() += value,
            (false, false) => {}
        }
    }
    let names = ranked(kept.iter().map(|(&(_, name), &v)| (name, v)), order);
    let mut layers: Vec<Layer> = names
        .iter()
        .map(|&(name, rank)| Layer {
            name,
            rank,
            values: Vec::new(),
        })
        .collect();
    if stacked {
        for &bucket in buckets {
            let mut below = 0.0;
            for layer in &mut layers {
                let value = kept.get(&(bucket, layer.name)).copied().unwrap_or(0.0);
                layer.values.push((bucket, below + value, below));
                below += value;
            }
        }
    } else {
        for ((bucket, name), value) in kept {
            if let Some(layer) = layers.iter_mut().find(|l| l.name == name) {
                layer.values.push((bucket, value, 0.0));
            }
        }
        for layer in &mut layers {
            layer.values.sort_by_key(|v| v.0);
        }
    }
    (layers, left_out)
}

/// The text of a chart's labels that come from the server: a time axis label as `to_char`
/// formats it in the session's time zone, the TimeZone setting, and how a series name is cut
/// for the legend and names are ordered. Kept apart so the drawing is testable without a server.
trait Server {
    fn time_label(&self, at: i64, format: &str) -> Vec<u8>;
    fn time_zone(&self) -> Vec<u8>;
    fn legend_name<'a>(&self, name: &'a [u8]) -> &'a [u8];
    fn order(&self, a: &[u8], b: &[u8]) -> std::cmp::Ordering;
}

/// The chart's arguments, read.
struct Chart<'a> {
    id: &'a [u8],
    title: &'a [u8],
    unit: &'a [u8],
    from: i64,
    to: i64,
    stacked: bool,
}

/// The SVG figure (see `_svg_chart` in sql/report.sql).
fn draw<'a>(
    chart: &Chart,
    points: impl Iterator<Item = (i64, &'a [u8], f64)>,
    server: &impl Server,
) -> Vec<u8> {
    let order = |a: &[u8], b: &[u8]| server.order(a, b);
    let (buckets, averaged) = bucketed(points, chart.from, chart.to, chart.stacked);
    let (layers, left_out) = layers(&buckets, &averaged, chart.stacked, &order);
    let ymax = axis_top(
        layers
            .iter()
            .flat_map(|l| l.values.iter().map(|v| v.1))
            .filter(|&u| u > 0.0)
            .fold(None, |m: Option<f64>, u| Some(m.map_or(u, |m| m.max(u)))),
    );
    let y = |v: f64| Y0 + HEIGHT - (v / ymax).min(1.0) * HEIGHT;
    let x = |bucket: usize| X0 + (bucket as f64 + 0.5) / BUCKETS as f64 * WIDTH;
    let legend_rows = layers.len().div_ceil(3).max(1) + usize::from(left_out > 0);
    let height = 270 + 18 * legend_rows;
    let title = escaped(chart.title);
    let unit = escaped(chart.unit);

    // writes into a Vec<u8> cannot fail
    let mut svg: Vec<u8> = Vec::with_capacity(16 << 10);
    let out = &mut svg;
    out.extend_from_slice(b"<figure class=\"chart\" id=\"");
    push_escaped(out, chart.id);
    out.extend_from_slice(b"\"><figcaption>");
    out.extend_from_slice(&title);
    out.extend_from_slice(b" <span class=\"unit\">(");
    out.extend_from_slice(&unit);
    out.extend_from_slice(b")</span></figcaption>");
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 860 {height}\" \
         width=\"860\" height=\"{height}\"><title>"
    );
    out.extend_from_slice(&title);
    out.extend_from_slice(b"</title>");
    // grid and y labels
    for k in 0..=4 {
        let line_y = Y0 + HEIGHT - k as f64 * HEIGHT / 4.0;
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{X0}\" x2=\"{}\" y1=\"{line_y}\" y2=\"{line_y}\"/>\
             <text class=\"ylabel\" x=\"{}\" y=\"{}\">{}</text>",
            X0 + WIDTH,
            X0 - 6.0,
            line_y + 4.0,
            axis_number(ymax * k as f64 / 4.0)
        );
    }
    let _ = write!(
        out,
        "<text class=\"unit\" transform=\"translate(14 {}) rotate(-90)\">",
        Y0 + HEIGHT / 2.0
    );
    out.extend_from_slice(&unit);
    out.extend_from_slice(b"</text>");
    // time axis: 6 labelled ticks across the window
    let axis_y = Y0 + HEIGHT;
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{X0}\" x2=\"{}\" y1=\"{axis_y}\" y2=\"{axis_y}\"/>",
        X0 + WIDTH
    );
    let label_format = if chart.to - chart.from <= 3_600_000_000 {
        "HH24:MI:SS"
    } else {
        "MM-DD HH24:MI"
    };
    for k in 0..=5i64 {
        let tick = X0 + k as f64 * WIDTH / 5.0;
        let _ = write!(
            out,
            "<line class=\"axis\" x1=\"{tick}\" x2=\"{tick}\" y1=\"{axis_y}\" y2=\"{}\"/>\
             <text class=\"xlabel\" x=\"{tick}\" y=\"{}\">",
            axis_y + 5.0,
            axis_y + 18.0
        );
        let at = chart.from + (chart.to - chart.from) / 5 * k;
        push_escaped(out, &server.time_label(at, label_format));
        out.extend_from_slice(b"</text>");
    }
    let _ = write!(
        out,
        "<text class=\"xtitle\" x=\"{}\" y=\"{}\">time (",
        X0 + WIDTH / 2.0,
        axis_y + 36.0
    );
    push_escaped(out, &server.time_zone());
    out.extend_from_slice(b")</text>");
    // the series, the smallest first
    if layers.is_empty() {
        let _ = write!(
            out,
            "<text class=\"nodata\" x=\"{}\" y=\"{}\">no data in this window</text>",
            X0 + WIDTH / 2.0,
            Y0 + HEIGHT / 2.0
        );
    }
    for layer in layers.iter().rev() {
        let color = PALETTE[(layer.rank - 1) % PALETTE.len()];
        let name = escaped(layer.name);
        let upper: Vec<String> = layer
            .values
            .iter()
            .map(|v| format!("{},{}", coordinate(x(v.0)), coordinate(y(v.1))))
            .collect();
        let count = layer.values.len();
        if chart.stacked {
            out.extend_from_slice(b"<polygon class=\"series\" data-series=\"");
            out.extend_from_slice(&name);
            let lower: Vec<String> = layer
                .values
                .iter()
                .rev()
                .map(|v| format!("{},{}", coordinate(x(v.0)), coordinate(y(v.2))))
                .collect();
            let _ = write!(
                out,
                "\" data-points=\"{count}\" fill=\"{color}\" fill-opacity=\"0.75\" \
                 stroke=\"{color}\" points=\"{} {}\"><title>",
                upper.join(" "),
                lower.join(" ")
            );
            out.extend_from_slice(&name);
            out.extend_from_slice(b"</title></polygon>");
        } else {
            out.extend_from_slice(b"<polyline class=\"series\" data-series=\"");
            out.extend_from_slice(&name);
            let _ = write!(
                out,
                "\" data-points=\"{count}\" fill=\"none\" stroke=\"{color}\" \
                 stroke-width=\"1.5\" points=\"{}\"><title>",
                upper.join(" ")
            );
            out.extend_from_slice(&name);
            out.extend_from_slice(b"</title></polyline>");
            // a lone point draws no line: a dot
            if let [only] = layer.values.as_slice() {
                let _ = write!(
                    out,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{color}\"/>",
                    coordinate(x(only.0)),
                    coordinate(y(only.1))
                );
            }
        }
    }
    // legend, 3 per row
    for layer in &layers {
        let (column, row) = ((layer.rank - 1) % 3, (layer.rank - 1) / 3);
        let legend_x = X0 + column as f64 * 260.0;
        let legend_y = 270 + row * 18;
        let _ = write!(
            out,
            "<rect x=\"{legend_x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text class=\"legend\" x=\"{}\" y=\"{}\">",
            legend_y - 12,
            PALETTE[(layer.rank - 1) % PALETTE.len()],
            legend_x + 14.0,
            legend_y - 3
        );
        push_escaped(out, server.legend_name(layer.name));
        out.extend_from_slice(b"</text>");
    }
    if left_out > 0 {
        let _ = write!(
            out,
            "<text class=\"legend\" x=\"{X0}\" y=\"{}\">{left_out} more series not drawn \
             (the 9 largest are)</text>",
            270 + (legend_rows - 1) * 18 - 3
        );
    }
    out.extend_from_slice(b"</svg></figure>");
    svg
}

/// The running server: labels in the session's settings, names in the server encoding and
/// ordered by the call's collation.
struct Session {
    collation: pg_sys::Oid,
}

impl Server for Session {
    fn time_label(&self, at: i64, format: &str) -> Vec<u8> {
        // SAFETY: timestamptz_to_char is to_char(timestamptz, text); its text result is read
        // as bytes
        unsafe {
            let format =
                pg_sys::cstring_to_text_with_len(format.as_ptr().cast(), format.len() as i32);
            let label = pgrx::fcinfo::direct_function_call_as_datum(
                pg_sys::timestamptz_to_char,
                &[
                    Some(pg_sys::Datum::from(at)),
                    Some(pg_sys::Datum::from(format)),
                ],
            );
            label.map_or_else(Vec::new, |label| text_bytes(label).to_vec())
        }
    }

    fn time_zone(&self) -> Vec<u8> {
        // SAFETY: GetConfigOption returns the setting's current value (NULL only if missing_ok)
        unsafe {
            let value = pg_sys::GetConfigOption(c"TimeZone".as_ptr(), true, false);
            if value.is_null() {
                Vec::new()
            } else {
                std::ffi::CStr::from_ptr(value).to_bytes().to_vec()
            }
        }
    }

    fn legend_name<'a>(&self, name: &'a [u8]) -> &'a [u8] {
        // SAFETY: pg_mbcharcliplen reads at most name.len() bytes of the server encoding
        let length = unsafe {
            pg_sys::pg_mbcharcliplen(name.as_ptr().cast(), name.len() as i32, LEGEND_CHARACTERS)
        };
        &name[..(length.max(0) as usize).min(name.len())]
    }

    fn order(&self, a: &[u8], b: &[u8]) -> std::cmp::Ordering {
        // SAFETY: both slices are valid for their lengths; varstr_cmp only reads them
        let order = unsafe {
            pg_sys::varstr_cmp(
                a.as_ptr().cast(),
                a.len() as i32,
                b.as_ptr().cast(),
                b.len() as i32,
                self.collation,
            )
        };
        order.cmp(&0)
    }
}

/// A text datum's bytes, in the server encoding (detoasted when needed, in the current memory
/// context).
///
/// # Safety
/// `datum` is a non-NULL text (or other varlena) datum.
unsafe fn text_bytes<'a>(datum: pg_sys::Datum) -> &'a [u8] {
    unsafe {
        pgrx::varlena::varlena_to_byte_slice(pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr()))
    }
}

/// An array argument's elements, None for NULL ones (none at all for a NULL array).
///
/// # Safety
/// `argument` is an array of `element` type, which has the given length, by-value flag and
/// alignment.
unsafe fn elements(
    argument: &pg_sys::NullableDatum,
    element: pg_sys::Oid,
    length: i16,
    by_value: bool,
    align: u8,
) -> Vec<Option<pg_sys::Datum>> {
    if argument.isnull {
        return Vec::new();
    }
    unsafe {
        let array =
            pg_sys::pg_detoast_datum(argument.value.cast_mut_ptr()) as *mut pg_sys::ArrayType;
        let mut values: *mut pg_sys::Datum = std::ptr::null_mut();
        let mut nulls: *mut bool = std::ptr::null_mut();
        let mut count: i32 = 0;
        pg_sys::deconstruct_array(
            array,
            element,
            length.into(),
            by_value,
            align as std::ffi::c_char,
            &mut values,
            &mut nulls,
            &mut count,
        );
        let count = count.max(0) as usize;
        if count == 0 {
            return Vec::new();
        }
        let values = std::slice::from_raw_parts(values, count);
        let nulls = std::slice::from_raw_parts(nulls, count);
        values
            .iter()
            .zip(nulls)
            .map(|(&v, &null)| (!null).then_some(v))
            .collect()
    }
}

#[unsafe(no_mangle)]
#[doc(hidden)]
pub extern "C" fn pg_finfo_dbanalytics_svg_chart() -> &'static pg_sys::Pg_finfo_record {
    const V1_API: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1_API
}

/// `_svg_chart(chart_id text, title text, unit text, from_time timestamptz, to_time
/// timestamptz, stacked boolean, at timestamptz[], series text[], value double precision[])`:
/// the chart as an inline SVG figure (documented in sql/report.sql). NULL when from_time,
/// to_time or stacked is NULL; a NULL array draws no data.
///
/// # Safety
/// Called by PostgreSQL's function manager with the arguments declared above.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn dbanalytics_svg_chart(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe {
        let call = &mut *fcinfo;
        let arguments = std::slice::from_raw_parts(call.args.as_ptr(), 9);
        if arguments[3].isnull || arguments[4].isnull || arguments[5].isnull {
            call.isnull = true;
            return pg_sys::Datum::from(0);
        }
        let text = |i: usize| -> &[u8] {
            if arguments[i].isnull {
                b""
            } else {
                text_bytes(arguments[i].value)
            }
        };
        let chart = Chart {
            id: text(0),
            title: text(1),
            unit: text(2),
            from: arguments[3].value.value() as i64,
            to: arguments[4].value.value() as i64,
            stacked: arguments[5].value.value() != 0,
        };
        let eight = std::mem::size_of::<pg_sys::Datum>() as i16;
        let by_value = cfg!(target_pointer_width = "64");
        let at = elements(&arguments[6], pg_sys::TIMESTAMPTZOID, eight, by_value, b'd');
        let series = elements(&arguments[7], pg_sys::TEXTOID, -1, false, b'i');
        let value = elements(&arguments[8], pg_sys::FLOAT8OID, eight, by_value, b'd');
        let names: Vec<Option<&[u8]>> = series.iter().map(|s| s.map(|s| text_bytes(s))).collect();
        let points = at
            .iter()
            .zip(&names)
            .zip(&value)
            .filter_map(|((at, name), value)| {
                Some((
                    at.as_ref()?.value() as i64,
                    (*name)?,
                    f64::from_datum(*value.as_ref()?, false)?,
                ))
            });
        let collation = if call.fncollation == pg_sys::InvalidOid {
            pg_sys::DEFAULT_COLLATION_OID
        } else {
            call.fncollation
        };
        let svg = draw(&chart, points, &Session { collation });
        pg_sys::Datum::from(pg_sys::cstring_to_text_with_len(
            svg.as_ptr().cast(),
            svg.len() as i32,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels without a server: times as seconds, names cut at 40 bytes, ordered bytewise.
    struct Plain;

    impl Server for Plain {
        fn time_label(&self, at: i64, _format: &str) -> Vec<u8> {
            (at / 1_000_000).to_string().into_bytes()
        }
        fn time_zone(&self) -> Vec<u8> {
            b"UTC".to_vec()
        }
        fn legend_name<'a>(&self, name: &'a [u8]) -> &'a [u8] {
            &name[..name.len().min(40)]
        }
        fn order(&self, a: &[u8], b: &[u8]) -> std::cmp::Ordering {
            a.cmp(b)
        }
    }

    fn chart(stacked: bool) -> Chart<'static> {
        Chart {
            id: b"c",
            title: b"T",
            unit: b"u",
            from: 0,
            to: 240_000_000,
            stacked,
        }
    }

    #[test]
    fn every_byte_html_gives_meaning_to_becomes_an_entity_and_others_pass_as_they_are() {
        // caf\xe9 is café in LATIN1: not UTF-8, passed through untouched
        assert_eq!(
            escaped(b"</script><img src=x onerror=\"alert('1')\">&caf\xe9"),
            b"&lt;/script&gt;&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;caf\xe9"
                .to_vec()
        );
    }

    #[test]
    fn axis_numbers_have_at_most_two_decimals_and_no_trailing_zeros() {
        let shown: Vec<String> = [0.0, 0.5, 2.25, 1.0 / 3.0, 1000000.0, 12.10]
            .iter()
            .map(|&v| axis_number(v))
            .collect();
        assert_eq!(shown, ["0", "0.5", "2.25", "0.33", "1000000", "12.1"]);
        assert_eq!(coordinate(71.54166), "71.5");
        assert_eq!(coordinate(220.0), "220.0");
        // 39.95 is 39.9499999999999957 in binary; numeric reads it as 39.95 and rounds up
        assert_eq!(coordinate(39.95), "40.0");
        assert_eq!(coordinate(-0.04), "0.0");
        assert_eq!(coordinate(-2.25), "-2.3");
        assert_eq!(axis_top(Some(7.0)), 8.0);
        assert_eq!(axis_top(Some(0.3)), 0.4);
        assert_eq!(axis_top(None), 1.0);
    }

    #[test]
    fn lines_average_each_series_in_its_bucket_and_leave_bad_points_out() {
        // one-second buckets: 0 and 0.5 s share bucket 0
        let points: Vec<(i64, &[u8], f64)> = vec![
            (0, b"a", 2.0),
            (500_000, b"a", 4.0),
            (500_000, b"b", -1.0),
            (1_000_000, b"a", f64::NAN),
            (300_000_000, b"a", 1.0),
        ];
        let (buckets, mut averaged) = bucketed(points.into_iter(), 0, 240_000_000, false);
        averaged.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        assert_eq!(buckets, vec![0]);
        assert_eq!(averaged, vec![(0, &b"a"[..], 3.0), (0, &b"b"[..], 0.0)]);
    }

    #[test]
    fn stacked_areas_sum_over_the_buckets_times_and_add_the_smaller_series_up_as_other() {
        let names: Vec<Vec<u8>> = (0..11).map(|i| format!("s{i:02}").into_bytes()).collect();
        let mut points: Vec<(i64, &[u8], f64)> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            // s00 is the largest; two times in bucket 0, each series at one of them
            points.push(((i as i64 % 2) * 500_000, name, (20 - i) as f64));
        }
        let svg = draw(&chart(true), points.into_iter(), &Plain);
        let svg = String::from_utf8(svg).unwrap();
        assert_eq!(svg.matches("<polygon").count(), 10);
        assert!(svg.contains("data-series=\"other\""));
        assert!(!svg.contains("data-series=\"s09\""));
        // the stack's top: the sum over two times, (20 + ... + 10) / 2 = 82.5, axis up to 100
        assert!(svg.contains(">100</text>"), "{svg}");
    }

    #[test]
    fn a_line_chart_draws_nine_series_and_says_how_many_more_it_left_out() {
        let names: Vec<Vec<u8>> = (0..12).map(|i| format!("s{i:02}").into_bytes()).collect();
        let points: Vec<(i64, &[u8], f64)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (0, &n[..], (20 - i) as f64))
            .collect();
        let svg = String::from_utf8(draw(&chart(false), points.into_iter(), &Plain)).unwrap();
        assert_eq!(svg.matches("<polyline").count(), 9);
        assert_eq!(svg.matches("<circle").count(), 9);
        assert!(svg.contains(">3 more series not drawn (the 9 largest are)</text>"));
        assert!(svg.contains("viewBox=\"0 0 860 342\""));
    }

    #[test]
    fn no_point_draws_an_empty_chart_that_says_so() {
        let svg = String::from_utf8(draw(&chart(false), std::iter::empty(), &Plain)).unwrap();
        assert!(svg.contains(">no data in this window</text>"));
        assert!(svg.contains(">1</text>"));
        assert!(svg.ends_with("</svg></figure>"));
    }
}
