// Entry of the single-page app: the student page at `/`, the operator console at `/console`.
import { createApp } from "vue";
import { createRouter, createWebHistory } from "vue-router";
import App from "./App.vue";
import "./style.css";

const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: "/", component: () => import("./pages/StudentPage.vue") },
    { path: "/console/:tab?", component: () => import("./pages/ConsolePage.vue") },
    { path: "/:rest(.*)*", redirect: "/" },
  ],
});

createApp(App).use(router).mount("#app");
