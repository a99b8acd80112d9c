//! The bench's pictures, as plain SVG written here (a plotting crate would
//! add a second build of much for two kinds of chart): grouped horizontal
//! bars, and lines that step down over time.

use std::fmt::Write;

const WIDTH: f64 = 760.0;
const LEFT: f64 = 200.0;
const RIGHT: f64 = 90.0;
const BAR: f64 = 13.0;
const GAP: f64 = 12.0;
/// One colour per series, in order (plain, stoppable, the peer, ...).
const COLOURS: [&str; 6] = [
    "#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2",
];

/// One series of a chart: its name and its values.
pub struct Series<T> {
    pub name: String,
    pub values: T,
}

/// Grouped horizontal bars: one group per label, one bar per series (a
/// missing value leaves a gap), each bar with its value written after it.
pub fn bars(
    title: &str,
    unit: &str,
    labels: &[String],
    series: &[Series<Vec<Option<f64>>>],
) -> String {
    let group = series.len() as f64 * BAR + GAP;
    let (legend, top) = legend(LEFT, series.iter().map(|s| s.name.as_str()));
    let height = top + labels.len() as f64 * group + 30.0;
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .fold(0.0_f64, |m, &v| m.max(v));
    let scale = if max > 0.0 {
        (WIDTH - LEFT - RIGHT) / max
    } else {
        0.0
    };
    let mut svg = open(height, title);
    svg.push_str(&legend);
    for (i, label) in labels.iter().enumerate() {
        let y0 = top + i as f64 * group;
        let middle = y0 + series.len() as f64 * BAR / 2.0;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" dominant-baseline="middle">{}</text>"#,
            LEFT - 8.0,
            middle,
            escape(label)
        );
        for (j, s) in series.iter().enumerate() {
            let Some(Some(value)) = s.values.get(i) else {
                continue;
            };
            let y = y0 + j as f64 * BAR;
            let w = value * scale;
            let _ = writeln!(
                svg,
                r#"<rect x="{LEFT}" y="{y:.1}" width="{w:.1}" height="{:.1}" fill="{}"/>"#,
                BAR - 2.0,
                COLOURS[j % COLOURS.len()]
            );
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" dominant-baseline="middle" font-size="11">{}</text>"#,
                LEFT + w + 4.0,
                y + (BAR - 2.0) / 2.0,
                thousands(*value)
            );
        }
    }
    let _ = writeln!(
        svg,
        "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"11\" fill=\"#555\">{}</text>",
        height - 10.0,
        escape(unit)
    );
    svg.push_str("</svg>\n");
    svg
}

/// Lines that step down: one per series, each a list of (x, y) points in
/// order of x, from x = 0. Drawn on common axes from zero.
pub fn steps(
    title: &str,
    x_unit: &str,
    y_unit: &str,
    series: &[Series<Vec<(f64, f64)>>],
) -> String {
    const HEIGHT: f64 = 420.0;
    const BOTTOM: f64 = 50.0;
    let left = 70.0;
    let plot_w = WIDTH - left - 30.0;
    let (legend, top) = legend(left, series.iter().map(|s| s.name.as_str()));
    let plot_h = HEIGHT - top - BOTTOM;
    let points = || series.iter().flat_map(|s| s.values.iter());
    let max_x = nice(points().fold(0.0_f64, |m, p| m.max(p.0)));
    let max_y = nice(points().fold(0.0_f64, |m, p| m.max(p.1)));
    let x = |v: f64| left + v / max_x * plot_w;
    let y = |v: f64| top + plot_h - v / max_y * plot_h;
    let mut svg = open(HEIGHT, title);
    svg.push_str(&legend);
    for tick in 0..=5 {
        let (tx, ty) = (max_x * tick as f64 / 5.0, max_y * tick as f64 / 5.0);
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" dominant-baseline=\"middle\" font-size=\"11\">{}</text>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\">{}</text>",
            left + plot_w,
            y(ty),
            y(ty),
            left - 6.0,
            y(ty),
            thousands(ty),
            x(tx),
            top + plot_h + 16.0,
            thousands(tx)
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\">{}</text>\n\
         <text x=\"16\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 16 {:.1})\">{}</text>",
        left + plot_w / 2.0,
        HEIGHT - 12.0,
        escape(x_unit),
        top + plot_h / 2.0,
        top + plot_h / 2.0,
        escape(y_unit)
    );
    for (i, s) in series.iter().enumerate() {
        let mut path = String::new();
        let mut last: Option<(f64, f64)> = None;
        for &(px, py) in &s.values {
            match last {
                None => {
                    let _ = write!(path, "M{:.1},{:.1}", x(px), y(py));
                }
                // Level until the next point's x, then down (or up) to it.
                Some(_) => {
                    let _ = write!(path, " H{:.1} V{:.1}", x(px), y(py));
                }
            }
            last = Some((px, py));
        }
        let _ = writeln!(
            svg,
            r#"<path d="{path}" fill="none" stroke="{}" stroke-width="2"/>"#,
            COLOURS[i % COLOURS.len()]
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The open connections over time, from sorted close instants (ms after
/// the signal): `n` at 0, one fewer at each close; at most about 400
/// points, so 10,000 closes stay a small file.
pub fn open_over_time(n: usize, mut closes_ms: Vec<f64>) -> Vec<(f64, f64)> {
    closes_ms.sort_by(f64::total_cmp);
    let step = closes_ms.len().div_ceil(400).max(1);
    let mut points = vec![(0.0, n as f64)];
    for (i, &t) in closes_ms.iter().enumerate() {
        let closed = i + 1;
        if closed % step == 0 || closed == closes_ms.len() {
            points.push((t.max(0.0), (n - closed) as f64));
        }
    }
    points
}

fn open(height: f64, title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {WIDTH} {height:.0}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{:.0}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
        WIDTH / 2.0,
        escape(title)
    )
}

/// The legend, wrapped under the title: its SVG, and the y below it.
fn legend<'a>(left: f64, names: impl Iterator<Item = &'a str>) -> (String, f64) {
    let mut svg = String::new();
    let (mut x, mut y) = (left, 34.0);
    for (i, name) in names.enumerate() {
        let width = 24.0 + 7.0 * name.len() as f64;
        if x > left && x + width > WIDTH - 10.0 {
            (x, y) = (left, y + 18.0);
        }
        let _ = writeln!(
            svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            COLOURS[i % COLOURS.len()],
            x + 16.0,
            y + 10.0,
            escape(name)
        );
        x += width;
    }
    (svg, y + 26.0)
}
/// The next round number at or above `v`: 1, 2 or 5 times a power of ten.
fn nice(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * power)
}

/// `12345.6` as `12,346`; below 10, one decimal.
fn thousands(v: f64) -> String {
    if v.abs() < 10.0 && v.fract() != 0.0 {
        return format!("{v:.1}");
    }
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 {
        out.insert(0, '-');
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_numbers_and_thousands() {
        assert_eq!(nice(7.0), 10.0);
        assert_eq!(nice(1200.0), 2000.0);
        assert_eq!(nice(0.3), 0.5);
        assert_eq!(thousands(12345.6), "12,346");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(2.25), "2.2");
    }

    #[test]
    fn the_open_count_falls_to_zero_at_the_last_close() {
        let points = open_over_time(3, vec![5.0, 1.0, 3.0]);
        assert_eq!(points, vec![(0.0, 3.0), (1.0, 2.0), (3.0, 1.0), (5.0, 0.0)]);
        let many = open_over_time(10_000, (0..10_000).map(f64::from).collect());
        assert!(many.len() <= 402, "{} points", many.len());
        assert_eq!(many.last(), Some(&(9_999.0, 0.0)));
    }

    #[test]
    fn a_chart_is_one_svg_with_a_bar_per_value() {
        let svg = bars(
            "t",
            "u",
            &["a".into(), "b".into()],
            &[Series {
                name: "s <1>".into(),
                values: vec![Some(1.0), None],
            }],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<rect x=\"200\"").count(), 1);
        assert!(svg.contains("s &lt;1&gt;"));
    }
}
