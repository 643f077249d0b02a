//! Reading import files into checked rows. Three formats, one set of fields per kind
//! ([`Kind::fields`]):
//!
//! - CSV (`*.csv`): a header row naming the columns, one kind per file, the kind given by
//!   `--kind` or the file's name (`sections.csv`). Lists are `;`-separated in a cell;
//!   meetings, pools and restrictions have a short form ([`Fields::meetings`] and the
//!   next ones).
//! - JSON (`*.json`, and the API's body): an object `{"terms": [...], "courses": [...]}`
//!   whose arrays hold objects with the same fields; lists are arrays, and meetings, pools
//!   and restrictions the objects the API takes (the CSV short forms are accepted too).
//! - JSON Lines (`*.jsonl`, `*.ndjson`): one object per line with its `kind`.
//!
//! A row is checked with the API's validation (`resources`), with placeholders for the
//! fields it does not give: a field a row leaves out (a column the file lacks, an empty
//! cell, a JSON `null`) is left as stored, or takes its default on a new record, except
//! that an empty list, program, cohort or ticket `closes_at` clears it.

use super::{FileError, Kind, RowError};
use crate::resources::{
    Course, Invalid, MeetingDto, NewPool, NewSection, NewStudent, NewTerm, NewTimeTicket,
    NewWindow, RestrictionDto, Role, Standing, check_restrictions, invalid, is_username,
    parse_grading_bases,
};
use chrono::{DateTime, Utc};
use registrar_actors::student_rules::{Meeting, Restriction};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;
use uuid::Uuid;

/// A row of a file, where it was.
#[derive(Clone, Debug)]
pub struct Rec<T> {
    /// Line in the file (1-based).
    pub line: usize,
    /// Position among the file's records of its kind (0-based).
    pub index: usize,
    /// The checked row.
    pub row: T,
}

/// A term: `code` (key), `name`.
#[derive(Clone, Debug)]
pub struct TermIn {
    /// Key.
    pub code: String,
    /// Required for a new term.
    pub name: Option<String>,
}

/// A registration window: `term`, `standing` (key), `opens_at`, `closes_at`.
#[derive(Clone, Debug)]
pub struct WindowIn {
    /// Term code.
    pub term: String,
    /// The window.
    pub window: NewWindow,
}

/// A course: `code` (key), the rest as the API's [`Course`].
#[derive(Clone, Debug)]
pub struct CourseIn {
    /// Canonical code.
    pub code: String,
    /// Required for a new course.
    pub title: Option<String>,
    /// Required for a new course.
    pub credits: Option<u32>,
    /// Canonical codes.
    pub prerequisites: Option<Vec<String>>,
    /// Component names, the primary first.
    pub components: Option<Vec<String>>,
    /// Canonical codes.
    pub corequisites: Option<Vec<String>>,
    /// The fewest credits (checked against the credits when applied).
    pub min_credits: Option<u32>,
    /// The most credits (checked against the credits when applied).
    pub max_credits: Option<u32>,
    /// Grading basis names, in their canonical order.
    pub grading_bases: Option<Vec<String>>,
}

/// A section: `term`, `course_code`, `section_code` (key), the rest as the API's
/// [`NewSection`], with `links` naming sections of the same course and term by code.
#[derive(Clone, Debug)]
pub struct SectionIn {
    /// Term code.
    pub term: String,
    /// Canonical course code.
    pub course_code: String,
    /// Section code.
    pub section_code: String,
    /// Required for a new section.
    pub capacity: Option<u32>,
    /// Default 0.
    pub waitlist_capacity: Option<u32>,
    /// Parsed meetings.
    pub meetings: Option<Vec<Meeting>>,
    /// Component name (default `lecture`).
    pub component: Option<String>,
    /// Section codes of the same course and term.
    pub links: Option<Vec<String>>,
    /// Pools, values canonical.
    pub reserved: Option<Vec<NewPool>>,
    /// Restrictions, values canonical.
    pub restrictions: Option<Vec<Restriction>>,
    /// `auto` or `offer` (default `auto`).
    pub waitlist_mode: Option<String>,
    /// How long an offer stands (default 1440).
    pub offer_window_minutes: Option<u32>,
}

/// A student: `username` (key), the rest as the API's [`NewStudent`] (role student), with
/// `password_hash` instead of `password` if the SIS has one.
#[derive(Clone, Debug)]
pub struct StudentIn {
    /// Key.
    pub username: String,
    /// For a new account.
    pub password: Option<String>,
    /// For a new account: a PHC argon2 hash.
    pub password_hash: Option<String>,
    /// Required for a new account.
    pub standing: Option<Standing>,
    /// Default 18.
    pub max_credits: Option<u32>,
    /// Canonical codes.
    pub completed_courses: Option<Vec<String>>,
    /// Canonical codes.
    pub majors: Option<Vec<String>>,
    /// `Some(None)` clears it.
    pub program: Option<Option<String>>,
    /// `Some(None)` clears it.
    pub cohort: Option<Option<String>>,
}

/// A time ticket: `term`, `username` (key), `opens_at`, `closes_at`.
#[derive(Clone, Debug)]
pub struct TicketIn {
    /// Term code.
    pub term: String,
    /// Student.
    pub username: String,
    /// The ticket.
    pub ticket: NewTimeTicket,
}

/// The rows of a file, by kind.
#[derive(Clone, Debug, Default)]
pub struct Rows {
    /// Terms.
    pub terms: Vec<Rec<TermIn>>,
    /// Windows.
    pub windows: Vec<Rec<WindowIn>>,
    /// Courses.
    pub courses: Vec<Rec<CourseIn>>,
    /// Sections.
    pub sections: Vec<Rec<SectionIn>>,
    /// Students.
    pub students: Vec<Rec<StudentIn>>,
    /// Tickets.
    pub tickets: Vec<Rec<TicketIn>>,
}

/// A file read: its checked rows and the rows that failed the checks.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The file's name as reports show it.
    pub name: String,
    /// Rows that passed.
    pub rows: Rows,
    /// Rows that did not.
    pub errors: Vec<RowError>,
    /// Records read of each kind (passed or not), for positions.
    seen: BTreeMap<Kind, usize>,
}

impl Parsed {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            rows: Rows::default(),
            errors: Vec::new(),
            seen: BTreeMap::new(),
        }
    }

    /// Records read.
    pub fn len(&self) -> usize {
        self.seen.values().sum()
    }

    /// Whether the file had no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first kind the file has records of (files are applied in this order).
    pub fn first_kind(&self) -> Option<Kind> {
        self.seen.keys().next().copied()
    }

    /// Check `fields` as a record of `kind` read at `line`, keeping it or its error.
    fn record(&mut self, kind: Kind, line: usize, fields: Map<String, Value>) {
        let seen = self.seen.entry(kind).or_default();
        let index = *seen;
        *seen += 1;
        let mut f = Fields(fields);
        /// Read a row with `parse`, refuse fields it left, keep it in `into`.
        fn keep<T>(
            f: &mut Fields,
            into: &mut Vec<Rec<T>>,
            line: usize,
            index: usize,
            parse: fn(&mut Fields) -> Result<T, Invalid>,
        ) -> Result<(), Invalid> {
            let row = parse(f)?;
            std::mem::take(f).finish()?;
            into.push(Rec { line, index, row });
            Ok(())
        }
        let rows = &mut self.rows;
        let result = match kind {
            Kind::Terms => keep(&mut f, &mut rows.terms, line, index, term),
            Kind::Windows => keep(&mut f, &mut rows.windows, line, index, window),
            Kind::Courses => keep(&mut f, &mut rows.courses, line, index, course),
            Kind::Sections => keep(&mut f, &mut rows.sections, line, index, section),
            Kind::Students => keep(&mut f, &mut rows.students, line, index, student),
            Kind::Tickets => keep(&mut f, &mut rows.tickets, line, index, ticket),
        };
        if let Err(e) = result {
            // `record` names no field: an unknown one, say.
            let field = (e.field != "record").then(|| e.field.to_string());
            self.fail(Some(kind), line, index, field, e.reason);
        }
    }

    fn fail(
        &mut self,
        kind: Option<Kind>,
        line: usize,
        index: usize,
        field: Option<String>,
        message: String,
    ) {
        self.errors.push(RowError {
            file: self.name.clone(),
            line,
            kind,
            index,
            field,
            message,
        });
    }
}

/// The file's format, by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `.csv`
    Csv,
    /// `.json`
    Json,
    /// `.jsonl`, `.ndjson`
    JsonLines,
}

impl Format {
    /// The format of `path`, by its extension.
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

/// The kind a CSV file's name says (`sections.csv`, `2027SP-sections.csv`).
pub fn kind_of_file(path: &Path) -> Option<Kind> {
    let stem = path.file_stem()?.to_str()?.to_ascii_lowercase();
    let last = stem.rsplit(['-', '_', '.', ' ']).next().unwrap_or(&stem);
    Kind::parse(&stem).or_else(|| Kind::parse(last))
}

/// Read the file at `path` (`kind`: the `--kind` of CSV files).
pub fn read_file(path: &Path, kind: Option<Kind>) -> Result<Parsed, FileError> {
    let name = path.display().to_string();
    let fail = |line: Option<usize>, message: String| FileError {
        file: name.clone(),
        line,
        message,
    };
    let format = Format::of(path).ok_or_else(|| {
        fail(
            None,
            "unknown file type: name it .csv, .json or .jsonl".into(),
        )
    })?;
    let bytes = std::fs::read(path).map_err(|e| fail(None, format!("cannot read it: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let before = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        fail(Some(line), "not UTF-8 text".into())
    })?;
    match format {
        Format::Csv => {
            let kind = kind.or_else(|| kind_of_file(path)).ok_or_else(|| {
                fail(
                    None,
                    "which kind of records? name the file after them (sections.csv) or give --kind"
                        .into(),
                )
            })?;
            csv(&name, &text, kind)
        }
        Format::Json => json(&name, &text),
        Format::JsonLines => json_lines(&name, &text),
    }
}

/// Read CSV `text` of `kind` records.
pub fn csv(name: &str, text: &str, kind: Kind) -> Result<Parsed, FileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let fail = |line: Option<usize>, message: String| FileError {
        file: name.to_string(),
        line,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| fail(Some(1), e.to_string()))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    for (i, column) in header.iter().enumerate() {
        if !kind.fields().contains(&column.as_str()) {
            return Err(fail(
                Some(1),
                format!(
                    "unknown column `{column}` for {kind}; the columns are {}",
                    kind.fields().join(", ")
                ),
            ));
        }
        if header[..i].contains(column) {
            return Err(fail(Some(1), format!("column `{column}` twice")));
        }
    }
    let mut parsed = Parsed::new(name);
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line() as usize);
                let fields: Map<String, Value> = header
                    .iter()
                    .zip(record.iter())
                    .map(|(h, cell)| (h.clone(), Value::String(cell.to_string())))
                    .collect();
                parsed.record(kind, line, fields);
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                let index = parsed.seen.get(&kind).copied().unwrap_or(0);
                parsed.seen.insert(kind, index + 1);
                let message = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("{len} cells where the header has {expected_len}")
                    }
                    _ => e.to_string(),
                };
                parsed.fail(Some(kind), line, index, None, message);
                if !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                    return Err(fail(Some(line), "cannot read on".into()));
                }
            }
        }
    }
    Ok(parsed)
}

/// The 1-based line of byte `offset` of `text`.
fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Read a JSON object `{"terms": [...], ...}`.
pub fn json(name: &str, text: &str) -> Result<Parsed, FileError> {
    let fail = |line: Option<usize>, message: String| FileError {
        file: name.to_string(),
        line,
        message,
    };
    if text.trim_start().as_bytes().first() != Some(&b'{') {
        return Err(fail(
            Some(1),
            "expected a JSON object such as {\"terms\": [...], \"courses\": [...]}".into(),
        ));
    }
    let top: BTreeMap<String, Vec<&RawValue>> = serde_json::from_str(text).map_err(|e| {
        fail(
            Some(e.line()),
            format!("{e}; expected an object of arrays of records"),
        )
    })?;
    let mut parsed = Parsed::new(name);
    let mut by_kind: Vec<(Kind, Vec<&RawValue>)> = Vec::new();
    for (key, records) in top {
        let kind = Kind::parse(&key)
            .filter(|k| k.as_str() == key)
            .ok_or_else(|| {
                fail(
                    None,
                    format!(
                        "unknown key `{key}`; the keys are {}",
                        Kind::ALL.map(Kind::as_str).join(", ")
                    ),
                )
            })?;
        by_kind.push((kind, records));
    }
    by_kind.sort_by_key(|(k, _)| *k);
    for (kind, records) in by_kind {
        for raw in records {
            let offset = raw.get().as_ptr() as usize - text.as_ptr() as usize;
            let line = line_at(text, offset);
            match serde_json::from_str::<Value>(raw.get()) {
                Ok(Value::Object(fields)) => parsed.record(kind, line, fields),
                _ => {
                    let index = parsed.seen.get(&kind).copied().unwrap_or(0);
                    parsed.seen.insert(kind, index + 1);
                    parsed.fail(Some(kind), line, index, None, "expected an object".into());
                }
            }
        }
    }
    Ok(parsed)
}

/// Read JSON Lines: one object per line, its kind in `kind`; blank lines are skipped.
pub fn json_lines(name: &str, text: &str) -> Result<Parsed, FileError> {
    let mut parsed = Parsed::new(name);
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => {
                parsed.fail(None, line_no, 0, None, "expected an object".into());
                continue;
            }
            Err(e) => {
                parsed.fail(None, line_no, 0, None, format!("not JSON: {e}"));
                continue;
            }
        };
        let kind = match fields.remove("kind") {
            Some(Value::String(k)) => Kind::parse(&k),
            _ => None,
        };
        let Some(kind) = kind else {
            let kinds = Kind::ALL.map(Kind::as_str).join(", ");
            let message = format!("`kind` must be one of {kinds} (or the singular)");
            parsed.fail(None, line_no, 0, Some("kind".into()), message);
            continue;
        };
        parsed.record(kind, line_no, fields);
    }
    Ok(parsed)
}

/// A record's fields as read: CSV cells are strings, JSON values keep their types. Each
/// getter takes its field out; [`Fields::finish`] refuses what is left.
#[derive(Default)]
struct Fields(Map<String, Value>);

/// A value that gives nothing: `null`, or a string of blanks (an empty cell).
fn blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

impl Fields {
    /// The field's value, `None` when absent or blank.
    fn given(&mut self, name: &'static str) -> Option<Value> {
        self.0.remove(name).filter(|v| !blank(v))
    }

    /// Whether the field is there at all, blank or not.
    fn present(&self, name: &'static str) -> bool {
        self.0.contains_key(name)
    }

    /// A required string (a key): trimmed.
    fn key(&mut self, name: &'static str) -> Result<String, Invalid> {
        match self.given(name) {
            Some(Value::String(s)) => Ok(s.trim().to_string()),
            Some(_) => Err(invalid(name, "a string")),
            None => Err(invalid(name, "required")),
        }
    }

    /// An optional string, as written.
    fn text(&mut self, name: &'static str) -> Result<Option<String>, Invalid> {
        match self.given(name) {
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(name, "a string")),
            None => Ok(None),
        }
    }

    /// An optional string that a blank clears: `Some(None)`.
    fn nullable(&mut self, name: &'static str) -> Result<Option<Option<String>>, Invalid> {
        if !self.present(name) {
            return Ok(None);
        }
        Ok(Some(self.text(name)?.map(|s| s.trim().to_string())))
    }

    /// An optional whole number (`60`, `60.0`, or a cell `60`).
    fn count(&mut self, name: &'static str) -> Result<Option<u32>, Invalid> {
        let bad = || invalid(name, "a whole number");
        match self.given(name) {
            None => Ok(None),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
            Some(v) => crate::resources::whole_number(v)
                .map(Some)
                .map_err(|_| bad()),
        }
    }

    /// An optional list: an array of strings, or `;`-separated text. A blank field that is
    /// present is the empty list.
    fn list(&mut self, name: &'static str) -> Result<Option<Vec<String>>, Invalid> {
        if !self.present(name) {
            return Ok(None);
        }
        match self.given(name) {
            None => Ok(Some(Vec::new())),
            Some(Value::String(s)) => Ok(Some(split(&s).map(str::to_string).collect())),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(invalid(name, "a list of strings")),
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(invalid(name, "a list of strings")),
        }
    }

    /// An optional RFC 3339 time.
    fn time(&mut self, name: &'static str) -> Result<Option<DateTime<Utc>>, Invalid> {
        match self.given(name) {
            None => Ok(None),
            Some(Value::String(s)) => DateTime::parse_from_rfc3339(s.trim())
                .map(|t| Some(stored_time(t)))
                .map_err(|_| invalid(name, "an RFC 3339 time such as 2027-01-10T14:00:00Z")),
            Some(_) => Err(invalid(
                name,
                "an RFC 3339 time such as 2027-01-10T14:00:00Z",
            )),
        }
    }

    /// A required RFC 3339 time.
    fn required_time(&mut self, name: &'static str) -> Result<DateTime<Utc>, Invalid> {
        self.time(name)?.ok_or_else(|| invalid(name, "required"))
    }

    /// An optional standing, as the API writes it (`senior`).
    fn standing(&mut self, name: &'static str) -> Result<Option<Standing>, Invalid> {
        match self.given(name) {
            None => Ok(None),
            Some(Value::String(s)) => Standing::parse(s.trim())
                .map(Some)
                .ok_or_else(|| invalid(name, "freshman, sophomore, junior, senior or graduate")),
            Some(_) => Err(invalid(name, "a string")),
        }
    }

    /// Meetings: the API's objects, or `mon 09:00-10:15; wed 09:00-10:15`.
    fn meetings(&mut self, name: &'static str) -> Result<Option<Vec<MeetingDto>>, Invalid> {
        self.structured(name, |item| {
            let (day, times) = item
                .split_once(char::is_whitespace)
                .ok_or_else(|| invalid(name, format!("`{item}`: write `mon 09:00-10:15`")))?;
            let (start, end) = times
                .trim()
                .split_once('-')
                .ok_or_else(|| invalid(name, format!("`{item}`: write `mon 09:00-10:15`")))?;
            Ok(MeetingDto {
                day: day.to_string(),
                start: start.trim().to_string(),
                end: end.trim().to_string(),
            })
        })
    }

    /// Reserved pools: the API's objects, or `major=CS:10; cohort=HONORS:5@2027-01-20T00:00:00Z`
    /// (attribute=value:seats, then `@` and the release time if any).
    fn pools(&mut self, name: &'static str) -> Result<Option<Vec<NewPool>>, Invalid> {
        self.structured(name, |item| {
            let form = || {
                invalid(
                    name,
                    format!("`{item}`: write `major=CS:10` or `major=CS:10@TIME`"),
                )
            };
            let (pool, release) = match item.split_once('@') {
                Some((pool, at)) => (pool, Some(at.trim())),
                None => (item, None),
            };
            let (attribute, rest) = pool.split_once('=').ok_or_else(form)?;
            let (value, seats) = rest.split_once(':').ok_or_else(form)?;
            let release_at = release
                .map(|at| {
                    DateTime::parse_from_rfc3339(at)
                        .map(stored_time)
                        .map_err(|_| invalid(name, format!("`{at}` is not an RFC 3339 time")))
                })
                .transpose()?;
            Ok(NewPool {
                attribute: attribute
                    .trim()
                    .parse()
                    .map_err(|e: String| invalid(name, e))?,
                value: value.trim().to_string(),
                seats: seats.trim().parse().map_err(|_| {
                    invalid(name, format!("`{item}`: seats must be a whole number"))
                })?,
                release_at,
            })
        })
    }

    /// Restrictions: the API's objects, or `include major=CS,MATH; exclude cohort=PROBATION`.
    fn restrictions(&mut self, name: &'static str) -> Result<Option<Vec<RestrictionDto>>, Invalid> {
        self.structured(name, |item| {
            let form = || {
                invalid(
                    name,
                    format!("`{item}`: write `include major=CS,MATH` or `exclude cohort=X`"),
                )
            };
            let (mode, rest) = item.split_once(char::is_whitespace).ok_or_else(form)?;
            let (attribute, values) = rest.trim().split_once('=').ok_or_else(form)?;
            let mode = serde_json::from_value(Value::String(mode.to_string()))
                .map_err(|_| invalid(name, format!("`{mode}`: include or exclude")))?;
            Ok(RestrictionDto {
                attribute: attribute
                    .trim()
                    .parse()
                    .map_err(|e: String| invalid(name, e))?,
                mode,
                values: values
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect(),
            })
        })
    }

    /// A list of objects the API takes, or `;`-separated short forms read by `short`. A
    /// blank field that is present is the empty list.
    fn structured<T: serde::de::DeserializeOwned>(
        &mut self,
        name: &'static str,
        short: impl Fn(&str) -> Result<T, Invalid>,
    ) -> Result<Option<Vec<T>>, Invalid> {
        if !self.present(name) {
            return Ok(None);
        }
        match self.given(name) {
            None => Ok(Some(Vec::new())),
            Some(Value::String(s)) => split(&s).map(short).collect::<Result<_, _>>().map(Some),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => short(s.trim()),
                    other => {
                        serde_json::from_value(other).map_err(|e| invalid(name, e.to_string()))
                    }
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(invalid(name, "a list")),
        }
    }

    /// Refuse a field no getter took.
    fn finish(self) -> Result<(), Invalid> {
        match self.0.keys().next() {
            Some(unknown) => Err(Invalid {
                field: "record",
                reason: format!("unknown field `{unknown}`"),
            }),
            None => Ok(()),
        }
    }
}

/// A time as PostgreSQL stores it (UTC, whole microseconds), so that a file read again
/// compares equal to what its first import wrote.
fn stored_time(t: DateTime<chrono::FixedOffset>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.with_timezone(&Utc).trunc_subsecs(6)
}

/// The non-blank items of a `;`-separated cell, trimmed.
fn split(cell: &str) -> impl Iterator<Item = &str> {
    cell.split(';').map(str::trim).filter(|s| !s.is_empty())
}

fn term(f: &mut Fields) -> Result<TermIn, Invalid> {
    let code = f.key("code")?;
    let name = f.text("name")?;
    NewTerm {
        code: code.clone(),
        name: name.clone().unwrap_or_else(|| "placeholder".into()),
    }
    .validate()?;
    Ok(TermIn { code, name })
}

fn window(f: &mut Fields) -> Result<WindowIn, Invalid> {
    let term = f.key("term")?;
    let standing = f
        .standing("standing")?
        .ok_or_else(|| invalid("standing", "required"))?;
    let window = NewWindow {
        standing,
        opens_at: f.required_time("opens_at")?,
        closes_at: f.required_time("closes_at")?,
    };
    window.validate()?;
    Ok(WindowIn { term, window })
}

fn course(f: &mut Fields) -> Result<CourseIn, Invalid> {
    let code = f.key("code")?;
    let title = f.text("title")?;
    let credits = f.count("credits")?;
    let prerequisites = f.list("prerequisites")?;
    let components = f.list("components")?;
    let corequisites = f.list("corequisites")?;
    let min_credits = f.count("min_credits")?;
    let max_credits = f.count("max_credits")?;
    for (field, n) in [("min_credits", min_credits), ("max_credits", max_credits)] {
        if n.is_some_and(|n| n > 12) {
            return Err(invalid(field, "0 to 12"));
        }
    }
    let grading_bases = f
        .list("grading_bases")?
        .map(|names| parse_grading_bases("grading_bases", &names))
        .transpose()?
        .map(|bases| bases.iter().map(|b| b.as_str().to_string()).collect());
    // The range is checked against the credits when applied: either may be stored.
    let mut course = Course {
        code,
        title: title.clone().unwrap_or_else(|| "placeholder".into()),
        credits: credits.unwrap_or(0),
        prerequisites: prerequisites.clone().unwrap_or_default(),
        components: components.clone().unwrap_or_default(),
        corequisites: corequisites.clone().unwrap_or_default(),
        min_credits: None,
        max_credits: None,
        grading_bases: None,
    };
    course.validate()?;
    Ok(CourseIn {
        min_credits,
        max_credits,
        grading_bases,
        prerequisites: prerequisites.map(|_| course.prerequisites),
        corequisites: corequisites.map(|_| course.corequisites),
        code: course.code,
        title,
        credits,
        components,
    })
}

/// Whether `code` is a section code (1-8 letters or digits).
fn is_section_code(code: &str) -> bool {
    (1..=8).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphanumeric())
}

fn section(f: &mut Fields) -> Result<SectionIn, Invalid> {
    let term = f.key("term")?;
    let course_code = f.key("course_code")?;
    let section_code = f.key("section_code")?;
    let capacity = f.count("capacity")?;
    let waitlist_capacity = f.count("waitlist_capacity")?;
    let meetings = f.meetings("meetings")?;
    let component = f.text("component")?;
    let links = f.list("links")?;
    let reserved = f.pools("reserved")?;
    let restrictions = f.restrictions("restrictions")?;
    let waitlist_mode = f.text("waitlist_mode")?.map(|m| m.trim().to_string());
    let offer_window_minutes = f.count("offer_window_minutes")?;
    // The API's checks, with the largest capacity standing in for one not given (the
    // pools of an existing section are checked against its capacity when applied).
    let mut checked = NewSection {
        term_id: Uuid::nil(),
        course_code,
        section_code,
        capacity: capacity.unwrap_or(100_000),
        waitlist_capacity: waitlist_capacity.unwrap_or(0),
        meetings: meetings.clone().unwrap_or_default(),
        component: component.clone().unwrap_or_else(|| "lecture".into()),
        links: Vec::new(),
        reserved: reserved.clone().unwrap_or_default(),
        restrictions: restrictions.clone().unwrap_or_default(),
        waitlist_mode: waitlist_mode.clone().unwrap_or_else(|| "auto".into()),
        offer_window_minutes: offer_window_minutes.unwrap_or(1440),
        consent_required: false,
    };
    let parsed_meetings = checked.validate()?;
    if let Some(links) = &links {
        if links.len() > crate::resources::MAX_LINKS {
            return Err(invalid(
                "links",
                format!("at most {}", crate::resources::MAX_LINKS),
            ));
        }
        if let Some(bad) = links.iter().find(|l| !is_section_code(l)) {
            return Err(invalid("links", format!("`{bad}` is not a section code")));
        }
        if links.contains(&checked.section_code) {
            return Err(invalid("links", "a section cannot be linked to itself"));
        }
    }
    Ok(SectionIn {
        term,
        meetings: meetings.map(|_| parsed_meetings),
        component: component.map(|_| checked.component.clone()),
        reserved: reserved.map(|_| checked.reserved.clone()),
        restrictions: match restrictions {
            Some(_) => Some(check_restrictions(&checked.restrictions)?),
            None => None,
        },
        links: links.map(|mut l| {
            l.dedup();
            l
        }),
        course_code: checked.course_code,
        section_code: checked.section_code,
        capacity,
        waitlist_capacity,
        waitlist_mode,
        offer_window_minutes,
    })
}

/// Whether `hash` is a PHC-format argon2 hash login can check.
fn is_argon2_hash(hash: &str) -> bool {
    argon2::PasswordHash::new(hash).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
}

fn student(f: &mut Fields) -> Result<StudentIn, Invalid> {
    let username = f.key("username")?;
    let password = f.text("password")?;
    let password_hash = f.text("password_hash")?.map(|h| h.trim().to_string());
    let standing = f.standing("standing")?;
    let max_credits = f.count("max_credits")?;
    let completed = f.list("completed_courses")?;
    let majors = f.list("majors")?;
    let program = f.nullable("program")?;
    let cohort = f.nullable("cohort")?;
    if password.is_some() && password_hash.is_some() {
        return Err(invalid(
            "password_hash",
            "give password or password_hash, not both",
        ));
    }
    if let Some(hash) = &password_hash
        && !is_argon2_hash(hash)
    {
        return Err(invalid(
            "password_hash",
            "a PHC-format argon2 hash such as $argon2id$v=19$m=19456,t=2,p=1$...",
        ));
    }
    let mut checked = NewStudent {
        username,
        password: password.clone().unwrap_or_else(|| "placeholder".into()),
        standing: standing.or(Some(Standing::Freshman)),
        max_credits: max_credits.unwrap_or(18),
        completed_courses: completed.clone().unwrap_or_default(),
        role: Role::Student,
        majors: majors.clone().unwrap_or_default(),
        program: program.clone().flatten(),
        cohort: cohort.clone().flatten(),
    };
    checked.validate()?;
    Ok(StudentIn {
        completed_courses: completed.map(|_| checked.completed_courses),
        majors: majors.map(|_| checked.majors),
        program: program.map(|_| checked.program),
        cohort: cohort.map(|_| checked.cohort),
        username: checked.username,
        password,
        password_hash,
        standing,
        max_credits,
    })
}

fn ticket(f: &mut Fields) -> Result<TicketIn, Invalid> {
    let term = f.key("term")?;
    let username = f.key("username")?;
    if !is_username(&username) {
        return Err(invalid("username", "1-64 of a-z, 0-9, '_', '.', '-'"));
    }
    let ticket = NewTimeTicket {
        opens_at: f.required_time("opens_at")?,
        closes_at: f.time("closes_at")?,
    };
    ticket.validate()?;
    Ok(TicketIn {
        term,
        username,
        ticket,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_are_checked_with_their_lines() {
        let text = "term,course_code,section_code,capacity,meetings,reserved,restrictions\n\
                    2027SP,cs 101,01,30,mon 09:00-10:15; wed 09:00-10:15,major=cs:10,include major=CS\n\
                    2027SP,CS101,02,100001,,,\n\
                    2027SP,CS101,03,,tue 9-10,,\n";
        let parsed = csv("sections.csv", text, Kind::Sections).unwrap();
        assert_eq!(parsed.rows.sections.len(), 1);
        let s = &parsed.rows.sections[0].row;
        assert_eq!(s.course_code, "CS101");
        assert_eq!(s.meetings.as_ref().unwrap().len(), 2);
        assert_eq!(s.reserved.as_ref().unwrap()[0].value, "CS");
        assert_eq!(s.restrictions.as_ref().unwrap()[0].values, ["CS"]);
        let errors: Vec<String> = parsed.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("sections.csv:3: capacity: 0 to 100000"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("sections.csv:4: meetings:"),
            "{errors:?}"
        );
    }

    #[test]
    fn an_unknown_column_refuses_the_file() {
        let e = csv("terms.csv", "code,nmae\n2027SP,Spring\n", Kind::Terms).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("terms.csv:1: unknown column `nmae`"),
            "{e}"
        );
    }

    #[test]
    fn json_records_know_their_lines_and_fields() {
        let text = r#"{
  "terms": [{"code": "2027SP", "name": "Spring 2027"}],
  "students": [
    {"username": "ada", "standing": "senior", "majors": ["cs"], "program": null},
    {"username": "Bad Name", "standing": "senior"},
    {"username": "bob", "standing": "junior", "majr": []}
  ]
}"#;
        let parsed = json("body", text).unwrap();
        assert_eq!(parsed.rows.terms.len(), 1);
        assert_eq!(parsed.rows.students.len(), 1);
        let ada = &parsed.rows.students[0].row;
        assert_eq!(ada.majors.as_deref(), Some(&["CS".to_string()][..]));
        assert_eq!(ada.program, Some(None));
        assert_eq!(ada.cohort, None);
        let errors: Vec<String> = parsed.errors.iter().map(ToString::to_string).collect();
        assert!(errors[0].starts_with("body:5: username:"), "{errors:?}");
        assert_eq!(parsed.errors[0].index, 1);
        assert!(
            errors[1].starts_with("body:6: unknown field `majr`"),
            "{errors:?}"
        );
        assert!(json("body", r#"{"sectoins": []}"#).is_err());
        assert!(json("body", "[]").is_err());
    }

    #[test]
    fn json_lines_carry_their_kind() {
        let text = "{\"kind\":\"term\",\"code\":\"2027SP\",\"name\":\"Spring\"}\n\n\
                    {\"kind\":\"ticket\",\"term\":\"2027SP\",\"username\":\"ada\",\"opens_at\":\"2027-01-10T14:00:00Z\"}\n\
                    {\"kind\":\"nope\"}\n";
        let parsed = json_lines("x.jsonl", text).unwrap();
        assert_eq!(parsed.rows.terms.len(), 1);
        assert_eq!(parsed.rows.tickets.len(), 1);
        assert_eq!(parsed.errors[0].line, 4);
        assert_eq!(parsed.first_kind(), Some(Kind::Terms));
    }

    #[test]
    fn file_names_name_their_kind() {
        assert_eq!(
            kind_of_file(Path::new("a/sections.csv")),
            Some(Kind::Sections)
        );
        assert_eq!(
            kind_of_file(Path::new("2027SP-tickets.csv")),
            Some(Kind::Tickets)
        );
        assert_eq!(kind_of_file(Path::new("catalog.csv")), None);
    }
}
