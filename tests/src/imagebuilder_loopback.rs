//! Image Builder has no emulator, so this serves its REST-JSON responses on loopback to the
//! real SDK client: `GET /GetImage?imageBuildVersionArn=...` and `POST /ListImageScanFindings`.
//! Responses come from `events/imagebuilder/` (`get-image-<name>-<x.y.z>-<build>.json`,
//! `list-image-scan-findings-<name>-<x.y.z>-<build>.json`); tests may replace one at runtime.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

#[derive(Default)]
struct State {
    /// `(operation, arn)` -> response body replacing the file.
    overrides: HashMap<(String, String), Value>,
    /// Every request seen, as `OPERATION arn`.
    requests: Vec<String>,
}

pub struct ImageBuilderLoopback {
    pub url: String,
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ImageBuilderLoopback {
    /// Serves the files in `dir` on a free 127.0.0.1 port until dropped.
    pub fn start(dir: PathBuf) -> ImageBuilderLoopback {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("binding the Image Builder loopback");
        let port = listener.local_addr().expect("local addr").port();
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let _ = serve(stream, &dir, &state);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        ImageBuilderLoopback {
            url: format!("http://127.0.0.1:{port}"),
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Replaces the GetImage response for `arn` (for example, a scan that has now completed).
    pub fn set_image(&self, arn: &str, response: Value) {
        self.state
            .lock()
            .unwrap()
            .overrides
            .insert(("GetImage".into(), arn.into()), response);
    }

    /// The requests served so far, as `GetImage <arn>` or `ListImageScanFindings <arn>`.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for ImageBuilderLoopback {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `arn:...:image/<name>/<x.y.z>/<build>` -> `<name>-<x.y.z>-<build>`
pub fn fixture_stem(arn: &str) -> Option<String> {
    let (_, path) = arn.split_once(":image/")?;
    let parts: Vec<&str> = path.split('/').collect();
    (parts.len() == 3).then(|| parts.join("-"))
}

fn serve(stream: TcpStream, dir: &std::path::Path, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);

    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body)?;

    let mut words = request_line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (status, payload) = respond(method, path, query, &body, dir, state);

    let text = payload.to_string();
    let mut out = stream;
    let error_header = if status == 200 {
        String::new()
    } else {
        format!(
            "x-amzn-ErrorType: {}\r\n",
            payload["__type"].as_str().unwrap_or("ServiceException")
        )
    };
    write!(
        out,
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\n{error_header}\
         x-amzn-RequestId: loopback\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        if status == 200 { "OK" } else { "Error" },
        text.len()
    )?;
    out.flush()
}

fn respond(
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
    dir: &std::path::Path,
    state: &Mutex<State>,
) -> (u16, Value) {
    let (operation, arn) = match (method, path) {
        ("GET", "/GetImage") => {
            let arn = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "imageBuildVersionArn")
                .map(|(_, v)| percent_decode(v))
                .unwrap_or_default();
            ("GetImage", arn)
        }
        ("POST", "/ListImageScanFindings") => {
            let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let arn = request["filters"][0]["values"][0]
                .as_str()
                .unwrap_or_default()
                .to_string();
            ("ListImageScanFindings", arn)
        }
        _ => {
            return (
                400,
                json!({"__type": "InvalidRequestException", "message": format!("{method} {path} is not served by the loopback")}),
            )
        }
    };

    let mut st = state.lock().unwrap();
    st.requests.push(format!("{operation} {arn}"));
    if let Some(v) = st.overrides.get(&(operation.to_string(), arn.clone())) {
        return (200, v.clone());
    }
    drop(st);

    let file = fixture_stem(&arn).map(|stem| {
        let prefix = if operation == "GetImage" {
            "get-image"
        } else {
            "list-image-scan-findings"
        };
        dir.join(format!("{prefix}-{stem}.json"))
    });
    match file.and_then(|f| std::fs::read_to_string(f).ok()) {
        Some(text) => match serde_json::from_str(&text) {
            Ok(v) => (200, v),
            Err(e) => (
                500,
                json!({"__type": "ServiceException", "message": format!("bad fixture: {e}")}),
            ),
        },
        None if operation == "ListImageScanFindings" => {
            (200, json!({"requestId": "loopback", "findings": []}))
        }
        None => (
            404,
            json!({"__type": "ResourceNotFoundException", "message": format!("Image {arn} not found")}),
        ),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_map_to_fixture_names() {
        assert_eq!(
            fixture_stem("arn:aws:imagebuilder:us-east-1:123456789012:image/vscode-host/1.0.0/7")
                .as_deref(),
            Some("vscode-host-1.0.0-7")
        );
        assert_eq!(percent_decode("arn%3Aaws%3Aimage%2Fx"), "arn:aws:image/x");
    }
}
