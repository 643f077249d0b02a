//! The command line of `registrar-loadtest`. Two modes:
//!
//! - load (default): our own options (`--scenario`, `--students`, `--acks`, ...) are taken
//!   out of the arguments here and everything else is handed to goose untouched, so every
//!   goose flag (`--users`, `--increase-rate`, `--run-time`, `--test-plan`,
//!   `--report-file`, ...) works as documented by goose;
//! - `verify`: check a registrar database's invariants with the server's own checker
//!   ([`registrar::verify`], the same as `registrar verify`).

use anyhow::{Context, bail};
use std::path::PathBuf;
use std::str::FromStr;
use uuid::Uuid;

/// Our options of a load run, printed ahead of goose's own help.
pub const LOAD_HELP: &str = "\
registrar-loadtest [OPTIONS] [GOOSE OPTIONS]   load scenarios against a registrar server
registrar-loadtest verify [--database-url URL] [--acks FILE]...   check a database afterwards

Options of a load run (everything else goes to goose, see below):
  --scenario NAME       flash | open | cart | browse | churn | mixed (default) | hot | reshard | chaos | healthz
  --pre-login           sign every student of the run in before the load starts (students
                        log in before their window opens), report the logins apart, and
                        let the scenarios use those tokens instead of logging in;
                        with `cart`, also fill every signed-in student's cart before
                        the load (reported apart)
  --hosts URL,URL,...   spread the users over these nodes of one cluster, round-robin by
                        user number (user 1 on the first, user 2 on the second, ...);
                        instead of goose's --host, which sends every user to one node
  --follow-home         with --hosts: a user moves to the node the server names as the
                        student's home (X-Registrar-Home, on sign-in and on every
                        registration answer) when it is one of --hosts, as a home-aware
                        client would; its requests are then not forwarded
  --students N          demo students s000001.. to use: a run takes s<first>..s<first+N-1>
                        and wraps around when more are needed (default 1000)
  --first-student K     first demo student number (default 1), to keep runs apart
  --hot-section UUID[,UUID...]   `hot`: the one section every enroll targets; `reshard`:
                        its small set of hot sections, the first the hottest (default:
                        the catalog's 6 hottest); may repeat
  --acks FILE           append one JSON line per acknowledged decision, for `verify`
  --summary FILE        write the run's summary (rates, percentiles, status codes) as JSON
  --zipf-exponent S     skew of section choice (default 1.1; 0 = uniform)
  --fail-on-errors      exit 1 if any request failed (5xx, timeout, unexpected status)

Goose's report: --report-file reports/<scenario>.html is the default.
";

/// The scenarios one run can execute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScenarioName {
    /// Students log in and add 4-6 Zipf-chosen sections in a burst.
    Flash,
    /// The window's first seconds: every student enrolls once, all cold.
    Open,
    /// Carts of 4-6 sections (1-2 linked sets among them), filled before the window,
    /// submitted once each when it opens.
    Cart,
    /// Anonymous catalog reads and seat streams.
    Browse,
    /// Drop/add and swap on the student's own schedule.
    Churn,
    /// Browse, flash and churn with realistic weights.
    Mixed,
    /// Every enroll on one section (`--hot-section`), each followed by a drop.
    Hot,
    /// A registration peak while shards move: enroll -> drop on a few hot sections, some
    /// flash bursts over the catalog, every decision sent by a careful client.
    Reshard,
    /// Faults under way (loadtest/chaos-bench.sh): flash bursts 1 : swap-heavy churn 3,
    /// every decision sent by the careful client.
    Chaos,
    /// `GET /healthz` only: the HTTP ceiling of the machine.
    Healthz,
}

impl ScenarioName {
    /// The name on the command line and in report file names.
    pub fn as_str(self) -> &'static str {
        match self {
            ScenarioName::Flash => "flash",
            ScenarioName::Open => "open",
            ScenarioName::Cart => "cart",
            ScenarioName::Browse => "browse",
            ScenarioName::Churn => "churn",
            ScenarioName::Mixed => "mixed",
            ScenarioName::Hot => "hot",
            ScenarioName::Reshard => "reshard",
            ScenarioName::Chaos => "chaos",
            ScenarioName::Healthz => "healthz",
        }
    }
}

impl FromStr for ScenarioName {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "flash" => ScenarioName::Flash,
            "open" => ScenarioName::Open,
            "cart" => ScenarioName::Cart,
            "browse" => ScenarioName::Browse,
            "churn" => ScenarioName::Churn,
            "mixed" => ScenarioName::Mixed,
            "hot" => ScenarioName::Hot,
            "reshard" => ScenarioName::Reshard,
            "chaos" => ScenarioName::Chaos,
            "healthz" => ScenarioName::Healthz,
            other => {
                bail!(
                    "unknown scenario {other:?} (flash, open, cart, browse, churn, mixed, hot, reshard, chaos, healthz)"
                )
            }
        })
    }
}

/// Our options of a load run.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// What to run.
    pub scenario: ScenarioName,
    /// How many demo students the run may use.
    pub students: u32,
    /// The first demo student number.
    pub first_student: u32,
    /// Target of `hot` (exactly one), or the hot set of `reshard` (hottest first).
    pub hot_sections: Vec<Uuid>,
    /// Acknowledgement log.
    pub acks: Option<PathBuf>,
    /// Summary JSON file.
    pub summary: Option<PathBuf>,
    /// Zipf exponent of section choice.
    pub zipf_exponent: f64,
    /// Exit non-zero when any request failed.
    pub fail_on_errors: bool,
    /// Nodes of one cluster to spread the users over (`--hosts`); empty: goose's `--host`.
    pub hosts: Vec<String>,
    /// Sign the run's students in before the load (`--pre-login`).
    pub pre_login: bool,
    /// Move users to their student's home node (`--follow-home`).
    pub follow_home: bool,
    /// Print our help (goose prints its own after it).
    pub help: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            scenario: ScenarioName::Mixed,
            students: 1000,
            first_student: 1,
            hot_sections: Vec::new(),
            acks: None,
            summary: None,
            zipf_exponent: 1.1,
            fail_on_errors: false,
            hosts: Vec::new(),
            pre_login: false,
            follow_home: false,
            help: false,
        }
    }
}

pub use registrar::verify::VerifyOptions;

/// What the command line asks for.
#[derive(Debug)]
pub enum Mode {
    /// A goose run: our options and the arguments left for goose.
    Load(LoadOptions, Vec<String>),
    /// The database check.
    Verify(VerifyOptions),
}

/// Split `args` (without the program name) into a [`Mode`].
pub fn parse(args: Vec<String>) -> anyhow::Result<Mode> {
    if args.first().map(String::as_str) == Some("verify") {
        return parse_verify(&args[1..]).map(Mode::Verify);
    }
    let mut opts = LoadOptions::default();
    let mut goose = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> anyhow::Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it.next().with_context(|| format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "--scenario" => opts.scenario = value("--scenario")?.parse()?,
            "--students" => {
                opts.students = value("--students")?
                    .parse()
                    .context("--students takes a number")?;
                if opts.students == 0 {
                    bail!("--students must be at least 1");
                }
            }
            "--first-student" => {
                opts.first_student = value("--first-student")?
                    .parse()
                    .context("--first-student takes a number")?;
            }
            "--hot-section" => {
                for id in value("--hot-section")?.split(',').map(str::trim) {
                    opts.hot_sections.push(
                        id.parse()
                            .with_context(|| format!("--hot-section: {id:?} is not a UUID"))?,
                    );
                }
            }
            "--acks" => opts.acks = Some(value("--acks")?.into()),
            "--summary" => opts.summary = Some(value("--summary")?.into()),
            "--zipf-exponent" => {
                opts.zipf_exponent = value("--zipf-exponent")?
                    .parse()
                    .context("--zipf-exponent takes a number")?;
                if !(0.0..=10.0).contains(&opts.zipf_exponent) {
                    bail!("--zipf-exponent must be between 0 and 10");
                }
            }
            "--fail-on-errors" => opts.fail_on_errors = true,
            "--hosts" => opts.hosts = parse_hosts(&value("--hosts")?)?,
            "--pre-login" => opts.pre_login = true,
            "--follow-home" => opts.follow_home = true,
            "-h" | "--help" => {
                opts.help = true;
                goose.push(arg);
            }
            _ => goose.push(arg),
        }
    }
    if opts.follow_home && opts.hosts.len() < 2 && !opts.help {
        bail!("--follow-home needs --hosts with the cluster's nodes");
    }
    if opts.scenario == ScenarioName::Hot && opts.hot_sections.len() != 1 && !opts.help {
        bail!("--scenario hot needs one --hot-section UUID");
    }
    Ok(Mode::Load(opts, goose))
}

/// `http://a:8081,http://b:8082`: each an absolute http(s) URL; at least one.
fn parse_hosts(list: &str) -> anyhow::Result<Vec<String>> {
    let hosts: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(String::from)
        .collect();
    if hosts.is_empty() {
        bail!(
            "--hosts needs at least one URL, e.g. --hosts http://127.0.0.1:8081,http://127.0.0.1:8082"
        );
    }
    for host in &hosts {
        let url =
            reqwest::Url::parse(host).with_context(|| format!("--hosts: {host:?} is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            bail!("--hosts: {host:?} is not an http:// or https:// URL");
        }
    }
    Ok(hosts)
}

fn parse_verify(args: &[String]) -> anyhow::Result<VerifyOptions> {
    let mut database_url = std::env::var("REGISTRAR_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://registrar:registrar@127.0.0.1:5432/registrar".to_string());
    let mut acks = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        let mut value = || -> anyhow::Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .cloned()
                    .with_context(|| format!("{flag} needs a value")),
            }
        };
        match flag {
            "--database-url" => database_url = value()?,
            "--acks" => acks.push(value()?.into()),
            "-h" | "--help" => {
                print!("{LOAD_HELP}");
                std::process::exit(0);
            }
            other => bail!("verify: unknown option {other:?} (--database-url URL, --acks FILE)"),
        }
    }
    Ok(VerifyOptions { database_url, acks })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn our_flags_are_removed_and_the_rest_goes_to_goose() {
        let Mode::Load(opts, goose) = parse(args(
            "--scenario flash --host http://127.0.0.1:1 --students=50 -u 10 --acks a.jsonl --fail-on-errors",
        ))
        .unwrap() else {
            panic!("load mode expected")
        };
        assert_eq!(opts.scenario, ScenarioName::Flash);
        assert_eq!(opts.students, 50);
        assert_eq!(opts.acks, Some(PathBuf::from("a.jsonl")));
        assert!(opts.fail_on_errors);
        assert_eq!(goose, args("--host http://127.0.0.1:1 -u 10"));
    }

    #[test]
    fn hosts_are_a_comma_separated_list_of_urls() {
        let Mode::Load(opts, goose) = parse(args(
            "--hosts http://127.0.0.1:8081,http://127.0.0.1:8082/ -u 6",
        ))
        .unwrap() else {
            panic!("load mode expected")
        };
        assert_eq!(
            opts.hosts,
            vec!["http://127.0.0.1:8081", "http://127.0.0.1:8082/"]
        );
        assert_eq!(goose, args("-u 6"));
        let Mode::Load(opts, _) = parse(args("--hosts=http://a:1")).unwrap() else {
            panic!("load mode expected")
        };
        assert_eq!(opts.hosts, vec!["http://a:1"]);
        assert!(!opts.follow_home, "users stay on their node unless asked");
        let Mode::Load(opts, _) =
            parse(args("--follow-home --hosts=http://a:1,http://b:2")).unwrap()
        else {
            panic!("load mode expected")
        };
        assert!(opts.follow_home);
        assert!(
            parse(args("--follow-home --hosts=http://a:1")).is_err(),
            "following the home needs several nodes"
        );
        assert!(parse(args("--hosts ,")).is_err());
        assert!(parse(args("--hosts 127.0.0.1:8081")).is_err());
        assert!(parse(args("--hosts http://a:1,ftp://b")).is_err());
        let Mode::Load(opts, _) = parse(vec![]).unwrap() else {
            panic!("load mode expected")
        };
        assert!(
            opts.hosts.is_empty(),
            "--host stays goose's when --hosts is absent"
        );
    }

    #[test]
    fn defaults_to_mixed_and_hot_needs_a_section() {
        let Mode::Load(opts, _) = parse(vec![]).unwrap() else {
            panic!("load mode expected")
        };
        assert_eq!(opts.scenario, ScenarioName::Mixed);
        assert!(parse(args("--scenario hot")).is_err());
        assert!(parse(args("--scenario nope")).is_err());
        let id = Uuid::new_v4();
        assert!(parse(args(&format!("--scenario hot --hot-section {id}"))).is_ok());
        assert!(parse(args(&format!("--scenario hot --hot-section {id},{id}"))).is_err());
    }

    #[test]
    fn reshard_takes_a_list_of_hot_sections_or_none() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let Mode::Load(opts, goose) = parse(args(&format!(
            "--scenario reshard --hot-section {a},{b} --hot-section={c} -u 9"
        )))
        .unwrap() else {
            panic!("load mode expected")
        };
        assert_eq!(opts.scenario, ScenarioName::Reshard);
        assert_eq!(opts.hot_sections, vec![a, b, c]);
        assert_eq!(goose, args("-u 9"));
        let Mode::Load(opts, _) = parse(args("--scenario reshard")).unwrap() else {
            panic!("load mode expected")
        };
        assert!(opts.hot_sections.is_empty(), "the catalog's hottest then");
        assert!(parse(args("--scenario reshard --hot-section nope")).is_err());
    }

    #[test]
    fn verify_mode_takes_database_and_acks() {
        let Mode::Verify(v) = parse(args(
            "verify --database-url postgres://x/y --acks a --acks=b",
        ))
        .unwrap() else {
            panic!("verify mode expected")
        };
        assert_eq!(v.database_url, "postgres://x/y");
        assert_eq!(v.acks, vec![PathBuf::from("a"), PathBuf::from("b")]);
    }
}
