// Translated strings for the chat scripts.
//
// The page's template renders them inside <template id="chat-strings"> as
// <span data-key="copy">Copy</span> elements, so Django's {% translate %} and its HTML escaping
// do the work (no JavaScript catalogue view, no inline script). The English text given at the
// call site is the fallback when a key is missing.

let table = null;

function load() {
  table = new Map();
  const holder = document.getElementById("chat-strings");
  if (!holder) return;
  for (const item of holder.content.querySelectorAll("[data-key]")) {
    table.set(item.dataset.key, item.textContent.trim());
  }
}

/** The translation of `key`; `{name}` placeholders are filled from `values`. */
export function t(key, fallback, values = {}) {
  if (table === null) load();
  const text = table.get(key) || fallback;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}
