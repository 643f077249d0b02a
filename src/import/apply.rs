//! Applying a file's checked rows inside its transaction, kind by kind: each kind's
//! records are read in one query by their SIS keys, compared row by row (created, updated
//! with the fields that changed, unchanged, or failed with why), and written in batches.
//! The notices that make every node's caches forget the changed students and sections go
//! out with the file's commit.

use super::parse::{CourseIn, Rec, Rows, SectionIn, StudentIn, TermIn, TicketIn, WindowIn};
use super::{ApiChange, Change, FileReport, ImportError, Kind, Options, Progress, RowError};
use crate::resources::{LinkEnd, NewPool, Standing, check_component, link_pairs, parse_components};
use crate::service::auth::hash_password;
use crate::shard::shard_of;
use crate::store::cluster::{Notice, notify_rules_many};
use crate::store::import::{
    self as rows, CourseRow, NewSectionRow, PoolRow, SectionRow, StudentRow, TicketRow,
};
use chrono::{DateTime, Utc};
use registrar_actors::student_rules::{Component, Meeting, Restriction};
use sqlx::PgConnection;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Display;
use uuid::Uuid;

/// Rows written per statement (and per progress step).
const CHUNK: usize = 5000;

/// Changed students above which a file sends one [`Notice::AllStudents`] instead of one
/// notice each.
const MANY_STUDENTS: usize = 2000;

/// The password hashes of new accounts: the file's own, or one shared hash computed once
/// per import for the accounts that come without a password.
pub struct Passwords {
    default: Option<String>,
    generated: Option<String>,
    shared: Option<String>,
    dry_run: bool,
    /// The current file created accounts with the shared password.
    pending: bool,
    /// A committed file did.
    used: bool,
}

impl Passwords {
    /// `default` for accounts without a password, else a random one.
    pub fn new(default: Option<String>, dry_run: bool) -> Self {
        Self {
            default,
            generated: None,
            shared: None,
            dry_run,
            pending: false,
            used: false,
        }
    }

    /// The shared hash (computed on first use; none is computed in a dry run).
    async fn shared_hash(&mut self) -> Result<String, ImportError> {
        self.pending = true;
        if self.dry_run {
            return Ok(String::new());
        }
        if let Some(hash) = &self.shared {
            return Ok(hash.clone());
        }
        let password = match &self.default {
            Some(p) => p.clone(),
            None => {
                let p = Uuid::new_v4().simple().to_string()[..16].to_string();
                self.generated = Some(p.clone());
                p
            }
        };
        let hash = hash_blocking(password).await?;
        self.shared = Some(hash.clone());
        Ok(hash)
    }

    /// The current file was committed.
    pub fn keep_use(&mut self) {
        self.used |= self.pending;
        self.pending = false;
    }

    /// The current file was rolled back.
    pub fn drop_use(&mut self) {
        self.pending = false;
    }

    /// The generated password, if a committed file gave it to accounts.
    pub fn generated_if_used(&self) -> Option<String> {
        self.generated.clone().filter(|_| self.used)
    }
}

/// Hash on the blocking pool (argon2 takes tens of milliseconds).
async fn hash_blocking(password: String) -> Result<String, ImportError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ImportError::Db(crate::store::DbError::Other(format!("hashing: {e}"))))
}

/// What a file's application keeps track of.
struct Ctx<'a> {
    report: FileReport,
    notices: Vec<Notice>,
    options: &'a Options,
    progress: &'a dyn Progress,
}

impl Ctx<'_> {
    fn fail<T>(
        &mut self,
        kind: Kind,
        rec: &Rec<T>,
        field: Option<&str>,
        message: impl Into<String>,
    ) {
        self.report.counts(kind).failed += 1;
        self.report.errors.push(RowError {
            file: self.report.file.clone(),
            line: rec.line,
            kind: Some(kind),
            index: rec.index,
            field: field.map(str::to_string),
            message: message.into(),
        });
        self.progress.advance(1);
    }

    fn created<T>(&mut self, kind: Kind, rec: &Rec<T>, key: String) {
        self.report.counts(kind).created += 1;
        self.change(kind, rec, key, "created", Vec::new());
    }

    /// An update if `fields` changed, else unchanged.
    fn compared<T>(&mut self, kind: Kind, rec: &Rec<T>, key: String, fields: Vec<String>) {
        if fields.is_empty() {
            self.report.counts(kind).unchanged += 1;
        } else {
            self.report.counts(kind).updated += 1;
            self.change(kind, rec, key, "updated", fields);
        }
    }

    fn change<T>(
        &mut self,
        kind: Kind,
        rec: &Rec<T>,
        key: String,
        action: &'static str,
        fields: Vec<String>,
    ) {
        self.report.changes.push(Change {
            kind,
            line: rec.line,
            index: rec.index,
            key,
            action,
            fields,
        });
    }

    /// Rows done after a write (or a comparison that wrote nothing).
    fn done(&self, rows: usize) {
        self.progress.advance(rows as u64);
    }

    /// Rows of `kind` that did not fail (failures advance the progress as they happen).
    fn settled(&mut self, kind: Kind) -> usize {
        let c = self.report.counts(kind);
        c.created + c.updated + c.unchanged
    }

    /// The rows of `recs` whose key is not one of an earlier row's (those fail).
    fn unique<T, K: Eq + std::hash::Hash>(
        &mut self,
        kind: Kind,
        recs: Vec<Rec<T>>,
        key: impl Fn(&T) -> K,
    ) -> Vec<Rec<T>> {
        let mut seen: HashMap<K, usize> = HashMap::new();
        let mut out = Vec::with_capacity(recs.len());
        for rec in recs {
            if let Some(first) = seen.get(&key(&rec.row)) {
                let message = format!("the same {} as line {first}", kind.singular());
                self.fail(kind, &rec, None, message);
                continue;
            }
            seen.insert(key(&rec.row), rec.line);
            out.push(rec);
        }
        out
    }
}

/// A field's change, `name: old -> new`, added to `fields` when the two differ.
fn differ(fields: &mut Vec<String>, name: &str, old: impl Display, new: impl Display) {
    let (old, new) = (old.to_string(), new.to_string());
    if old != new {
        fields.push(format!("{name}: {old} -> {new}"));
    }
}

/// A list as reports show it: `[CS101, MATH2413]`.
fn list<T: Display>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(", "))
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

fn optional(s: Option<&str>) -> String {
    s.map_or_else(|| "none".to_string(), str::to_string)
}

fn meetings(m: &[Meeting]) -> String {
    list(
        &m.iter()
            .map(|m| format!("{} {}-{}", m.day.as_str(), m.start, m.end))
            .collect::<Vec<_>>(),
    )
}

fn restrictions(r: &[Restriction]) -> String {
    list(
        &r.iter()
            .map(|r| {
                let mode = serde_json::to_value(r.mode)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                format!("{mode} {}={}", r.attribute.as_str(), r.values.join(","))
            })
            .collect::<Vec<_>>(),
    )
}

fn pools(p: &[PoolRow]) -> String {
    list(
        &p.iter()
            .map(|p| {
                let release = p
                    .release_at
                    .map(|t| format!("@{}", t.to_rfc3339()))
                    .unwrap_or_default();
                format!("{}={}:{}{release}", p.attribute.as_str(), p.value, p.seats)
            })
            .collect::<Vec<_>>(),
    )
}

fn pool_rows(pools: &[NewPool]) -> Vec<PoolRow> {
    pools
        .iter()
        .map(|p| PoolRow {
            attribute: p.attribute,
            value: p.value.clone(),
            seats: p.seats,
            release_at: p.release_at,
        })
        .collect()
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Apply `rows` of the file `name` (its parse errors in `errors`) in `tx`.
pub async fn file(
    tx: &mut PgConnection,
    parsed: super::parse::Parsed,
    options: &Options,
    passwords: &mut Passwords,
    progress: &dyn Progress,
) -> Result<FileReport, ImportError> {
    let mut ctx = Ctx {
        report: FileReport::new(&parsed.name),
        notices: Vec::new(),
        options,
        progress,
    };
    for e in &parsed.errors {
        if let Some(kind) = e.kind {
            ctx.report.counts(kind).failed += 1;
        }
    }
    progress.advance(parsed.errors.len() as u64);
    ctx.report.errors = parsed.errors;
    let Rows {
        terms: term_rows,
        windows: window_rows,
        courses: course_rows,
        sections: section_rows,
        students: student_rows,
        tickets: ticket_rows,
    } = parsed.rows;
    terms(&mut ctx, tx, term_rows).await?;
    windows(&mut ctx, tx, window_rows).await?;
    courses(&mut ctx, tx, course_rows).await?;
    sections(&mut ctx, tx, section_rows).await?;
    students(&mut ctx, tx, student_rows, passwords).await?;
    tickets(&mut ctx, tx, ticket_rows).await?;
    let mut notices = std::mem::take(&mut ctx.notices);
    notices.sort_by_key(Notice::encode);
    notices.dedup_by_key(|n| n.encode());
    // Past a few thousand students, one notice that every node forgets them all costs
    // the nodes less than one each (they reload what they need, a student at a time).
    let students = notices
        .iter()
        .filter(|n| matches!(n, Notice::Student(_)))
        .count();
    if students > MANY_STUDENTS {
        notices.retain(|n| !matches!(n, Notice::Student(_)));
        notices.push(Notice::AllStudents);
    }
    notify_rules_many(&mut *tx, &notices).await?;
    ctx.report.errors.sort_by_key(|e| e.line);
    ctx.report.kinds.sort_by_key(|k| k.kind);
    Ok(ctx.report)
}

async fn terms(
    ctx: &mut Ctx<'_>,
    tx: &mut PgConnection,
    recs: Vec<Rec<TermIn>>,
) -> Result<(), ImportError> {
    let kind = Kind::Terms;
    let recs = ctx.unique(kind, recs, |t| t.code.clone());
    if recs.is_empty() {
        return Ok(());
    }
    let codes: Vec<String> = recs.iter().map(|r| r.row.code.clone()).collect();
    let stored: HashMap<String, rows::TermRow> = rows::terms(tx, &codes)
        .await?
        .into_iter()
        .map(|t| (t.code.clone(), t))
        .collect();
    let (mut new, mut renamed) = (Vec::new(), Vec::new());
    for rec in &recs {
        let t = &rec.row;
        match (stored.get(&t.code), &t.name) {
            (Some(old), name) => {
                let mut fields = Vec::new();
                if let Some(name) = name {
                    differ(&mut fields, "name", quoted(&old.name), quoted(name));
                    if name != &old.name {
                        renamed.push((old.id, name.clone()));
                    }
                }
                ctx.compared(kind, rec, t.code.clone(), fields);
            }
            (None, Some(name)) => {
                new.push((Uuid::new_v4(), t.code.clone(), name.clone()));
                ctx.created(kind, rec, t.code.clone());
            }
            (None, None) => ctx.fail(kind, rec, Some("name"), "required for a new term"),
        }
    }
    if !new.is_empty() {
        rows::insert_terms(tx, &new).await?;
    }
    if !renamed.is_empty() {
        rows::rename_terms(tx, &renamed).await?;
    }
    let settled = ctx.settled(kind);
    ctx.done(settled);
    Ok(())
}

/// The ids of the terms the rows name; rows naming an unknown term fail.
async fn resolve_terms<T>(
    ctx: &mut Ctx<'_>,
    tx: &mut PgConnection,
    kind: Kind,
    recs: Vec<Rec<T>>,
    term: impl Fn(&T) -> &str,
) -> Result<Vec<(Uuid, Rec<T>)>, ImportError> {
    let codes: BTreeSet<String> = recs.iter().map(|r| term(&r.row).to_string()).collect();
    let codes: Vec<String> = codes.into_iter().collect();
    let ids = rows::term_ids(tx, &codes).await?;
    let mut out = Vec::with_capacity(recs.len());
    for rec in recs {
        match ids.get(term(&rec.row)) {
            Some(id) => out.push((*id, rec)),
            None => {
                let message = format!("no term `{}`", term(&rec.row));
                ctx.fail(kind, &rec, Some("term"), message);
            }
        }
    }
    Ok(out)
}

async fn windows(
    ctx: &mut Ctx<'_>,
    tx: &mut PgConnection,
    recs: Vec<Rec<WindowIn>>,
) -> Result<(), ImportError> {
    let kind = Kind::Windows;
    let recs = ctx.unique(kind, recs, |w| (w.term.clone(), w.window.standing));
    if recs.is_empty() {
        return Ok(());
    }
    let recs = resolve_terms(ctx, tx, kind, recs, |w| &w.term).await?;
    let terms: Vec<Uuid> = recs.iter().map(|(t, _)| *t).collect();
    let stored: HashMap<(Uuid, String), rows::WindowRow> = rows::windows(tx, &terms)
        .await?
        .into_iter()
        .map(|w| ((w.term_id, w.standing.clone()), w))
        .collect();
    let mut write = Vec::new();
    for (term, rec) in &recs {
        let w = &rec.row.window;
        let key = format!("{} {}", rec.row.term, w.standing.as_str());
        match stored.get(&(*term, w.standing.as_str().to_string())) {
            Some(old) => {
                let mut fields = Vec::new();
                differ(
                    &mut fields,
                    "opens_at",
                    time(old.opens_at),
                    time(w.opens_at),
                );
                differ(
                    &mut fields,
                    "closes_at",
                    time(old.closes_at),
                    time(w.closes_at),
                );
                if !fields.is_empty() {
                    write.push((*term, w.standing, w.opens_at, w.closes_at));
                }
                ctx.compared(kind, rec, key, fields);
            }
            None => {
                write.push((*term, w.standing, w.opens_at, w.closes_at));
                ctx.created(kind, rec, key);
            }
        }
    }
    if !write.is_empty() {
        rows::upsert_windows(tx, &write).await?;
        ctx.notices.push(Notice::Windows);
    }
    let settled = ctx.settled(kind);
    ctx.done(settled);
    Ok(())
}

/// Whether a course's credits lie in its range: the field at fault and why, if not (the
/// rule of `POST /courses`).
fn credit_range(c: &CourseRow) -> Result<(), (&'static str, String)> {
    let whole = |n: i16| u32::try_from(n).unwrap_or(u32::MAX);
    crate::resources::check_credit_range(
        whole(c.credits),
        whole(c.min_credits),
        whole(c.max_credits),
    )
    .map_err(|e| (e.field, e.reason))
}

async fn courses(
    ctx: &mut Ctx<'_>,
    tx: &mut PgConnection,
    recs: Vec<Rec<CourseIn>>,
) -> Result<(), ImportError> {
    let kind = Kind::Courses;
    let recs = ctx.unique(kind, recs, |c| c.code.clone());
    if recs.is_empty() {
        return Ok(());
    }
    let codes: Vec<String> = recs.iter().map(|r| r.row.code.clone()).collect();
    let stored: HashMap<String, (CourseRow, i64)> = rows::courses(tx, &codes)
        .await?
        .into_iter()
        .map(|(c, n)| (c.code.clone(), (c, n)))
        .collect();
    let (mut write, mut changed) = (Vec::new(), Vec::new());
    for rec in &recs {
        let c = &rec.row;
        match stored.get(&c.code) {
            Some((old, sections)) => {
                let mut new = old.clone();
                if let Some(t) = &c.title {
                    new.title = t.clone();
                }
                if let Some(n) = c.credits {
                    new.credits = n as i16;
                }
                if let Some(p) = &c.prerequisites {
                    new.prerequisites = p.clone();
                }
                if let Some(p) = &c.components {
                    new.components = p.clone();
                }
                if let Some(p) = &c.corequisites {
                    new.corequisites = p.clone();
                }
                // A fixed course stays fixed when only its credits change.
                let fixed = old.min_credits == old.credits && old.max_credits == old.credits;
                new.min_credits = match c.min_credits {
                    Some(n) => n as i16,
                    None if fixed => new.credits,
                    None => old.min_credits,
                };
                new.max_credits = match c.max_credits {
                    Some(n) => n as i16,
                    None if fixed => new.credits,
                    None => old.max_credits,
                };
                if let Some(b) = &c.grading_bases {
                    new.grading_bases = b.clone();
                }
                if let Err((field, message)) = credit_range(&new) {
                    ctx.fail(kind, rec, Some(field), message);
                    continue;
                }
                if new.components != old.components && *sections > 0 {
                    let message = format!(
                        "{} has {sections} sections, whose components and links depend on them; \
                         its components stay {}",
                        c.code,
                        list(&old.components)
                    );
                    ctx.fail(kind, rec, Some("components"), message);
                    continue;
                }
                let mut fields = Vec::new();
                differ(&mut fields, "title", quoted(&old.title), quoted(&new.title));
                differ(&mut fields, "credits", old.credits, new.credits);
                differ(
                    &mut fields,
                    "prerequisites",
                    list(&old.prerequisites),
                    list(&new.prerequisites),
                );
                differ(
                    &mut fields,
                    "components",
                    list(&old.components),
                    list(&new.components),
                );
                differ(
                    &mut fields,
                    "corequisites",
                    list(&old.corequisites),
                    list(&new.corequisites),
                );
                differ(&mut fields, "min_credits", old.min_credits, new.min_credits);
                differ(&mut fields, "max_credits", old.max_credits, new.max_credits);
                differ(
                    &mut fields,
                    "grading_bases",
                    list(&old.grading_bases),
                    list(&new.grading_bases),
                );
                if !fields.is_empty() {
                    changed.push(c.code.clone());
                    write.push(new);
                }
                ctx.compared(kind, rec, c.code.clone(), fields);
            }
            None => {
                let (Some(title), Some(credits)) = (&c.title, c.credits) else {
                    let field = if c.title.is_none() {
                        "title"
                    } else {
                        "credits"
                    };
                    ctx.fail(kind, rec, Some(field), "required for a new course");
                    continue;
                };
                let row = CourseRow {
                    code: c.code.clone(),
                    title: title.clone(),
                    credits: credits as i16,
                    prerequisites: c.prerequisites.clone().unwrap_or_default(),
                    components: c.components.clone().unwrap_or_default(),
                    corequisites: c.corequisites.clone().unwrap_or_default(),
                    min_credits: c.min_credits.unwrap_or(credits) as i16,
                    max_credits: c.max_credits.unwrap_or(credits) as i16,
                    grading_bases: c
                        .grading_bases
                        .clone()
                        .unwrap_or_else(|| vec!["letter".to_string()]),
                };
                if let Err((field, message)) = credit_range(&row) {
                    ctx.fail(kind, rec, Some(field), message);
                    continue;
                }
                write.push(row);
                ctx.created(kind, rec, c.code.clone());
            }
        }
    }
    for chunk in write.chunks(CHUNK) {
        rows::upsert_courses(tx, chunk).await?;
    }
    // Every section of a changed course has changed facts (credits, prerequisites...).
    if !changed.is_empty() {
        for id in rows::sections_of_courses(tx, &changed).await? {
            ctx.notices.push(Notice::Section(id));
        }
    }
    let settled = ctx.settled(kind);
    ctx.done(settled);
    Ok(())
}

/// A section row on its way: its term, its course's components, the stored section.
struct SectionPlan {
    term: Uuid,
    rec: Rec<SectionIn>,
    components: Vec<Component>,
    component: Component,
    stored: Option<SectionRow>,
    id: Uuid,
    fields: Vec<String>,
}

impl SectionPlan {
    fn key(&self) -> String {
        let s = &self.rec.row;
        format!("{} {} {}", s.term, s.course_code, s.section_code)
    }
}

async fn sections(
    ctx: &mut Ctx<'_>,
    tx: &mut PgConnection,
    recs: Vec<Rec<SectionIn>>,
) -> Result<(), ImportError> {
    let kind = Kind::Sections;
    let recs = ctx.unique(kind, recs, |s| {
        (
            s.term.clone(),
            s.course_code.clone(),
            s.section_code.clone(),
        )
    });
    if recs.is_empty() {
        return Ok(());
    }
    let recs = resolve_terms(ctx, tx, kind, recs, |s| &s.term).await?;
    let codes: BTreeSet<String> = recs
        .iter()
        .map(|(_, r)| r.row.course_code.clone())
        .collect();
    let codes: Vec<String> = codes.into_iter().collect();
    let course_components = rows::course_components(tx, &codes).await?;
    let keys: Vec<(Uuid, String, String)> = recs
        .iter()
        .map(|(t, r)| (*t, r.row.course_code.clone(), r.row.section_code.clone()))
        .collect();
    let mut stored: HashMap<(Uuid, String, String), SectionRow> = rows::sections(tx, &keys)
        .await?
        .into_iter()
        .map(|s| {
            (
                (s.term_id, s.course_code.clone(), s.section_code.clone()),
                s,
            )
        })
        .collect();

    // Each row's course, component and the fields its own columns change.
    let mut plans: Vec<SectionPlan> = Vec::with_capacity(recs.len());
    let (mut new, mut updates, mut api) = (Vec::new(), Vec::new(), Vec::new());
    for (term, rec) in recs {
        let s = &rec.row;
        let Some(names) = course_components.get(&s.course_code) else {
            let message = format!("no course `{}`", s.course_code);
            ctx.fail(kind, &rec, Some("course_code"), message);
            continue;
        };
        let components = parse_components("components", names).unwrap_or_default();
        let old = stored.remove(&(term, s.course_code.clone(), s.section_code.clone()));
        let name = s
            .component
            .clone()
            .or_else(|| old.as_ref().map(|o| o.component.clone()))
            .unwrap_or_else(|| "lecture".into());
        let component: Component = name.parse().unwrap_or_default();
        if let Err(e) = check_component(&s.course_code, &components, component) {
            ctx.fail(kind, &rec, Some("component"), e.reason);
            continue;
        }
        if let Some(old) = &old
            && old.component != name
        {
            let message = format!(
                "an existing section's component is not changed (it is {}): its links and \
                 students' sets depend on it",
                old.component
            );
            ctx.fail(kind, &rec, Some("component"), message);
            continue;
        }
        let mut plan = SectionPlan {
            term,
            id: old.as_ref().map_or_else(Uuid::new_v4, |o| o.id),
            stored: old,
            rec,
            components,
            component,
            fields: Vec::new(),
        };
        match &plan.stored {
            None if plan.rec.row.capacity.is_none() => {
                ctx.fail(
                    kind,
                    &plan.rec,
                    Some("capacity"),
                    "required for a new section",
                );
                continue;
            }
            None => {}
            Some(old) => {
                let s = &plan.rec.row;
                let key = plan.key();
                let (mut m, mut r) = (old.meetings.0.clone(), old.restrictions.0.clone());
                if let Some(new) = &s.meetings {
                    differ(&mut plan.fields, "meetings", meetings(&m), meetings(new));
                    m = new.clone();
                }
                if let Some(new) = &s.restrictions {
                    differ(
                        &mut plan.fields,
                        "restrictions",
                        restrictions(&r),
                        restrictions(new),
                    );
                    r = new.clone();
                }
                if !plan.fields.is_empty() {
                    updates.push((old.id, m, r));
                }
                let no_api =
                    || "none yet: the section's actor holds it and no API changes it".to_string();
                let api_change = |field, from: String, to: String, how: String| ApiChange {
                    line: plan.rec.line,
                    key: key.clone(),
                    section_id: old.id,
                    field,
                    from,
                    to,
                    how,
                };
                if let Some(c) = s.capacity
                    && c as i32 != old.capacity
                {
                    api.push(api_change(
                        "capacity",
                        old.capacity.to_string(),
                        c.to_string(),
                        format!("PATCH /api/v1/sections/{} {{\"capacity\":{c}}}", old.id),
                    ));
                }
                if let Some(c) = s.waitlist_capacity
                    && c as i32 != old.waitlist_capacity
                {
                    api.push(api_change(
                        "waitlist_capacity",
                        old.waitlist_capacity.to_string(),
                        c.to_string(),
                        no_api(),
                    ));
                }
                if let Some(m) = &s.waitlist_mode
                    && *m != old.waitlist_mode
                {
                    api.push(api_change(
                        "waitlist_mode",
                        old.waitlist_mode.clone(),
                        m.clone(),
                        no_api(),
                    ));
                }
                if let Some(minutes) = s.offer_window_minutes
                    && i64::from(minutes) * 60 != i64::from(old.offer_window_secs)
                {
                    api.push(api_change(
                        "offer_window_minutes",
                        (old.offer_window_secs / 60).to_string(),
                        minutes.to_string(),
                        no_api(),
                    ));
                }
                if let Some(p) = &s.reserved
                    && pool_rows(p) != old.pools.0
                {
                    let body = serde_json::json!({"reserved": p.iter().map(|p| serde_json::json!({
                        "attribute": p.attribute, "value": p.value, "seats": p.seats,
                        "release_at": p.release_at})).collect::<Vec<_>>()});
                    api.push(api_change(
                        "reserved",
                        pools(&old.pools.0),
                        pools(&pool_rows(p)),
                        format!("PUT /api/v1/sections/{}/reserved {body}", old.id),
                    ));
                }
            }
        }
        plans.push(plan);
    }

    // Links, by section code, among the sections of the same course and term.
    let link_keys: Vec<(Uuid, String)> = plans
        .iter()
        .filter(|p| p.rec.row.links.is_some())
        .map(|p| (p.term, p.rec.row.course_code.clone()))
        .collect();
    let mut siblings = if link_keys.is_empty() {
        HashMap::new()
    } else {
        rows::sections_of(tx, &link_keys).await?
    };
    for p in plans.iter().filter(|p| p.stored.is_none()) {
        let s = &p.rec.row;
        siblings.insert(
            (p.term, s.course_code.clone(), s.section_code.clone()),
            (p.id, p.component.as_str().to_string()),
        );
    }
    let mut desired: HashSet<(Uuid, Uuid)> = HashSet::new();
    let mut touched: Vec<usize> = Vec::new();
    let mut failed: HashSet<usize> = HashSet::new();
    for (at, p) in plans.iter().enumerate() {
        let Some(links) = &p.rec.row.links else {
            continue;
        };
        let s = &p.rec.row;
        let mut others = Vec::with_capacity(links.len());
        let mut missing = None;
        for code in links {
            match siblings.get(&(p.term, s.course_code.clone(), code.clone())) {
                Some((id, component)) => others.push(LinkEnd {
                    id: *id,
                    term_id: p.term,
                    course_code: s.course_code.clone(),
                    component: component.parse().unwrap_or_default(),
                }),
                None => missing = Some(code.clone()),
            }
        }
        if let Some(code) = missing {
            let message = format!("no section `{code}` of {} in {}", s.course_code, s.term);
            ctx.fail(kind, &p.rec, Some("links"), message);
            failed.insert(at);
            continue;
        }
        let this = LinkEnd {
            id: p.id,
            term_id: p.term,
            course_code: s.course_code.clone(),
            component: p.component,
        };
        match link_pairs(&this, &p.components, &others) {
            Ok(pairs) => {
                desired.extend(pairs);
                touched.push(at);
            }
            Err(e) => {
                ctx.fail(kind, &p.rec, Some("links"), e.reason);
                failed.insert(at);
            }
        }
    }
    // A pair naming a new section that failed is dropped with it.
    let lost: HashSet<Uuid> = failed
        .iter()
        .filter(|at| plans[**at].stored.is_none())
        .map(|at| plans[*at].id)
        .collect();
    desired.retain(|(a, b)| !lost.contains(a) && !lost.contains(b));
    let touched_ids: Vec<Uuid> = touched.iter().map(|at| plans[*at].id).collect();
    let stored_links: HashSet<(Uuid, Uuid)> = if touched_ids.is_empty() {
        HashSet::new()
    } else {
        rows::links_of(tx, &touched_ids)
            .await?
            .into_iter()
            .collect()
    };
    let touched_set: HashSet<Uuid> = touched_ids.iter().copied().collect();
    let removed: Vec<(Uuid, Uuid)> = stored_links
        .iter()
        .filter(|(a, b)| {
            (touched_set.contains(a) || touched_set.contains(b)) && !desired.contains(&(*a, *b))
        })
        .copied()
        .collect();
    let added: Vec<(Uuid, Uuid)> = desired.difference(&stored_links).copied().collect();
    let code_of: HashMap<Uuid, &str> = siblings
        .iter()
        .map(|((_, _, code), (id, _))| (*id, code.as_str()))
        .collect();
    let partners = |set: &HashSet<(Uuid, Uuid)>, id: Uuid| -> String {
        let mut codes: Vec<&str> = set
            .iter()
            .filter_map(|(a, b)| match (*a == id, *b == id) {
                (true, _) => Some(*b),
                (_, true) => Some(*a),
                _ => None,
            })
            .filter_map(|other| code_of.get(&other).copied())
            .collect();
        codes.sort_unstable();
        list(&codes)
    };
    let after: HashSet<(Uuid, Uuid)> = stored_links
        .iter()
        .filter(|p| !removed.contains(p))
        .chain(added.iter())
        .copied()
        .collect();
    for at in &touched {
        let p = &mut plans[*at];
        if p.stored.is_some() {
            let (old, new) = (partners(&stored_links, p.id), partners(&after, p.id));
            differ(&mut p.fields, "links", old, new);
        }
    }
    for (a, b) in removed.iter().chain(added.iter()) {
        ctx.notices.push(Notice::Section(*a));
        ctx.notices.push(Notice::Section(*b));
    }

    // Count and write.
    for (at, p) in plans.iter().enumerate() {
        if failed.contains(&at) {
            continue;
        }
        let key = p.key();
        match &p.stored {
            None => {
                let s = &p.rec.row;
                new.push(NewSectionRow {
                    id: p.id,
                    term_id: p.term,
                    course_code: s.course_code.clone(),
                    section_code: s.section_code.clone(),
                    capacity: s.capacity.unwrap_or(0),
                    waitlist_capacity: s.waitlist_capacity.unwrap_or(0),
                    meetings: s.meetings.clone().unwrap_or_default(),
                    shard: shard_of(p.id, ctx.options.shards),
                    component: p.component.as_str().to_string(),
                    restrictions: s.restrictions.clone().unwrap_or_default(),
                    pools: pool_rows(s.reserved.as_deref().unwrap_or_default()),
                    waitlist_mode: s.waitlist_mode.clone().unwrap_or_else(|| "auto".into()),
                    offer_window_secs: s.offer_window_minutes.unwrap_or(1440) * 60,
                });
                ctx.created(kind, &p.rec, key);
            }
            Some(old) => {
                if !p.fields.is_empty() {
                    ctx.notices.push(Notice::Section(old.id));
                }
                ctx.compared(kind, &p.rec, key, p.fields.clone());
            }
        }
    }
    // A failed row's meetings are not written either.
    let failed_ids: HashSet<Uuid> = failed.iter().map(|at| plans[*at].id).collect();
    updates.retain(|(id, _, _)| !failed_ids.contains(id));
    api.retain(|a| !failed_ids.contains(&a.section_id));
    for chunk in new.chunks(CHUNK) {
        rows::insert_sections(tx, chunk).await?;
        ctx.done(chunk.len());
    }
    for chunk in updates.chunks(CHUNK) {
        rows::update_sections(tx, chunk).await?;
    }
    if !removed.is_empty() {
        rows::delete_links(tx, &removed).await?;
    }
    if !added.is_empty() {
        rows::insert_links(tx, &added).await?;
    }
    ctx.report.api_changes.extend(api);
    let settled = ctx.settled(kind);
    ctx.done(settled - new.len());
    Ok(())
}

/// How a new account gets its hash: its own, hashed here, or the shared one.
#[derive(Clone)]
enum Hash {
    Given(String),
    Password(String),
    Shared,
}

/// The hashes of `jobs`, in order, hashing up to `parallel` passwords at once (none in a
/// dry run).
async fn hash_all(
    jobs: Vec<Hash>,
    shared: &str,
    dry_run: bool,
    parallel: usize,
) -> Result<Vec<String>, ImportError> {
    use futures_util::StreamExt;
    futures_util::stream::iter(jobs)
        .map(|job| one_hash(job, shared.to_string(), dry_run))
        .buffered(parallel)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

async fn one_hash(job: Hash, shared: String, dry_run: bool) -> Result<String, ImportError> {
    match job {
        Hash::Given(hash) => Ok(hash),
        Hash::Shared => Ok(shared),
        Hash::Password(_) if dry_run => Ok(String::new()),
        Hash::Password(password) => hash_blocking(password).await,
    }
}

async fn students(
    ctx: &mut Ctx<'_>,
    tx: &mut PgConnection,
    recs: Vec<Rec<StudentIn>>,
    passwords: &mut Passwords,
) -> Result<(), ImportError> {
    let kind = Kind::Students;
    let recs = ctx.unique(kind, recs, |s| s.username.clone());
    if recs.is_empty() {
        return Ok(());
    }
    let usernames: Vec<String> = recs.iter().map(|r| r.row.username.clone()).collect();
    let stored: HashMap<String, StudentRow> = rows::students(tx, &usernames)
        .await?
        .into_iter()
        .map(|s| (s.username.clone(), s))
        .collect();
    let (mut new, mut updates) = (Vec::new(), Vec::new());
    for rec in &recs {
        let s = &rec.row;
        match stored.get(&s.username) {
            Some(old) if old.role != "student" => {
                let message = format!(
                    "`{}` is an {} account; an import manages students only",
                    s.username, old.role
                );
                ctx.fail(kind, rec, Some("username"), message);
            }
            Some(old) => {
                let mut row = old.clone();
                if let Some(v) = s.standing {
                    row.standing = Some(v.as_str().to_string());
                }
                if let Some(v) = s.max_credits {
                    row.max_credits = v as i16;
                }
                if let Some(v) = &s.completed_courses {
                    row.completed_courses = v.clone();
                }
                if let Some(v) = &s.majors {
                    row.majors = v.clone();
                }
                if let Some(v) = &s.program {
                    row.program = v.clone();
                }
                if let Some(v) = &s.cohort {
                    row.cohort = v.clone();
                }
                let mut fields = Vec::new();
                differ(
                    &mut fields,
                    "standing",
                    optional(old.standing.as_deref()),
                    optional(row.standing.as_deref()),
                );
                differ(&mut fields, "max_credits", old.max_credits, row.max_credits);
                differ(
                    &mut fields,
                    "completed_courses",
                    list(&old.completed_courses),
                    list(&row.completed_courses),
                );
                differ(&mut fields, "majors", list(&old.majors), list(&row.majors));
                differ(
                    &mut fields,
                    "program",
                    optional(old.program.as_deref()),
                    optional(row.program.as_deref()),
                );
                differ(
                    &mut fields,
                    "cohort",
                    optional(old.cohort.as_deref()),
                    optional(row.cohort.as_deref()),
                );
                if !fields.is_empty() {
                    ctx.notices.push(Notice::Student(old.id));
                    updates.push(row);
                }
                ctx.compared(kind, rec, s.username.clone(), fields);
            }
            None => {
                let Some(standing) = s.standing else {
                    ctx.fail(kind, rec, Some("standing"), "required for a new student");
                    continue;
                };
                let row = StudentRow {
                    id: Uuid::new_v4(),
                    username: s.username.clone(),
                    role: "student".into(),
                    standing: Some(Standing::as_str(standing).to_string()),
                    max_credits: s.max_credits.unwrap_or(18) as i16,
                    completed_courses: s.completed_courses.clone().unwrap_or_default(),
                    majors: s.majors.clone().unwrap_or_default(),
                    program: s.program.clone().flatten(),
                    cohort: s.cohort.clone().flatten(),
                };
                let hash = match (&s.password_hash, &s.password) {
                    (Some(h), _) => Hash::Given(h.clone()),
                    (None, Some(p)) => Hash::Password(p.clone()),
                    (None, None) => Hash::Shared,
                };
                new.push((row, hash));
                ctx.created(kind, rec, s.username.clone());
            }
        }
    }
    for chunk in updates.chunks(CHUNK) {
        rows::update_students(tx, chunk).await?;
        ctx.done(chunk.len());
    }
    let shared = if new.iter().any(|(_, h)| matches!(h, Hash::Shared)) {
        passwords.shared_hash().await?
    } else {
        String::new()
    };
    // Passwords given in clear are hashed on every core at once; none in a dry run.
    let dry_run = ctx.options.dry_run;
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    for chunk in new.chunks(CHUNK) {
        let jobs: Vec<Hash> = chunk.iter().map(|(_, h)| h.clone()).collect();
        let hashes = hash_all(jobs, &shared, dry_run, parallel).await?;
        let rows: Vec<(StudentRow, &str)> = chunk
            .iter()
            .zip(&hashes)
            .map(|((row, _), hash)| (row.clone(), hash.as_str()))
            .collect();
        rows::insert_students(tx, &rows).await?;
        ctx.done(chunk.len());
    }
    let settled = ctx.settled(kind);
    ctx.done(settled - new.len() - updates.len());
    Ok(())
}

async fn tickets(
    ctx: &mut Ctx<'_>,
    tx: &mut PgConnection,
    recs: Vec<Rec<TicketIn>>,
) -> Result<(), ImportError> {
    let kind = Kind::Tickets;
    let recs = ctx.unique(kind, recs, |t| (t.term.clone(), t.username.clone()));
    if recs.is_empty() {
        return Ok(());
    }
    let recs = resolve_terms(ctx, tx, kind, recs, |t| &t.term).await?;
    let usernames: BTreeSet<String> = recs.iter().map(|(_, r)| r.row.username.clone()).collect();
    let usernames: Vec<String> = usernames.into_iter().collect();
    let ids = rows::student_ids(tx, &usernames).await?;
    let mut resolved = Vec::with_capacity(recs.len());
    for (term, rec) in recs {
        match ids.get(&rec.row.username) {
            Some(student) => resolved.push((term, *student, rec)),
            None => {
                let message = format!("no student `{}`", rec.row.username);
                ctx.fail(kind, &rec, Some("username"), message);
            }
        }
    }
    let terms: Vec<Uuid> = resolved
        .iter()
        .map(|(t, _, _)| *t)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let students: Vec<Uuid> = resolved.iter().map(|(_, s, _)| *s).collect();
    let stored: HashMap<(Uuid, Uuid), TicketRow> = rows::tickets(tx, &terms, &students)
        .await?
        .into_iter()
        .map(|t| ((t.term_id, t.student_id), t))
        .collect();
    let mut write = Vec::new();
    for (term, student, rec) in &resolved {
        let t = &rec.row.ticket;
        let key = format!("{} {}", rec.row.term, rec.row.username);
        let row = TicketRow {
            term_id: *term,
            student_id: *student,
            opens_at: t.opens_at,
            closes_at: t.closes_at,
        };
        match stored.get(&(*term, *student)) {
            Some(old) => {
                let mut fields = Vec::new();
                differ(
                    &mut fields,
                    "opens_at",
                    time(old.opens_at),
                    time(t.opens_at),
                );
                let closes = |c: Option<DateTime<Utc>>| c.map_or_else(|| "none".into(), time);
                differ(
                    &mut fields,
                    "closes_at",
                    closes(old.closes_at),
                    closes(t.closes_at),
                );
                if !fields.is_empty() {
                    write.push(row);
                }
                ctx.compared(kind, rec, key, fields);
            }
            None => {
                write.push(row);
                ctx.created(kind, rec, key);
            }
        }
    }
    for chunk in write.chunks(CHUNK) {
        rows::upsert_tickets(tx, chunk).await?;
        ctx.done(chunk.len());
    }
    for t in &write {
        ctx.notices.push(Notice::Student(t.student_id));
    }
    let settled = ctx.settled(kind);
    ctx.done(settled - write.len());
    Ok(())
}
