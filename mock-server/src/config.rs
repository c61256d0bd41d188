//! Settings of a mock instance, and the fidelity profile: every behaviour
//! BEHAVIOUR.md marks as a guess has its default here, so a user who learns
//! the real behaviour can switch it without a code change.

use serde::{Deserialize, Serialize};

/// Behaviours of the real API that are guesses or have a lenient variant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "snake_case", deny_unknown_fields)]
pub struct Fidelity {
    /// 401 message when `Authorization` is absent. [guess]
    pub missing_token_message: String,
    /// 401 message for an expired OAuth access token. [guess]
    pub expired_token_message: String,
    /// 401 message for a PIT on a `*-Access-Only` operation. [guess]
    pub pit_not_allowed_message: String,
    /// 429 message. [guess]
    pub rate_limit_message: String,
    /// Send `Retry-After` on 429. [guess: off]
    pub retry_after: bool,
    /// `Version` values accepted on any operation.
    pub published_versions: Vec<String>,
    /// Enforce each operation's own `Version` enum instead (the real API does not).
    pub strict_version: bool,
    /// Header that carries the trace id on every answer.
    pub trace_header: String,
    /// Check parameters and bodies against the spec (off: for specs whose
    /// schemas are known to be wrong).
    pub validate_requests: bool,
    /// How rate limits count (window kind, day boundary, what counts).
    pub rate: crate::limits::Settings,
    /// Status of an unknown record id, for families where HighLevel's answer
    /// is not known (contacts and opportunities answer 400, as seen). [guess: 404]
    pub unknown_record_status: u16,
    /// An opportunity's pipeline and stage must be stored ones. [guess: on]
    pub check_pipeline_stages: bool,
    /// A known path called with a method it does not serve: Express's 404
    /// `Cannot PATCH /path` (HighLevel runs NestJS on Express), or 405 with
    /// `Allow`. [guess, strong: 404]
    pub wrong_method: WrongMethod,
    /// Literal path segments match in any case (`/Contacts/` is `/contacts/`),
    /// as Express routes by default. [guess, strong: on]
    pub case_insensitive_paths: bool,
    /// Sub-accounts a sandbox company may hold (HighLevel: 2) [doc]; 0: any.
    pub sandbox_max_locations: usize,
    /// Issue 13: webhook delivery (retry policy, backoff, timeout, quirks).
    pub webhooks: crate::webhooks::Settings,
    /// Body properties the operation's schema does not name: refused with
    /// 422 `property X should not exist`, one message each, as NestJS's
    /// `ValidationPipe` (`whitelist` + `forbidNonWhitelisted`) does [seen];
    /// or accepted (and stored).
    pub unknown_properties: UnknownProperties,
    /// Operations the spec leaves without `security` still need a location
    /// or agency token (no scope), except `POST /oauth/token` [guess, strong].
    pub secure_unsecured_operations: bool,
    /// An agency or location token naming a `companyId` (query, path or
    /// body) that is not its company is refused with 403 and this text
    /// [guess: the text]; empty: not checked.
    pub foreign_company_message: String,
    /// Issue 14: with v3 files loaded, a path of the dated versions that the
    /// v3 files leave out of a service they cover, called with `Version: v3`:
    /// refused with HighLevel's 400 `… was removed in version v3 …` [doc],
    /// or served by the dated operation (for clients that send `v3` to old paths).
    pub removed_in_v3: RemovedInV3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RemovedInV3 {
    #[default]
    Refuse,
    Serve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnknownProperties {
    #[default]
    Reject,
    Accept,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WrongMethod {
    #[default]
    NotFound,
    MethodNotAllowed,
}

impl Default for Fidelity {
    fn default() -> Self {
        Self {
            missing_token_message: "Invalid JWT".into(),
            expired_token_message: "Invalid JWT".into(),
            pit_not_allowed_message: "This authClass type is not allowed to access this scope.".into(),
            rate_limit_message: "Too Many Requests".into(),
            retry_after: false,
            published_versions: vec!["2021-04-15".into(), "2021-07-28".into(), "2023-02-21".into(), "v3".into()],
            strict_version: false,
            trace_header: "x-trace-id".into(),
            validate_requests: true,
            rate: crate::limits::Settings::default(),
            unknown_record_status: 404,
            check_pipeline_stages: true,
            wrong_method: WrongMethod::NotFound,
            case_insensitive_paths: true,
            sandbox_max_locations: 2,
            webhooks: crate::webhooks::Settings::default(),
            unknown_properties: UnknownProperties::Reject,
            secure_unsecured_operations: true,
            foreign_company_message: "The token does not have access to this company.".into(),
            removed_in_v3: RemovedInV3::Refuse,
        }
    }
}

/// Limits that keep a hostile or broken client from hurting the mock.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_json_depth: usize,
    /// Request line and headers together (hyper's read buffer; at least 8 KiB).
    pub max_header_bytes: usize,
    /// A client must finish sending its headers within this time.
    pub header_timeout_ms: u64,
    /// ... and its body within this time after the headers.
    pub body_timeout_ms: u64,
    /// Connections served at once; more are closed at once, not queued.
    pub max_connections: usize,
    /// At shutdown, how long requests in flight may take to finish.
    pub shutdown_grace_ms: u64,
    /// Records of one kind one location may hold.
    pub max_records: usize,
    /// Bytes (about) of records of one kind one location may hold.
    pub max_record_bytes: usize,
    /// Tags one contact may hold.
    pub max_tags: usize,
    /// Issue 15, item 7: what a client that shuts its side of the connection
    /// while its request is in flight gets.
    pub half_close: HalfClose,
}

/// A client's end of sending (TCP FIN) while its request is in flight: a
/// half-close (it still reads) and a hang-up (it is gone) look the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HalfClose {
    /// The request goes on and its answer is sent; the journal marks it
    /// `closed_early` (the client may not have read it).
    #[default]
    Answer,
    /// The client is taken to have gone: the request is dropped and
    /// journaled `abandoned` at once (what Node's and Go's servers do).
    HangUp,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_json_depth: 64,
            max_header_bytes: 64 * 1024,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            // Below the usual limit of 1024 open files, so the cap, not the
            // operating system, decides.
            max_connections: 768,
            shutdown_grace_ms: 30_000,
            max_records: DEFAULT_MAX_RECORDS,
            max_record_bytes: 256 * 1024 * 1024,
            max_tags: 10_000,
            half_close: HalfClose::Answer,
        }
    }
}

/// The most records of one kind a location keeps unless configured otherwise.
pub const DEFAULT_MAX_RECORDS: usize = 100_000;

#[derive(Debug, Clone)]
pub struct Config {
    /// Seed of generated answers and ids.
    pub seed: u64,
    pub fidelity: Fidelity,
    pub limits: Limits,
    /// When set, the control plane wants `Authorization: Bearer <admin token>`.
    pub admin_token: Option<String>,
    /// Let clients on other hosts reach the control plane (off: loopback only).
    pub admin_remote: bool,
    /// Save the world and resources here, and start from it when it exists.
    pub state_file: Option<std::path::PathBuf>,
    /// `--tokens-file PATH`: where the current tokens are written for CI.
    pub tokens_file: Option<std::path::PathBuf>,
    /// Count requests and send `X-RateLimit-*` (off: no limiter at all, for
    /// measuring what it costs).
    pub rate_limits: bool,
    /// Issue 8: how many API requests the journal keeps (the newest; 0: none).
    pub journal_capacity: usize,
    /// About how many bytes the journal may hold; the oldest entries go first.
    pub journal_max_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            // The binary's default `--seed`, so a library user sees the same answers.
            seed: 1,
            fidelity: Fidelity::default(),
            limits: Limits::default(),
            admin_token: None,
            admin_remote: false,
            state_file: None,
            tokens_file: None,
            rate_limits: true,
            journal_capacity: 10_000,
            journal_max_bytes: crate::journal::DEFAULT_MAX_BYTES,
        }
    }
}
