//! The embedded `local` environment: the same semantics as the HTTP sandbox, in process. Errors
//! name the request as the HTTP client would (`local: GET /api/v1/flows/7`).

use flowpack_client::{
    Callback, CallbackId, CallbackRequest, ClientError, Flow, FlowId, FlowSettings,
    FlowSettingsUpdate, FlowUpdate, FlowVersion, ImportRequest, ListQuery, Page, Platform,
    VersionId, Webhook, WebhookId, WebhookRequest,
};
use serde_json::Value;

use super::request::{FlowChanges, check_callback, check_webhook};
use super::{Store, StoreError};

fn client_error(request: String, e: StoreError) -> ClientError {
    match e {
        StoreError::NotFound { message } => ClientError::NotFound { request, message },
        StoreError::Validation { message, errors } => ClientError::Validation {
            request,
            message,
            errors,
        },
        other => ClientError::Local(other.to_string()),
    }
}

fn local(method: &str, path: String) -> impl FnOnce(StoreError) -> ClientError {
    move |e| client_error(format!("local: {method} /api/v1{path}"), e)
}

impl Platform for Store {
    fn list_flows(&self, query: &ListQuery) -> Result<Page<Flow>, ClientError> {
        self.list(query).map_err(local("GET", "/flows".into()))
    }

    fn show_flow(&self, id: FlowId) -> Result<Flow, ClientError> {
        self.show(id, true)
            .map_err(local("GET", format!("/flows/{id}")))
    }

    fn export_flow(&self, id: FlowId) -> Result<Value, ClientError> {
        self.export(id)
            .map_err(local("POST", "/flows/export".into()))
    }

    fn builds_exports_in_process(&self) -> bool {
        true
    }

    fn import_flow(&self, request: &ImportRequest) -> Result<Flow, ClientError> {
        // One copy of the document (the request is borrowed), checked and stored as it is.
        let mut body = request.document.clone();
        if request.as_marketplace
            && let Some(obj) = body.as_object_mut()
        {
            obj.insert("as_marketplace".into(), Value::Bool(true));
        }
        self.import_owned(body, request.idempotency_key.as_deref())
            .map_err(local("POST", "/flows/import".into()))
    }

    fn list_versions(&self, flow: FlowId) -> Result<Vec<FlowVersion>, ClientError> {
        self.versions(flow)
            .map_err(local("GET", format!("/flows/{flow}/versions")))
    }

    fn deploy_version(
        &self,
        flow: FlowId,
        version: VersionId,
        deployed_at: &str,
    ) -> Result<FlowVersion, ClientError> {
        self.deploy(flow, version, Some(deployed_at))
            .map_err(local("PUT", format!("/flows/{flow}/versions/{version}")))
    }

    fn update_flow(&self, flow: FlowId, update: &FlowUpdate) -> Result<Flow, ClientError> {
        self.update(flow, &FlowChanges::from(update))
            .map_err(local("PUT", format!("/flows/{flow}")))
    }

    fn delete_flow(&self, flow: FlowId) -> Result<(), ClientError> {
        self.delete(flow)
            .map_err(local("DELETE", format!("/flows/{flow}")))
    }

    fn show_flow_settings(&self, flow: FlowId) -> Result<FlowSettings, ClientError> {
        self.flow_record(flow)
            .map(|r| r.to_settings())
            .map_err(local("GET", format!("/flows/{flow}")))
    }

    fn update_flow_settings(
        &self,
        flow: FlowId,
        update: &FlowSettingsUpdate,
    ) -> Result<FlowSettings, ClientError> {
        self.update_record(flow, &FlowChanges::from(update))
            .map(|r| r.to_settings())
            .map_err(local("PUT", format!("/flows/{flow}")))
    }

    fn set_layout_direction(&self, flow: FlowId, direction: &str) -> Result<(), ClientError> {
        Store::set_layout_direction(self, flow, direction)
            .map_err(local("PATCH", format!("/flows/{flow}/layout-direction")))
    }

    fn list_webhooks(&self, flow: FlowId) -> Result<Vec<Webhook>, ClientError> {
        self.webhooks(flow)
            .map_err(local("GET", format!("/flows/{flow}/webhooks")))
    }

    fn create_webhook(
        &self,
        flow: FlowId,
        request: &WebhookRequest,
    ) -> Result<Webhook, ClientError> {
        let err = local("POST", format!("/flows/{flow}/webhooks"));
        match check_webhook(request) {
            Ok(()) => Store::create_webhook(self, flow, request).map_err(err),
            Err(e) => Err(err(e)),
        }
    }

    fn update_webhook(
        &self,
        flow: FlowId,
        webhook: WebhookId,
        request: &WebhookRequest,
    ) -> Result<Webhook, ClientError> {
        let err = local("PUT", format!("/flows/{flow}/webhooks/{webhook}"));
        match check_webhook(request) {
            Ok(()) => Store::update_webhook(self, flow, webhook, request).map_err(err),
            Err(e) => Err(err(e)),
        }
    }

    fn delete_webhook(&self, flow: FlowId, webhook: WebhookId) -> Result<(), ClientError> {
        Store::delete_webhook(self, flow, webhook)
            .map_err(local("DELETE", format!("/flows/{flow}/webhooks/{webhook}")))
    }

    fn list_callbacks(&self, flow: FlowId) -> Result<Vec<Callback>, ClientError> {
        self.callbacks(flow)
            .map_err(local("GET", format!("/flows/{flow}/callbacks")))
    }

    fn create_callback(
        &self,
        flow: FlowId,
        request: &CallbackRequest,
    ) -> Result<Callback, ClientError> {
        let err = local("POST", format!("/flows/{flow}/callbacks"));
        match check_callback(request) {
            Ok(()) => Store::create_callback(self, flow, request).map_err(err),
            Err(e) => Err(err(e)),
        }
    }

    fn update_callback(
        &self,
        flow: FlowId,
        callback: CallbackId,
        request: &CallbackRequest,
    ) -> Result<Callback, ClientError> {
        let err = local("PUT", format!("/flows/{flow}/callbacks/{callback}"));
        match check_callback(request) {
            Ok(()) => Store::update_callback(self, flow, callback, request).map_err(err),
            Err(e) => Err(err(e)),
        }
    }

    fn delete_callback(&self, flow: FlowId, callback: CallbackId) -> Result<(), ClientError> {
        Store::delete_callback(self, flow, callback).map_err(local(
            "DELETE",
            format!("/flows/{flow}/callbacks/{callback}"),
        ))
    }
}
