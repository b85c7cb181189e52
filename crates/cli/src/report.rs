//! `aquant report OUT_DIR`: a run's report.html rendered again from its report.json, or its Markdown summary
//! on stdout (`--format md`, for a terminal or a pull-request comment).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use aquant::output::{self, REPORT};

/// Arguments of `aquant report`.
#[derive(Args)]
pub struct ReportArgs {
    /// The output directory of a `quantize` run (it holds report.json).
    dir: PathBuf,
    /// html: rewrite OUT_DIR/report.html; md: print a Markdown summary on stdout.
    #[arg(long, value_enum, default_value_t = Format::Html)]
    format: Format,
}

/// What `aquant report` produces.
#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// OUT_DIR/report.html.
    Html,
    /// Markdown on stdout.
    Md,
}

/// Runs `aquant report`.
pub fn run(args: ReportArgs) -> Result<u8> {
    match args.format {
        Format::Html => say!("{}", output::write_html(&args.dir)?.display()),
        Format::Md => {
            let view = aquant::render::ReportView::read(&args.dir.join(REPORT))?;
            say!("{}", aquant::render::markdown(&view));
        }
    }
    Ok(0)
}
