// A hook's page: overview and actions, verification, secret, test tool, delivery log and replay.
import { api, ApiError, readPages } from "./api.js";
import { busy, carry, field, h, replace, say, showError, uid, urlLink, when } from "./dom.js";
import { hookForm, lastDelivery, showFieldErrors, statusBadge } from "./hooks.js";

const TICK_MS = 2000;
// The page refreshes by itself for at most this many ticks (about 30 minutes), then stops.
const MAX_TICKS = 900;
const LOG_EVERY_TICKS = 3;
const LOG_PAGE = 50;

function section(title, ...children) {
  const id = uid("s");
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

export async function showHook(main, view, id) {
  replace(main, h("p", { "aria-busy": "true" }, "Loading the hook…"));
  let hook;
  try {
    hook = await api("GET", `hooks/${id}`);
  } catch (error) {
    if (view.alive && error.status !== 401) replace(main, h("h1", {}, "Hook"), h("p", { class: "bad" }, error.message));
    return;
  }
  if (!view.alive) return;

  const overview = h("div");
  const verification = h("div");
  const log = deliveryLog(view, id);
  const render = () => {
    renderOverview(overview, view, hook, { setHook, editing });
    renderVerification(verification, view, hook, { setHook });
  };
  let editing = false;
  function setHook(next, options = {}) {
    hook = next;
    if ("editing" in options) editing = options.editing;
    render();
  }
  render();
  replace(main, overview, verification, secretSection(id), testTool(id, log), log.element, replaySection(id, log));

  // Status and log refresh by themselves while the page is open (bounded; stops when left).
  let ticks = 0;
  const tick = async () => {
    if (!view.alive || ticks >= MAX_TICKS) return;
    ticks += 1;
    try {
      if (hook.status === "pending_validation") {
        const fresh = await api("GET", `hooks/${id}`);
        if (view.alive && fresh.status !== hook.status) {
          say(fresh.status === "active" ? "Verified: the hook is active, deliveries start now." : `The hook is now: ${fresh.status}.`,
            fresh.status === "active" ? "good" : "error");
          setHook(fresh);
        }
      }
      if (ticks % LOG_EVERY_TICKS === 0) await log.refresh(true);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
    }
    if (view.alive) setTimeout(tick, TICK_MS);
  };
  setTimeout(tick, TICK_MS);
}

function renderOverview(element, view, hook, { setHook, editing }) {
  const scope = [hook.database && `database ${hook.database}`, hook.collection && `collection ${hook.collection}`].filter(Boolean).join(", ");
  const pause = h("button", { type: "button" }, hook.status === "disabled" ? "Resume" : "Pause");
  const edit = h("button", { type: "button", "aria-expanded": String(editing) }, editing ? "Close editing" : "Edit");
  const remove = h("button", { type: "button", class: "danger" }, "Delete…");
  const confirmBox = h("div", { class: "confirm", role: "alertdialog", "aria-label": "Confirm deletion", hidden: true });
  pause.addEventListener("click", async () => {
    const wanted = hook.status === "disabled" ? "active" : "disabled";
    try {
      const changed = await busy(pause, () => api("PATCH", `hooks/${hook.id}`, { status: wanted }));
      say(wanted === "disabled" ? "Paused: no deliveries until resumed." : `Resumed: the hook is ${changed.status}.`, "good");
      setHook(changed);
    } catch (error) {
      showFieldErrors(error, {});
    }
  });
  edit.addEventListener("click", () => setHook(hook, { editing: !editing }));
  remove.addEventListener("click", () => {
    const yes = h("button", { type: "button", class: "danger" }, "Delete for good");
    const no = h("button", { type: "button" }, "Keep it");
    replace(confirmBox, h("p", {}, "Delete this hook? Its deliveries stop and this cannot be undone."), yes, no);
    confirmBox.hidden = false;
    no.addEventListener("click", () => {
      confirmBox.hidden = true;
      remove.focus();
    });
    yes.addEventListener("click", async () => {
      try {
        await busy(yes, () => api("DELETE", `hooks/${hook.id}`));
      } catch (error) {
        showFieldErrors(error, {});
        return;
      }
      carry("Hook deleted.", "good");
      location.hash = "#/";
    });
    yes.focus();
  });
  const facts = h("dl", { class: "facts" },
    h("dt", {}, "Id"), h("dd", {}, h("code", {}, hook.id)),
    h("dt", {}, "Events"), h("dd", {}, hook.events.join(", ")),
    h("dt", {}, "Scope"), h("dd", {}, scope || "all databases"),
    h("dt", {}, "Format"), h("dd", {}, hook.format),
    h("dt", {}, "Rate limit"), h("dd", {}, hook.rate_limit ? `${hook.rate_limit}/s` : "none"),
    h("dt", {}, "Batching"), h("dd", {}, hook.batch ? `up to ${hook.batch.max_events} events, ${hook.batch.max_wait_seconds} s` : "off"),
    h("dt", {}, "Last delivery"), h("dd", {}, lastDelivery(hook)),
    h("dt", {}, "Pace"), h("dd", {}, paceText(hook.pace)),
    h("dt", {}, "Created"), h("dd", {}, when(hook.created_at)));
  const form = editing
    ? hookForm(hook, "Save changes", async (body) => {
      const changed = await api("PATCH", `hooks/${hook.id}`, body);
      if (!view.alive) return;
      say(changed.url !== hook.url
        ? "The URL changed: validation starts again. Publish the new verification file below."
        : "Saved.", "good");
      setHook(changed, { editing: false });
    })
    : null;
  replace(element,
    h("div", { class: "heading" }, h("h1", { class: "hook-url" }, hook.url), statusBadge(hook)),
    hook.disabled_reason ? h("p", { class: "reason" }, `Why: ${hook.disabled_reason}`) : null,
    hook.description ? h("p", { class: "description" }, hook.description) : null,
    facts,
    h("div", { class: "actions" }, pause, edit, remove),
    confirmBox,
    form ? h("section", { class: "edit", "aria-label": "Edit the hook" }, h("h2", {}, "Edit"), form) : null);
}

function renderVerification(element, view, hook, { setHook }) {
  const v = hook.verification;
  const download = h("button", { type: "button" }, "Download the file");
  download.addEventListener("click", () => {
    // Exactly the contents, nothing added: the check compares them as they are (trimmed).
    const link = h("a", { href: URL.createObjectURL(new Blob([v.contents], { type: "text/plain" })), download: v.file_name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  });
  const check = h("button", { type: "button" }, "Check now");
  check.addEventListener("click", async () => {
    try {
      const fresh = await busy(check, () => api("POST", `hooks/${hook.id}/validate`));
      say("Checking now; the status below updates by itself.", "info");
      setHook(fresh);
    } catch (error) {
      showFieldErrors(error, {});
    }
  });
  const states = {
    pending_validation: "Waiting for the file: checked by itself on a schedule, and at once with “Check now”. This updates by itself.",
    active: "Verified: the file was found.",
    validation_failed: "The file was not found in time. Publish it, then “Check now”.",
    disabled: "Disabled.",
  };
  replace(element, section("Verification",
    h("p", {}, "Prove the URL is yours: save this file next to your script or at the web root."),
    h("dl", { class: "facts" },
      h("dt", {}, "File name"), h("dd", {}, h("code", { class: "file-name" }, v.file_name)),
      h("dt", {}, "Contents"), h("dd", {}, h("code", { class: "file-contents" }, v.contents))),
    h("div", { class: "actions" }, download),
    h("p", {}, "Put it at one of these addresses (open them to check):"),
    h("ul", { class: "urls" }, v.urls.map((url) => h("li", {}, urlLink(url)))),
    h("p", { class: "validation-status", role: "status" }, statusBadge(hook), " ", states[hook.status] || ""),
    hook.status === "active" ? null : h("div", { class: "actions" }, check)));
}

function secretSection(id) {
  const value = h("code", { class: "secret" }, "whsec_••••••••••••••••");
  const reveal = h("button", { type: "button", "aria-pressed": "false" }, "Reveal");
  const copy = h("button", { type: "button" }, "Copy");
  const rotate = h("button", { type: "button" }, "Rotate…");
  const note = h("p", { class: "rotation", role: "status" });
  let secret = null;
  const fetchSecret = async (button) => {
    const answer = await busy(button, () => api("GET", `hooks/${id}/secret`));
    secret = answer.secret;
    return answer;
  };
  const hide = () => {
    value.textContent = "whsec_••••••••••••••••";
    reveal.textContent = "Reveal";
    reveal.setAttribute("aria-pressed", "false");
  };
  reveal.addEventListener("click", async () => {
    if (reveal.getAttribute("aria-pressed") === "true") {
      hide();
      return;
    }
    await fetchSecret(reveal);
    value.textContent = secret;
    reveal.textContent = "Hide";
    reveal.setAttribute("aria-pressed", "true");
  });
  copy.addEventListener("click", async () => {
    if (!secret) await fetchSecret(copy);
    try {
      await navigator.clipboard.writeText(secret);
      say("The secret is on the clipboard.", "good");
    } catch {
      value.textContent = secret;
      say("The browser would not copy: the secret is shown, select it to copy.", "error");
    }
  });
  rotate.addEventListener("click", async () => {
    const answer = await busy(rotate, () => api("POST", `hooks/${id}/secret/rotate`));
    secret = answer.secret;
    value.textContent = secret;
    reveal.textContent = "Hide";
    reveal.setAttribute("aria-pressed", "true");
    note.textContent = answer.previous_secret_expires_at
      ? `New secret in use. The old one still signs too until ${when(answer.previous_secret_expires_at)}.`
      : "New secret in use.";
  });
  return section("Signing secret",
    h("p", {}, "Check each delivery's webhook-signature with it (Standard Webhooks)."),
    h("p", {}, value), h("div", { class: "actions" }, reveal, copy, rotate), note);
}

function testTool(id, log) {
  const name = uid("mode");
  const fieldsMode = h("input", { type: "radio", name, id: uid("m"), value: "fields", checked: true });
  const jsonMode = h("input", { type: "radio", name, id: uid("m"), value: "json" });
  const rows = h("div", { class: "rows" });
  const addRow = (key = "", val = "") => {
    const keyInput = h("input", { type: "text", value: key, "aria-label": "Field name", placeholder: "name" });
    const valInput = h("input", { type: "text", value: val, "aria-label": "Field value", placeholder: "value" });
    const drop = h("button", { type: "button", "aria-label": "Remove this field" }, "×");
    const row = h("div", { class: "pair" }, keyInput, valInput, drop);
    drop.addEventListener("click", () => row.remove());
    rows.append(row);
    return keyInput;
  };
  addRow("type", "test");
  addRow();
  const add = h("button", { type: "button" }, "Add a field");
  add.addEventListener("click", () => addRow().focus());
  const fieldsBox = h("div", { class: "fields-mode" }, rows, add);
  const json = field("Post data as JSON", h("textarea", { rows: 5, spellcheck: "false", class: "mono" }, '{\n  "type": "test"\n}'));
  json.wrap.hidden = true;
  const sync = () => {
    fieldsBox.hidden = !fieldsMode.checked;
    json.wrap.hidden = !jsonMode.checked;
  };
  fieldsMode.addEventListener("change", sync);
  jsonMode.addEventListener("change", sync);
  const send = h("button", { type: "submit" }, "Send now");
  const result = h("div", { class: "test-result", role: "status", "aria-live": "polite" });
  const form = h("form", { novalidate: true },
    h("fieldset", { class: "inline" }, h("legend", {}, "Enter the post data as"),
      fieldsMode, h("label", { for: fieldsMode.id }, "name/value fields"), jsonMode, h("label", { for: jsonMode.id }, "JSON")),
    fieldsBox, json.wrap, h("div", { class: "actions" }, send), result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(json, "");
    let data = {};
    if (jsonMode.checked) {
      try {
        data = JSON.parse(json.control.value);
      } catch (error) {
        showError(json, `Not valid JSON: ${error.message}`);
        json.control.focus();
        return;
      }
      if (!data || typeof data !== "object" || Array.isArray(data)) {
        showError(json, "Enter a JSON object: { \"name\": \"value\", … }");
        return;
      }
    } else {
      for (const row of rows.querySelectorAll(".pair")) {
        const [key, val] = row.querySelectorAll("input");
        if (key.value.trim()) data[key.value.trim()] = val.value;
      }
    }
    let answer;
    try {
      answer = await busy(send, () => api("POST", `hooks/${id}/test`, { data }));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      replace(result, h("p", { class: "bad" }, error.message));
      return;
    }
    replace(result,
      h("p", {}, "Your server answered ",
        h("strong", { class: `test-status ${answer.status && answer.status < 300 ? "good" : "bad"}` }, answer.status === null ? "nothing" : String(answer.status)),
        ` in ${answer.duration_ms} ms.`),
      answer.error ? h("p", { class: "bad test-error" }, answer.error) : null,
      answer.body !== null ? h("pre", { class: "test-body", "aria-label": "Your server's answer" }, answer.body) : null);
    log.refresh(true);
  });
  return section("Test tool", h("p", {}, "Send post data to your script right away, signed like a delivery (only once the URL is verified)."), form);
}

// What flow control learned of the receiver, and whether the breaker holds deliveries back.
function paceText(pace) {
  if (!pace) return "not measured yet";
  const rate = pace.rate_per_second ? `, about ${Math.round(pace.rate_per_second)}/s` : "";
  const speed = `${Math.round(pace.window)} at a time${rate}`;
  if (pace.breaker === "open") {
    const probe = pace.next_probe_at ? `; next probe ${when(pace.next_probe_at)}` : "";
    return `receiver seems down: deliveries wait${probe}`;
  }
  return speed;
}

// "2 of 8", "1 of 8 · replay 1": which try of how many, and which run (the first delivery or a replay).
function attemptText(a) {
  const of = a.attempt_of ? `${a.attempt} of ${a.attempt_of}` : String(a.attempt);
  return a.run ? `${of} · replay ${a.run}` : of;
}

function deliveryLog(view, id) {
  const failuresOnly = h("input", { type: "checkbox", id: uid("fail") });
  const refresh = h("button", { type: "button" }, "Refresh");
  const older = h("button", { type: "button", hidden: true }, "Older attempts");
  const body = h("tbody");
  const table = h("table", { class: "log" },
    h("caption", { class: "visually-hidden" }, "Delivery attempts, newest first"),
    h("thead", {}, h("tr", {}, ["Time", "Event", "Attempt", "Status", "Duration", "Outcome", "Error"].map((t) => h("th", { scope: "col" }, t)))),
    body);
  const empty = h("p", { class: "muted" });
  let attempts = [];
  let cursor = null;
  let pages = 0;
  const draw = () => {
    replace(body, attempts.map((a) => h("tr", { class: a.outcome },
      h("td", {}, when(a.at)), h("td", {}, a.type || "test"), h("td", {}, attemptText(a)),
      h("td", {}, a.status === null || a.status === undefined ? "—" : String(a.status)),
      h("td", {}, a.duration_ms === null || a.duration_ms === undefined ? "—" : `${a.duration_ms} ms`),
      h("td", {}, h("span", { class: `outcome ${a.outcome}` }, a.outcome)), h("td", { class: "error" }, a.next_attempt_at ? `${a.error || ""} (next try ${when(Date.parse(a.next_attempt_at) / 1000)})`.trim() : (a.error || "")))));
    empty.textContent = attempts.length ? "" : (failuresOnly.checked ? "No failures." : "No attempts yet.");
    older.hidden = !cursor;
  };
  // `button`: the one pressed, shown working; the automatic refresh passes none and changes no control.
  const load = async (button, more) => {
    const params = { failed_only: failuresOnly.checked ? "true" : null };
    const read = () => readPages(`hooks/${id}/deliveries`, params, "attempts", LOG_PAGE, more ? cursor : null);
    const answer = await (button ? busy(button, read) : read());
    if (!view.alive) return;
    attempts = more ? attempts.concat(answer.items) : answer.items;
    cursor = answer.cursor;
    pages = more ? pages + 1 : 1;
    draw();
  };
  failuresOnly.addEventListener("change", () => load(refresh, false));
  refresh.addEventListener("click", () => load(refresh, false));
  older.addEventListener("click", () => load(older, true));
  const element = section("Delivery log",
    h("div", { class: "actions" }, h("span", { class: "check" }, failuresOnly, h("label", { for: failuresOnly.id }, "Failures only")), refresh),
    h("div", { class: "scroll" }, table), empty, h("div", { class: "actions" }, older));
  load(refresh, false).catch(() => {});
  return {
    element,
    // `quiet`: the automatic refresh, which leaves older pages the customer opened alone.
    refresh: (quiet) => (quiet && pages > 1 ? Promise.resolve() : load(quiet ? null : refresh, false)),
  };
}

function replaySection(id, log) {
  const name = uid("range");
  const all = h("input", { type: "radio", name, id: uid("r"), value: "all", checked: true });
  const range = h("input", { type: "radio", name, id: uid("r"), value: "range" });
  const since = field("From (UTC)", h("input", { type: "datetime-local", step: 1 }));
  const until = field("Until (UTC)", h("input", { type: "datetime-local", step: 1 }));
  const times = h("div", { class: "row" }, since.wrap, until.wrap);
  const sync = () => {
    since.control.disabled = until.control.disabled = !range.checked;
  };
  all.addEventListener("change", sync);
  range.addEventListener("change", sync);
  sync();
  const go = h("button", { type: "submit" }, "Replay failed deliveries");
  const result = h("p", { class: "replay-result", role: "status" });
  const form = h("form", { novalidate: true },
    h("fieldset", { class: "inline" }, h("legend", {}, "Which"), all, h("label", { for: all.id }, "all failed deliveries"),
      range, h("label", { for: range.id }, "those that failed in a time range")),
    times, h("div", { class: "actions" }, go), result);
  const seconds = (input) => (input.value ? Math.floor(Date.parse(`${input.value}Z`) / 1000) : null);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(since, "");
    showError(until, "");
    const span = range.checked ? { since: seconds(since.control), until: seconds(until.control) } : {};
    for (const key of Object.keys(span)) if (span[key] === null) delete span[key];
    try {
      const answer = await busy(go, () => api("POST", `hooks/${id}/replay`, span));
      result.textContent = answer.replayed === 1 ? "1 delivery queued again." : `${answer.replayed} deliveries queued again.`;
      setTimeout(() => log.refresh(true), 2000);
    } catch (error) {
      result.textContent = "";
      showFieldErrors(error, { since, until });
    }
  });
  return section("Replay", h("p", {}, "Send the deliveries that failed for good again, with their original ids."), form);
}
