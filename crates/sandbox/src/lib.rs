//! flowpack-sandbox: a local stand-in for the platform's Core API (the whole Flows section of
//! the API reference, all 26 method/path pairs), for rehearsals, tests and users' own scripts.
//! Not a production service.
//!
//! - [`store::Store`]: the platform's semantics over SQLite (pagination, filters, sorts,
//!   includes, imports arriving disabled with a draft, one deployed version per flow, export of
//!   a version-2 document, idempotent imports, webhooks, callbacks, runs). It implements
//!   [`flowpack_client::Platform`], so the embedded `local` environment uses it in process.
//! - [`dispatch::Dispatcher`]: transport-free request handling (method, path, query, headers,
//!   body → status, JSON body), used by the server, the tests and the conformance test.
//! - `server` and `cli` (cargo feature `server`, on by default): the axum server with fault
//!   injection, and the `flowpack-sandbox` command line: `flowpack-sandbox --listen 127.0.0.1:0
//!   --db sandbox.db --token KEY` prints `listening on http://ADDR` once ready. The `flowpack`
//!   binary uses the store without this feature's stack.
//!
//! Every endpoint, body, error and decision is listed in [docs/platform-api.md](https://github.com/flowpack/flowpack/blob/main/docs/platform-api.md).
//!
//! # Example
//!
//! ```
//! use flowpack_client::{ListQuery, Platform};
//! use flowpack_sandbox::store::{Store, StoreOptions};
//!
//! let store = Store::open_in_memory(StoreOptions::default()).unwrap();
//! let doc = serde_json::json!({
//!     "metadata": {"company_name": "Acme", "flow_name": "Orders"},
//!     "flow": {"name": "Orders", "priority": 2, "versions": [
//!         {"iteration": 1, "status": "Deployed", "steps": [{"id": 1, "type": "trigger"}]},
//!         {"iteration": 2, "status": "Draft", "steps": [{"id": 1, "type": "trigger"}]}]},
//!     "systems": [], "scripts": [], "dependencies": []
//! });
//! let flow = store.import(&doc, None).unwrap();
//! assert_eq!(flow.enabled_at, None);
//! let statuses: Vec<_> = flow.versions.unwrap().iter().map(|v| v.status.clone()).collect();
//! assert_eq!(statuses, ["Inactive", "Draft"]);
//! let page = store.list_flows(&ListQuery::default()).unwrap();
//! assert_eq!(page.meta.total, 1);
//! ```

#![warn(missing_docs)]

#[cfg(feature = "server")]
pub mod cli;
pub mod dispatch;
#[cfg(feature = "server")]
pub mod server;
pub mod store;

pub use dispatch::{Dispatcher, FailOn};
#[cfg(feature = "server")]
pub use server::{RunningServer, ServerOptions};
pub use store::{Clock, FixedClock, FlowChanges, Store, StoreError, StoreOptions, SystemClock};
