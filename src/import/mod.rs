//! Catalog and roster import from a student information system: terms, registration
//! windows, courses, sections, students and time tickets read from CSV, JSON or JSON Lines
//! ([`parse`]), checked with the API's own validation (`resources`), and upserted keyed by
//! the codes the SIS uses ([`apply`]): one transaction per file, batched statements, row
//! errors with their file and line. `registrar import` (the command line) and
//! `POST /api/v1/imports` (the admin API) both run [`run`]; [`generate`] writes a large
//! demo catalog in the CSV format. The formats are documented in docs/operations.md
//! ("Importing a catalog").
//!
//! What an import never writes: the capacity, waitlist capacity, reserved pools, waitlist
//! mode and offer window of a section that exists. The section's actor holds them in memory and decides their
//! changes (`PATCH /api/v1/sections/{id}`, `PUT /api/v1/sections/{id}/reserved`); an import
//! reports those changes as [`ApiChange`]s to make there, and applies the rest of the row.

pub mod apply;
pub mod generate;
pub mod parse;

use crate::store::DbError;
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

/// The kinds of records, in the order an import applies them (each may refer to the ones
/// before it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Terms, by code.
    Terms,
    /// Registration windows, by term code and standing.
    Windows,
    /// Courses, by code.
    Courses,
    /// Sections, by term code, course code and section code.
    Sections,
    /// Students, by username.
    Students,
    /// Time tickets, by term code and username.
    Tickets,
}

impl Kind {
    /// Every kind, in the order they are applied.
    pub const ALL: [Kind; 6] = [
        Kind::Terms,
        Kind::Windows,
        Kind::Courses,
        Kind::Sections,
        Kind::Students,
        Kind::Tickets,
    ];

    /// The plural name (`sections`): CSV file names, JSON keys, `--kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Terms => "terms",
            Kind::Windows => "windows",
            Kind::Courses => "courses",
            Kind::Sections => "sections",
            Kind::Students => "students",
            Kind::Tickets => "tickets",
        }
    }

    /// The singular name (`section`), as a JSON Lines record's `kind` may say it.
    pub fn singular(self) -> &'static str {
        let plural = self.as_str();
        &plural[..plural.len() - 1]
    }

    /// The kind named `name`, plural or singular.
    pub fn parse(name: &str) -> Option<Kind> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == name || k.singular() == name)
    }

    /// The fields (CSV columns) of a record of this kind, its key first.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::Terms => &["code", "name"],
            Kind::Windows => &["term", "standing", "opens_at", "closes_at"],
            Kind::Courses => &[
                "code",
                "title",
                "credits",
                "prerequisites",
                "components",
                "corequisites",
                "min_credits",
                "max_credits",
                "grading_bases",
            ],
            Kind::Sections => &[
                "term",
                "course_code",
                "section_code",
                "capacity",
                "waitlist_capacity",
                "meetings",
                "component",
                "links",
                "reserved",
                "restrictions",
                "waitlist_mode",
                "offer_window_minutes",
            ],
            Kind::Students => &[
                "username",
                "password",
                "password_hash",
                "standing",
                "max_credits",
                "completed_courses",
                "majors",
                "program",
                "cohort",
            ],
            Kind::Tickets => &["term", "username", "opens_at", "closes_at"],
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file that cannot be read as its format at all (not UTF-8, malformed JSON, an unknown
/// CSV column): nothing of it is applied.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct FileError {
    /// The file's name.
    pub file: String,
    /// Where, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// Why an import as a whole failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input is not in an import format (the API's body: 400 `invalid_body`).
    #[error(transparent)]
    File(#[from] FileError),
    /// The database failed; files committed before it stay committed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for ImportError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

/// A row that was not applied, and why.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RowError {
    /// The file (`body` for the API).
    pub file: String,
    /// Line of the row in the file (1-based; 0 for the file as a whole).
    pub line: usize,
    /// The kind of record, when known.
    #[schema(value_type = Option<String>)]
    pub kind: Option<Kind>,
    /// Position of the row among the file's records of its kind (0-based): the index in
    /// the body's array for the API.
    pub index: usize,
    /// The field at fault, when one is.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// What happened to one kind of record of a file.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct KindCounts {
    /// The kind.
    #[schema(value_type = String)]
    pub kind: Option<Kind>,
    /// Rows that created a record.
    pub created: usize,
    /// Rows that changed a record.
    pub updated: usize,
    /// Rows that matched their record already.
    pub unchanged: usize,
    /// Rows with an error.
    pub failed: usize,
}

/// One created or updated record.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Change {
    /// The kind of record.
    #[schema(value_type = String)]
    pub kind: Kind,
    /// Line of the row.
    pub line: usize,
    /// Position of the row among the file's records of its kind.
    pub index: usize,
    /// The record's key as the SIS writes it (`2027SP CS101 01`).
    pub key: String,
    /// `created` or `updated`.
    pub action: &'static str,
    /// For an update, each field changed: `title: "Old" -> "New"`.
    pub fields: Vec<String>,
}

/// A change of an existing section that only its actor may make: make it through the API.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ApiChange {
    /// Line of the row.
    pub line: usize,
    /// The section's key (`2027SP CS101 01`).
    pub key: String,
    /// The section.
    pub section_id: uuid::Uuid,
    /// `capacity`, `waitlist_capacity`, `reserved`, `waitlist_mode` or
    /// `offer_window_minutes`.
    pub field: &'static str,
    /// Stored now.
    pub from: String,
    /// In the file.
    pub to: String,
    /// The request that makes it (`PATCH /api/v1/sections/{id} {"capacity":60}`), or why
    /// there is none.
    pub how: String,
}

/// What an import of one file did (or, in a dry run, would do).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FileReport {
    /// The file (`body` for the API).
    pub file: String,
    /// Whether its changes were committed (false in a dry run, and for a file with row
    /// errors unless errors are skipped).
    pub applied: bool,
    /// Counts per kind, in the order applied.
    pub kinds: Vec<KindCounts>,
    /// Every record created or updated.
    pub changes: Vec<Change>,
    /// Changes left for the API (see [`ApiChange`]).
    pub api_changes: Vec<ApiChange>,
    /// Rows not applied.
    pub errors: Vec<RowError>,
}

impl FileReport {
    /// An empty report of `file`.
    pub fn new(file: &str) -> Self {
        Self {
            file: file.to_string(),
            applied: false,
            kinds: Vec::new(),
            changes: Vec::new(),
            api_changes: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// The counts of `kind`, added when first asked for.
    pub fn counts(&mut self, kind: Kind) -> &mut KindCounts {
        let at = match self.kinds.iter().position(|k| k.kind == Some(kind)) {
            Some(at) => at,
            None => {
                self.kinds.push(KindCounts {
                    kind: Some(kind),
                    ..KindCounts::default()
                });
                self.kinds.len() - 1
            }
        };
        &mut self.kinds[at]
    }

    /// Records created or updated.
    pub fn changed(&self) -> usize {
        self.kinds.iter().map(|k| k.created + k.updated).sum()
    }
}

/// What an import did, file by file.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Report {
    /// Nothing was written.
    pub dry_run: bool,
    /// Records created or updated, over the files applied (or, in a dry run, that would
    /// be).
    pub changed: usize,
    /// Rows with an error, over every file.
    pub failed: usize,
    /// The password given to the accounts created without one (printed once, never
    /// stored in clear); `null` when no account needed it or in a dry run.
    pub generated_password: Option<String>,
    /// Each file, in the order applied.
    pub files: Vec<FileReport>,
}

/// How to run an import.
#[derive(Clone, Debug)]
pub struct Options {
    /// Write nothing: every file is applied inside one transaction that is rolled back.
    pub dry_run: bool,
    /// Apply the rows without errors of a file that has some (otherwise nothing of it).
    pub skip_errors: bool,
    /// The cluster's shard count (new sections are placed by it).
    pub shards: u32,
    /// The password of accounts created without `password` or `password_hash`; `None`:
    /// a random one, reported once.
    pub default_password: Option<String>,
}

/// Told how far an import is (the command line's progress bar).
pub trait Progress: Send + Sync {
    /// A file of `rows` records begins.
    fn begin(&self, file: &str, rows: u64);
    /// `rows` more records are done.
    fn advance(&self, rows: u64);
    /// The file is done.
    fn end(&self);
}

/// Progress nobody watches.
pub struct Quiet;

impl Progress for Quiet {
    fn begin(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn end(&self) {}
}

/// Import `files` (parsed, in any order: they are applied kind by kind, each in its own
/// transaction; in a dry run all in one that is rolled back).
pub async fn run(
    pool: &PgPool,
    mut files: Vec<parse::Parsed>,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Report, ImportError> {
    files.sort_by_key(parse::Parsed::first_kind);
    let mut passwords = apply::Passwords::new(options.default_password.clone(), options.dry_run);
    let mut outer = if options.dry_run {
        Some(pool.begin().await?)
    } else {
        None
    };
    let mut reports = Vec::with_capacity(files.len());
    for file in files {
        progress.begin(&file.name, file.len() as u64);
        let mut tx = match outer.as_mut() {
            Some(outer) => sqlx::Acquire::begin(&mut **outer).await?,
            None => pool.begin().await?,
        };
        let name = file.name.clone();
        let mut report = match apply::file(&mut tx, file, options, &mut passwords, progress).await {
            Ok(report) => report,
            Err(ImportError::Db(e)) if !matches!(e, DbError::Unavailable(_)) => {
                // A constraint the checks did not foresee (a record created meanwhile
                // through the API, say): the file is refused as a whole.
                let mut report = FileReport::new(&name);
                report.errors.push(RowError {
                    file: name.clone(),
                    line: 0,
                    kind: None,
                    index: 0,
                    field: None,
                    message: format!(
                        "the database refused this file, nothing of it was applied: {e}"
                    ),
                });
                report
            }
            Err(e) => return Err(e),
        };
        progress.end();
        let keep = report.errors.is_empty() || options.skip_errors;
        if keep {
            // In a dry run this only releases the savepoint: later files see this one's
            // rows, and the outer transaction's rollback undoes them all.
            tx.commit().await?;
            report.applied = !options.dry_run;
            passwords.keep_use();
        } else {
            tx.rollback().await?;
            passwords.drop_use();
        }
        reports.push(report);
    }
    if let Some(outer) = outer {
        outer.rollback().await?;
    }
    let counted = |r: &&FileReport| {
        r.applied || (options.dry_run && (r.errors.is_empty() || options.skip_errors))
    };
    Ok(Report {
        dry_run: options.dry_run,
        changed: reports
            .iter()
            .filter(counted)
            .map(FileReport::changed)
            .sum(),
        failed: reports.iter().map(|r| r.errors.len()).sum(),
        generated_password: passwords.generated_if_used(),
        files: reports,
    })
}
