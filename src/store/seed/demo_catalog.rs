//! The data of the demo catalog: departments with their course tracks, the course list
//! derived from them (each course above 100-level requires the previous one of its track),
//! the weekly meeting patterns sections get, and the science courses taken as linked
//! sections (lecture with lab or recitation) or with corequisites.

use rand::Rng;
use rand::rngs::StdRng;
use registrar_actors::student_rules::{ClockTime, Component, Day, Meeting};

const DEPARTMENTS: &[(&str, &str, &[&str])] = &[
    (
        "CS",
        "Computer Science",
        &[
            "Programming",
            "Data Structures",
            "Algorithms",
            "Systems",
            "Databases",
            "Networks",
            "Compilers",
            "Machine Learning",
            "Security",
            "Distributed Systems",
        ],
    ),
    (
        "MATH",
        "Mathematics",
        &[
            "Calculus",
            "Linear Algebra",
            "Discrete Math",
            "Probability",
            "Analysis",
            "Algebra",
            "Topology",
            "Number Theory",
            "Statistics",
            "Differential Equations",
        ],
    ),
    (
        "PHYS",
        "Physics",
        &[
            "Mechanics",
            "Electromagnetism",
            "Waves",
            "Thermodynamics",
            "Quantum Mechanics",
            "Optics",
            "Relativity",
            "Astrophysics",
        ],
    ),
    (
        "CHEM",
        "Chemistry",
        &[
            "General Chemistry",
            "Organic Chemistry",
            "Physical Chemistry",
            "Biochemistry",
            "Analytical Chemistry",
            "Inorganic Chemistry",
        ],
    ),
    (
        "BIO",
        "Biology",
        &[
            "Cell Biology",
            "Genetics",
            "Ecology",
            "Evolution",
            "Microbiology",
            "Neuroscience",
            "Physiology",
        ],
    ),
    (
        "ECON",
        "Economics",
        &[
            "Microeconomics",
            "Macroeconomics",
            "Econometrics",
            "Game Theory",
            "Public Finance",
            "Labor Economics",
        ],
    ),
    (
        "HIST",
        "History",
        &[
            "World History",
            "Ancient Rome",
            "Medieval Europe",
            "Modern Asia",
            "American History",
            "History of Science",
        ],
    ),
    (
        "ENGL",
        "English",
        &[
            "Composition",
            "Poetry",
            "The Novel",
            "Shakespeare",
            "Creative Writing",
            "Rhetoric",
        ],
    ),
    (
        "PSYC",
        "Psychology",
        &[
            "Intro Psychology",
            "Cognitive Psychology",
            "Social Psychology",
            "Developmental Psychology",
            "Research Methods",
        ],
    ),
    (
        "ART",
        "Art",
        &[
            "Drawing",
            "Painting",
            "Sculpture",
            "Art History",
            "Photography",
            "Design",
        ],
    ),
    (
        "MUS",
        "Music",
        &[
            "Music Theory",
            "Ear Training",
            "Composition",
            "Music History",
            "Ensemble",
        ],
    ),
    (
        "PHIL",
        "Philosophy",
        &[
            "Logic",
            "Ethics",
            "Philosophy of Mind",
            "Epistemology",
            "Political Philosophy",
        ],
    ),
];

/// One course of the demo catalog.
pub(super) struct CourseSpec {
    /// Course code, e.g. `CS101`.
    pub(super) code: String,
    /// Title.
    pub(super) title: String,
    /// Credits.
    pub(super) credits: i16,
    /// Codes of the courses to complete first.
    pub(super) prerequisites: Vec<String>,
}

/// The catalog: per department, levels 100-400 in steps; each course above 100-level
/// requires the previous course of its track.
pub(super) fn courses() -> Vec<CourseSpec> {
    let mut out = Vec::new();
    for (dept, name, topics) in DEPARTMENTS {
        for (t, topic) in topics.iter().enumerate() {
            for level in 1..=4u32 {
                let number = level * 100 + t as u32 + 1;
                let code = format!("{dept}{number}");
                let prerequisites = if level == 1 {
                    vec![]
                } else {
                    vec![format!("{dept}{}", number - 100)]
                };
                let credits = match (dept, level) {
                    (&"PHYS" | &"CHEM" | &"BIO", 1 | 2) => 4,
                    (&"MUS", _) if t == 4 => 1,
                    _ => 3,
                };
                let roman = ["I", "II", "III", "IV"][level as usize - 1];
                out.push(CourseSpec {
                    code,
                    title: format!("{name}: {topic} {roman}"),
                    credits,
                    prerequisites,
                });
            }
        }
    }
    out
}

pub(super) fn meeting_pattern(rng: &mut StdRng) -> Vec<Meeting> {
    let t = |h: u16, m: u16| ClockTime::new(h, m).expect("valid time");
    if rng.random_bool(0.55) {
        let hour = rng.random_range(8..17u16);
        [Day::Mon, Day::Wed, Day::Fri]
            .into_iter()
            .map(|day| Meeting {
                day,
                start: t(hour, 0),
                end: t(hour, 50),
            })
            .collect()
    } else {
        let slots = [
            (8, 0),
            (9, 30),
            (11, 0),
            (12, 30),
            (14, 0),
            (15, 30),
            (17, 0),
        ];
        let (h, m) = slots[rng.random_range(0..slots.len())];
        let end = h * 60 + m + 75;
        [Day::Tue, Day::Thu]
            .into_iter()
            .map(|day| Meeting {
                day,
                start: t(h, m),
                end: t(end / 60, end % 60),
            })
            .collect()
    }
}

/// A course of the demo catalog taken as linked sections or with corequisites (the
/// Texas common course numbers of the sciences), seeded beside the generated catalog so
/// the generated courses and their section codes stay what they were.
pub(super) struct LinkedCourseSpec {
    /// Course code, e.g. `CHEM1411`.
    pub(super) code: &'static str,
    /// Title.
    pub(super) title: &'static str,
    /// Credits (of the whole set: a lecture and its lab are one course).
    pub(super) credits: i16,
    /// Required components, the primary first; empty: a plain course.
    pub(super) components: &'static [Component],
    /// Courses to take in the same term.
    pub(super) corequisites: &'static [&'static str],
    /// Primary (or plain) sections.
    pub(super) lectures: usize,
    /// Per primary section: how many sections of each other component are linked to it.
    pub(super) linked_per_lecture: &'static [(Component, usize)],
}

/// A four-credit lecture + lab course without corequisites: `lectures` lectures, each
/// with `labs` labs linked to it.
const fn lecture_lab(
    code: &'static str,
    title: &'static str,
    lectures: usize,
    labs: usize,
) -> LinkedCourseSpec {
    LinkedCourseSpec {
        code,
        title,
        credits: 4,
        components: &[Component::Lecture, Component::Lab],
        corequisites: &[],
        lectures,
        // A constant slice per count (a `const fn` cannot borrow its argument for ever).
        linked_per_lecture: match labs {
            2 => &[(Component::Lab, 2)],
            3 => &[(Component::Lab, 3)],
            4 => &[(Component::Lab, 4)],
            _ => panic!("a demo lecture has 2 to 4 labs"),
        },
    }
}

/// The linked and corequisite courses: two lecture+lab courses, one lecture+lab+recitation
/// course, and two corequisite pairs (PHYS2425 with MATH2413; CHEM1311 with its lab
/// course CHEM1111, each the other's); then nine more lecture+lab(+recitation) courses.
///
/// The first seven are what the catalog has always held; the rest only add to it (new
/// codes, after them), so earlier codes keep their sections.
pub(super) const LINKED_COURSES: &[LinkedCourseSpec] = &[
    lecture_lab("BIOL1406", "Biology for Science Majors I", 2, 3),
    lecture_lab("GEOL1403", "Physical Geology", 1, 2),
    LinkedCourseSpec {
        code: "CHEM1411",
        title: "General Chemistry I",
        credits: 4,
        components: &[Component::Lecture, Component::Lab, Component::Recitation],
        corequisites: &[],
        lectures: 2,
        linked_per_lecture: &[(Component::Lab, 2), (Component::Recitation, 2)],
    },
    LinkedCourseSpec {
        code: "MATH2413",
        title: "Calculus I",
        credits: 4,
        components: &[],
        corequisites: &[],
        lectures: 2,
        linked_per_lecture: &[],
    },
    LinkedCourseSpec {
        code: "PHYS2425",
        title: "University Physics I",
        credits: 4,
        components: &[Component::Lecture, Component::Lab],
        corequisites: &["MATH2413"],
        lectures: 2,
        linked_per_lecture: &[(Component::Lab, 2)],
    },
    LinkedCourseSpec {
        code: "CHEM1311",
        title: "General Chemistry I (lecture)",
        credits: 3,
        components: &[],
        corequisites: &["CHEM1111"],
        lectures: 1,
        linked_per_lecture: &[],
    },
    LinkedCourseSpec {
        code: "CHEM1111",
        title: "General Chemistry I Laboratory",
        credits: 1,
        components: &[],
        corequisites: &["CHEM1311"],
        lectures: 2,
        linked_per_lecture: &[],
    },
    // Added after the first seven: enough lab seats (24 each) for a registration flood of carts with
    // linked sets to seat thousands of sets, not a few hundred.
    lecture_lab("BIOL1407", "Biology for Science Majors II", 3, 4),
    lecture_lab("BIOL2401", "Anatomy and Physiology I", 3, 4),
    lecture_lab("BIOL2402", "Anatomy and Physiology II", 2, 4),
    lecture_lab("BIOL2421", "Microbiology for Science Majors", 2, 4),
    LinkedCourseSpec {
        code: "CHEM1412",
        title: "General Chemistry II",
        credits: 4,
        components: &[Component::Lecture, Component::Lab, Component::Recitation],
        corequisites: &[],
        lectures: 3,
        linked_per_lecture: &[(Component::Lab, 4), (Component::Recitation, 2)],
    },
    lecture_lab("CHEM2423", "Organic Chemistry I", 2, 4),
    lecture_lab("PHYS1401", "College Physics I", 3, 4),
    lecture_lab("GEOL1404", "Historical Geology", 2, 3),
    lecture_lab("ENVR1401", "Environmental Science I", 2, 3),
];

/// One section of a [`LinkedCourseSpec`].
pub(super) struct LinkedSectionSpec {
    /// Section code: `001` for primaries, `L01` for labs, `R01` for recitations...
    pub(super) code: String,
    /// Its component.
    pub(super) component: Component,
    /// Seats.
    pub(super) capacity: i32,
    /// Weekly meetings: primaries in the morning (MWF), the rest in the afternoon, so no
    /// set conflicts with itself.
    pub(super) meetings: Vec<Meeting>,
    /// Index (in the course's list) of the primary it is linked to, for a linked one.
    pub(super) primary: Option<usize>,
}

/// The sections of `course`, primaries first, each followed by those linked to it.
pub(super) fn linked_sections(course: &LinkedCourseSpec) -> Vec<LinkedSectionSpec> {
    let t = |h: u16, m: u16| ClockTime::new(h, m).expect("valid time");
    let mut out = Vec::new();
    let mut numbers: Vec<(Component, usize)> = Vec::new();
    for l in 0..course.lectures {
        let hour = 8 + 2 * l as u16;
        let primary = out.len();
        out.push(LinkedSectionSpec {
            code: format!("{:03}", l + 1),
            component: course.components.first().copied().unwrap_or_default(),
            capacity: 120,
            meetings: [Day::Mon, Day::Wed, Day::Fri]
                .into_iter()
                .map(|day| Meeting {
                    day,
                    start: t(hour, 0),
                    end: t(hour, 50),
                })
                .collect(),
            primary: None,
        });
        for (component, count) in course.linked_per_lecture {
            for _ in 0..*count {
                let n = match numbers.iter_mut().find(|(c, _)| c == component) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        numbers.push((*component, 1));
                        1
                    }
                };
                let letter = component.as_str()[..1].to_ascii_uppercase();
                // Labs: three hours on one afternoon; recitations: fifty minutes on Friday.
                let day = [Day::Tue, Day::Thu, Day::Wed, Day::Mon][(n - 1) % 4];
                let meetings = if *component == Component::Recitation {
                    let hour = 13 + (n as u16 - 1) % 4;
                    vec![Meeting {
                        day: Day::Fri,
                        start: t(hour, 0),
                        end: t(hour, 50),
                    }]
                } else {
                    let hour = if n % 2 == 1 { 13 } else { 17 };
                    vec![Meeting {
                        day,
                        start: t(hour, 0),
                        end: t(hour + 2, 50),
                    }]
                };
                out.push(LinkedSectionSpec {
                    code: format!("{letter}{n:02}"),
                    component: *component,
                    capacity: if *component == Component::Lab { 24 } else { 40 },
                    meetings,
                    primary: Some(primary),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};
    use registrar_actors::SectionId;
    use registrar_actors::student_rules::{
        OfferedSection, StudentProfile, Window, check_enroll_set,
    };
    use uuid::Uuid;

    /// Courses are only ever added: the first seven codes stay, in their order, and every
    /// code is unique.
    #[test]
    fn linked_courses_only_grow() {
        let codes: Vec<&str> = LINKED_COURSES.iter().map(|c| c.code).collect();
        assert_eq!(
            codes[..7],
            [
                "BIOL1406", "GEOL1403", "CHEM1411", "MATH2413", "PHYS2425", "CHEM1311", "CHEM1111"
            ]
        );
        let mut unique = codes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), codes.len());
        let lab_seats: i32 = LINKED_COURSES
            .iter()
            .flat_map(linked_sections)
            .filter(|s| s.component == Component::Lab)
            .map(|s| s.capacity)
            .sum();
        assert!(lab_seats >= 2_000, "{lab_seats} lab seats");
    }

    /// Every primary of the demo's linked courses with its first linked section of each
    /// component is a set the rules accept (no time conflict inside it), and a primary
    /// alone is refused.
    #[test]
    fn each_demo_lecture_has_a_set_the_rules_accept() {
        let now = Utc::now();
        let window = Some(Window {
            opens_at: now - Duration::hours(1),
            closes_at: now + Duration::hours(1),
        });
        let student = StudentProfile {
            attributes: Vec::new(),
            ticket: None,
            deadlines: Default::default(),
            permits: Vec::new(),
            holds: 0,
            max_credits: 18,
            completed: vec![],
            schedule: vec![],
        };
        for course in LINKED_COURSES.iter().filter(|c| !c.components.is_empty()) {
            let specs = linked_sections(course);
            let ids: Vec<SectionId> = specs.iter().map(|_| SectionId(Uuid::new_v4())).collect();
            let offered: Vec<OfferedSection> = specs
                .iter()
                .zip(&ids)
                .map(|(s, id)| OfferedSection {
                    component: s.component,
                    required_components: course.components.to_vec(),
                    links: s.primary.map(|p| vec![ids[p]]).unwrap_or_default(),
                    corequisites: vec![],
                    ..OfferedSection::plain(*id, course.code, 4, s.meetings.clone(), vec![])
                })
                .collect();
            for (p, spec) in specs
                .iter()
                .enumerate()
                .filter(|(_, s)| s.primary.is_none())
            {
                let mut set = vec![offered[p].clone()];
                for component in &course.components[1..] {
                    let first = specs
                        .iter()
                        .position(|s| s.primary == Some(p) && s.component == *component)
                        .unwrap_or_else(|| {
                            panic!("{} {} has no {component}", course.code, spec.code)
                        });
                    set.push(offered[first].clone());
                }
                assert_eq!(
                    check_enroll_set(&student, &set, window, now, &[]),
                    Ok(()),
                    "{} {}",
                    course.code,
                    spec.code
                );
                assert!(check_enroll_set(&student, &set[..1], window, now, &[]).is_err());
            }
        }
    }
}
