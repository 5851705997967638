// /chat/: the empty composer. A conversation is created by a normal POST to /chat/new/; what the
// user typed travels to the new conversation's page in sessionStorage (chat.js sends it once its
// socket is open), so nothing typed is lost on the way, even if the page is reloaded.

import "./chat-sidebar.js";
import { bindComposerKeys, autosize, fillModelSelect, newClientId, PENDING_KEY } from "./chat-common.js";
import { t } from "./chat-strings.js";

const form = document.querySelector("[data-index-composer]");
const input = document.getElementById("composer-input");
const select = form?.querySelector("select[name=model]");
const errorBox = form?.querySelector("[data-composer-error]");
const missingKey = form?.hasAttribute("data-missing-key");

// A pending text that never reached a conversation (the POST failed, the user came back): offer
// it again instead of losing it.
function restorePending() {
  try {
    const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
    if (pending?.content && !input.value) input.value = pending.content;
  } catch {
    // sessionStorage can be unavailable (privacy modes); then there is nothing to restore
  }
}

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

if (form && input) {
  restorePending();
  autosize(input);
  input.addEventListener("input", () => {
    autosize(input);
    showError("");
  });
  bindComposerKeys(input, () => form.requestSubmit());

  form.addEventListener("submit", (event) => {
    const content = input.value;
    if (missingKey) {
      event.preventDefault();
      return;
    }
    if (!content.trim()) {
      event.preventDefault();
      showError(t("type_first", "Type a message first."));
      input.focus();
      return;
    }
    const pending = { content, model: select?.value || "", client_id: newClientId(), saved_at: Date.now() };
    try {
      sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
    } catch {
      // Without sessionStorage the conversation still gets created; the text stays in this tab's
      // back/forward cache at best. Nothing better is possible without a server-side draft.
    }
    form.querySelector("button[type=submit]")?.setAttribute("aria-busy", "true");
  });

  if (select) {
    const errorLabel = form.querySelector("[data-model-error]");
    fillModelSelect(select, select.dataset.modelsUrl, { current: "", errorLabel });
  }
}
