// The dashboard's entry: signing in and out, and which view the address (#/…) shows.
import { api, ApiError, session, whenUnauthorized } from "./api.js";
import { busy, field, h, replace, say, sayCarried, showError } from "./dom.js";
import { showHook } from "./hook.js";
import { showHooks, showNewHook } from "./hooks.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
// Each view gets a token; a view that was left stops its timers and ignores late answers.
let current = { alive: false };

function signInView(reason) {
  nav.hidden = true;
  const token = field("Bearer token", h("input", { type: "password", autocomplete: "off", required: true, spellcheck: "false" }),
    "The account's API token. It is kept in this tab only and forgotten on sign-out.");
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { class: "card narrow", novalidate: true }, h("h1", {}, "Sign in"), token.wrap, button);
  if (reason) showError(token, reason);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = token.control.value.trim();
    if (!value) {
      showError(token, "Enter the token.");
      return;
    }
    session.signIn(value);
    try {
      await busy(button, () => api("GET", "hooks?limit=1"));
    } catch (error) {
      session.signOut();
      showError(token, error.status === 401 ? "This token is wrong or has expired." : error.message);
      token.control.focus();
      return;
    }
    say("");
    route();
  });
  replace(main, form);
  token.control.focus();
}

function route() {
  current.alive = false;
  current = { alive: true, timers: [] };
  if (!session.token()) {
    signInView();
    return;
  }
  nav.hidden = false;
  const path = location.hash.replace(/^#/, "") || "/";
  const hook = path.match(/^\/hook\/([A-Za-z0-9_-]{1,64})$/);
  if (path === "/new") {
    showNewHook(main, current);
  } else if (hook) {
    showHook(main, current, hook[1]);
  } else {
    showHooks(main, current);
  }
  main.focus({ preventScroll: true });
}

whenUnauthorized(() => {
  if (nav.hidden) return; // the sign-in form says it itself
  session.signOut();
  current.alive = false;
  signInView("The API refused the token: it is wrong or has expired. Sign in again.");
});

document.getElementById("sign-out").addEventListener("click", () => {
  session.signOut();
  say("Signed out: the token is forgotten.");
  history.replaceState(null, "", "#/");
  route();
});
window.addEventListener("hashchange", () => {
  sayCarried();
  route();
});
// Errors nobody caught still show, as text.
window.addEventListener("unhandledrejection", (event) => {
  if (event.reason instanceof ApiError && event.reason.status === 401) return;
  say(String((event.reason && event.reason.message) || event.reason), "error");
});
route();
