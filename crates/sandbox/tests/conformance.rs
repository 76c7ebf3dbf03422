//! The conformance test in process: every endpoint of the API reference through the
//! `Dispatcher` over the same `Store` type the embedded `local` environment uses.

#[path = "../conformance/harness.rs"]
mod harness;

use std::sync::Arc;

use flowpack_sandbox::dispatch::{Dispatcher, Request};
use flowpack_sandbox::{Store, StoreOptions};
use harness::{KEY, Reply, Transport};
use serde_json::Value;

struct InProcess(Dispatcher);

impl Transport for InProcess {
    fn call(&self, method: &str, path: &str, auth: Option<&str>, body: Option<&Value>) -> Reply {
        let mut req = Request::new(method, path).header("Host", "sandbox.test");
        if let Some(auth) = auth {
            req = req.header("Authorization", &format!("Bearer {auth}"));
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let r = self.0.handle(&req);
        Reply {
            status: r.status,
            body: r.body.unwrap_or(Value::Null),
        }
    }
}

fn sandbox() -> InProcess {
    let store = Arc::new(Store::open_in_memory(StoreOptions::default()).unwrap());
    InProcess(Dispatcher::new(store, KEY))
}

#[test]
fn the_reference_lists_26_endpoints_and_each_answers_401_404_and_2xx() {
    harness::conformance(&sandbox());
}

#[test]
fn every_endpoint_behaves_as_documented() {
    harness::behaviour(&sandbox());
}

#[test]
fn malformed_requests_get_4xx() {
    harness::malformed(&sandbox());
}
