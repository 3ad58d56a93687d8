// Building the page. Text from customers and receivers only ever goes in through textContent
// (h() appends strings as text nodes): nothing here parses HTML.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) {
      element.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      element.className = value;
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

let ids = 0;
export function uid(prefix) {
  ids += 1;
  return `${prefix}-${ids}`;
}

// A labelled control with a place for its error: { wrap, control, error }.
export function field(label, control, hint) {
  control.id = control.id || uid("f");
  const error = h("p", { class: "field-error", id: uid("e"), hidden: true });
  const hintEl = hint ? h("p", { class: "hint", id: uid("h") }, hint) : null;
  control.setAttribute("aria-describedby", [hintEl && hintEl.id, error.id].filter(Boolean).join(" "));
  const wrap = h("div", { class: "field" }, h("label", { for: control.id }, label), hintEl, control, error);
  return { wrap, control, error };
}

export function showError(target, message) {
  target.error.textContent = message;
  target.error.hidden = !message;
  target.control.setAttribute("aria-invalid", message ? "true" : "false");
}

// Marks a button as working while `work` runs; the button says so to screen readers too.
export async function busy(button, work) {
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = `${label}…`;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = label;
  }
}

export function when(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  return `${new Date(seconds * 1000).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

// A link for a URL a customer gave: only http(s) ever becomes a link.
export function urlLink(url) {
  let safe = false;
  try {
    safe = ["http:", "https:"].includes(new URL(url).protocol);
  } catch {
    safe = false;
  }
  return safe ? h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, url) : h("span", {}, url);
}

const notice = () => document.getElementById("notice");

export function say(message, kind = "info") {
  const element = notice();
  element.textContent = message;
  element.className = message ? `notice ${kind}` : "";
}

// A message for the view the next address shows (it clears what the previous view said).
let carried = null;
export function carry(message, kind = "info") {
  carried = [message, kind];
}
export function sayCarried() {
  const [message, kind] = carried || ["", "info"];
  carried = null;
  say(message, kind);
}
