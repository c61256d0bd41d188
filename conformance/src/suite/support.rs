//! What every test of the suite shares: the target, the contract, and the
//! few steps that are the same everywhere (an authenticated call, a property
//! run, the id of a record to read).

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use crate::contract::{self, first_id, VERSION};
use crate::runner::ensure;
use crate::target::WITHHELD_SCOPE;
use crate::{Answer, Call, Capability, Contract, Stop, Target};
use ghl_mock::spec::Operation;
use proptest::strategy::Strategy;
use proptest::test_runner::{TestCaseError, TestError, TestRunner};
use serde_json::Value;

pub struct Ctx {
    pub target: Target,
    pub contract: Contract,
    /// Ids of records found or created for reads, by the list they came from.
    ids: RefCell<HashMap<String, Result<String, Stop>>>,
}

impl Ctx {
    pub fn new(target: Target, contract: Contract) -> Self {
        Self { target, contract, ids: RefCell::new(HashMap::new()) }
    }

    pub fn pit(&self) -> &str {
        &self.target.credentials.pit
    }

    pub fn location(&self) -> &str {
        &self.target.credentials.location_id
    }

    pub fn scopes(&self) -> &BTreeSet<String> {
        &self.target.credentials.scopes
    }

    /// The scopes the low-scope PIT is known to hold: the PIT's, but `contacts.readonly`.
    pub fn low_scopes(&self) -> BTreeSet<String> {
        self.scopes().iter().filter(|s| s.as_str() != WITHHELD_SCOPE).cloned().collect()
    }

    /// `call` with the PIT and the usual `Version`.
    pub fn authed(&self, call: Call) -> Call {
        call.bearer(self.pit()).version(VERSION)
    }

    pub fn send(&self, call: &Call) -> Result<Answer, Stop> {
        Ok(self.target.send(call)?)
    }

    /// Runs a property with this run's case count; the minimal failing input is reported.
    pub fn property<S: Strategy>(
        &self,
        strategy: S,
        test: impl Fn(S::Value) -> Result<(), TestCaseError>,
    ) -> Result<(), Stop> {
        let mut runner = TestRunner::new(self.target.settings.proptest());
        match runner.run(&strategy, test) {
            Ok(()) => Ok(()),
            Err(TestError::Fail(why, minimal)) => Err(Stop::Fail(format!("{why}\nminimal failing input: {minimal:?}"))),
            Err(TestError::Abort(why)) => Err(Stop::Fail(format!("property aborted: {why}"))),
        }
    }

    /// Read operations (GET) a location PIT may call with the PIT's scopes.
    pub fn reads(&self) -> Vec<&Operation> {
        self.contract
            .pit_operations()
            .filter(|o| o.method == reqwest::Method::GET && contract::pit_may_call(o, self.scopes()))
            .collect()
    }

    /// A read that names the PIT's location and needs no other id: the
    /// cheapest request that a target should answer 2xx.
    pub fn probe(&self) -> Result<Call, Stop> {
        let preferred = ["/locations/{locationId}", "/contacts/"];
        let reads = self.reads();
        let simple = |o: &&&Operation| contract::names_location(o) && contract::resource_params(o).is_empty();
        let op = preferred
            .iter()
            .find_map(|p| reads.iter().find(|o| o.path == *p && simple(o)))
            .or_else(|| reads.iter().find(simple))
            .ok_or_else(|| Stop::Skip("the PIT holds no scope for a read that names its location".into()))?;
        Ok(self.authed(contract::request(op, self.location(), &[], 1)))
    }

    /// A request to `op` from the PIT's location, with real ids for the
    /// records its path names (found in their lists, or created).
    pub fn request_with_ids(&self, op: &Operation, seed: u64) -> Result<Call, Stop> {
        let mut ids: Vec<(String, String)> = Vec::new();
        for param in contract::resource_params(op) {
            let id = self.record_id(op, param, &ids)?;
            ids.push((param.to_string(), id));
        }
        Ok(contract::request(op, self.location(), &ids, seed))
    }

    /// The id of a record `param` of `op` can name: the first of its list,
    /// or one created through the API when the list is empty.
    fn record_id(&self, op: &Operation, param: &str, known: &[(String, String)]) -> Result<String, Stop> {
        let list = self.contract.collection_of(op, param).ok_or_else(|| {
            Stop::Skip(format!("no list operation shows ids for {{{param}}} of {} {}", op.method, op.path))
        })?;
        let list_call = self.authed(contract::request(list, self.location(), known, 1));
        let key = list_call.describe();
        if let Some(found) = self.ids.borrow().get(&key) {
            return found.clone();
        }
        let found = self.find_or_create(op, param, list, &list_call, known);
        self.ids.borrow_mut().insert(key, found.clone());
        found
    }

    fn find_or_create(
        &self,
        op: &Operation,
        param: &str,
        list: &Operation,
        list_call: &Call,
        known: &[(String, String)],
    ) -> Result<String, Stop> {
        let answer = self.send(list_call)?;
        ensure((200..300).contains(&answer.status), || {
            format!("listing ids for {{{param}}}: {} answered {}", list_call.describe(), answer.summary())
        })?;
        if let Some(id) = answer.json().as_ref().and_then(first_id) {
            return Ok(id);
        }
        self.target.require(Capability::CreateRecords).map_err(|stop| match stop {
            Stop::Skip(why) => Stop::Skip(format!("{} {} lists none: {why}", list.method, list.path)),
            other => other,
        })?;
        let creator = self.contract.creator_of(op, param).ok_or_else(|| {
            Stop::Skip(format!("{} {} lists none, and no operation creates one", list.method, list.path))
        })?;
        let mut create = self.authed(contract::request(creator, self.location(), known, 1));
        self.refer_to_pipeline(&mut create)?;
        let created = self.send(&create)?;
        ensure((200..300).contains(&created.status), || {
            format!("creating a record to read: {} answered {}", create.describe(), created.summary())
        })?;
        created
            .json()
            .as_ref()
            .and_then(contract::created_id)
            .ok_or_else(|| Stop::Fail(format!("{} answered no id: {}", create.describe(), created.summary())))
    }
}

impl Ctx {
    /// A body that names a pipeline and stage names real ones: HighLevel
    /// refuses an opportunity in a pipeline the location does not have.
    fn refer_to_pipeline(&self, call: &mut Call) -> Result<(), Stop> {
        let Some(crate::client::Body::Json(Value::Object(body))) = &mut call.body else { return Ok(()) };
        if !body.contains_key("pipelineId") {
            return Ok(());
        }
        let list = self.authed(Call::get("/opportunities/pipelines").query("locationId", self.location()));
        let answer = self.send(&list)?;
        let pipeline = answer.json().and_then(|a| a["pipelines"].get(0).cloned());
        let Some(pipeline) = pipeline.filter(|p| p["id"].is_string()) else {
            return Err(Stop::Skip(format!(
                "the location has no pipeline to create an opportunity in: {}",
                answer.summary()
            )));
        };
        body.insert("pipelineId".into(), pipeline["id"].clone());
        if let Some(stage) = pipeline["stages"].get(0).map(|s| s["id"].clone()).filter(Value::is_string) {
            body.insert("pipelineStageId".into(), stage);
        }
        Ok(())
    }
}

/// `expected` status and body, or a message saying what came instead.
pub fn exactly(answer: &Answer, status: u16, body: &Value) -> Result<(), String> {
    if answer.status == status && answer.json().as_ref() == Some(body) {
        Ok(())
    } else {
        Err(format!("wanted {status} {body}, got {}", answer.summary()))
    }
}

/// Inside a property: `call` got exactly `status` and `body`.
pub fn answered(call: &Call, answer: &Answer, status: u16, body: &Value) -> Result<(), TestCaseError> {
    exactly(answer, status, body).map_err(|e| TestCaseError::fail(format!("{}: {e}", call.describe())))
}

/// A `Result<(), String>` as a proptest case result.
pub fn case<T>(result: Result<T, String>) -> Result<T, TestCaseError> {
    result.map_err(TestCaseError::fail)
}

/// A `Result<T, Stop>` inside a property: a stop fails the case.
pub fn step<T>(result: Result<T, Stop>) -> Result<T, TestCaseError> {
    result.map_err(|stop| match stop {
        Stop::Fail(why) | Stop::Skip(why) => TestCaseError::fail(why),
    })
}

/// Every `X-RateLimit-*` header present, and their values consistent.
pub fn rate_limit_problems(headers: &[(String, String)]) -> Option<String> {
    let get = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let mut values = HashMap::new();
    let mut missing = Vec::new();
    for name in crate::client::RATE_LIMIT_HEADERS {
        match get(name).map(|v| v.trim().parse::<u64>()) {
            Some(Ok(n)) => {
                values.insert(name, n);
            }
            Some(Err(_)) => return Some(format!("{name} is not a whole number: {:?}", get(name))),
            None => missing.push(name),
        }
    }
    if !missing.is_empty() {
        return Some(format!("missing {}", missing.join(", ")));
    }
    let v = |n: &str| values.get(n).copied().unwrap_or_default();
    if v("X-RateLimit-Remaining") > v("X-RateLimit-Max") {
        return Some(format!(
            "X-RateLimit-Remaining {} > X-RateLimit-Max {}",
            v("X-RateLimit-Remaining"),
            v("X-RateLimit-Max")
        ));
    }
    if v("X-RateLimit-Daily-Remaining") > v("X-RateLimit-Limit-Daily") {
        return Some(format!(
            "X-RateLimit-Daily-Remaining {} > X-RateLimit-Limit-Daily {}",
            v("X-RateLimit-Daily-Remaining"),
            v("X-RateLimit-Limit-Daily")
        ));
    }
    if v("X-RateLimit-Interval-Milliseconds") != 10_000 {
        return Some(format!(
            "X-RateLimit-Interval-Milliseconds is {}, not 10000",
            v("X-RateLimit-Interval-Milliseconds")
        ));
    }
    None
}

/// Registers a test under its function's name.
macro_rules! add {
    ($suite:expr, $group:literal, $test:ident) => {
        $suite.add($group, stringify!($test), $test)
    };
}
pub(crate) use add;
