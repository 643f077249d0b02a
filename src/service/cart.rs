//! The cart: sections a student stages before their window opens, a preview of what
//! submitting would do (the rules checked, no seat taken), and the submit, which decides
//! the whole cart in one request when the window opens.
//!
//! Items of one course with required components (a lecture, its lab, its recitation) form
//! one linked set, submitted as one decision over several sections (see `bundle`): all
//! of it or none. A course's corequisites in the cart join its decision (the rules
//! accept a corequisite only on the schedule or in the same decision). Every other item is an enroll of its own (a seat, else a waitlist
//! place), decided in cart order after the sets. Each part runs under a request id derived
//! from the submit's, so a retried submit replays what was decided and decides the rest.
//! Items that got a seat or a waitlist place leave the cart, and so do items refused
//! because the student holds them already (enrolled outside the cart); refused ones stay.

use super::bundle::SetRequest;
use super::idempotency::part_of;
use super::registration::{Enrolled, RegistrationError, RegistrationService, SeatRequest};
use crate::cluster::home::HomePass;
use crate::resources::{AskedOptions, SectionFacts};
use crate::store::cart::{self, Added, CartRow};
use registrar_actors::RequestId;
use registrar_actors::student_rules::RuleViolation;
use std::sync::Arc;
use uuid::Uuid;

/// The decision each cart item is submitted in: the course code of the first item of its
/// decision over several sections (a linked set with its corequisites in the cart), or
/// `None` for an item decided alone. Items of one course always share a decision; so do a
/// course and its corequisites.
pub fn groups(rows: &[CartRow]) -> Vec<Option<String>> {
    // Courses in cart order, joined by union-find: same course, or a corequisite.
    let courses: Vec<&str> = rows.iter().map(|r| r.course_code.as_str()).collect();
    let index = |c: &str| courses.iter().position(|x| *x == c);
    let mut parent: Vec<usize> = (0..rows.len())
        .map(|i| index(courses[i]).unwrap_or(i))
        .collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (i, row) in rows.iter().enumerate() {
        for coreq in &row.corequisites {
            if let Some(j) = index(coreq) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let roots: Vec<usize> = (0..rows.len()).map(|i| root(&mut parent, i)).collect();
    (0..rows.len())
        .map(|i| {
            let members: Vec<usize> = (0..rows.len()).filter(|&j| roots[j] == roots[i]).collect();
            let linked = members.iter().any(|&j| !rows[j].components.is_empty());
            (linked || members.len() > 1).then(|| rows[roots[i]].course_code.clone())
        })
        .collect()
}

/// The cart split into what a submit decides: decisions over several sections (group,
/// sections) and single items, each in cart order.
pub fn plan(rows: &[CartRow]) -> (Vec<(String, Vec<Uuid>)>, Vec<Uuid>) {
    let mut sets: Vec<(String, Vec<Uuid>)> = Vec::new();
    let mut singles = Vec::new();
    for (row, group) in rows.iter().zip(groups(rows)) {
        match group {
            Some(g) => match sets.iter_mut().find(|(c, _)| *c == g) {
                Some((_, members)) => members.push(row.section_id),
                None => sets.push((g, vec![row.section_id])),
            },
            None => singles.push(row.section_id),
        }
    }
    (sets, singles)
}

/// What submitting would do with an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The rules pass and a seat is free now.
    WouldEnroll,
    /// The rules pass; the section is full but its waitlist has room.
    WouldWaitlist,
    /// Refused (the code says why).
    WouldFail,
}

/// The preview of one item.
#[derive(Clone, Debug)]
pub struct Preview {
    /// The section.
    pub section: Uuid,
    /// Its linked set, if any.
    pub group: Option<String>,
    /// What a submit would do now.
    pub verdict: Verdict,
    /// Why it would fail.
    pub code: Option<&'static str>,
    /// A sentence for the student.
    pub detail: String,
}

/// How a submitted linked set ended: its decision, or why nothing was taken.
pub struct SetOutcome {
    /// The course.
    pub course: String,
    /// Its sections in the cart.
    pub sections: Vec<Uuid>,
    /// The decision's id, or why not.
    pub result: Result<Uuid, RegistrationError>,
}

/// How a submitted single item ended.
pub struct ItemOutcome {
    /// The section.
    pub section: Uuid,
    /// What it got, or why not.
    pub result: Result<Enrolled, RegistrationError>,
}

/// A submitted cart: its sets, then its single items.
pub struct Submitted {
    /// The linked sets, in cart order.
    pub sets: Vec<SetOutcome>,
    /// The other items, in cart order.
    pub items: Vec<ItemOutcome>,
}

impl Submitted {
    /// Whether some item got no decision (a retry with the same key would decide it).
    pub fn undecided(&self) -> bool {
        let transient = |e: &RegistrationError| {
            matches!(
                e,
                RegistrationError::Call(_)
                    | RegistrationError::Db(_)
                    | RegistrationError::NotHome(_)
                    | RegistrationError::SwapUnderWay
                    | RegistrationError::DecisionUnderWay
            ) || matches!(e, RegistrationError::SetCancelled { code, .. }
                if crate::store::decisions::transient(Some(code)))
        };
        self.sets
            .iter()
            .filter_map(|s| s.result.as_ref().err())
            .chain(self.items.iter().filter_map(|i| i.result.as_ref().err()))
            .any(transient)
    }
}

/// Why a cart edit was refused.
#[derive(Debug, thiserror::Error)]
pub enum CartError {
    /// No such section.
    #[error("section not found")]
    SectionNotFound,
    /// The cart is full.
    #[error("the cart holds {} items already", cart::CART_MAX)]
    Full,
    /// The course does not allow the credits or grading basis asked for.
    #[error(transparent)]
    Options(#[from] RuleViolation),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] crate::store::DbError),
}

impl RegistrationService {
    /// `student`'s cart.
    pub async fn cart(&self, student: Uuid) -> Result<Vec<CartRow>, RegistrationError> {
        Ok(cart::items(&self.pool, student).await?)
    }

    /// Stage `section` in `student`'s cart, to be enrolled with the credits and basis
    /// `asked` (checked against the course now; none asked: chosen at the submit).
    pub async fn add_to_cart(
        &self,
        student: Uuid,
        section: Uuid,
        asked: AskedOptions,
    ) -> Result<(), CartError> {
        let options = if asked.is_empty() {
            None
        } else {
            let facts = match self.cache().facts(section).await? {
                Some(f) => f,
                None => return Err(CartError::SectionNotFound),
            };
            Some(facts.grading.choose(asked.credits, asked.basis)?)
        };
        match cart::add(&self.pool, student, section, options).await? {
            Added::Staged => Ok(()),
            Added::NoSection => Err(CartError::SectionNotFound),
            Added::Full => Err(CartError::Full),
        }
    }

    /// Take `section` out of `student`'s cart.
    pub async fn remove_from_cart(&self, student: Uuid, section: Uuid) -> Result<(), CartError> {
        Ok(cart::remove(&self.pool, student, &[section]).await?)
    }

    /// What submitting the cart would do now, item by item (rules checked against the
    /// student's schedule, seats read from the committed counts; nothing recorded).
    pub async fn preview_cart(&self, student: Uuid) -> Result<Vec<Preview>, RegistrationError> {
        let rows = cart::items(&self.pool, student).await?;
        let (sets, singles) = plan(&rows);
        let mut previews = Vec::with_capacity(rows.len());
        let row_of = |id: Uuid| rows.iter().find(|r| r.section_id == id);
        for (course, members) in &sets {
            let mut targets = Vec::with_capacity(members.len());
            for m in members {
                targets.push(self.facts(*m).await?);
            }
            let asked = asked_for(&rows, &targets);
            let (verdict, _, _, _) = self.set_verdict(student, &targets, &[], &asked).await?;
            let full = members
                .iter()
                .filter_map(|m| row_of(*m))
                .find(|r| r.seats_taken >= r.capacity);
            for m in members {
                let preview = match (&verdict, full) {
                    (Err(v), _) => fails(*m, Some(course), v.code(), v.to_string()),
                    (Ok(()), Some(f)) => fails(
                        *m,
                        Some(course),
                        "section_full",
                        format!(
                            "{}-{} is full: the set would be refused whole (sets are never waitlisted)",
                            f.course_code, f.section_code
                        ),
                    ),
                    (Ok(()), None) => Preview {
                        section: *m,
                        group: Some(course.clone()),
                        verdict: Verdict::WouldEnroll,
                        code: None,
                        detail: "would pass: a seat is free in every section of the set".into(),
                    },
                };
                previews.push(preview);
            }
        }
        for s in singles {
            let facts = self.facts(s).await?;
            let asked = asked_for(&rows, std::slice::from_ref(&facts));
            let (verdict, active, _, _) = self.set_verdict(student, &[facts], &[], &asked).await?;
            let row = row_of(s);
            let preview = match (verdict, row) {
                _ if active.contains(&s) => fails(
                    s,
                    None,
                    "already_enrolled",
                    "already on your schedule".into(),
                ),
                (Err(v), _) => fails(s, None, v.code(), v.to_string()),
                (Ok(()), Some(r)) if r.seats_taken < r.capacity => Preview {
                    section: s,
                    group: None,
                    verdict: Verdict::WouldEnroll,
                    code: None,
                    detail: "would pass: a seat is free".into(),
                },
                (Ok(()), Some(r)) if r.waitlist_length < r.waitlist_capacity => Preview {
                    section: s,
                    group: None,
                    verdict: Verdict::WouldWaitlist,
                    code: None,
                    detail: format!("full: would waitlist at position {}", r.waitlist_length + 1),
                },
                (Ok(()), _) => fails(
                    s,
                    None,
                    "section_full",
                    "the section and its waitlist are full".into(),
                ),
            };
            previews.push(preview);
        }
        Ok(previews)
    }

    /// Submit the cart (see the module docs) on this node as the student's home: every
    /// linked set as one decision, then every other item; each item's outcome.
    pub async fn submit_cart(
        self: &Arc<Self>,
        home: Arc<HomePass>,
        student: Uuid,
        request: RequestId,
    ) -> Result<Submitted, RegistrationError> {
        let rows = cart::items(&self.pool, student).await?;
        let (sets, singles) = plan(&rows);
        let mut submitted = Submitted {
            sets: Vec::with_capacity(sets.len()),
            items: Vec::with_capacity(singles.len()),
        };
        let mut placed = Vec::with_capacity(rows.len());
        for (course, members) in sets {
            let mut targets = Vec::with_capacity(members.len());
            for m in &members {
                targets.push(self.facts(*m).await?);
            }
            let r = SetRequest {
                student,
                take: members.clone(),
                leave: Vec::new(),
                request: part_of(request, &format!("cart-set:{course}")),
                asked: asked_for(&rows, &targets),
            };
            let result = self
                .take_set(home.clone(), r)
                .await
                .map(|d| d.value.decision);
            if result.as_ref().is_ok() || result.as_ref().is_err_and(on_schedule) {
                placed.extend(&members);
            }
            submitted.sets.push(SetOutcome {
                course,
                sections: members,
                result,
            });
        }
        for section in singles {
            let r = SeatRequest {
                student,
                section,
                request: part_of(request, &format!("cart-item:{section}")),
            };
            let facts = self.facts(section).await?;
            let asked = asked_for(&rows, std::slice::from_ref(&facts))[0];
            let result = (self.enroll_with(home.clone(), r, asked).await).map(|d| d.value);
            if result.as_ref().is_ok() || result.as_ref().is_err_and(on_schedule) {
                placed.push(section);
            }
            submitted.items.push(ItemOutcome { section, result });
        }
        cart::remove(&self.pool, student, &placed).await?;
        Ok(submitted)
    }
}

/// What the cart asks for each of `targets`: the options staged with the first item of
/// the target's course that has some (a lecture and its lab are taken alike), else none.
fn asked_for(rows: &[CartRow], targets: &[Arc<SectionFacts>]) -> Vec<AskedOptions> {
    targets
        .iter()
        .map(|t| {
            rows.iter()
                .filter(|r| r.course_code == t.offered.course_code)
                .find_map(|r| r.options())
                .map(|o| AskedOptions {
                    credits: Some(o.credits),
                    basis: Some(o.basis),
                })
                .unwrap_or_default()
        })
        .collect()
}

/// Whether a refusal says the item is on the schedule already (enrolled in it outside
/// the cart): it leaves the cart like an item placed now.
fn on_schedule(e: &RegistrationError) -> bool {
    use registrar_actors::Refusal::{AlreadyEnrolled, AlreadyWaitlisted};
    match e {
        RegistrationError::Refused(AlreadyEnrolled | AlreadyWaitlisted)
        | RegistrationError::PartRefused {
            refusal: AlreadyEnrolled | AlreadyWaitlisted,
            ..
        } => true,
        RegistrationError::SetCancelled { code, .. } => {
            code == "already_enrolled" || code == "already_waitlisted"
        }
        _ => false,
    }
}

fn fails(section: Uuid, group: Option<&String>, code: &'static str, detail: String) -> Preview {
    Preview {
        section,
        group: group.cloned(),
        verdict: Verdict::WouldFail,
        code: Some(code),
        detail,
    }
}
