//! The command line of `orfeas loadtest`, parsed into typed values before any load is sent:
//! durations and rates with their units, the arrival profile, thresholds, the options template
//! and the images. Every problem is an [`ArgError`], which the command reports as a usage error.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgGroup, Args};

use super::schedule::Profile;
use super::submit::Images;
use super::threshold::Threshold;

/// A bad argument: what was given and why it cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError(pub String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

pub(crate) fn arg_error(message: impl Into<String>) -> ArgError {
    ArgError(message.into())
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("arrivals").required(true).args(["rate", "ramp"])))]
pub struct LoadtestArgs {
    /// The job API's base URL.
    #[arg(long, env = "ORFEAS_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// API key (sent as `Authorization: Bearer`).
    #[arg(long, env = "ORFEAS_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// A directory of images (PNG, JPEG, WebP, recognised by their signature), sent in turn.
    #[arg(long)]
    pub images: PathBuf,
    /// The job options sent with every job: a JSON object, or a file holding one.
    #[arg(long, value_name = "FILE_OR_JSON")]
    pub options: Option<String>,
    /// Arrivals per second (Poisson), e.g. `2`, `2/s`, `90/min`.
    #[arg(long)]
    pub rate: Option<Rate>,
    /// A linear ramp of the arrival rate over `--duration`, `FROM:TO` (each like `--rate`).
    #[arg(long, value_name = "FROM:TO")]
    pub ramp: Option<Ramp>,
    /// How long arrivals are generated, e.g. `60s`, `2m`, `500ms`.
    #[arg(long, default_value = "60s")]
    pub duration: DurationArg,
    /// Seed of the arrival schedule: the same seed and profile give the same arrival times.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Jobs in flight (submitting or not yet finished) at most; an arrival beyond it is
    /// dropped by the client and counted, never delayed.
    #[arg(long, default_value_t = 500)]
    pub max_in_flight: usize,
    /// After the load window, how long to wait for jobs still queued or running.
    #[arg(long, default_value = "120s")]
    pub drain_timeout: DurationArg,
    /// A pass/fail condition on the results, e.g. `e2e_p95<30s`, `error_rate<0.01`,
    /// `submit_p99<500ms`, `throughput>=2/s` (repeatable). Any failing one makes the exit
    /// status 1.
    #[arg(long = "threshold", value_name = "METRIC<VALUE")]
    pub thresholds: Vec<Threshold>,
    /// Write the report as JSON here (with every job's figures).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the report as Markdown here.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// No live progress line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Everything a run needs, checked.
#[derive(Debug)]
pub struct Plan {
    pub api: String,
    pub key: Option<String>,
    pub images: Arc<Images>,
    /// The options JSON as sent, `None` for the API's defaults.
    pub options: Option<String>,
    pub profile: Profile,
    pub duration: Duration,
    pub seed: u64,
    pub max_in_flight: usize,
    pub drain_timeout: Duration,
    pub thresholds: Vec<Threshold>,
    pub json: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub quiet: bool,
}

impl LoadtestArgs {
    pub fn plan(self) -> Result<Plan, ArgError> {
        let profile = match (self.rate, self.ramp) {
            (Some(r), None) => Profile::Constant { rate: r.0 },
            (None, Some(Ramp { from, to })) => Profile::Ramp {
                from: from.0,
                to: to.0,
            },
            _ => return Err(arg_error("give one of --rate and --ramp")),
        };
        if self.duration.0.is_zero() {
            return Err(arg_error("--duration must be longer than zero"));
        }
        if self.max_in_flight == 0 {
            return Err(arg_error("--max-in-flight must be at least 1"));
        }
        let api = self.api.trim_end_matches('/').to_owned();
        if !(api.starts_with("http://") || api.starts_with("https://")) {
            return Err(arg_error(format!(
                "--api `{api}`: expected an http:// or https:// URL"
            )));
        }
        Ok(Plan {
            api,
            key: self.key.filter(|k| !k.is_empty()),
            images: Arc::new(Images::load(&self.images)?),
            options: self.options.as_deref().map(options_template).transpose()?,
            profile,
            duration: self.duration.0,
            seed: self.seed,
            max_in_flight: self.max_in_flight,
            drain_timeout: self.drain_timeout.0,
            thresholds: self.thresholds,
            json: self.json,
            markdown: self.markdown,
            quiet: self.quiet,
        })
    }
}

/// The options template: inline JSON when it looks like an object, else a file. It is checked
/// as the API checks an upload's options (unknown fields, types, ranges), so a template the API
/// would refuse with 422 on every job is a usage error instead of a run of failures.
fn options_template(given: &str) -> Result<String, ArgError> {
    let text = if given.trim_start().starts_with('{') {
        given.to_owned()
    } else {
        std::fs::read_to_string(Path::new(given))
            .map_err(|e| arg_error(format!("--options: reading `{given}`: {e}")))?
    };
    let input: orfeas_vocab::JobOptionsInput = serde_json::from_str(&text)
        .map_err(|e| arg_error(format!("--options: not valid job options: {e}")))?;
    input
        .validate(chrono::Utc::now())
        .map_err(|e| arg_error(format!("--options: {e}")))?;
    Ok(text.trim().to_owned())
}

/// A number followed by one of `units` (name, factor to the base unit); `default` when none
/// follows, or an error when a unit is required.
pub(crate) fn number_with_unit(
    given: &str,
    units: &[(&str, f64)],
    default: Option<f64>,
    what: &str,
) -> Result<f64, ArgError> {
    let s = given.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| arg_error(format!("{what} `{given}`: expected a number")))?;
    if !value.is_finite() {
        return Err(arg_error(format!("{what} `{given}`: not a finite number")));
    }
    let unit = unit.trim();
    let factor = if unit.is_empty() {
        default
            .ok_or_else(|| arg_error(format!("{what} `{given}` needs a unit ({})", names(units))))?
    } else {
        units
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                arg_error(format!(
                    "{what} `{given}`: unknown unit `{unit}` (expected {})",
                    names(units)
                ))
            })?
    };
    Ok(value * factor)
}

fn names(units: &[(&str, f64)]) -> String {
    units.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// Duration units, to seconds.
pub(crate) const DURATION_UNITS: &[(&str, f64)] = &[
    ("us", 1e-6),
    ("µs", 1e-6),
    ("ms", 1e-3),
    ("s", 1.0),
    ("m", 60.0),
    ("min", 60.0),
    ("h", 3600.0),
];

/// Rate units, to per second; a bare number is per second.
pub(crate) const RATE_UNITS: &[(&str, f64)] =
    &[("/s", 1.0), ("/min", 1.0 / 60.0), ("/m", 1.0 / 60.0)];

/// A duration with its unit (`500ms`, `60s`, `2m`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DurationArg(pub Duration);

impl FromStr for DurationArg {
    type Err = ArgError;
    fn from_str(s: &str) -> Result<Self, ArgError> {
        let seconds = number_with_unit(s, DURATION_UNITS, None, "duration")?;
        if seconds < 0.0 {
            return Err(arg_error(format!("duration `{s}` is negative")));
        }
        Duration::try_from_secs_f64(seconds)
            .map(DurationArg)
            .map_err(|e| arg_error(format!("duration `{s}`: {e}")))
    }
}

/// Arrivals per second, ≥ 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate(pub f64);

impl FromStr for Rate {
    type Err = ArgError;
    fn from_str(s: &str) -> Result<Self, ArgError> {
        let r = number_with_unit(s, RATE_UNITS, Some(1.0), "rate")?;
        if r < 0.0 {
            return Err(arg_error(format!("rate `{s}` is negative")));
        }
        Ok(Rate(r))
    }
}

/// `FROM:TO`, each a [`Rate`]; not both zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    pub from: Rate,
    pub to: Rate,
}

impl FromStr for Ramp {
    type Err = ArgError;
    fn from_str(s: &str) -> Result<Self, ArgError> {
        let (from, to) = s
            .split_once(':')
            .ok_or_else(|| arg_error(format!("ramp `{s}`: expected FROM:TO, e.g. 1:10")))?;
        let ramp = Ramp {
            from: from.parse()?,
            to: to.parse()?,
        };
        if ramp.from.0 == 0.0 && ramp.to.0 == 0.0 {
            return Err(arg_error(format!("ramp `{s}` sends nothing")));
        }
        Ok(ramp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_known_unit() {
        assert_eq!(
            "500ms".parse::<DurationArg>().map(|d| d.0),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(
            "2m".parse::<DurationArg>().map(|d| d.0),
            Ok(Duration::from_secs(120))
        );
        assert_eq!(
            " 1.5s ".parse::<DurationArg>().map(|d| d.0),
            Ok(Duration::from_millis(1500))
        );
        for bad in ["30", "30x", "s", "-1s", "", "1e400s"] {
            assert!(bad.parse::<DurationArg>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_are_per_second_unless_told() {
        assert_eq!("2".parse::<Rate>(), Ok(Rate(2.0)));
        assert_eq!("2/s".parse::<Rate>(), Ok(Rate(2.0)));
        assert_eq!("90/min".parse::<Rate>(), Ok(Rate(1.5)));
        assert!("-1".parse::<Rate>().is_err());
        assert!("2/h0".parse::<Rate>().is_err());
        assert_eq!(
            "1:10".parse::<Ramp>(),
            Ok(Ramp {
                from: Rate(1.0),
                to: Rate(10.0)
            })
        );
        assert!("0:0".parse::<Ramp>().is_err());
        assert!("5".parse::<Ramp>().is_err());
    }

    #[test]
    fn the_options_template_is_checked_as_the_api_checks_it() {
        let template = r#"{"octree_resolution": 64, "formats": ["stl"]}"#;
        assert_eq!(
            options_template(&format!(" {template}\n")),
            Ok(template.to_owned())
        );
        let range = options_template(r#"{"octree_resolution": 1}"#).expect_err("range");
        assert!(range.0.contains("octree_resolution"), "{range}");
        let unknown = options_template(r#"{"colour": 1}"#).expect_err("unknown field");
        assert!(unknown.0.contains("colour"), "{unknown}");
        let missing = options_template("/nonexistent/options.json").expect_err("no file");
        assert!(missing.0.contains("/nonexistent/options.json"), "{missing}");
    }
}
