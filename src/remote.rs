//! Remote engines: any server that speaks the OpenAI HTTP API (vLLM, TGI, SGLang, llama.cpp's
//! server, Ollama), named `--model openai:URL[#MODEL]` for chat models
//! (`/v1/chat/completions`) or `openai-completions:URL[#MODEL]` for base models
//! (`/v1/completions` with the few-shot prompts).
//!
//! A [`Client`] is cheap to clone; its clones share one limit on requests in flight
//! (`--concurrency`), so that pieces of one article and of different articles go to the
//! server together and its continuous batching is used. Faults that pass (timeouts, dropped
//! connections, 429 with its `Retry-After`, 5xx) are retried with backoff a bounded number of
//! times; the rest (a refused key, an unknown model, a prompt over the server's context, an
//! answer that is not a completion) are errors that name the URL and quote the server. The key
//! (`TERCUMAN_API_KEY`, else `OPENAI_API_KEY`) goes only to the named URL and is never printed.

use crate::chat::prompt::{Style, Templates};
use crate::error::{Error, Result};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Retries of one request after the first try (`TERCUMAN_REMOTE_RETRIES`).
const RETRIES: u32 = 5;
/// The longest wait between tries, `Retry-After` included.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Which endpoint of the API a model is driven through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/chat/completions`: instruction-tuned models, with the instruction prompts.
    Chat,
    /// `/completions`: base models, with the few-shot prompts.
    Completions,
}

impl Api {
    /// How a served model is prompted: a chat model with the instruction prompt as the user's
    /// message (the server applies its chat template), a base model with the few-shot prompts.
    pub fn style(self) -> Style {
        match self {
            Api::Chat => Style {
                chat: None,
                templates: Templates::defaults(false),
            },
            Api::Completions => Style::completion(),
        }
    }
}

/// Tokens of `text` for cutting it, estimated: the served model's tokenizer is not here. Three
/// characters a token errs on the small side for the BPE vocabularies of today's chat models
/// on Turkish, so that a piece is, if anything, smaller than its budget.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(3)
}

/// A server and model named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The API's base URL, without a trailing slash (`http://gpu-box:8000/v1`).
    pub base: String,
    /// The model asked for (`#MODEL`); `None`: the first one the server lists.
    pub model: Option<String>,
    pub api: Api,
}

impl Endpoint {
    /// Reads `openai:URL[#MODEL]` or `openai-completions:URL[#MODEL]`; `None` when `value`
    /// names no remote engine.
    pub fn parse(value: &str) -> Option<Result<Endpoint>> {
        let (api, rest) = if let Some(rest) = value.strip_prefix("openai-completions:") {
            (Api::Completions, rest)
        } else {
            (Api::Chat, value.strip_prefix("openai:")?)
        };
        let (url, model) = match rest.split_once('#') {
            Some((url, model)) => (url, Some(model.to_string()).filter(|m| !m.is_empty())),
            None => (rest, None),
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
            return Some(Err(Error::BadModelSpec {
                spec: value.to_string(),
            }));
        }
        Some(Ok(Endpoint {
            base: url.trim_end_matches('/').to_string(),
            model,
            api,
        }))
    }

    /// How the endpoint is named in reports.
    pub fn label(&self, model: &str) -> String {
        let scheme = match self.api {
            Api::Chat => "openai",
            Api::Completions => "openai-completions",
        };
        format!("{scheme}:{}#{model}", self.base)
    }
}

/// One request for a completion.
#[derive(Debug, Clone)]
pub struct Ask {
    pub prompt: String,
    pub max_tokens: usize,
    pub temperature: f64,
    pub seed: u64,
    /// Stop at the first line end (few-shot answers are one line).
    pub one_line: bool,
}

/// The server's answer.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub text: String,
    /// The answer was cut at `max_tokens`.
    pub truncated: bool,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
}

/// Requests in flight, shared by a client's clones.
#[derive(Debug)]
struct Gate {
    free: Mutex<usize>,
    freed: Condvar,
}

struct Permit<'a>(&'a Gate);

impl Gate {
    fn enter(&self) -> Permit<'_> {
        let mut free = self.free.lock().expect("gate lock");
        while *free == 0 {
            free = self.freed.wait(free).expect("gate lock");
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().expect("gate lock") += 1;
        self.0.freed.notify_one();
    }
}

/// A connection to a served model.
#[derive(Clone)]
pub struct Client {
    endpoint: Endpoint,
    /// The served model's name.
    pub model: String,
    key: Option<String>,
    agent: ureq::Agent,
    gate: Arc<Gate>,
    /// The first wait before a retry; it doubles with every try.
    backoff: Duration,
    retries: u32,
}

/// Why a try failed.
enum Fault {
    /// Worth another try, after `after` when the server said so.
    Passing {
        why: String,
        after: Option<Duration>,
    },
    Fatal(String),
}

impl Client {
    /// Connects to `endpoint` with at most `concurrency` requests in flight: asks the server
    /// which models it serves, and picks the one named (or the first).
    pub fn connect(endpoint: &Endpoint, concurrency: usize) -> Result<Client> {
        let timeout = std::env::var("TERCUMAN_REMOTE_TIMEOUT")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| *s > 0.0)
            .map_or(Duration::from_secs(600), Duration::from_secs_f64);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // The key must not follow a redirect to another host.
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(timeout))
            .user_agent(concat!("tercuman/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let key = ["TERCUMAN_API_KEY", "OPENAI_API_KEY"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        let mut client = Client {
            endpoint: endpoint.clone(),
            model: String::new(),
            key,
            agent,
            gate: Arc::new(Gate {
                free: Mutex::new(concurrency.max(1)),
                freed: Condvar::new(),
            }),
            backoff: Duration::from_millis(500),
            retries: std::env::var("TERCUMAN_REMOTE_RETRIES")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(RETRIES),
        };
        client.model = client.pick_model()?;
        Ok(client)
    }

    /// How the served model is named in reports.
    pub fn label(&self) -> String {
        self.endpoint.label(&self.model)
    }

    pub fn api(&self) -> Api {
        self.endpoint.api
    }

    /// The model named, checked against the server's list, or the first it lists.
    fn pick_model(&self) -> Result<String> {
        let listed = self.with_retries("/models", None, |body| {
            let list = body["data"].as_array().ok_or("no `data` list of models")?;
            Ok(list
                .iter()
                .filter_map(|m| m["id"].as_str().map(str::to_string))
                .collect::<Vec<_>>())
        });
        match (&self.endpoint.model, listed) {
            (Some(named), Ok(served)) if served.contains(named) || served.is_empty() => {
                Ok(named.clone())
            }
            (Some(named), Ok(served)) => Err(self.error(format!(
                "does not serve a model `{named}`; it serves: {} (name one after #)",
                served.join(", ")
            ))),
            // A server without the listing still runs the model it was named.
            (Some(named), Err(_)) => Ok(named.clone()),
            (None, Ok(served)) => served.into_iter().next().ok_or_else(|| {
                self.error("lists no model; name one: openai:URL#MODEL".to_string())
            }),
            (None, Err(e)) => Err(e),
        }
    }

    /// One completion, with the faults that pass retried.
    pub fn complete(&self, ask: &Ask) -> Result<Answer> {
        let mut body = serde_json::json!({
            "model": self.model,
            "max_tokens": ask.max_tokens,
            "temperature": ask.temperature,
            "seed": ask.seed,
            "stream": false,
        });
        if ask.one_line {
            body["stop"] = serde_json::json!(["\n"]);
        }
        let path = match self.endpoint.api {
            Api::Chat => {
                body["messages"] = serde_json::json!([{"role": "user", "content": ask.prompt}]);
                "/chat/completions"
            }
            Api::Completions => {
                body["prompt"] = serde_json::json!(ask.prompt);
                "/completions"
            }
        };
        let api = self.endpoint.api;
        self.with_retries(path, Some(&body), |reply| answer(reply, api))
    }

    /// A GET (no body) or POST of `body` to `path`, tried until it succeeds, fails for good,
    /// or the tries run out; `read` takes what is wanted from the JSON answer.
    fn with_retries<T>(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
        read: impl Fn(&serde_json::Value) -> std::result::Result<T, &'static str>,
    ) -> Result<T> {
        let url = format!("{}{path}", self.endpoint.base);
        let mut wait = self.backoff;
        for attempt in 0..=self.retries {
            crate::cancel::check()?;
            let fault = {
                let _permit = self.gate.enter();
                match self.send(&url, body) {
                    Ok(json) => match read(&json) {
                        Ok(value) => return Ok(value),
                        Err(what) => Fault::Fatal(format!(
                            "answered with something that is not an OpenAI API response ({what}): {}",
                            snippet(&json.to_string())
                        )),
                    },
                    Err(fault) => fault,
                }
            };
            match fault {
                Fault::Fatal(message) => return Err(self.error_at(&url, message)),
                Fault::Passing { why, .. } if attempt == self.retries => {
                    return Err(self.error_at(
                        &url,
                        format!("{why} ({} tries); is the server up?", self.retries + 1),
                    ))
                }
                Fault::Passing { after, .. } => {
                    std::thread::sleep(after.unwrap_or(wait).min(MAX_WAIT));
                    wait = (wait * 2).min(Duration::from_secs(8));
                }
            }
        }
        unreachable!("the last try returns")
    }

    /// One try: the answer's JSON, or why not.
    fn send(
        &self,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> std::result::Result<serde_json::Value, Fault> {
        let key = self.key.as_ref().map(|k| format!("Bearer {k}"));
        let sent = match body {
            Some(body) => {
                let mut req = self
                    .agent
                    .post(url)
                    .header("Content-Type", "application/json");
                if let Some(key) = &key {
                    req = req.header("Authorization", key);
                }
                req.send(body.to_string().as_bytes())
            }
            None => {
                let mut req = self.agent.get(url);
                if let Some(key) = &key {
                    req = req.header("Authorization", key);
                }
                req.call()
            }
        };
        let mut resp = sent.map_err(|e| Fault::Passing {
            why: transport(&e),
            after: None,
        })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| Fault::Passing {
                why: format!("the answer was cut off ({e})"),
                after: None,
            })?;
        match status {
            200..=299 => serde_json::from_str(&text).map_err(|_| {
                Fault::Fatal(format!(
                    "answered with something that is not JSON: {}",
                    snippet(&text)
                ))
            }),
            429 => Err(Fault::Passing {
                why: format!("is busy (429 Too Many Requests: {})", said(&text)),
                after: retry_after,
            }),
            500..=599 => Err(Fault::Passing {
                why: format!("failed ({status}: {})", said(&text)),
                after: retry_after,
            }),
            _ => Err(Fault::Fatal(refusal(status, &said(&text)))),
        }
    }

    fn error(&self, message: String) -> Error {
        self.error_at(&self.endpoint.base, message)
    }

    fn error_at(&self, url: &str, message: String) -> Error {
        Error::Remote {
            url: url.to_string(),
            message,
        }
    }
}

/// The text of a completion.
fn answer(reply: &serde_json::Value, api: Api) -> std::result::Result<Answer, &'static str> {
    let choice = reply["choices"].get(0).ok_or("no `choices`")?;
    let text = match api {
        Api::Chat => {
            let message = choice.get("message").ok_or("no `message` in the choice")?;
            // A null content (some servers, for an empty answer) is an empty answer.
            match &message["content"] {
                serde_json::Value::Null => "",
                v => v.as_str().ok_or("`content` is not text")?,
            }
        }
        Api::Completions => choice["text"].as_str().ok_or("no `text` in the choice")?,
    };
    let usage = |k: &str| reply["usage"][k].as_u64().unwrap_or(0) as usize;
    Ok(Answer {
        text: text.to_string(),
        truncated: choice["finish_reason"] == "length",
        prompt_tokens: usage("prompt_tokens"),
        completion_tokens: usage("completion_tokens"),
    })
}

/// What a refusal (4xx other than 429) means for the user.
fn refusal(status: u16, said: &str) -> String {
    let lower = said.to_lowercase();
    let hint = if status == 401 || status == 403 {
        "; set the key in TERCUMAN_API_KEY or OPENAI_API_KEY"
    } else if lower.contains("context") || lower.contains("too long") || lower.contains("maximum") {
        "; the prompt is longer than the server's context: pass a smaller --context so that articles are cut into smaller pieces"
    } else if lower.contains("model") {
        "; name a model the server serves: openai:URL#MODEL"
    } else {
        ""
    };
    format!("refused the request ({status}: {said}){hint}")
}

/// What a server said in an error answer: its `error.message` (OpenAI, vLLM, llama.cpp),
/// `error` or `detail` (TGI, FastAPI), else the start of the body.
fn said(body: &str) -> String {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let field = json.as_ref().and_then(|j| {
        [
            &j["error"]["message"],
            &j["error"],
            &j["detail"],
            &j["message"],
        ]
        .into_iter()
        .find_map(|v| v.as_str().map(str::to_string))
    });
    snippet(&field.unwrap_or_else(|| body.trim().to_string()))
}

fn snippet(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &t[..at]),
        None if t.is_empty() => "(empty)".into(),
        None => t.to_string(),
    }
}

fn transport(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => {
            "did not answer in time (TERCUMAN_REMOTE_TIMEOUT sets the limit)".into()
        }
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => "could not be reached".into(),
        other => format!("could not be reached ({other})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e = Endpoint::parse("openai:http://gpu:8000/v1/#qwen")
            .unwrap()
            .unwrap();
        assert_eq!(e.base, "http://gpu:8000/v1");
        assert_eq!(e.model.as_deref(), Some("qwen"));
        assert_eq!(e.api, Api::Chat);
        let e = Endpoint::parse("openai-completions:https://x.org/v1")
            .unwrap()
            .unwrap();
        assert_eq!((e.api, e.model), (Api::Completions, None));
        assert!(Endpoint::parse("gemma-3-270m").is_none());
        assert!(Endpoint::parse("openai:gpu:8000").unwrap().is_err());
    }

    #[test]
    fn server_errors_are_quoted_with_what_to_do() {
        let body = r#"{"error":{"message":"This model's maximum context length is 4096 tokens","type":"invalid_request_error"}}"#;
        let m = refusal(400, &said(body));
        assert!(
            m.contains("maximum context length") && m.contains("--context"),
            "{m}"
        );
        assert!(refusal(401, &said("{\"detail\":\"bad key\"}")).contains("OPENAI_API_KEY"));
        assert_eq!(said("  plain text  "), "plain text");
        assert_eq!(said(""), "(empty)");
        assert!(snippet(&"x".repeat(1000)).chars().count() <= 301);
    }

    #[test]
    fn answers_are_read_from_both_apis() {
        let chat = serde_json::json!({"choices":[{"message":{"content":"Hi."},"finish_reason":"length"}],
            "usage":{"prompt_tokens":7,"completion_tokens":2}});
        let a = answer(&chat, Api::Chat).unwrap();
        assert_eq!(
            (a.text.as_str(), a.truncated, a.prompt_tokens),
            ("Hi.", true, 7)
        );
        let done = serde_json::json!({"choices":[{"text":"Yes","finish_reason":"stop"}]});
        let a = answer(&done, Api::Completions).unwrap();
        assert_eq!((a.text.as_str(), a.truncated), ("Yes", false));
        assert!(answer(&serde_json::json!({"id": 1}), Api::Chat).is_err());
        assert!(answer(&done, Api::Chat).is_err());
    }

    #[test]
    fn the_gate_holds_requests_to_its_limit() {
        let gate = Arc::new(Gate {
            free: Mutex::new(2),
            freed: Condvar::new(),
        });
        let inside = Arc::new(Mutex::new((0usize, 0usize)));
        std::thread::scope(|s| {
            for _ in 0..8 {
                let (gate, inside) = (gate.clone(), inside.clone());
                s.spawn(move || {
                    let _p = gate.enter();
                    {
                        let mut i = inside.lock().unwrap();
                        i.0 += 1;
                        i.1 = i.1.max(i.0);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                    inside.lock().unwrap().0 -= 1;
                });
            }
        });
        assert_eq!(inside.lock().unwrap().1, 2);
        assert_eq!(*gate.free.lock().unwrap(), 2);
    }
}
