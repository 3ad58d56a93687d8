// The list of hooks (filters, paging) and the form that creates or changes one.
import { api, ApiError, readPages } from "./api.js";
import { busy, carry, field, h, replace, say, showError, uid, when } from "./dom.js";
import { EVENT_TYPES, STATUSES, statusLabel } from "./events.js";

const PAGE = 20;

export function statusBadge(hook) {
  return h("span", { class: `badge ${hook.status}` }, statusLabel(hook.status));
}

// The outcome of the hook's latest attempt, read from its delivery log once the item is shown.
export function lastDelivery(hook) {
  const cell = h("span", { class: "muted", "aria-busy": "true" }, "reading…");
  const failing = hook.failing_since ? ` — failing since ${when(hook.failing_since)}` : "";
  api("GET", `hooks/${hook.id}/deliveries?limit=1`).then(({ attempts: [last] }) => {
    cell.removeAttribute("aria-busy");
    if (!last) {
      replace(cell, "no delivery yet", failing);
      return;
    }
    cell.className = last.outcome === "succeeded" ? "good" : "bad";
    replace(cell, `${last.outcome}${last.status ? ` (${last.status})` : ""} at ${when(last.at)}`, failing);
  }, () => {
    cell.removeAttribute("aria-busy");
    replace(cell, failing ? failing.slice(3) : "unknown");
  });
  return cell;
}

function select(options, anyLabel) {
  return h("select", {}, h("option", { value: "" }, anyLabel), options.map(([value, label]) => h("option", { value }, label)));
}

export function showHooks(main, view) {
  const database = field("Database", h("input", { type: "text", inputmode: "text", maxlength: 64 }));
  const collection = field("Collection", h("input", { type: "text", maxlength: 64 }));
  const eventType = field("Event", select(EVENT_TYPES.map(([value]) => [value, value]), "any event"));
  const status = field("Status", select(STATUSES, "any status"));
  const apply = h("button", { type: "submit" }, "Filter");
  const filters = h("form", { class: "filters", "aria-label": "Filter hooks" },
    database.wrap, collection.wrap, eventType.wrap, status.wrap, h("div", { class: "field actions" }, apply));
  const list = h("ul", { class: "hooks", "aria-label": "Hooks" });
  const previous = h("button", { type: "button", disabled: true }, "Previous page");
  const next = h("button", { type: "button", disabled: true }, "Next page");
  const pager = h("div", { class: "pager" }, previous, next);
  replace(main, h("div", { class: "heading" }, h("h1", {}, "Hooks"), h("a", { class: "button", href: "#/new" }, "New hook")),
    filters, list, pager);

  // cursors[i] starts page i; the first page has none.
  let cursors = [null];
  let page = 0;
  const inputs = [database, collection, eventType, status];

  async function load(button) {
    const params = {
      database: database.control.value.trim(), collection: collection.control.value.trim(),
      event: eventType.control.value, status: status.control.value,
    };
    inputs.forEach((input) => showError(input, ""));
    list.setAttribute("aria-busy", "true");
    let hooks;
    let cursor;
    try {
      ({ items: hooks, cursor } = await busy(button, () => readPages("hooks", params, "hooks", PAGE, cursors[page])));
    } catch (error) {
      list.removeAttribute("aria-busy");
      if (!view.alive) return;
      showFieldErrors(error, { database, collection, event: eventType, status });
      return;
    }
    if (!view.alive) return;
    list.removeAttribute("aria-busy");
    cursors = cursors.slice(0, page + 1);
    if (cursor) cursors.push(cursor);
    previous.disabled = page === 0;
    next.disabled = !cursor;
    replace(list, hooks.length ? hooks.map(hookItem) : h("li", { class: "empty" }, "No hooks here yet."));
  }

  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    cursors = [null];
    page = 0;
    load(apply);
  });
  next.addEventListener("click", () => {
    page += 1;
    load(next);
  });
  previous.addEventListener("click", () => {
    page = Math.max(0, page - 1);
    load(previous);
  });
  load(apply);
}

function hookItem(hook) {
  const where = [hook.database && `database ${hook.database}`, hook.collection && `collection ${hook.collection}`]
    .filter(Boolean).join(", ");
  return h("li", { class: "hook card" },
    h("div", { class: "hook-head" }, h("a", { href: `#/hook/${hook.id}`, class: "hook-url" }, hook.url), statusBadge(hook)),
    hook.disabled_reason ? h("p", { class: "reason" }, `Why: ${hook.disabled_reason}`) : null,
    hook.description ? h("p", { class: "description" }, hook.description) : null,
    h("dl", { class: "facts" },
      h("dt", {}, "Events"), h("dd", {}, hook.events.join(", ")),
      h("dt", {}, "Scope"), h("dd", {}, where || "all databases"),
      h("dt", {}, "Last delivery"), h("dd", {}, lastDelivery(hook))));
}

// Puts each field error of the API next to its control; what names no control goes to the notice.
export function showFieldErrors(error, controls) {
  if (!(error instanceof ApiError)) throw error;
  const unplaced = [];
  for (const problem of error.fields) {
    const name = String(problem.field).split(/[.[]/)[0];
    const target = controls[name];
    if (target) {
      showError(target, `${problem.field}: ${problem.reason}`);
    } else {
      unplaced.push(`${problem.field}: ${problem.reason}`);
    }
  }
  const placed = error.fields.length > unplaced.length;
  say([placed ? `${error.message}: see the marked fields.` : error.message, ...unplaced].join(" — "), "error");
  const first = Object.values(controls).find((c) => c.control.getAttribute("aria-invalid") === "true");
  if (first) first.control.focus();
}

// The fields of a hook, to create one (no `hook`) or change one. `submit(body)` returns the hook.
export function hookForm(hook, submitLabel, submit) {
  const url = field("URL of your script", h("input", { type: "url", required: true, maxlength: 2048, autocomplete: "url",
    placeholder: "https://www.example.com/dir/script.php", value: hook ? hook.url : null }),
  "Events are POSTed here once you publish the verification file next to it.");
  const eventsId = uid("events");
  const boxes = EVENT_TYPES.map(([value, label, sends]) => {
    const id = uid("ev");
    return h("div", { class: "check" },
      h("input", { type: "checkbox", id, name: "events", value, checked: hook ? hook.events.includes(value) : false }),
      h("label", { for: id }, h("strong", {}, value), ` — ${label}`, h("span", { class: "sends" }, `Sends: ${sends}`)));
  });
  const eventsError = h("p", { class: "field-error", id: uid("e"), hidden: true });
  const events = h("fieldset", { class: "events", id: eventsId, "aria-describedby": eventsError.id },
    h("legend", {}, "Events"), boxes, eventsError);
  const eventsField = { wrap: events, control: events.querySelector("input"), error: eventsError };
  const database = field("Database (optional)", h("input", { type: "text", maxlength: 64, value: hook ? hook.database : null }),
    "Only events of this database.");
  const collection = field("Collection (optional)", h("input", { type: "text", maxlength: 64, value: hook ? hook.collection : null }),
    "Only events of this collection.");
  const fmt = h("select", {}, h("option", { value: "form" }, "form (application/x-www-form-urlencoded)"),
    h("option", { value: "json" }, "json (application/json)"));
  fmt.value = hook ? hook.format : "form";
  const format = field("Format", fmt);
  const description = field("Description (optional)", h("textarea", { maxlength: 1000, rows: 2 }, hook && hook.description ? hook.description : ""));
  const rate = field("Rate limit (optional)", h("input", { type: "number", min: 1, max: 10000, inputmode: "numeric",
    value: hook ? hook.rate_limit : null }), "Deliveries per second your server accepts.");
  const batchOn = h("input", { type: "checkbox", id: uid("batch"), checked: Boolean(hook && hook.batch) });
  const maxEvents = field("Events per POST", h("input", { type: "number", min: 2, max: 100, value: hook && hook.batch ? hook.batch.max_events : 10 }));
  const maxWait = field("Wait at most (seconds)", h("input", { type: "number", min: 0, max: 300, value: hook && hook.batch ? hook.batch.max_wait_seconds : 10 }));
  const batchError = h("p", { class: "field-error", id: uid("e"), hidden: true });
  const batch = h("fieldset", { class: "batch", "aria-describedby": batchError.id }, h("legend", {}, "Batching (json only)"),
    h("div", { class: "check" }, batchOn, h("label", { for: batchOn.id }, "Several events per POST, as a JSON array")),
    h("div", { class: "row" }, maxEvents.wrap, maxWait.wrap), batchError);
  const batchField = { wrap: batch, control: batchOn, error: batchError };
  const syncBatch = () => {
    maxEvents.control.disabled = maxWait.control.disabled = !batchOn.checked;
  };
  batchOn.addEventListener("change", syncBatch);
  syncBatch();

  const button = h("button", { type: "submit" }, submitLabel);
  const form = h("form", { class: "card hook-form", novalidate: true }, url.wrap, events, h("div", { class: "row" }, database.wrap, collection.wrap),
    format.wrap, description.wrap, rate.wrap, batch, h("div", { class: "actions" }, button));
  const controls = { url, events: eventsField, database, collection, format, description, rate_limit: rate, batch: batchField };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    Object.values(controls).forEach((c) => showError(c, ""));
    const number = (input) => (input.value.trim() === "" ? null : Number(input.value));
    const text = (input) => (input.value.trim() === "" ? null : input.value.trim());
    const body = {
      url: url.control.value.trim(),
      events: [...events.querySelectorAll("input:checked")].map((box) => box.value),
      database: text(database.control),
      collection: text(collection.control),
      format: fmt.value,
      description: text(description.control),
      rate_limit: number(rate.control),
      batch: batchOn.checked ? { max_events: number(maxEvents.control), max_wait_seconds: number(maxWait.control) } : null,
    };
    if (!hook) {
      // A new hook: what is left empty is not sent at all.
      for (const key of Object.keys(body)) if (body[key] === null) delete body[key];
    }
    try {
      await busy(button, () => submit(body));
    } catch (error) {
      showFieldErrors(error, controls);
    }
  });
  return form;
}

export function showNewHook(main, view) {
  const form = hookForm(null, "Create hook", async (body) => {
    const created = await api("POST", "hooks", body);
    if (!view.alive) return;
    carry("Hook created. Publish its verification file (below) to start deliveries.", "good");
    location.hash = `#/hook/${created.id}`;
  });
  replace(main, h("h1", {}, "New hook"), form);
  form.querySelector("input").focus();
}
