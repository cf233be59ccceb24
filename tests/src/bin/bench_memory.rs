//! Peak memory of a function process while it handles each sample event, for
//! `scripts/bench.sh`. Each event goes to a fresh process of the given binary, which takes it
//! from a minimal Lambda Runtime API on 127.0.0.1 and works against moto (and, for
//! promote-image, the Image Builder loopback) seeded afresh, so each number is that event's own
//! peak. The peak resident set (VmHWM) is read when the process polls for its next event, then
//! the process is stopped.
//!
//! Usage: `bench_memory <function binary> <function name> <results.json> <event.json>...`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use integration_tests::seed::{self, function_env};
use integration_tests::testbed::TestBed;
use integration_tests::{launch_support, ACCOUNT, REGION};
use serde_json::{json, Value};

const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
const RUNTIME_PREFIX: &str = "/2018-06-01/runtime";

/// The standing host the launch-host tests configure, so a promotion has a host to replace.
const STANDING_HOSTS: &str = r#"[{"owner":"bob","team":"platform","instance_type":"t3.large"}]"#;

/// What the Runtime API saw the function process do.
enum Seen {
    /// A poll for an event; `0` is the first one, made when init has finished.
    Poll(usize),
    Response(Value),
    Error(Value),
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, binary, function, out, events @ ..] = args.as_slice() else {
        eprintln!("usage: bench_memory <binary> <function name> <results.json> <event.json>...");
        std::process::exit(2);
    };
    let binary = PathBuf::from(binary);
    let logs = std::env::temp_dir().join(format!("bench-memory-{}", std::process::id()));
    std::fs::create_dir_all(&logs).expect("creating the log directory");

    let mut results = Vec::new();
    match function.as_str() {
        "promote-image" => {
            let bed = TestBed::start().await;
            for event in events {
                // Every event meets the account as seeded, as its first delivery would.
                bed.moto.reset();
                seed::seed(&bed.config).await;
                let env = function_env(&bed.moto.url, &bed.imagebuilder.url, &bed.seeded.topic_arn);
                results.push(measure(&binary, function, &env, Path::new(event), &logs));
            }
        }
        "launch-host" => {
            for event in events {
                let moto = launch_support::Moto::start();
                let config = moto.sdk_config().await;
                let seeded = launch_support::seed(&moto, &config).await;
                let mut env =
                    launch_support::launch_env(&seeded, &[("STANDING_HOSTS", STANDING_HOSTS)]);
                env.extend(
                    [
                        ("AWS_DEFAULT_REGION", REGION.to_string()),
                        ("AWS_ENDPOINT_URL", moto.endpoint()),
                        ("AWS_ACCESS_KEY_ID", "testing".into()),
                        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
                        ("AWS_EC2_METADATA_DISABLED", "true".into()),
                        ("AWS_MAX_ATTEMPTS", "1".into()),
                    ]
                    .map(|(k, v)| (k.to_string(), v)),
                );
                results.push(measure(&binary, function, &env, Path::new(event), &logs));
            }
        }
        other => {
            eprintln!("bench_memory: no emulator set-up for {other}; add one here to measure it");
            std::process::exit(2);
        }
    }

    let report = json!({ "function": function, "events": results });
    std::fs::write(out, serde_json::to_vec_pretty(&report).unwrap()).expect("writing results");
    // Function logs are kept only when something failed, for the failure to point at.
    if results.iter().all(|r| r.get("failure").is_none()) {
        let _ = std::fs::remove_dir_all(&logs);
    }
}

/// Runs one invocation of `event` in a fresh process and reads its memory afterwards.
fn measure(
    binary: &Path,
    function: &str,
    env: &[(String, String)],
    event: &Path,
    logs: &Path,
) -> Value {
    let name = event
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let log = logs.join(format!("{name}.log"));
    let log = log.as_path();
    let body = std::fs::read(event).unwrap_or_else(|e| panic!("reading {}: {e}", event.display()));
    let api = RuntimeApi::start(body, function);
    let mut child = spawn(binary, function, env, api.port, log);

    let deadline = Instant::now() + INVOKE_TIMEOUT;
    let (mut init_peak, mut outcome) = (None, None);
    let result = loop {
        match api.seen.recv_timeout(Duration::from_millis(20)) {
            Ok(Seen::Poll(0)) => init_peak = status_kb(child.id(), "VmHWM"),
            Ok(Seen::Poll(_)) => {
                break json!({
                    "outcome": outcome,
                    "peak_kb": status_kb(child.id(), "VmHWM"),
                    "rss_kb": status_kb(child.id(), "VmRSS"),
                    "init_peak_kb": init_peak,
                })
            }
            Ok(Seen::Response(v)) => {
                let label = ["decision", "action", "outcome"]
                    .iter()
                    .find_map(|k| v[k].as_str());
                outcome = Some(label.unwrap_or("response").to_string())
            }
            Ok(Seen::Error(v)) => {
                outcome = Some(format!(
                    "error {}",
                    v["errorType"].as_str().unwrap_or("(no type)")
                ))
            }
            Err(_) => {
                if let Ok(Some(status)) = child.try_wait() {
                    break json!({ "failure": format!("the process exited ({status}); log: {}", log.display()) });
                }
                if Instant::now() > deadline {
                    break json!({ "failure": format!("no second poll within {INVOKE_TIMEOUT:?}") });
                }
            }
        }
    };

    let _ = child.kill();
    let _ = child.wait();
    drop(api);
    eprintln!("bench_memory: {name}: {result}");
    let mut entry = json!({ "event": name });
    if let (Some(fields), Value::Object(measured)) = (entry.as_object_mut(), result) {
        fields.extend(measured);
    }
    entry
}

fn spawn(binary: &Path, function: &str, env: &[(String, String)], port: u16, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("creating the function log");
    let missing = std::env::temp_dir().join("bench-memory-no-aws-profile");
    Command::new(binary)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_CONFIG_FILE", &missing)
        .env("AWS_SHARED_CREDENTIALS_FILE", &missing)
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_FORMAT", "json")
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()))
}

/// A value in kB from `/proc/<pid>/status`, such as `VmHWM` (the peak resident set).
fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The Lambda Runtime API for exactly one invocation: the first poll gets the event, later
/// polls are held open until the process is stopped.
struct RuntimeApi {
    port: u16,
    seen: mpsc::Receiver<Seen>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RuntimeApi {
    fn start(event: Vec<u8>, function: &str) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the Runtime API");
        let port = listener.local_addr().expect("local address").port();
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let (tx, seen) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(AtomicUsize::new(0));
        let event = Arc::new(event);
        let function_arn: Arc<str> =
            format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}").into();
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (tx, polls) = (tx.clone(), polls.clone());
                            let (event, arn) = (event.clone(), function_arn.clone());
                            std::thread::spawn(move || {
                                let _ = serve(stream, &tx, &polls, &event, &arn);
                            });
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        RuntimeApi {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves the requests of one keep-alive connection until the client closes it.
fn serve(
    stream: TcpStream,
    tx: &mpsc::Sender<Seen>,
    polls: &AtomicUsize,
    event: &[u8],
    function_arn: &str,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;

        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let path = path.strip_prefix(RUNTIME_PREFIX).unwrap_or(path);
        let parsed = || serde_json::from_slice(&body).unwrap_or(Value::Null);
        match (method, path) {
            ("GET", "/invocation/next") => {
                let n = polls.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send(Seen::Poll(n));
                if n > 0 {
                    // Held until the process is stopped: nothing more to invoke.
                    std::io::copy(&mut reader, &mut std::io::sink())?;
                    return Ok(());
                }
                write_event(&mut writer, event, function_arn)?;
            }
            ("POST", p) if p.ends_with("/response") => {
                let _ = tx.send(Seen::Response(parsed()));
                accepted(&mut writer)?;
            }
            ("POST", p) if p.ends_with("/error") => {
                let _ = tx.send(Seen::Error(parsed()));
                accepted(&mut writer)?;
            }
            _ => writer.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?,
        }
    }
}

fn write_event(writer: &mut TcpStream, event: &[u8], function_arn: &str) -> std::io::Result<()> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
         Lambda-Runtime-Aws-Request-Id: bench-memory-1\r\n\
         Lambda-Runtime-Deadline-Ms: {}\r\n\
         Lambda-Runtime-Invoked-Function-Arn: {function_arn}\r\n\
         Content-Length: {}\r\n\r\n",
        now_ms + 900_000,
        event.len()
    );
    writer.write_all(head.as_bytes())?;
    writer.write_all(event)
}

fn accepted(writer: &mut TcpStream) -> std::io::Result<()> {
    writer.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}")
}
