//! A local stand-in for an OpenAI-compatible inference server (vLLM, TGI, llama.cpp's server),
//! for tests: it serves one model, `stand-in`, translates the Turkish sentences it knows (any
//! other prompt gets an English sentence that keeps no name or number), and can be told to
//! misbehave: answer 429 with `Retry-After`, 500, a body that is not JSON, drop the connection,
//! or stall. It counts requests per known sentence and the most it had in flight at once.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const MODEL: &str = "stand-in";

/// What the server does to the next completion request instead of answering it.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// This status and body, with `Retry-After: secs` when given.
    Status(u16, String, Option<u32>),
    /// Closes the connection without an answer.
    Drop,
    /// Waits this long, then closes the connection.
    Stall(Duration),
    /// 200 with a body that is not JSON.
    Malformed,
}

#[derive(Default)]
struct State {
    faults: VecDeque<Fault>,
    /// Completion requests per known Turkish sentence.
    asked: HashMap<String, usize>,
    completions: usize,
    in_flight: usize,
    most_in_flight: usize,
    /// The `Authorization` headers seen.
    auth: Vec<String>,
    /// Every fault after this many completions (a server that died).
    dead_after: Option<usize>,
}

pub struct OpenAiServer {
    pub url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    /// Known Turkish sentences and their English.
    dictionary: Arc<Vec<(String, String)>>,
    delay: Duration,
}

impl OpenAiServer {
    /// Starts a server that knows `dictionary` and takes `delay` over every completion.
    pub fn start(dictionary: &[(&str, &str)], delay: Duration) -> OpenAiServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let server = OpenAiServer {
            url,
            state: Arc::default(),
            stop: Arc::default(),
            dictionary: Arc::new(
                dictionary
                    .iter()
                    .map(|(tr, en)| (tr.to_string(), en.to_string()))
                    .collect(),
            ),
            delay,
        };
        let (state, stop, dict) = (
            server.state.clone(),
            server.stop.clone(),
            server.dictionary.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (state, dict) = (state.clone(), dict.clone());
                std::thread::spawn(move || serve(stream, &state, &dict, delay));
            }
        });
        server
    }

    /// The next completion requests get these faults, in order.
    pub fn fault(&self, faults: &[Fault]) {
        self.state
            .lock()
            .unwrap()
            .faults
            .extend(faults.iter().cloned());
    }

    /// From the `n`-th completion on, every request is dropped (the server died).
    pub fn die_after(&self, n: usize) {
        self.state.lock().unwrap().dead_after = Some(n);
    }

    /// The server is back: no more dropped requests.
    pub fn revive(&self) {
        self.state.lock().unwrap().dead_after = None;
    }

    /// Completion requests that asked for `sentence`.
    pub fn asked(&self, sentence: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .asked
            .get(sentence)
            .copied()
            .unwrap_or(0)
    }

    pub fn completions(&self) -> usize {
        self.state.lock().unwrap().completions
    }

    pub fn most_in_flight(&self) -> usize {
        self.state.lock().unwrap().most_in_flight
    }

    pub fn auth_headers(&self) -> Vec<String> {
        self.state.lock().unwrap().auth.clone()
    }
}

impl Drop for OpenAiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so that it sees the stop.
        let _ = TcpStream::connect(
            self.url
                .trim_start_matches("http://")
                .trim_end_matches("/v1"),
        );
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, dict: &[(String, String)], delay: Duration) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((&header, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "authorization" => state.lock().unwrap().auth.push(value.trim().to_string()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut out = stream;
    match (method.as_str(), path.as_str()) {
        ("GET", "/v1/models") => {
            let list =
                serde_json::json!({"object": "list", "data": [{"id": MODEL, "object": "model"}]});
            respond(&mut out, 200, &list.to_string(), None);
        }
        ("POST", "/v1/chat/completions" | "/v1/completions") => {
            complete(&mut out, &path, &body, state, dict, delay)
        }
        _ => respond(
            &mut out,
            404,
            r#"{"error":{"message":"no such route"}}"#,
            None,
        ),
    }
}

fn complete(
    out: &mut TcpStream,
    path: &str,
    body: &[u8],
    state: &Mutex<State>,
    dict: &[(String, String)],
    delay: Duration,
) {
    let request: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return respond(out, 400, r#"{"error":{"message":"bad JSON"}}"#, None),
    };
    if request["model"] != MODEL {
        let msg = format!(
            r#"{{"error":{{"message":"The model `{}` does not exist."}}}}"#,
            request["model"]
        );
        return respond(out, 404, &msg, None);
    }
    let chat = path.ends_with("chat/completions");
    let prompt = match chat {
        true => request["messages"][0]["content"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        false => request["prompt"].as_str().unwrap_or("").to_string(),
    };
    let fault = {
        let mut s = state.lock().unwrap();
        s.completions += 1;
        let dead = s.dead_after.is_some_and(|n| s.completions > n);
        match dead {
            true => Some(Fault::Drop),
            false => s.faults.pop_front(),
        }
    };
    match fault {
        Some(Fault::Status(code, body, after)) => return respond(out, code, &body, after),
        Some(Fault::Drop) => return,
        Some(Fault::Stall(d)) => return std::thread::sleep(d),
        Some(Fault::Malformed) => return respond(out, 200, "<html>Bad gateway</html>", None),
        None => {}
    }
    // A summary: the known sentences the article has (in Turkish or English), as a list.
    if prompt.contains("bullet points") || prompt.contains("Summary in English") {
        let mut found: Vec<(usize, &str)> = dict
            .iter()
            .filter_map(|(tr, en)| {
                prompt
                    .find(tr.as_str())
                    .or(prompt.find(en.as_str()))
                    .map(|at| (at, en.as_str()))
            })
            .collect();
        found.sort();
        let lines: Vec<String> = found.iter().map(|(_, en)| format!("- {en}")).collect();
        let mut text = lines.join("\n");
        if !chat {
            // The prompt ends with the first bullet's marker.
            text = text.trim_start_matches("- ").to_string();
        }
        return answer(out, chat, &text, &prompt);
    }
    // The last known sentence in the prompt is the one to translate (few-shot prompts put
    // their examples first).
    let known = dict
        .iter()
        .filter_map(|(tr, en)| prompt.rfind(tr.as_str()).map(|at| (at, tr, en)))
        .max_by_key(|(at, _, _)| *at);
    let text = match known {
        Some((_, tr, en)) => {
            *state.lock().unwrap().asked.entry(tr.clone()).or_default() += 1;
            en.clone()
        }
        None => "This is a sentence in English.".to_string(),
    };
    {
        let mut s = state.lock().unwrap();
        s.in_flight += 1;
        s.most_in_flight = s.most_in_flight.max(s.in_flight);
    }
    std::thread::sleep(delay);
    state.lock().unwrap().in_flight -= 1;
    answer(out, chat, &text, &prompt);
}

fn answer(out: &mut TcpStream, chat: bool, text: &str, prompt: &str) {
    let choice = match chat {
        true => {
            serde_json::json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"})
        }
        false => {
            serde_json::json!({"index": 0, "text": format!(" {text}"), "finish_reason": "stop"})
        }
    };
    let answer = serde_json::json!({
        "id": "cmpl-1", "model": MODEL, "choices": [choice],
        "usage": {"prompt_tokens": prompt.len() / 4, "completion_tokens": text.len() / 4},
    });
    respond(out, 200, &answer.to_string(), None);
}

fn respond(out: &mut TcpStream, code: u16, body: &str, retry_after: Option<u32>) {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Error",
    };
    let extra = retry_after.map_or(String::new(), |s| format!("Retry-After: {s}\r\n"));
    let _ = write!(
        out,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
    let _ = out.flush();
}
