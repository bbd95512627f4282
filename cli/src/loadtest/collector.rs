//! Collecting what the run saw: each arrival (dropped, or submitted and how it was answered)
//! and each accepted job's end, as the run's tasks send them, turned at the end into
//! [`Results`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::follow::{Ending, Finished};
use super::results::{JobRow, Outcome, Results, Timeline, secs};
use super::submit::{Answer, Submission};

/// One thing that happened, sent by the run's tasks.
#[derive(Debug)]
pub enum Record {
    /// The `n`-th arrival found `--max-in-flight` jobs in flight and was not sent.
    Dropped { n: u64, at: Instant },
    /// The `n`-th arrival, due at `due`, was submitted.
    Submitted {
        n: u64,
        image: String,
        due: Instant,
        submission: Submission,
    },
    /// The `n`-th arrival's job ended (or was lost).
    Finished { n: u64, finished: Finished },
}

#[derive(Debug)]
struct Entry {
    image: String,
    due: Instant,
    submission: Submission,
    finished: Option<Finished>,
}

/// The records of one run, as they come.
#[derive(Debug)]
pub struct Collector {
    start: Instant,
    dropped: Vec<(u64, Instant)>,
    jobs: BTreeMap<u64, Entry>,
}

impl Collector {
    pub fn new(start: Instant) -> Collector {
        Collector {
            start,
            dropped: Vec::new(),
            jobs: BTreeMap::new(),
        }
    }

    pub fn record(&mut self, r: Record) {
        match r {
            Record::Dropped { n, at } => self.dropped.push((n, at)),
            Record::Submitted {
                n,
                image,
                due,
                submission,
            } => {
                self.jobs.insert(
                    n,
                    Entry {
                        image,
                        due,
                        submission,
                        finished: None,
                    },
                );
            }
            Record::Finished { n, finished } => {
                if let Some(e) = self.jobs.get_mut(&n) {
                    e.finished = Some(finished);
                }
            }
        }
    }

    /// The figures; `window` is the arrival window's length.
    pub fn finish(self, window: Duration) -> Results {
        let start = self.start;
        let at = |i: Instant| secs(i.saturating_duration_since(start));
        let mut r = Results {
            window_s: secs(window),
            dropped: self.dropped.len() as u64,
            ..Results::default()
        };
        let mut timeline = Timeline::default();
        let mut rows = Vec::with_capacity(self.jobs.len() + self.dropped.len());
        for &(n, when) in &self.dropped {
            timeline.at(at(when)).arrivals += 1;
            timeline.at(at(when)).dropped += 1;
            rows.push(JobRow::new(n, Outcome::Dropped, at(when)));
        }
        let mut first_sent: Option<Instant> = None;
        let mut last_end: Option<Instant> = None;
        for (n, e) in self.jobs {
            let s = &e.submission;
            r.sent += 1;
            r.submit.push(secs(s.latency));
            let lag = secs(s.sent.saturating_duration_since(e.due));
            r.lag.push(lag);
            first_sent = Some(first_sent.map_or(s.sent, |f| f.min(s.sent)));
            timeline.at(at(e.due)).arrivals += 1;
            let answered_at = at(s.sent + s.latency);
            let mut row = JobRow::new(n, Outcome::NoAnswer, at(e.due));
            row.image = Some(e.image);
            row.lag_s = Some(lag);
            row.submit_s = Some(secs(s.latency));
            match &s.answer {
                Answer::NoAnswer { reason } => {
                    *r.no_answer.entry((*reason).to_owned()).or_default() += 1;
                    row.code = Some((*reason).to_owned());
                }
                Answer::Refused {
                    status,
                    code,
                    retry_after,
                } => {
                    // A refusal is counted, never retried: a retry would be a new arrival the
                    // schedule did not make, and would hide the refusal rate.
                    let code = code.clone().unwrap_or_else(|| "-".to_owned());
                    r.refused
                        .entry((*status, code.clone()))
                        .or_default()
                        .add(retry_after.as_deref());
                    if *status == 429 {
                        r.refused_429 += 1;
                    }
                    timeline.at(answered_at).refused += 1;
                    row.outcome = Outcome::Refused;
                    row.http_status = Some(*status);
                    row.code = Some(code);
                }
                Answer::Accepted { id } => {
                    r.accepted += 1;
                    timeline.at(answered_at).accepted += 1;
                    row.http_status = Some(202);
                    row.id = Some(id.clone());
                    match &e.finished {
                        None => {
                            r.unfinished += 1;
                            row.outcome = Outcome::Unfinished;
                        }
                        Some(f) => {
                            r.job_ended(f, s, &mut row);
                            if !matches!(f.ending, Ending::Lost { .. }) {
                                timeline.at(at(f.observed)).completed += 1;
                                last_end = Some(last_end.map_or(f.observed, |l| l.max(f.observed)));
                            }
                        }
                    }
                }
            }
            rows.push(row);
        }
        if let (Some(f), Some(l)) = (first_sent, last_end) {
            r.span_s = secs(l.saturating_duration_since(f));
        }
        rows.sort_by_key(|row| row.n);
        r.arrivals = rows.len() as u64;
        r.jobs = rows;
        r.timeline = timeline.finish();
        r
    }
}

#[cfg(test)]
mod tests {
    use orfeas_vocab::Stage;

    use super::*;

    fn submission(sent: Instant, answer: Answer) -> Submission {
        Submission {
            answer,
            sent,
            latency: Duration::from_millis(10),
        }
    }

    fn ended(observed: Instant, ending: Ending, batch: i32) -> Finished {
        Finished {
            ending,
            observed,
            queue_wait: Some(0.5),
            run: Some(1.0),
            stages: vec![(Stage::ShapeGeneration, 0.75)],
            batch_size: Some(batch),
            attempts: 1,
        }
    }

    fn close(got: Option<f64>, want: f64) {
        assert!(
            got.is_some_and(|g| (g - want).abs() < 1e-9),
            "{got:?}, expected {want}"
        );
    }

    #[test]
    fn every_arrival_is_counted_once_by_how_it_ended() {
        let start = Instant::now();
        let s = |ms| start + Duration::from_millis(ms);
        let mut c = Collector::new(start);
        let accepted = |id: &str| Answer::Accepted { id: id.into() };
        for (n, answer) in [
            (0, accepted("a")),
            (1, accepted("b")),
            (
                2,
                Answer::Refused {
                    status: 429,
                    code: Some("too_many_jobs".into()),
                    retry_after: Some("5".into()),
                },
            ),
            (3, Answer::NoAnswer { reason: "timeout" }),
            (4, accepted("c")),
            (5, accepted("d")),
        ] {
            c.record(Record::Submitted {
                n,
                image: "x.png".into(),
                due: s(n * 100),
                submission: submission(s(n * 100 + 1), answer),
            });
        }
        c.record(Record::Dropped { n: 6, at: s(600) });
        c.record(Record::Finished {
            n: 0,
            finished: ended(s(2_000), Ending::Succeeded, 2),
        });
        c.record(Record::Finished {
            n: 1,
            finished: ended(
                s(2_500),
                Ending::Failed {
                    code: "no_foreground".into(),
                },
                2,
            ),
        });
        c.record(Record::Finished {
            n: 4,
            finished: ended(
                s(3_000),
                Ending::Lost {
                    reason: "gone".into(),
                },
                1,
            ),
        });
        let r = c.finish(Duration::from_secs(1));
        assert_eq!((r.arrivals, r.dropped, r.sent, r.accepted), (7, 1, 6, 4));
        let throttled = r.refused.get(&(429, "too_many_jobs".into()));
        assert_eq!(
            throttled.map(|t| (t.count, t.retry_after.as_slice())),
            Some((1, ["5".to_owned()].as_slice()))
        );
        assert_eq!(r.no_answer.get("timeout"), Some(&1));
        assert_eq!(
            (r.succeeded, r.failed_total(), r.lost, r.unfinished),
            (1, 1, 1, 1)
        );
        assert_eq!(r.completed(), 2);
        assert_eq!(r.error_rate(), Some(5.0 / 6.0));
        assert_eq!(r.submit_error_rate(), Some(2.0 / 6.0));
        assert_eq!(r.throttled_rate(), Some(1.0 / 6.0));
        assert_eq!(r.fail_rate(), Some(3.0 / 4.0));
        assert_eq!(r.dropped_rate(), Some(1.0 / 7.0));
        // Only the succeeded job's latency; e2e from its send (1 ms) to its end (2 s).
        assert_eq!(r.e2e.len(), 1);
        close(r.e2e.clone().max(), 1.999);
        assert_eq!(
            r.batch_sizes,
            BTreeMap::from([(2, 2)]),
            "the lost job has none"
        );
        assert_eq!(r.stages.get(&Stage::ShapeGeneration), Some(&(0.75, 1)));
        close(Some(r.span_s), 2.499);
        let outcomes: Vec<Outcome> = r.jobs.iter().map(|j| j.outcome).collect();
        assert_eq!(
            outcomes,
            [
                Outcome::Succeeded,
                Outcome::Failed,
                Outcome::Refused,
                Outcome::NoAnswer,
                Outcome::Lost,
                Outcome::Unfinished,
                Outcome::Dropped
            ]
        );
        let t = &r.timeline;
        assert_eq!(t.iter().map(|s| s.arrivals).sum::<u64>(), 7);
        assert_eq!(t[0].accepted, 4);
        assert_eq!(t[0].in_flight, 4);
        assert_eq!(t[2].completed, 2, "ends at 2.0 s and 2.5 s");
        assert_eq!(t[2].in_flight, 2);
    }
}
