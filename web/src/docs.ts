// The API docs page: Swagger UI from the npm package, over the server's own OpenAPI document.
import SwaggerUIBundle from "swagger-ui-dist/swagger-ui-es-bundle.js";
import "swagger-ui-dist/swagger-ui.css";

SwaggerUIBundle({
  url: "/api/v1/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  // No badge from the public validator: the page's policy loads nothing from elsewhere.
  validatorUrl: null,
});
