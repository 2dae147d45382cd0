//! Markdown tables and number formatting for study reports (GitHub-flavoured Markdown).

/// A Markdown table built row by row.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table { headers: headers.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.headers.len(), "row width");
        self.rows.push(cells);
    }

    pub fn to_markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut out = line(&self.headers);
        out += &line(&self.headers.iter().map(|_| "---:".to_string()).collect::<Vec<_>>());
        for row in &self.rows {
            out += &line(row);
        }
        out
    }
}

/// A study's written output: Markdown (also printed) and an SVG chart.
pub struct Output {
    pub study: &'static str,
    pub markdown: String,
    pub svg: String,
    /// Runs whose invariants failed, each with the command that replays it.
    pub failed: Vec<String>,
}

/// `12345` → `12,345`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn fixed(x: f64, decimals: usize) -> String {
    format!("{x:.decimals$}")
}

/// A percentage with enough precision for small values.
pub fn pct(x: f64) -> String {
    if x == 0.0 {
        "0%".into()
    } else if x < 0.01 {
        format!("{x:.4}%")
    } else {
        format!("{x:.2}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(100000), "100,000");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn table_has_header_rule_and_rows() {
        let mut t = Table::new(&["a", "b"]);
        t.row(vec!["1".into(), "2".into()]);
        assert_eq!(t.to_markdown(), "| a | b |\n| ---: | ---: |\n| 1 | 2 |\n");
    }
}
