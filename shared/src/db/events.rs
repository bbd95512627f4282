//! Job events (`job_events`): transitions of the job row are recorded by triggers (see the
//! `job_events` migration); a running attempt records its stage and progress events here, each
//! guarded by the attempt still owning the job. Streams read what they missed from here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use orfeas_vocab::{JobEvent, JobEventData, JobEventKind, JobId, Stage, Step, overall_percent};
use sqlx::Row;

use super::{Db, DbError};

/// The NOTIFY channel every recorded event is announced on.
pub const EVENTS_CHANNEL: &str = "orfeas_job_events";

/// A queued job's place in its engine's queue and the estimated seconds until it finishes.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
pub struct QueueEstimate {
    pub position: Option<i64>,
    pub eta_seconds: Option<f64>,
}

fn event_from_row(row: &sqlx::postgres::PgRow) -> Result<JobEvent, DbError> {
    let job = JobId(row.try_get("job_id")?);
    let kind: String = row.try_get("kind")?;
    let data: serde_json::Value = row.try_get("data")?;
    let event = JobEventData::from_stored(&kind, data)
        .map_err(|e| DbError::Corrupt(format!("job {job}: event {kind}: {e}")))?;
    Ok(JobEvent {
        job,
        seq: row.try_get("seq")?,
        at: row.try_get::<DateTime<Utc>, _>("at")?,
        event,
    })
}

impl Db {
    async fn attempt_event(
        &self,
        id: JobId,
        attempt: i32,
        event: &JobEventData,
        stage: Stage,
        percent: i16,
    ) -> Result<Option<bool>, DbError> {
        Ok(
            sqlx::query_scalar("SELECT orfeas_attempt_event($1, $2, $3, $4, $5, $6)")
                .bind(id.0)
                .bind(attempt)
                .bind(event.kind().as_str())
                .bind(event.stored_data())
                .bind(stage)
                .bind(percent)
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Records the stage an attempt is entering; returns whether the attempt should stop (a
    /// cancel was requested, or another attempt owns the job now).
    pub async fn enter_stage(
        &self,
        id: JobId,
        attempt: i32,
        stage: Stage,
    ) -> Result<bool, DbError> {
        let event = JobEventData::StageStarted { stage };
        let stop = self
            .attempt_event(id, attempt, &event, stage, overall_percent(stage, None))
            .await?;
        Ok(stop.unwrap_or(true))
    }

    /// Records the end of a stage of a running attempt.
    pub async fn stage_finished(
        &self,
        id: JobId,
        attempt: i32,
        stage: Stage,
        elapsed: Duration,
        ok: bool,
    ) -> Result<(), DbError> {
        let event = JobEventData::StageFinished {
            stage,
            seconds: elapsed.as_secs_f64(),
            ok,
        };
        self.attempt_event(id, attempt, &event, stage, 0).await?;
        Ok(())
    }

    /// Records progress within the running stage (dropped once that stage has finished).
    /// Callers throttle: every call is an event.
    pub async fn record_progress(
        &self,
        id: JobId,
        attempt: i32,
        stage: Stage,
        step: Option<(Step, u32, u32)>,
    ) -> Result<(), DbError> {
        let percent = overall_percent(stage, step);
        let event = JobEventData::Progress {
            percent,
            stage,
            step: step.map(|s| s.0),
            done: step.map(|s| s.1),
            total: step.map(|s| s.2),
        };
        self.attempt_event(id, attempt, &event, stage, percent)
            .await?;
        Ok(())
    }

    /// A job's events after `after`, oldest first, at most `limit`.
    pub async fn events_after(
        &self,
        id: JobId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<JobEvent>, DbError> {
        if after < 1 {
            // A submission does not write its `queued` event; the first reader does.
            sqlx::query("SELECT orfeas_materialize_queued($1)")
                .bind(id.0)
                .execute(self.pool())
                .await?;
        }
        let rows = sqlx::query(
            "SELECT job_id, seq, kind, data, at FROM job_events \
             WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(id.0)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Where a queued job stands in its engine's queue now.
    pub async fn queue_estimate(&self, id: JobId) -> Result<QueueEstimate, DbError> {
        let v: Option<serde_json::Value> = sqlx::query_scalar("SELECT orfeas_queue_estimate($1)")
            .bind(id.0)
            .fetch_one(self.pool())
            .await?;
        match v {
            Some(v) => serde_json::from_value(v)
                .map_err(|e| DbError::Corrupt(format!("job {id}: queue estimate: {e}"))),
            None => Ok(QueueEstimate {
                position: None,
                eta_seconds: None,
            }),
        }
    }

    /// Refreshes the run-time and throughput figures queue estimates read, from the jobs that
    /// finished within the windows.
    pub async fn refresh_estimates(
        &self,
        runs_window: Duration,
        rate_window: Duration,
    ) -> Result<(), DbError> {
        sqlx::query("SELECT orfeas_refresh_estimates($1, $2)")
            .bind(runs_window.as_secs_f64())
            .bind(rate_window.as_secs_f64())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// What the event channel said.
#[derive(Debug)]
pub enum Notice {
    /// An event, whole.
    Event(Box<JobEvent>),
    /// An event too large for a notification: read it from the table.
    Hint { job: JobId, seq: i64 },
    /// The connection was lost and is back: notifications in between are gone, so whoever
    /// follows a job reads what it missed from the table.
    Reconnected,
}

/// A connection LISTENing on [`EVENTS_CHANNEL`]; reconnects by itself.
#[derive(Debug)]
pub struct EventListener {
    listener: sqlx::postgres::PgListener,
}

#[derive(serde::Deserialize)]
struct HintPayload {
    job: uuid::Uuid,
    seq: i64,
}

impl EventListener {
    /// The next notice; an error means the database is unreachable now (call again to retry).
    pub async fn recv(&mut self) -> Result<Notice, DbError> {
        let Some(n) = self.listener.try_recv().await? else {
            return Ok(Notice::Reconnected);
        };
        let payload = n.payload();
        if let Ok(event) = serde_json::from_str::<JobEvent>(payload) {
            return Ok(Notice::Event(Box::new(event)));
        }
        let hint: HintPayload = serde_json::from_str(payload)
            .map_err(|e| DbError::Corrupt(format!("event notification `{payload}`: {e}")))?;
        Ok(Notice::Hint {
            job: JobId(hint.job),
            seq: hint.seq,
        })
    }
}

impl Db {
    /// Starts listening for job events.
    pub async fn listen_events(&self) -> Result<EventListener, DbError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(self.pool()).await?;
        listener.listen(EVENTS_CHANNEL).await?;
        Ok(EventListener { listener })
    }

    /// A job's last event: its sequence number and kind.
    pub async fn last_event(&self, id: JobId) -> Result<Option<(i64, JobEventKind)>, DbError> {
        let row = sqlx::query(
            "SELECT seq, kind FROM job_events WHERE job_id = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(id.0)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            let kind: String = r.try_get("kind")?;
            let kind = kind
                .parse::<JobEventKind>()
                .map_err(|e| DbError::Corrupt(format!("job {id}: event kind: {e}")))?;
            Ok((r.try_get("seq")?, kind))
        })
        .transpose()
    }
}
