// Small pieces shared by the chat pages: composer keys, the model list, CSRF-protected POSTs.

import { t } from "./chat-strings.js";

/** sessionStorage key for text typed on /chat/ that the new conversation's page will send. */
export const PENDING_KEY = "studio.pendingSend";

/** A UUID v4. crypto.randomUUID only exists in secure contexts, and a LAN install is plain http. */
export function newClientId() {
  if (typeof crypto.randomUUID === "function" && window.isSecureContext) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Enter sends, Shift+Enter (or Alt+Enter) is a new line. While an input method is composing
 * (pinyin, for one) Enter picks a candidate and must not send: isComposing covers most browsers,
 * keyCode 229 covers Safari, which ends the composition before the keydown arrives.
 */
export function bindComposerKeys(textarea, submit) {
  textarea.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.altKey) return;
    if (event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    submit();
  });
}

/** Grow a textarea with its text, up to a limit set in CSS (max-height), then scroll inside. */
export function autosize(textarea) {
  textarea.style.height = "auto";
  textarea.style.height = `${textarea.scrollHeight + 2}px`;
}

/** The CSRF token rendered by {% csrf_token %} somewhere on the page. */
export function csrfToken() {
  return document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
}

/**
 * POST form fields, expect JSON back. Resolves to {ok, status, data}; a network failure or a
 * non-JSON answer (an error page, a login redirect) becomes {ok: false, data: {error}}.
 */
export async function postForm(url, fields = {}) {
  const body = fields instanceof FormData ? new URLSearchParams(fields) : new URLSearchParams();
  if (!(fields instanceof FormData)) {
    for (const [name, value] of Object.entries(fields)) body.append(name, value ?? "");
  }
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
    });
  } catch {
    return { ok: false, status: 0, data: { error: t("network_error", "The server could not be reached.") } };
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!data || typeof data !== "object") {
    const error = t("server_error", "The server answered with an error.");
    return { ok: false, status: response.status, data: { error } };
  }
  return { ok: response.ok && data.ok !== false, status: response.status, data };
}

/**
 * Fill a model <select> from /chat/models.json. `current` (the conversation's model) stays
 * selectable even when the relay cannot list its models or no longer offers it.
 */
export async function fillModelSelect(select, url, options = {}) {
  const { current = "", errorLabel = null, refresh = false } = options;
  const before = select.value;
  let data;
  try {
    const response = await fetch(refresh ? `${url}${url.includes("?") ? "&" : "?"}refresh=1` : url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    data = await response.json();
  } catch {
    data = { models: [], default: "", error: t("models_failed", "Could not load the model list.") };
  }
  const models = Array.isArray(data?.models) ? data.models.filter((name) => typeof name === "string") : [];
  // The user may have picked something while the list was loading: keep that choice.
  const wanted = select.value !== before ? select.value : current || before || data?.default || "";
  const placeholder = select.querySelector("option[value='']");
  const names = !wanted || models.includes(wanted) ? [...new Set(models)] : [wanted, ...new Set(models)];
  const choices = names.map((name) => new Option(name, name));
  select.replaceChildren(...(placeholder ? [placeholder] : []), ...choices);
  if (!wanted && data?.default && names.includes(data.default)) select.value = data.default;
  else select.value = wanted;
  if (errorLabel) {
    const error = data?.error ? String(data.error) : "";
    errorLabel.textContent = error;
    errorLabel.hidden = !error;
  }
  return { models, error: data?.error || null };
}
