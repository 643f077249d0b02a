//! The data of the demo catalog: departments with their course tracks, the course list
//! derived from them (each course above 100-level requires the previous one of its track),
//! and the weekly meeting patterns sections get.

use rand::Rng;
use rand::rngs::StdRng;
use registrar_actors::student_rules::{ClockTime, Day, Meeting};

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
