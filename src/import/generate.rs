//! A large demo catalog in the import's CSV format (`registrar import --generate-demo DIR`):
//! one term with its windows open from an hour before generation for 30 days, courses
//! across ten subjects (some with prerequisites, some a lecture with linked labs),
//! sections with meetings (some with reserved pools, some restricted), students with
//! majors, programs, cohorts and completed courses, and a time ticket for each, earlier
//! for more credits earned. Deterministic for a given size and start time; the students'
//! `password_hash` is one hash computed once, so loading them never runs argon2.

use chrono::{DateTime, TimeDelta, Utc};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What to generate.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Students `s000001`...
    pub students: u32,
    /// Sections across the catalog (labs count).
    pub sections: u32,
    /// The term's code.
    pub term: String,
    /// The hash every student gets.
    pub password_hash: String,
    /// When the windows open (tickets follow them).
    pub opens_at: DateTime<Utc>,
}

/// The subjects of the catalog.
const SUBJECTS: [&str; 10] = [
    "CS", "MATH", "PHYS", "CHEM", "BIOL", "ENGL", "HIST", "ECON", "PSYC", "ART",
];

/// Cohorts some students belong to.
const COHORTS: [&str; 3] = ["HONORS", "ATHLETE", "FIRSTGEN"];

/// A small deterministic generator (xorshift), so a catalog can be made again exactly.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The files written, in the order to import them.
pub fn write(dir: &Path, o: &DemoOptions) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let file = |name: &str| -> std::io::Result<(PathBuf, std::io::BufWriter<std::fs::File>)> {
        let path = dir.join(name);
        Ok((
            path.clone(),
            std::io::BufWriter::new(std::fs::File::create(path)?),
        ))
    };
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let closes = o.opens_at + TimeDelta::days(30);
    let mut written = Vec::new();

    let (path, mut w) = file("terms.csv")?;
    writeln!(w, "code,name")?;
    writeln!(w, "{},Demo term {}", o.term, o.term)?;
    w.flush()?;
    written.push(path);

    let (path, mut w) = file("windows.csv")?;
    writeln!(w, "term,standing,opens_at,closes_at")?;
    for standing in ["freshman", "sophomore", "junior", "senior", "graduate"] {
        writeln!(
            w,
            "{},{standing},{},{}",
            o.term,
            time(o.opens_at),
            time(closes)
        )?;
    }
    w.flush()?;
    written.push(path);

    // Courses: half as many as sections; every tenth a lecture with labs.
    let courses = (o.sections / 2).max(1);
    let code = |i: u32| {
        let subject = SUBJECTS[(i as usize) % SUBJECTS.len()];
        (
            subject,
            format!("{subject}{}", 1000 + i / SUBJECTS.len() as u32 * 10),
        )
    };
    let (path, mut w) = file("courses.csv")?;
    writeln!(w, "code,title,credits,prerequisites,components")?;
    for i in 0..courses {
        let (subject, c) = code(i);
        // A course of a later level asks for the subject's course before it.
        let prerequisite = if i >= SUBJECTS.len() as u32 && i.is_multiple_of(3) {
            code(i - SUBJECTS.len() as u32).1
        } else {
            String::new()
        };
        let components = if i % 10 == 7 { "lecture;lab" } else { "" };
        let credits = [3, 3, 4, 1][(i % 4) as usize];
        writeln!(
            w,
            "{c},{subject} course {i},{credits},{prerequisite},{components}"
        )?;
    }
    w.flush()?;
    written.push(path);

    // Sections, spread over the courses; a course with labs gets a lecture and its labs.
    let (path, mut w) = file("sections.csv")?;
    writeln!(
        w,
        "term,course_code,section_code,capacity,waitlist_capacity,meetings,component,links,reserved,restrictions"
    )?;
    let days = ["mon;wed", "tue;thu", "mon;wed;fri", "fri"];
    let mut made = 0;
    let mut i = 0u32;
    while made < o.sections {
        let course = i % courses;
        let round = i / courses;
        i += 1;
        let (subject, c) = code(course);
        let hour = 8 + dice.below(10);
        let meetings: Vec<String> = days[dice.below(days.len() as u64) as usize]
            .split(';')
            .map(|d| format!("{d} {hour:02}:00-{hour:02}:50"))
            .collect();
        let capacity = 20 + dice.below(180) as u32;
        let waitlist = 10 + dice.below(40);
        if course % 10 == 7 {
            let lecture = format!("{:02}", round + 1);
            writeln!(
                w,
                "{},{c},{lecture},{capacity},{waitlist},{},lecture,,,",
                o.term,
                meetings.join("; ")
            )?;
            made += 1;
            for lab in 0..2 {
                if made >= o.sections {
                    break;
                }
                let lab_hour = 13 + lab;
                writeln!(
                    w,
                    "{},{c},L{lecture}{lab},{},{waitlist},thu {lab_hour}:00-{lab_hour}:50,lab,{lecture},,",
                    o.term,
                    capacity.div_ceil(2)
                )?;
                made += 1;
            }
            continue;
        }
        let reserved = if i.is_multiple_of(5) {
            format!("major={subject}:{}", capacity / 4)
        } else {
            String::new()
        };
        let restrictions = match i % 14 {
            3 => format!("include major={subject}"),
            10 => "exclude cohort=PROBATION".to_string(),
            _ => String::new(),
        };
        writeln!(
            w,
            "{},{c},{:02},{capacity},{waitlist},{},,,{reserved},{restrictions}",
            o.term,
            round + 1,
            meetings.join("; ")
        )?;
        made += 1;
    }
    w.flush()?;
    written.push(path);

    // Students, and their credits earned for the tickets.
    let (path, mut w) = file("students.csv")?;
    writeln!(
        w,
        "username,password_hash,standing,max_credits,completed_courses,majors,program,cohort"
    )?;
    let standings = ["freshman", "sophomore", "junior", "senior", "graduate"];
    let mut earned: Vec<(u32, u32)> = Vec::with_capacity(o.students as usize);
    for n in 1..=o.students {
        let level = dice.below(5) as usize;
        let major = SUBJECTS[dice.below(SUBJECTS.len() as u64) as usize];
        let second = if dice.below(10) == 0 {
            format!(";{}", SUBJECTS[dice.below(SUBJECTS.len() as u64) as usize])
        } else {
            String::new()
        };
        let done = (level as u32) * 3 + dice.below(3) as u32;
        let completed: Vec<String> = (0..done)
            .map(|_| code(dice.below(courses.into()) as u32).1)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let cohort = match dice.below(20) {
            0 => COHORTS[0],
            1 => COHORTS[1],
            2 | 3 => COHORTS[2],
            _ => "",
        };
        let program = if level == 4 {
            format!("MS-{major}")
        } else {
            format!("BS-{major}")
        };
        writeln!(
            w,
            "s{n:06},\"{}\",{},18,{},{major}{second},{program},{cohort}",
            o.password_hash,
            standings[level],
            completed.join(";")
        )?;
        earned.push((n, completed.len() as u32 * 3));
    }
    w.flush()?;
    written.push(path);

    // Tickets: most credits earned first, 500 students per 15-minute slot.
    earned.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let (path, mut w) = file("tickets.csv")?;
    writeln!(w, "term,username,opens_at,closes_at")?;
    for (rank, (n, _)) in earned.iter().enumerate() {
        let slot = TimeDelta::minutes(15 * (rank as i64 / 500));
        writeln!(w, "{},s{n:06},{},", o.term, time(o.opens_at + slot))?;
    }
    w.flush()?;
    written.push(path);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Kind;
    use crate::import::parse::read_file;

    #[test]
    fn the_demo_catalog_reads_back_without_errors() {
        let dir = std::env::temp_dir().join(format!("registrar-demo-{}", uuid::Uuid::new_v4()));
        let options = DemoOptions {
            students: 300,
            sections: 60,
            term: "2027FA".into(),
            password_hash: crate::service::auth::hash_demo_password("demo"),
            opens_at: Utc::now(),
        };
        let files = write(&dir, &options).unwrap();
        let mut rows = 0;
        for f in &files {
            let parsed = read_file(f, None).unwrap();
            assert!(
                parsed.errors.is_empty(),
                "{}: {:?}",
                f.display(),
                parsed.errors.first()
            );
            rows += parsed.len();
        }
        let sections = read_file(&dir.join("sections.csv"), None).unwrap();
        assert_eq!(sections.first_kind(), Some(Kind::Sections));
        assert_eq!(sections.rows.sections.len(), 60);
        assert!(
            sections.rows.sections.iter().any(|s| s
                .row
                .links
                .as_ref()
                .is_some_and(|l| !l.is_empty()))
        );
        assert!(
            sections.rows.sections.iter().any(|s| s
                .row
                .reserved
                .as_ref()
                .is_some_and(|r| !r.is_empty()))
        );
        assert!(rows > 600);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
