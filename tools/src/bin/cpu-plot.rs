//! `cpu-plot`: the plot of issue #20 — CPU per message against the message rate, smppd and
//! Kannel, from one or more `vs-kannel.json` files written by `kannel-load` (medians over the
//! files), with the goals drawn where they apply (a fifth of Kannel's CPU at the paced
//! rates, a twelfth at saturation).
//!
//! `cargo run --release -p smppd-tools --bin cpu-plot -- --out plot.png run1.json run2.json …`

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use plotters::prelude::*;
use serde_json::Value;
use smppd_tools::common;

#[derive(Parser, Debug)]
#[command(about = "CPU per message against rate, smppd and Kannel, from vs-kannel.json files")]
struct Args {
    /// The PNG to write.
    #[arg(long)]
    out: PathBuf,
    /// A TTF font for the text (default: DejaVu Sans from /usr/share/fonts).
    #[arg(long)]
    font: Option<PathBuf>,
    /// vs-kannel.json files (one per run); each point is the median over them.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// One measured point: (system, what) → values over the files, each (rate, CPU µs/message).
type Points = BTreeMap<(String, String), Vec<(f64, f64)>>;

fn collect(files: &[PathBuf]) -> Result<Points> {
    let mut points = Points::new();
    let mut add = |sys: &str, what: String, rate: Option<f64>, cpu: Option<f64>| {
        if let (Some(r), Some(c)) = (rate, cpu) {
            points.entry((sys.into(), what)).or_default().push((r, c));
        }
    };
    for f in files {
        let text = std::fs::read_to_string(f).with_context(|| format!("{}", f.display()))?;
        let doc: Value = serde_json::from_str(&text).with_context(|| format!("{}", f.display()))?;
        let s = &doc["summary"];
        for sys in ["smppd", "kannel"] {
            add(
                sys,
                "saturated".into(),
                s["end_to_end_rate"][sys].as_f64(),
                s["cpu_us_per_message"][sys].as_f64(),
            );
        }
        for p in doc["pacing"].as_array().into_iter().flatten() {
            let rate = p["rate"].as_f64();
            for row in p["rows"].as_array().into_iter().flatten() {
                let sys = row["system"].as_str().unwrap_or("?");
                add(
                    sys,
                    format!("paced {}", rate.unwrap_or(0.0)),
                    rate,
                    row["cpu_us_per_message"].as_f64(),
                );
            }
        }
        let h = &doc["half_rate"];
        add(
            "smppd",
            "half rate".into(),
            h["rate"].as_f64(),
            h["row"]["cpu_us_per_message"].as_f64(),
        );
    }
    Ok(points)
}

/// Median rate and CPU of each point, per system, sorted by rate.
fn medians(points: &Points) -> BTreeMap<String, Vec<(String, f64, f64)>> {
    let mut out: BTreeMap<String, Vec<(String, f64, f64)>> = BTreeMap::new();
    for ((sys, what), v) in points {
        let rate = common::median(&v.iter().map(|p| p.0).collect::<Vec<_>>());
        let cpu = common::median(&v.iter().map(|p| p.1).collect::<Vec<_>>());
        out.entry(sys.clone())
            .or_default()
            .push((what.clone(), rate, cpu));
    }
    for v in out.values_mut() {
        v.sort_by(|a, b| a.1.total_cmp(&b.1));
    }
    out
}

/// The goal at each of Kannel's points: a fifth of its CPU when paced, a twelfth saturated.
fn goals(kannel: &[(String, f64, f64)]) -> Vec<(f64, f64)> {
    kannel
        .iter()
        .map(|(what, rate, cpu)| {
            let share = if what == "saturated" { 12.0 } else { 5.0 };
            (*rate, cpu / share)
        })
        .collect()
}

type DrawResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn draw(args: &Args, m: &BTreeMap<String, Vec<(String, f64, f64)>>) -> DrawResult<()> {
    let root = BitMapBackend::new(&args.out, (1100, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption(
            format!(
                "CPU per message against rate, smppd and Kannel (medians of {} runs)",
                args.files.len()
            ),
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (200f64..60_000f64).log_scale(),
            (10f64..2_000f64).log_scale(),
        )?;
    c.configure_mesh()
        .x_desc("messages/s (log scale; the rightmost points are saturation)")
        .y_desc("CPU µs per message (log scale)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    let series = [("smppd", BLUE), ("kannel", RED)];
    for (sys, color) in series {
        let pts: Vec<(f64, f64)> = m
            .get(sys)
            .into_iter()
            .flatten()
            .map(|p| (p.1, p.2))
            .collect();
        c.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
            .label(sys)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
        c.draw_series(pts.iter().map(|p| Circle::new(*p, 5, color.filled())))?;
        c.draw_series(m.get(sys).into_iter().flatten().map(|(what, r, cpu)| {
            Text::new(
                format!("{what}: {cpu:.0}"),
                (*r * 1.05, *cpu * 1.08),
                ("sans-serif", 13),
            )
        }))?;
    }
    if let Some(k) = m.get("kannel") {
        let g = goals(k);
        c.draw_series(g.iter().map(|p| Cross::new(*p, 6, GREEN.stroke_width(2))))?
            .label("goal: Kannel/5 paced, Kannel/12 saturated")
            .legend(|(x, y)| Cross::new((x + 7, y), 5, GREEN.stroke_width(2)));
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let points = collect(&args.files)?;
    if points.is_empty() {
        bail!("no CPU figures in the files given");
    }
    let m = medians(&points);
    common::register_font(args.font.as_deref())?;
    draw(&args, &m).map_err(|e| anyhow::anyhow!("{e}"))?;
    for (sys, v) in &m {
        for (what, rate, cpu) in v {
            println!("{sys:<7} {what:<12} {rate:>9.0}/s {cpu:>8.1} µs/message");
        }
    }
    println!("plot: {}", args.out.display());
    Ok(())
}
