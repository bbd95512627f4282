//! A worker's broker connection that stalls without an error — the socket stays open, nothing
//! crosses it (a half-dead NAT entry, a wedged proxy) — is noticed by the worker's idle check,
//! which reconnects; the job whose message went into the stalled socket comes back when that
//! connection finally ends. Without the check the worker waits on the dead consumer until
//! AMQP heartbeats time out (minutes at RabbitMQ's 60 s default).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::env::{TestEnv, id_of, sample, services_exclusive};

/// What a proxied connection does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Link {
    Flowing,
    /// Nothing is forwarded either way; both sockets stay open.
    Stalled,
    /// Both sockets are closed.
    Cut,
}

/// A TCP proxy to RabbitMQ whose existing connections can be stalled and later cut; new
/// connections always flow.
struct StallProxy {
    addr: SocketAddr,
    links: Arc<Mutex<Vec<watch::Sender<Link>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StallProxy {
    async fn start(upstream: SocketAddr) -> StallProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let links: Arc<Mutex<Vec<watch::Sender<Link>>>> = Arc::default();
        let registry = links.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (tx, rx) = watch::channel(Link::Flowing);
                registry.lock().expect("links").push(tx);
                tokio::spawn(pipe(client, upstream, rx));
            }
        });
        StallProxy { addr, links, task }
    }

    fn set_all(&self, link: Link) -> usize {
        let links = self.links.lock().expect("links");
        for l in links.iter() {
            let _ = l.send(link);
        }
        links.len()
    }
}

async fn pipe(mut client: TcpStream, upstream: SocketAddr, mut link: watch::Receiver<Link>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut a, mut b) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    loop {
        if *link.borrow_and_update() != Link::Flowing {
            break;
        }
        // Reads are cancel-safe: whatever a lost branch would have read stays in the socket.
        tokio::select! {
            _ = link.changed() => continue,
            n = client.read(&mut a) => match n {
                Ok(n) if n > 0 && server.write_all(&a[..n]).await.is_ok() => {}
                _ => return,
            },
            n = server.read(&mut b) => match n {
                Ok(n) if n > 0 && client.write_all(&b[..n]).await.is_ok() => {}
                _ => return,
            },
        }
    }
    // Stalled: hold both sockets, forward nothing, until cut.
    let _ = link.wait_for(|l| *l == Link::Cut).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_broker_connection_is_noticed_and_no_job_is_lost() {
    let _services = services_exclusive().await;
    let env = TestEnv::with("broker_stall", &[("ORFEAS__WORKER__STALL_CHECK_MS", "300")]).await;
    let api = env.start_api().await;
    let broker: SocketAddr = "127.0.0.1:5672".parse().expect("addr");
    let proxy = StallProxy::start(broker).await;
    let mut via_proxy = env.config.clone();
    via_proxy.amqp.url = env
        .config
        .amqp
        .url
        .replace("127.0.0.1:5672", &proxy.addr.to_string());
    assert_ne!(
        via_proxy.amqp.url, env.config.amqp.url,
        "the worker goes through the proxy"
    );
    let worker = env.start_worker_with(via_proxy).await;
    let image = sample("star.png");
    let opts = Some(r#"{"octree_resolution": 96}"#);

    // A first job proves the worker consumes through the proxy.
    let (_, job) = api.submit(&image, opts, None).await;
    let end = api
        .wait_terminal(&id_of(&job), Duration::from_secs(60))
        .await;
    assert_eq!(end["status"], "succeeded", "{end}");

    assert!(
        proxy.set_all(Link::Stalled) >= 1,
        "the worker's connection is proxied"
    );
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, job) = api.submit(&image, opts, None).await;
        assert_eq!(status, 202, "{job}");
        ids.push(id_of(&job));
    }
    // While the stalled connection is still open (and its heartbeats minutes from timing out),
    // the worker notices and reconnects: every job but the one the broker handed to the
    // stalled consumer finishes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let stuck = loop {
        let mut open = Vec::new();
        for id in &ids {
            let (_, j) = api.get(&format!("/api/jobs/{id}")).await;
            match j["status"].as_str() {
                Some("succeeded") => {}
                Some("queued" | "running") => open.push(id.clone()),
                other => panic!("job {id} is {other:?} while the connection is stalled: {j}"),
            }
        }
        if open.len() <= 1 {
            break open;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker did not get past the stalled connection: {open:?} still queued"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The stalled connection ends (as the broker's heartbeat timeout would end it): the
    // message it held goes back to the queue and runs.
    proxy.set_all(Link::Cut);
    for id in stuck.iter().chain(&ids) {
        let end = api.wait_terminal(id, Duration::from_secs(60)).await;
        assert_eq!(end["status"], "succeeded", "{end}");
        assert_eq!(end["attempt"], 1, "{end}");
    }
    worker.stop().await;
    proxy.task.abort();
    api.stop().await;
    env.cleanup().await;
}
