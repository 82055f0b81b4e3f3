//! The figures: percentiles, and the table printed at the end (Markdown, so it can be pasted
//! into docs/benchmarks.md as is).

use std::time::Duration;

/// p50 / p99 / max of a sample (nearest rank).
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub count: usize,
}

impl Stats {
    pub fn of(mut sample: Vec<Duration>) -> Self {
        sample.sort();
        let rank = |p: f64| {
            if sample.is_empty() {
                return Duration::ZERO;
            }
            let i = ((p * sample.len() as f64).ceil() as usize).clamp(1, sample.len()) - 1;
            sample[i]
        };
        Self {
            p50: rank(0.50),
            p99: rank(0.99),
            max: sample.last().copied().unwrap_or_default(),
            count: sample.len(),
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "{} / {} / {} (n = {})",
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
            self.count
        )
    }

    pub fn p50_p99(&self) -> String {
        format!("{} / {} (n = {})", ms(self.p50), ms(self.p99), self.count)
    }
}

pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub struct Row {
    figure: String,
    value: String,
    target: Option<(String, bool)>,
}

impl Row {
    pub fn new(figure: &str, value: String) -> Self {
        Self {
            figure: figure.to_owned(),
            value,
            target: None,
        }
    }

    pub fn target(figure: &str, value: String, target: &str, met: bool) -> Self {
        Self {
            figure: figure.to_owned(),
            value,
            target: Some((target.to_owned(), met)),
        }
    }
}

#[derive(Default)]
pub struct Report {
    rows: Vec<Result<Row, String>>,
}

impl Report {
    pub fn section(&mut self, title: &str) {
        self.rows.push(Err(title.to_owned()));
    }

    /// Adds a row and prints it at once (a long run shows progress).
    pub fn push(&mut self, row: Row) {
        println!("  {}: {}", row.figure.trim(), row.value);
        self.rows.push(Ok(row));
    }

    pub fn print(&self) {
        println!("| Figure | Value | Target | Met |");
        println!("|---|---|---|---|");
        for row in &self.rows {
            match row {
                Err(title) => println!("| **{title}** | | | |"),
                Ok(row) => {
                    let (target, met) = match &row.target {
                        Some((t, true)) => (t.as_str(), "✅ met"),
                        Some((t, false)) => (t.as_str(), "❌ missed"),
                        None => ("", ""),
                    };
                    println!("| {} | {} | {target} | {met} |", row.figure, row.value);
                }
            }
        }
    }
}
