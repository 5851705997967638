// The conversation list: a drawer on phones, and Ctrl/Cmd+K to search it from anywhere.
// Loaded by every chat page (index, conversation, search).

const PHONE = window.matchMedia("(max-width: 768px)");

const sidebar = document.querySelector("[data-drawer]");
const backdrop = document.querySelector("[data-drawer-backdrop]");
const toggles = [...document.querySelectorAll("[data-drawer-toggle]")];
let returnFocus = null;

export function drawerOpen() {
  return Boolean(sidebar?.classList.contains("is-open"));
}

export function openDrawer({ focus = true } = {}) {
  if (!sidebar || !PHONE.matches) return;
  returnFocus = document.activeElement;
  sidebar.classList.add("is-open");
  if (backdrop) backdrop.hidden = false;
  for (const toggle of toggles) toggle.setAttribute("aria-expanded", "true");
  if (focus) {
    const current = sidebar.querySelector("[aria-current=page]");
    (current || sidebar.querySelector("input, a, button"))?.focus();
  }
}

export function closeDrawer({ restoreFocus = true } = {}) {
  if (!sidebar || !drawerOpen()) return;
  sidebar.classList.remove("is-open");
  if (backdrop) backdrop.hidden = true;
  for (const toggle of toggles) toggle.setAttribute("aria-expanded", "false");
  if (restoreFocus) (returnFocus instanceof HTMLElement ? returnFocus : toggles[0])?.focus();
}

export function focusSearch() {
  const search = document.getElementById("chat-search");
  if (!search) return;
  if (PHONE.matches) openDrawer({ focus: false });
  search.focus();
  search.select();
}

for (const toggle of toggles) {
  toggle.addEventListener("click", () => (drawerOpen() ? closeDrawer() : openDrawer()));
}
document.querySelector("[data-drawer-close]")?.addEventListener("click", () => closeDrawer());
backdrop?.addEventListener("click", () => closeDrawer());
// Growing the window past the breakpoint turns the drawer back into a column.
PHONE.addEventListener("change", () => closeDrawer({ restoreFocus: false }));

document.addEventListener("keydown", (event) => {
  const commandK = (event.ctrlKey || event.metaKey) && !event.altKey && !event.shiftKey;
  if (commandK && event.key.toLowerCase() === "k") {
    event.preventDefault(); // browsers use Ctrl+K for their own search box
    focusSearch();
  } else if (event.key === "Escape" && drawerOpen()) {
    event.preventDefault(); // tells chat.js this Escape was used (it would stop a reply)
    closeDrawer();
  }
});

// Keep Tab inside the open drawer, as in any modal panel.
sidebar?.addEventListener("keydown", (event) => {
  if (event.key !== "Tab" || !drawerOpen()) return;
  const focusable = [...sidebar.querySelectorAll("a[href], button:not([disabled]), input:not([disabled])")];
  if (focusable.length === 0) return;
  const first = focusable[0];
  const last = focusable[focusable.length - 1];
  if (event.shiftKey && document.activeElement === first) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && document.activeElement === last) {
    event.preventDefault();
    first.focus();
  }
});

/** Show a new title on the conversation's sidebar entry. */
export function renameInSidebar(conversationId, title) {
  const link = document.querySelector(`[data-conversation-id="${CSS.escape(conversationId)}"]`);
  if (link) link.textContent = title;
}
