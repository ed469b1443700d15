//! The OpenAPI document, generated from the handlers. `openapi/gateway.json` in the
//! repository is this document, and a test fails when the two differ.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The parts of the document that no handler states.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ferry gateway",
        description = "Sends dictionaries and files to a Ferry (or legacy) TCP server over HTTP. \
            Every error has the body `{\"error\": {\"status\", \"code\", \"message\"}}`. \
            When the gateway is configured with a token, `/dict`, `/file` and `/uploads` \
            (every method but OPTIONS) need `Authorization: Bearer <token>`. \
            `/uploads` is a tus 1.0.0 server (creation, creation-with-upload, \
            creation-defer-length, termination, checksum, expiration): every request but \
            OPTIONS needs `Tus-Resumable: 1.0.0`; when the last byte is committed, the \
            response (and a later HEAD) names the stored item in `Ferry-Item-Id`, \
            `Ferry-Item-Location` and `Ferry-Item-Sha256`.",
        license(name = "MIT"),
    ),
    modifiers(&BearerScheme),
    tags((name = "transfers", description = "Send data to the Ferry server"), (name = "uploads", description = "Resumable uploads (tus 1.0.0)"), (name = "operations", description = "Health of the gateway itself")),
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The gateway's token, when one is configured"))
                    .build(),
            ),
        );
    }
}

/// The document as committed: pretty JSON and a final newline.
pub fn openapi_json() -> String {
    let mut text = crate::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    text.push('\n');
    text
}
