//! A real `orfeas` service process as an operator runs it: configured only through `ORFEAS__`
//! variables, the default log filter (no `RUST_LOG`), its log lines collected, stopped with
//! SIGTERM.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::env::TestEnv;

pub struct Process {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Process {
    /// `orfeas <command>` with the test's configuration and `extra` settings.
    pub fn spawn(env: &TestEnv, command: &str, extra: &[(&str, &str)]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_orfeas"))
            .arg(command)
            .envs(env.vars.iter().cloned())
            .envs(extra.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn orfeas {command}: {e}"));
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().expect("lines").push(line);
            }
        });
        Process {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// Its log so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    /// The first log line that `matches`, waiting up to `timeout` for it.
    pub async fn wait_line(&mut self, timeout: Duration, matches: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| matches(l)) {
                return line;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("exited with {status} before the line: {:#?}", self.lines());
            }
            assert!(
                start.elapsed() < timeout,
                "no such line in {timeout:?}: {:#?}",
                self.lines()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then waits for a clean exit: the process flushes its pending spans on the way.
    pub async fn terminate(mut self, timeout: Duration) -> Vec<String> {
        let term = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(term.success());
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "still running {timeout:?} after SIGTERM: {:#?}",
                    self.lines()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // Its last lines, up to the end of its stderr.
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        assert!(status.success(), "exit {status}: {:#?}", self.lines());
        self.lines()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A failed assertion must not leave the process running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
