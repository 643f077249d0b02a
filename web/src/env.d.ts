// Type declarations for single-file Vue components and for swagger-ui-dist (untyped).
declare module "*.vue" {
  import type { DefineComponent } from "vue";
  const component: DefineComponent<object, object, unknown>;
  export default component;
}
declare module "swagger-ui-dist/swagger-ui-es-bundle.js";
