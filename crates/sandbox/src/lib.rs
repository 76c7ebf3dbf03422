//! flowpack-sandbox: a local stand-in for the platform's Core API (the flows subset flowpack
//! uses, DESIGN §2 and §10), for rehearsals and tests. Not a production service.
//!
//! - [`store::Store`]: the platform's semantics over SQLite (pagination, filters, sorts,
//!   imports arriving disabled with a draft, one deployed version per flow, export of a
//!   version-2 document, idempotent imports). It implements [`flowpack_client::Platform`], so the
//!   embedded `local` environment (DESIGN §9) uses it in process.
//! - [`server`]: an axum server of the same semantics under `/api/v1`, with fault injection.
//! - the `flowpack-sandbox` binary: `flowpack-sandbox --listen 127.0.0.1:0 --db sandbox.db
//!   --token KEY` prints `listening on http://ADDR` once ready.
//!
//! # HTTP responses
//!
//! | call | 200 body |
//! |---|---|
//! | `GET /api/v1/flows` | `{data: [flow], meta: {current_page, last_page, per_page, total}, links: {first, last, prev, next}}` (`prev`/`next` are `null` at the ends) |
//! | `GET /api/v1/flows/{flow}` | `{data: flow}` (`flow.versions` only with `include=versions`) |
//! | `POST /api/v1/flows/export` `{flow_id}` | the export document itself (not wrapped) |
//! | `POST /api/v1/flows/import` | `{data: flow}` with `versions` |
//! | `GET /api/v1/flows/{flow}/versions` | `{data: [version]}` |
//! | `PUT /api/v1/flows/{flow}/versions/{version}` `{deployed_at}` | `{data: version}` |
//! | `PUT /api/v1/flows/{flow}` `{flow: {enabled_at, priority, name, description}}` | `{data: flow}` (no `versions`) |
//! | `DELETE /api/v1/flows/{flow}` | `{message: "Flow 7 deleted."}` |
//!
//! A `flow` is `{id, name, description, enabled_at, priority, created_at, updated_at[, versions]}`
//! and a `version` is `{id, flow_id, iteration, status, is_deployed, deployed_at}`: the
//! [`flowpack_client::Flow`] and [`flowpack_client::FlowVersion`] wire types.
//!
//! Errors: 401 `{message: "Unauthenticated."}`; 404 `{message}` (unknown flow, version or
//! path; also for export of an unknown `flow_id`); 413 `{message}` over 8 MB; 422
//! `{message, errors: {field: [messages]}}`; 429 `{message: "Too Many Attempts."}` with
//! `Retry-After: 1`; injected 500/503 `{message}`.
//!
//! # Performance
//!
//! The store keeps one SQLite connection (WAL mode, `synchronous=NORMAL`, cached prepared
//! statements) behind a mutex that is held only for the SQL; the JSON work of an export
//! (parsing the stored document, patching it, serialising the response) runs outside the lock
//! on the blocking pool, so concurrent exports proceed in parallel. Measured on a 2-core machine
//! shared with builds (debug build): 1,000 exports of `export-v2-order-sync.json` flows by 4
//! concurrent `curl` loops took 12.9 s, the same as 1,000 requests to an unknown path (13.4 s):
//! the time is the clients' process start-up, not the sandbox.
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

pub mod server;
pub mod store;

pub use server::{RunningServer, ServerOptions};
pub use store::{Clock, FixedClock, FlowChanges, Store, StoreError, StoreOptions, SystemClock};
