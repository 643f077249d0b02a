//! `registrar import FILE...`: read the SIS's files, import them (`crate::import`) with a
//! progress bar on a terminal (a line every 10 000 rows otherwise), print what changed
//! and every row error, and exit 1 when a row failed. `--generate-demo DIR` writes a large
//! demo catalog to import instead.

use crate::config::Settings;
use crate::import::generate::{self, DemoOptions};
use crate::import::parse::{Parsed, read_file};
use crate::import::{FileReport, Kind, Options, Progress, Report, RowError};
use crate::service::auth::hash_demo_password;
use crate::store;
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable whose password accounts created without one get.
pub const IMPORT_PASSWORD_VAR: &str = "REGISTRAR_IMPORT_PASSWORD";

/// Changes printed per file unless `--verbose`.
const SHOWN: usize = 20;

/// `registrar import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// CSV (one kind per file: `sections.csv`, or say `--kind`), JSON (`{"terms":[...],...}`)
    /// or JSON Lines (`.jsonl`, each line with its `kind`) files.
    #[arg(value_name = "FILE", required_unless_present = "generate_demo")]
    pub files: Vec<PathBuf>,
    /// The kind of records of CSV files whose name does not say it.
    #[arg(long, value_parser = parse_kind)]
    pub kind: Option<Kind>,
    /// Print what would change, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply the good rows of a file that has bad ones (otherwise nothing of that file).
    #[arg(long)]
    pub skip_errors: bool,
    /// Print every row-level change (otherwise the first 20 of each file).
    #[arg(long, short)]
    pub verbose: bool,
    /// Write a demo catalog as CSV files into DIR, and import nothing.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["files", "dry_run", "skip_errors", "kind"])]
    pub generate_demo: Option<PathBuf>,
    /// Students of the demo catalog.
    #[arg(long, default_value_t = 50_000, requires = "generate_demo")]
    pub students: u32,
    /// Sections of the demo catalog (default: one per 25 students, at least 20).
    #[arg(long, requires = "generate_demo")]
    pub sections: Option<u32>,
    /// Term code of the demo catalog.
    #[arg(long, default_value = "2027FA", requires = "generate_demo")]
    pub term: String,
}

fn parse_kind(s: &str) -> Result<Kind, String> {
    Kind::parse(s).ok_or_else(|| format!("one of {}", Kind::ALL.map(Kind::as_str).join(", ")))
}

/// Run `registrar import`.
pub async fn run(settings: &Settings, args: ImportArgs) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &args.generate_demo {
        return demo(settings, dir, &args);
    }
    let mut parsed: Vec<Parsed> = Vec::new();
    let mut unreadable: Vec<FileReport> = Vec::new();
    for path in &args.files {
        match read_file(path, args.kind) {
            Ok(p) => parsed.push(p),
            Err(e) => {
                let mut report = FileReport::new(&e.file);
                report.errors.push(RowError {
                    file: e.file.clone(),
                    line: e.line.unwrap_or(0),
                    kind: None,
                    index: 0,
                    field: None,
                    message: e.message.clone(),
                });
                unreadable.push(report);
            }
        }
    }
    let pool = store::connect(&settings.database.database_url, 2).await?;
    store::migrate(&pool).await?;
    let options = Options {
        dry_run: args.dry_run,
        skip_errors: args.skip_errors,
        shards: settings.cluster.shards,
        default_password: std::env::var(IMPORT_PASSWORD_VAR)
            .ok()
            .filter(|p| !p.is_empty()),
    };
    let progress: Box<dyn Progress> = if std::io::stderr().is_terminal() {
        Box::new(Bar::new())
    } else {
        Box::new(Lines::default())
    };
    let started = std::time::Instant::now();
    let mut report = crate::import::run(&pool, parsed, &options, progress.as_ref()).await?;
    pool.close().await;
    report.failed += unreadable.iter().map(|r| r.errors.len()).sum::<usize>();
    report.files.extend(unreadable);
    print(&report, &args, started.elapsed());
    Ok(if report.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Print the report: per file its counts, its changes, the changes left for the API and
/// its errors; then the totals.
fn print(report: &Report, args: &ImportArgs, took: std::time::Duration) {
    let mut totals = [0usize; 3];
    for file in &report.files {
        let failed = file.errors.len();
        let state = match (report.dry_run, failed > 0, args.skip_errors) {
            (false, false, _) => "applied".to_string(),
            (false, true, true) => format!("applied without its {failed} failed rows"),
            (false, true, false) => {
                "NOT APPLIED: it has errors (--skip-errors applies its other rows)".to_string()
            }
            (true, false, _) => "dry run".to_string(),
            (true, true, true) => format!("dry run: would be applied without its {failed} failed rows"),
            (true, true, false) => {
                "dry run: would NOT be applied, it has errors (--skip-errors applies its other rows)"
                    .to_string()
            }
        };
        println!("{}: {state}", file.file);
        let counted = file.applied || (report.dry_run && (failed == 0 || args.skip_errors));
        for k in &file.kinds {
            let Some(kind) = k.kind else { continue };
            println!(
                "  {kind}: {} created, {} updated, {} unchanged, {} failed",
                k.created, k.updated, k.unchanged, k.failed
            );
            if counted {
                totals[0] += k.created;
                totals[1] += k.updated;
                totals[2] += k.unchanged;
            }
        }
        let shown = if args.verbose { usize::MAX } else { SHOWN };
        for c in file.changes.iter().take(shown) {
            let what = format!("{} {} {}", c.action, c.kind.singular(), c.key);
            if c.fields.is_empty() {
                println!("  {}:{}: {what}", file.file, c.line);
            } else {
                println!(
                    "  {}:{}: {what}: {}",
                    file.file,
                    c.line,
                    c.fields.join("; ")
                );
            }
        }
        if file.changes.len() > shown {
            println!(
                "  ... and {} more changes (--verbose lists them all)",
                file.changes.len() - shown
            );
        }
        for a in &file.api_changes {
            println!(
                "  {}:{}: not applied, the section's actor decides it: {} {}: {} -> {}; make it with {}",
                file.file, a.line, a.key, a.field, a.from, a.to, a.how
            );
        }
        for e in &file.errors {
            println!("  {e}");
        }
    }
    let api: usize = report.files.iter().map(|f| f.api_changes.len()).sum();
    let [created, updated, unchanged] = totals;
    let failed = report.failed;
    let tail = if report.dry_run {
        " (dry run: nothing was written)"
    } else {
        ""
    };
    println!(
        "{} changed ({created} created, {updated} updated), {unchanged} unchanged, {failed} failed, \
         {api} changes to make through the API, in {:.1}s{tail}",
        report.changed,
        took.as_secs_f64()
    );
    if let Some(password) = &report.generated_password {
        println!(
            "students created without a password got this generated one: {password} \
             (set {IMPORT_PASSWORD_VAR} to choose it)"
        );
    }
}

/// `--generate-demo DIR`.
fn demo(settings: &Settings, dir: &std::path::Path, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let options = DemoOptions {
        students: args.students,
        sections: args.sections.unwrap_or((args.students / 25).max(20)),
        term: args.term.clone(),
        password_hash: hash_demo_password(&settings.demo.demo_password),
        opens_at: chrono::Utc::now() - chrono::TimeDelta::hours(1),
    };
    let files = generate::write(dir, &options)?;
    for f in &files {
        println!("wrote {}", f.display());
    }
    println!(
        "a demo catalog of {} students and {} sections in term {}; students' password from \
         REGISTRAR_DEMO_PASSWORD. Import it with: registrar import {}",
        options.students,
        options.sections,
        options.term,
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on the terminal.
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new() -> Self {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:40}] {pos}/{len} rows ({per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Self(bar)
    }
}

impl Progress for Bar {
    fn begin(&self, file: &str, rows: u64) {
        self.0.reset();
        self.0.set_length(rows);
        // The file's name without its directory keeps the bar on one line.
        let name = std::path::Path::new(file)
            .file_name()
            .map_or_else(|| file.to_string(), |n| n.to_string_lossy().into_owned());
        self.0.set_message(name);
    }

    fn advance(&self, rows: u64) {
        self.0.inc(rows);
    }

    fn end(&self) {
        self.0.finish_and_clear();
    }
}

/// A line on stderr every 10 000 rows (logs and CI have no terminal).
#[derive(Default)]
struct Lines {
    file: Mutex<String>,
    total: AtomicU64,
    done: AtomicU64,
}

/// Rows between two progress lines.
const EVERY: u64 = 10_000;

impl Progress for Lines {
    fn begin(&self, file: &str, rows: u64) {
        if let Ok(mut f) = self.file.lock() {
            *f = file.to_string();
        }
        self.total.store(rows, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
    }

    fn advance(&self, rows: u64) {
        let before = self.done.fetch_add(rows, Ordering::Relaxed);
        let after = before + rows;
        if after / EVERY > before / EVERY {
            let file = self.file.lock().map(|f| f.clone()).unwrap_or_default();
            eprintln!(
                "{file}: {after}/{} rows",
                self.total.load(Ordering::Relaxed)
            );
        }
    }

    fn end(&self) {}
}
