//! Accounts: standings and roles, students and the holds on them.

use super::{Invalid, invalid, normalize_course_codes, schema, text, whole_number};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Class standing; each has its own registration window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Standing {
    /// First year.
    Freshman,
    /// Second year.
    Sophomore,
    /// Third year.
    Junior,
    /// Fourth year.
    Senior,
    /// Graduate student.
    Graduate,
}

impl Standing {
    /// All standings, in order.
    pub const ALL: [Standing; 5] = [
        Standing::Freshman,
        Standing::Sophomore,
        Standing::Junior,
        Standing::Senior,
        Standing::Graduate,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Freshman => "freshman",
            Standing::Sophomore => "sophomore",
            Standing::Junior => "junior",
            Standing::Senior => "senior",
            Standing::Graduate => "graduate",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Account role, carried in the access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Registers for themself.
    Student,
    /// Manages the catalog and accounts.
    Admin,
    /// Runs the cluster.
    Operator,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Student => "student",
            Role::Admin => "admin",
            Role::Operator => "operator",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Role::Student, Role::Admin, Role::Operator]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// `POST /students` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStudent {
    /// Login name: 1-64 of `a-z 0-9 _ . -`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9_.-]+$")]
    pub username: String,
    /// 8-256 characters.
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
    /// Class standing (required for students).
    pub standing: Option<Standing>,
    /// Credit limit per term, 0-40 (default 18).
    #[serde(default = "default_max_credits", deserialize_with = "whole_number")]
    #[schema(maximum = 40, default = 18)]
    pub max_credits: u32,
    /// Courses already completed (at most [`MAX_COMPLETED_COURSES`]), in any form
    /// [`Course::code`](super::Course::code) accepts; stored canonical.
    #[serde(default)]
    #[schema(schema_with = schema::completed_courses)]
    pub completed_courses: Vec<String>,
    /// Role (default student).
    #[serde(default = "default_role")]
    pub role: Role,
    /// Declared majors (at most 5), e.g. `CS`: reserved seats and restrictions match them.
    #[serde(default)]
    #[schema(schema_with = super::policy::schema::majors)]
    pub majors: Vec<String>,
    /// Academic program, e.g. `BS-CS`.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_-]{1,16}$")]
    pub program: Option<String>,
    /// Cohort, e.g. `HONORS`.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_-]{1,16}$")]
    pub cohort: Option<String>,
}

/// Most completed courses one account may list: more than any degree needs, and it keeps
/// what every rule check loads for the student small.
pub const MAX_COMPLETED_COURSES: usize = 200;

fn default_max_credits() -> u32 {
    18
}

fn default_role() -> Role {
    Role::Student
}

/// Whether `username` is acceptable.
pub fn is_username(username: &str) -> bool {
    !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
}

impl NewStudent {
    /// Check the fields, bringing the completed course codes to their canonical form.
    pub fn validate(&mut self) -> Result<(), Invalid> {
        if !is_username(&self.username) {
            return Err(invalid("username", "1-64 of a-z, 0-9, '_', '.', '-'"));
        }
        if !(8..=256).contains(&self.password.chars().count()) {
            return Err(invalid("password", "8 to 256 characters"));
        }
        if self.role == Role::Student && self.standing.is_none() {
            return Err(invalid("standing", "required for students"));
        }
        if self.max_credits > 40 {
            return Err(invalid("max_credits", "0 to 40"));
        }
        if self.completed_courses.len() > MAX_COMPLETED_COURSES {
            return Err(invalid(
                "completed_courses",
                format!("at most {MAX_COMPLETED_COURSES}"),
            ));
        }
        self.completed_courses =
            normalize_course_codes("completed_courses", &self.completed_courses)?;
        self.majors = super::attribute_codes("majors", &self.majors, super::MAX_MAJORS)?;
        if let Some(p) = &self.program {
            self.program = Some(super::attribute_code("program", p)?);
        }
        if let Some(c) = &self.cohort {
            self.cohort = Some(super::attribute_code("cohort", c)?);
        }
        Ok(())
    }
}

/// A student account as admins see it (never the password hash).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct StudentView {
    /// Id.
    pub id: Uuid,
    /// Login.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Standing.
    pub standing: Option<Standing>,
    /// Credit limit.
    pub max_credits: u32,
    /// Completed courses.
    pub completed_courses: Vec<String>,
    /// Declared majors.
    #[serde(default)]
    pub majors: Vec<String>,
    /// Program.
    #[serde(default)]
    pub program: Option<String>,
    /// Cohort.
    #[serde(default)]
    pub cohort: Option<String>,
}

/// `POST /students/{id}/holds` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHold {
    /// Why (1-500 characters).
    #[schema(schema_with = schema::text_500)]
    pub reason: String,
}

impl NewHold {
    /// Check the fields.
    pub fn validate(&self) -> Result<(), Invalid> {
        text("reason", &self.reason, 500)
    }
}

/// A hold on a student's registration.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct Hold {
    /// Id.
    pub id: Uuid,
    /// Student.
    pub student_id: Uuid,
    /// Why.
    pub reason: String,
    /// Since.
    pub created_at: DateTime<Utc>,
}
