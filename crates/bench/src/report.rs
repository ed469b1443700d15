//! The figures of a run, each with its target and verdict, as a Markdown table
//! and as JSON.

use crate::machine::Machine;
use serde_json::json;

/// What a figure must reach.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// No target: a limit or a figure shown for comparison.
    None,
    /// At least this value (in the figure's unit); `why` says where it comes from.
    AtLeast { value: f64, why: String },
    /// Strictly below this value.
    Below { value: f64, why: String },
}

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Figure {
    pub section: &'static str,
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    pub target: Target,
}

impl Figure {
    /// `Some(true)` for PASS, `Some(false)` for FAIL, `None` without a target.
    pub fn passed(&self) -> Option<bool> {
        match &self.target {
            Target::None => None,
            Target::AtLeast { value, .. } => Some(self.value >= *value),
            Target::Below { value, .. } => Some(self.value < *value),
        }
    }

    fn target_text(&self) -> String {
        match &self.target {
            Target::None => "—".to_owned(),
            Target::AtLeast { value, why } => format!("≥ {} {} ({why})", number(*value), self.unit),
            Target::Below { value, why } => format!("< {} {} ({why})", number(*value), self.unit),
        }
    }
}

pub(crate) fn number(value: f64) -> String {
    if value < 10.0 {
        // Ratios: 0.83 is not 0.8.
        format!("{value:.2}")
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// Everything a run measured, in order.
#[derive(Debug, Clone)]
pub struct Report {
    pub machine: Machine,
    pub mode: String,
    /// Load averages when the run ended (the machine's `load` is from its start).
    pub load_after: String,
    pub figures: Vec<Figure>,
    /// What the figures imply, printed under the table.
    pub notes: Vec<String>,
}

impl Report {
    pub fn push(
        &mut self,
        section: &'static str,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        target: Target,
    ) {
        self.figures.push(Figure {
            section,
            name: name.into(),
            value,
            unit,
            target,
        });
    }

    /// The figure named `name`, if measured.
    pub fn get(&self, name: &str) -> Option<&Figure> {
        self.figures.iter().find(|figure| figure.name == name)
    }

    pub fn markdown(&self) -> String {
        let mut out = format!(
            "Machine: {} cores, {}. Mode: {}. Load average (1, 5, 15 min) before: {}; after: {}.\n\n| Section | Figure | Measured | Target | Result |\n| --- | --- | ---: | --- | --- |\n",
            self.machine.cores, self.machine.cpu, self.mode, self.machine.load, self.load_after
        );
        for figure in &self.figures {
            let result = match figure.passed() {
                None => "",
                Some(true) => "PASS",
                Some(false) => "**FAIL**",
            };
            out += &format!(
                "| {} | {} | {} {} | {} | {} |\n",
                figure.section,
                figure.name,
                number(figure.value),
                figure.unit,
                figure.target_text(),
                result
            );
        }
        let passed = self
            .figures
            .iter()
            .filter(|f| f.passed() == Some(true))
            .count();
        let failed = self
            .figures
            .iter()
            .filter(|f| f.passed() == Some(false))
            .count();
        out += &format!("\n{passed} targets met, {failed} missed.\n");
        for note in &self.notes {
            out += &format!("\nNote: {note}\n");
        }
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let figures: Vec<_> = self
            .figures
            .iter()
            .map(|figure| {
                let (kind, target) = match &figure.target {
                    Target::None => ("none", None),
                    Target::AtLeast { value, .. } => ("at_least", Some(*value)),
                    Target::Below { value, .. } => ("below", Some(*value)),
                };
                json!({
                    "section": figure.section,
                    "name": figure.name,
                    "value": figure.value,
                    "unit": figure.unit,
                    "target": { "kind": kind, "value": target, "text": figure.target_text() },
                    "passed": figure.passed(),
                })
            })
            .collect();
        json!({
            "machine": { "cores": self.machine.cores, "cpu": self.machine.cpu, "load_before": self.machine.load, "load_after": self.load_after },
            "mode": self.mode,
            "figures": figures,
            "notes": self.notes,
        })
    }
}
