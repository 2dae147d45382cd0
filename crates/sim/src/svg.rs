//! Hand-written SVG charts (SVG 1.1, no dependencies): line charts and grouped bar charts,
//! one or more panels side by side, with axes, "nice" ticks (1-2-5 steps), a legend and
//! optional dashed reference lines.

use std::fmt::Write;

/// Panel size in pixels; chosen to read well in a GitHub README at full width.
const PANEL_W: f64 = 560.0;
const PANEL_H: f64 = 340.0;
/// Space for the axis labels (left, right, top, bottom).
const MARGIN: (f64, f64, f64, f64) = (64.0, 16.0, 36.0, 48.0);
/// Colour-blind-safe palette (Okabe & Ito, 2008).
const PALETTE: [&str; 7] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Lines,
    /// Grouped bars at integer x positions.
    Bars,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub kind: Kind,
    pub series: Vec<Series>,
    /// Labels for integer x positions (bar charts); numeric ticks when empty.
    pub x_categories: Vec<String>,
    /// Dashed vertical reference lines: (x, label, series colour index).
    pub marks: Vec<(f64, String, usize)>,
}

impl Chart {
    pub fn new(title: &str, x_label: &str, y_label: &str, kind: Kind) -> Chart {
        Chart { title: title.into(), x_label: x_label.into(), y_label: y_label.into(), kind, series: Vec::new(), x_categories: Vec::new(), marks: Vec::new() }
    }

    pub fn series(mut self, name: &str, points: Vec<(f64, f64)>) -> Chart {
        self.series.push(Series { name: name.into(), points });
        self
    }
}

/// A document holding the charts side by side.
pub fn render(charts: &[Chart]) -> String {
    let width = PANEL_W * charts.len() as f64;
    let mut out = String::new();
    let _ = write!(out, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{PANEL_H}" viewBox="0 0 {width} {PANEL_H}" font-family="sans-serif" font-size="12">"#);
    let _ = write!(out, r#"<rect width="{width}" height="{PANEL_H}" fill="white"/>"#);
    for (i, chart) in charts.iter().enumerate() {
        let _ = write!(out, r#"<g transform="translate({},0)">"#, PANEL_W * i as f64);
        panel(&mut out, chart);
        out.push_str("</g>");
    }
    out.push_str("</svg>\n");
    out
}

struct Frame {
    x0: f64,
    x1: f64,
    y1: f64,
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        MARGIN.0 + (x - self.x0) / (self.x1 - self.x0).max(1e-12) * (PANEL_W - MARGIN.0 - MARGIN.1)
    }

    fn py(&self, y: f64) -> f64 {
        PANEL_H - MARGIN.3 - y / self.y1.max(1e-12) * (PANEL_H - MARGIN.2 - MARGIN.3)
    }
}

fn panel(out: &mut String, chart: &Chart) {
    let frame = frame_of(chart);
    axes(out, chart, &frame);
    match chart.kind {
        Kind::Lines => lines(out, chart, &frame),
        Kind::Bars => bars(out, chart, &frame),
    }
    for (k, (x, label, colour)) in chart.marks.iter().enumerate() {
        let (px, top, bottom) = (frame.px(*x), frame.py(frame.y1), frame.py(0.0));
        let c = PALETTE[colour % PALETTE.len()];
        let _ = write!(out, r#"<line x1="{px:.1}" y1="{top:.1}" x2="{px:.1}" y2="{bottom:.1}" stroke="{c}" stroke-dasharray="4 3"/>"#);
        // Labels sit left of their line, one per row, so neighbouring marks do not collide.
        let y = top + 10.0 + 12.0 * k as f64;
        let _ = write!(out, r#"<text x="{:.1}" y="{y:.1}" fill="{c}" font-size="10" text-anchor="end">{}</text>"#, px - 3.0, escape(label));
    }
    legend(out, chart);
}

fn frame_of(chart: &Chart) -> Frame {
    let xs = chart.series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (mut x0, mut x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if chart.kind == Kind::Bars {
        (x0, x1) = (x0 - 0.5, x1 + 0.5);
    }
    let y_max = chart.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0, f64::max);
    Frame { x0, x1, y1: nice_step(y_max.max(1e-9) / 5.0) * 5.0 }
}

/// The smallest 1, 2 or 5 × 10^k at least `raw`.
pub fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|&s| s >= raw * 0.999_999).unwrap_or(10.0 * magnitude)
}

fn axes(out: &mut String, chart: &Chart, frame: &Frame) {
    let (left, bottom, right, top) = (MARGIN.0, PANEL_H - MARGIN.3, PANEL_W - MARGIN.1, MARGIN.2);
    let _ = write!(out, r#"<text x="{}" y="20" font-size="14" font-weight="bold">{}</text>"#, left, escape(&chart.title));
    let _ = write!(out, r##"<path d="M{left},{top} V{bottom} H{right}" fill="none" stroke="#333"/>"##);
    let step = frame.y1 / 5.0;
    for k in 0..=5 {
        let y = step * k as f64;
        let py = frame.py(y);
        let _ = write!(out, r##"<line x1="{left}" y1="{py:.1}" x2="{right}" y2="{py:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##, left - 4.0, py + 4.0, tick(y));
    }
    for (x, label) in x_ticks(chart, frame) {
        let px = frame.px(x);
        let _ = write!(out, r#"<text x="{px:.1}" y="{}" text-anchor="middle">{}</text>"#, bottom + 16.0, escape(&label));
    }
    let _ = write!(out, r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#, (left + right) / 2.0, PANEL_H - 8.0, escape(&chart.x_label));
    let _ = write!(out, r#"<text transform="translate(14,{}) rotate(-90)" text-anchor="middle">{}</text>"#, (top + bottom) / 2.0, escape(&chart.y_label));
}

fn x_ticks(chart: &Chart, frame: &Frame) -> Vec<(f64, String)> {
    if !chart.x_categories.is_empty() {
        return chart.x_categories.iter().enumerate().map(|(i, l)| (i as f64, l.clone())).collect();
    }
    let step = nice_step((frame.x1 - frame.x0).max(1e-9) / 8.0);
    let first = (frame.x0 / step).ceil() as i64;
    let last = (frame.x1 / step).floor() as i64;
    (first..=last).map(|k| (k as f64 * step, tick(k as f64 * step))).collect()
}

fn tick(v: f64) -> String {
    if v == v.round() && v.abs() < 1e9 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn lines(out: &mut String, chart: &Chart, frame: &Frame) {
    for (i, series) in chart.series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let path: Vec<String> = series.points.iter().map(|&(x, y)| format!("{:.1},{:.1}", frame.px(x), frame.py(y))).collect();
        // Later series are dashed so that coinciding lines stay visible.
        let dash = if i == 0 { "" } else { r#" stroke-dasharray="5 3""# };
        let _ = write!(out, r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="1.5"{dash}/>"#, path.join(" "));
    }
}

fn bars(out: &mut String, chart: &Chart, frame: &Frame) {
    let groups = chart.series.len().max(1) as f64;
    let slot = frame.px(1.0) - frame.px(0.0);
    let width = slot * 0.8 / groups;
    for (i, series) in chart.series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        for &(x, y) in &series.points {
            let left = frame.px(x) - slot * 0.4 + width * i as f64;
            let (top, bottom) = (frame.py(y), frame.py(0.0));
            let _ = write!(out, r#"<rect x="{left:.1}" y="{top:.1}" width="{width:.1}" height="{:.1}" fill="{c}"/>"#, bottom - top);
        }
    }
}

fn legend(out: &mut String, chart: &Chart) {
    let x = PANEL_W - MARGIN.1 - 170.0;
    for (i, series) in chart.series.iter().enumerate() {
        let y = MARGIN.2 + 8.0 + 16.0 * i as f64;
        let c = PALETTE[i % PALETTE.len()];
        let _ = write!(out, r#"<rect x="{x}" y="{}" width="12" height="10" fill="{c}"/><text x="{}" y="{}">{}</text>"#, y - 9.0, x + 16.0, y, escape(&series.name));
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_are_1_2_5() {
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(13.0), 20.0);
    }

    #[test]
    fn renders_a_well_formed_document() {
        let chart = Chart::new("t", "x", "y", Kind::Bars).series("a<b", vec![(0.0, 1.0), (1.0, 2.0)]);
        let svg = render(&[chart.clone(), Chart { kind: Kind::Lines, ..chart }]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("a&lt;b") && svg.contains("<polyline") && svg.contains("<rect x="));
    }
}
