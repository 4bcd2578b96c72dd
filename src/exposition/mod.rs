//! The metrics of a manager as text: the Prometheus text exposition format
//! (version 0.0.4, what `/metrics` serves with `text/plain; version=0.0.4`)
//! and OpenMetrics 1.0 (`application/openmetrics-text; version=1.0.0`).
//! Both are rendered from the same families, read once.
//!
//! The two differ only in how a counter is announced: Prometheus text names
//! the family with its `_total` suffix (`# TYPE dbmux_checkouts_total
//! counter`), OpenMetrics without it (`# TYPE dbmux_checkouts counter`), and
//! OpenMetrics adds `# UNIT` lines and the closing `# EOF`. The samples are
//! the same lines in both.

use std::fmt::Write as _;

use crate::pool::histogram::{HistogramSnapshot, EXPORTED_US};

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Gauge,
    Counter,
    Histogram,
}

/// One value of a family, with its own labels (after the common ones).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

/// A sample's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Number(f64),
    Histogram(HistogramSnapshot),
}

/// One metric family: a name (without `_total` for counters), its help
/// line, its type and its samples.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

impl Family {
    /// A family without samples yet.
    pub(crate) fn new(kind: Kind, name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    /// Adds a numeric sample.
    pub(crate) fn number(
        mut self,
        labels: Vec<(&'static str, String)>,
        v: impl Into<f64>,
    ) -> Family {
        self.samples.push(Sample {
            labels,
            value: Value::Number(v.into()),
        });
        self
    }

    /// Adds a histogram sample.
    pub(crate) fn histogram(
        mut self,
        labels: Vec<(&'static str, String)>,
        h: HistogramSnapshot,
    ) -> Family {
        self.samples.push(Sample {
            labels,
            value: Value::Histogram(h),
        });
        self
    }

    /// The unit OpenMetrics announces, from the name's suffix.
    fn unit(&self) -> Option<&'static str> {
        ["seconds", "bytes"]
            .into_iter()
            .find(|u| self.name.strip_suffix(u).is_some_and(|n| n.ends_with('_')))
    }
}

/// Which text to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// The Prometheus text exposition format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

/// `\`, `"` and newlines escaped, as label values need.
fn escape_label(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `\` and newlines escaped, as help text needs.
fn escape_help(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn labels(common: &[(&'static str, String)], own: &[(&'static str, String)], out: &mut String) {
    if common.is_empty() && own.is_empty() {
        return;
    }
    out.push('{');
    for (i, (k, v)) in common.iter().chain(own).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_label(v, out);
        out.push('"');
    }
    out.push('}');
}

/// A number as both formats read it (integers without a fraction).
fn number(v: f64, out: &mut String) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else if v.is_nan() {
        out.push_str("NaN");
    } else if v > 0.0 {
        out.push_str("+Inf");
    } else {
        out.push_str("-Inf");
    }
}

/// The families as text, each preceded by its `# HELP` and `# TYPE`
/// lines, every sample with the `common` labels first.
pub(crate) fn render(
    families: &[Family],
    common: &[(&'static str, String)],
    format: Format,
) -> String {
    let mut out = String::with_capacity(256 * families.len());
    for f in families {
        let total = if f.kind == Kind::Counter {
            "_total"
        } else {
            ""
        };
        let announced = match format {
            Format::Prometheus => format!("{}{total}", f.name),
            Format::OpenMetrics => f.name.to_string(),
        };
        let kind = match f.kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        };
        out.push_str("# HELP ");
        out.push_str(&announced);
        out.push(' ');
        escape_help(f.help, &mut out);
        out.push('\n');
        let _ = writeln!(out, "# TYPE {announced} {kind}");
        if format == Format::OpenMetrics {
            if let Some(unit) = f.unit() {
                let _ = writeln!(out, "# UNIT {announced} {unit}");
            }
        }
        for s in &f.samples {
            match &s.value {
                Value::Number(v) => {
                    out.push_str(f.name);
                    out.push_str(total);
                    labels(common, &s.labels, &mut out);
                    out.push(' ');
                    number(*v, &mut out);
                    out.push('\n');
                }
                Value::Histogram(h) => {
                    let les = EXPORTED_US
                        .iter()
                        .map(|us| *us as f64 / 1e6)
                        .zip(h.cumulative.iter().copied())
                        .chain([(f64::INFINITY, h.count)]);
                    for (le, n) in les {
                        let _ = write!(out, "{}_bucket", f.name);
                        let mut own = s.labels.clone();
                        let mut v = String::new();
                        number(le, &mut v);
                        own.push(("le", v));
                        labels(common, &own, &mut out);
                        let _ = writeln!(out, " {n}");
                    }
                    let _ = write!(out, "{}_sum", f.name);
                    labels(common, &s.labels, &mut out);
                    out.push(' ');
                    number(h.sum_seconds, &mut out);
                    out.push('\n');
                    let _ = write!(out, "{}_count", f.name);
                    labels(common, &s.labels, &mut out);
                    let _ = writeln!(out, " {}", h.count);
                }
            }
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn families() -> Vec<Family> {
        let h = crate::pool::histogram::Histogram::default();
        h.record(std::time::Duration::from_micros(30));
        h.record(std::time::Duration::from_millis(2));
        vec![
            Family::new(Kind::Counter, "dbmux_checkouts", "Checkouts served.").number(vec![], 3),
            Family::new(Kind::Gauge, "dbmux_connections", "Open connections.")
                .number(vec![("state", "idle".into())], 1),
            Family::new(Kind::Histogram, "dbmux_acquire_seconds", "Waits.")
                .histogram(vec![], h.snapshot()),
        ]
    }

    #[test]
    fn prometheus_text_names_counters_with_total_and_escapes_labels() {
        let common = vec![("pool", "a \"b\" \\ c\nd".to_string())];
        let t = render(&families(), &common, Format::Prometheus);
        assert!(t.contains("# TYPE dbmux_checkouts_total counter\n"), "{t}");
        assert!(
            t.contains("dbmux_checkouts_total{pool=\"a \\\"b\\\" \\\\ c\\nd\"} 3\n"),
            "{t}"
        );
        assert!(t.contains("dbmux_connections{pool=\"a \\\"b\\\" \\\\ c\\nd\",state=\"idle\"} 1\n"));
        assert!(
            t.contains(
                "dbmux_acquire_seconds_bucket{pool=\"a \\\"b\\\" \\\\ c\\nd\",le=\"0.00001\"} 0\n"
            ),
            "{t}"
        );
        assert!(t.contains(",le=\"0.00005\"} 1\n"), "{t}");
        assert!(t.contains(",le=\"0.0025\"} 2\n"), "{t}");
        assert!(t.contains(",le=\"+Inf\"} 2\n"), "{t}");
        assert!(
            t.contains("dbmux_acquire_seconds_sum{pool=\"a \\\"b\\\" \\\\ c\\nd\"} 0.00203\n"),
            "{t}"
        );
        assert!(!t.contains("# EOF") && !t.contains("# UNIT"), "{t}");
    }

    #[test]
    fn openmetrics_names_counters_without_total_and_ends_with_eof() {
        let t = render(&families(), &[], Format::OpenMetrics);
        assert!(t.contains("# TYPE dbmux_checkouts counter\n"), "{t}");
        assert!(t.contains("dbmux_checkouts_total 3\n"), "{t}");
        assert!(t.contains("# UNIT dbmux_acquire_seconds seconds\n"), "{t}");
        assert!(t.ends_with("# EOF\n"), "{t}");
    }
}
