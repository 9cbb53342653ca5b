// Starts Swagger UI on the vault's own OpenAPI document. A file of its own:
// the page's Content-Security-Policy allows no inline script. URLs are
// relative to /docs, so the page also works behind a path prefix.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // No badge from an outside validator service: the page talks to the vault only.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
