// One message on screen: its bubble, status, actions, error and usage.
//
// A MessageView is built once per message and updated in place; only the body of a streaming
// reply is re-rendered as text arrives (throttled by chat.js), never the whole conversation.

import { renderMarkdown } from "./markdown.js";
import { ACTIVE_STATUSES, LOCAL_PREFIX } from "./chat-store.js";
import { t } from "./chat-strings.js";

const STATUS_LABELS = {
  sending: () => t("status_sending", "Sending…"),
  pending: () => t("status_pending", "Waiting…"),
  streaming: () => t("status_streaming", "Writing…"),
  stopped: () => t("status_stopped", "Stopped"),
  error: () => t("status_error", "Error"),
  interrupted: () => t("status_interrupted", "Interrupted"),
};

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function actionButton(action, label, accessibleName) {
  const button = element("button", "btn-action", label);
  button.type = "button";
  button.dataset.action = action;
  if (accessibleName && accessibleName !== label) button.setAttribute("aria-label", accessibleName);
  return button;
}

/** "12 + 80 tokens", with "≈" and a title when the relay sent no usage and it was estimated. */
export function usageText(usage) {
  if (!usage) return "";
  const prompt = usage.prompt_tokens ?? 0;
  const completion = usage.completion_tokens ?? 0;
  if (!prompt && !completion) return "";
  const text = t("usage", "{prompt} + {completion} tokens", { prompt, completion });
  return usage.estimated ? `≈${text}` : text;
}

export function applyUsage(node, usage) {
  node.textContent = usageText(usage);
  node.hidden = node.textContent === "";
  if (usage?.estimated) node.title = t("estimated", "estimated");
  else node.removeAttribute("title");
}

/** What an error frame means to the reader, and whether the fix is in Settings. */
export function describeError(error) {
  const detail = error?.detail || "";
  switch (error?.code) {
    case "auth":
      return { lead: t("error_auth", "The relay did not accept the API key."), detail, settings: true };
    case "quota":
      // Studio's own per-user quota explains itself in its detail; the relay's needs a lead.
      if (error.by === "studio") return { lead: detail, detail: "", settings: false };
      return { lead: t("error_quota", "The API key has run out of quota."), detail, settings: true };
    case "no_key":
      return { lead: t("error_no_key", "Add an API key to chat."), detail, settings: true };
    case "rate_limited": {
      // Studio's own per-user limit says in its detail what to do; the relay's needs a lead.
      if (error.by === "studio") return { lead: detail, detail: "", settings: false };
      const seconds = Math.max(1, Math.ceil(Number(error.retry_after) || 0));
      const lead = error.retry_after
        ? t("error_rate_limited_in", "The relay is busy. Try again in {seconds} s.", { seconds })
        : t("error_rate_limited", "The relay is busy. Try again in a moment.");
      return { lead, detail, settings: false };
    }
    case "timeout":
      return { lead: t("error_timeout", "The relay took too long to answer."), detail, settings: false };
    default:
      return { lead: detail || t("error_generic", "Something went wrong."), detail: "", settings: false };
  }
}

/** A notice for an error: lead sentence, the relay's own words, a Settings link if relevant. */
export function errorContent(error, settingsUrl) {
  const { lead, detail, settings } = describeError(error);
  const parts = [element("p", "error-lead", lead)];
  if (detail && detail !== lead) parts.push(element("p", "error-detail", detail));
  if (settings) {
    const link = element("a", "", t("open_settings", "Open Settings"));
    link.href = settingsUrl;
    const line = element("p");
    line.append(link);
    parts.push(line);
  }
  return parts;
}

export class MessageView {
  constructor(message, { settingsUrl }) {
    this.settingsUrl = settingsUrl;
    this.renderedContent = null;
    this.renderedFinal = null;
    this.editing = false;
    this.build(message);
  }

  build(message) {
    const role = message.role === "user" ? "user" : "assistant";
    const article = element("article", `msg msg-${role}`);
    article.dataset.testid = "message";
    article.dataset.role = role;
    article.tabIndex = -1; // focus target when reached from a search result or a branch switch

    const meta = element("div", "msg-meta");
    const author = role === "user" ? t("you", "You") : t("assistant", "Assistant");
    const who = element("span", "msg-author", author);
    this.model = element("span", "msg-model");
    this.badge = element("span", "badge msg-status");
    this.badge.dataset.testid = "message-status";
    meta.append(who, this.model, this.badge);

    this.body = element("div", role === "user" ? "msg-body msg-plain" : "msg-body markdown");
    this.body.dataset.testid = "message-body";

    this.notice = element("div", "msg-notice");
    this.notice.hidden = true;

    const footer = element("div", "msg-footer");
    this.siblings = element("div", "sibling-nav");
    this.siblings.setAttribute("role", "group");
    this.siblings.setAttribute("aria-label", t("versions", "Versions"));
    const previous = actionButton("previous", "‹", t("previous_version", "Previous version"));
    const next = actionButton("next", "›", t("next_version", "Next version"));
    this.position = element("span", "sibling-position");
    this.position.dataset.testid = "sibling-position";
    this.siblings.append(previous, this.position, next);
    this.previousButton = previous;
    this.nextButton = next;

    this.actions = element("div", "msg-actions");
    if (role === "user") {
      this.actions.append(
        actionButton("edit", t("edit", "Edit"), t("edit_message", "Edit message")),
        actionButton("copy", t("copy", "Copy"), t("copy_message", "Copy message")),
        actionButton("delete", t("delete", "Delete"), t("delete_message", "Delete message")),
      );
    } else {
      this.actions.append(
        actionButton("copy", t("copy", "Copy"), t("copy_reply", "Copy reply")),
        actionButton("regenerate", t("regenerate", "Regenerate"), t("regenerate_reply", "Regenerate reply")),
        actionButton("delete", t("delete", "Delete"), t("delete_reply", "Delete reply")),
      );
    }
    this.usage = element("span", "msg-usage muted");
    this.usage.dataset.testid = "message-usage";
    footer.append(this.siblings, this.actions, this.usage);

    article.append(meta, this.body, this.notice, footer);
    this.el = article;
    this.setMessage(message);
  }

  setMessage(message) {
    this.message = message;
    this.el.id = message.id.startsWith(LOCAL_PREFIX) ? "" : `m-${message.id}`;
    this.el.dataset.messageId = message.id;
  }

  /**
   * Bring the bubble up to date. `context`: {index, count} of its versions, `busy` (a reply is
   * being generated, so actions that start another are disabled), `renderBody` (false while the
   * body of a streaming reply is left to the throttled painter).
   */
  update(message, { index = 1, count = 1, busy = false, renderBody = true } = {}) {
    this.setMessage(message);
    const status = message.status || "complete";
    this.el.dataset.status = status;
    const label = STATUS_LABELS[status];
    this.badge.hidden = !label;
    this.badge.textContent = label ? label() : "";
    this.badge.className = `badge msg-status status-${status}`;
    this.model.textContent = message.role === "assistant" ? message.model || "" : "";

    this.siblings.hidden = count < 2;
    this.position.textContent = `${index}/${count}`;
    this.previousButton.disabled = index <= 1;
    this.nextButton.disabled = index >= count;

    const active = ACTIVE_STATUSES.has(status) || status === "sending";
    const local = message.id.startsWith(LOCAL_PREFIX);
    this.actions.hidden = active || local || this.editing;
    for (const button of this.actions.querySelectorAll("[data-action=regenerate], [data-action=edit]")) {
      button.disabled = busy;
    }
    for (const button of this.actions.querySelectorAll("[data-action=delete]")) button.disabled = busy;
    applyUsage(this.usage, message.role === "assistant" ? message.usage : null);
    this.renderNotice(message, busy);
    if (renderBody) this.renderBody();
  }

  renderNotice(message, busy) {
    const status = message.status;
    this.notice.replaceChildren();
    this.notice.className = "msg-notice";
    delete this.notice.dataset.testid;
    if (status === "error" || (message.error && message.role === "assistant" && status !== "complete")) {
      this.notice.classList.add("notice", "notice-error");
      this.notice.dataset.testid = "message-error";
      const text = element("div", "notice-text");
      text.append(...errorContent(message.error || { code: "", detail: "" }, this.settingsUrl));
      const retry = actionButton("retry", t("retry", "Retry"), t("retry_reply", "Retry this reply"));
      retry.classList.add("btn", "btn-small");
      retry.disabled = busy;
      this.notice.append(text, retry);
      this.notice.hidden = false;
    } else if (status === "interrupted") {
      this.notice.classList.add("notice", "notice-warning");
      this.notice.dataset.testid = "message-interrupted";
      const text = element(
        "p",
        "notice-text",
        t("interrupted", "Interrupted — the server restarted while this was being written."),
      );
      const resume = actionButton(
        "continue",
        t("continue", "Continue"),
        t("continue_reply", "Continue: write this reply again"),
      );
      resume.classList.add("btn", "btn-small");
      resume.disabled = busy;
      this.notice.append(text, resume);
      this.notice.hidden = false;
    } else {
      this.notice.hidden = true;
    }
  }

  /** Re-render the body if its text (or finished state) changed since the last time. */
  renderBody() {
    if (this.editing) return;
    const message = this.message;
    const final = !ACTIVE_STATUSES.has(message.status);
    const content = message.content || "";
    if (content === this.renderedContent && final === this.renderedFinal) return;
    this.renderedContent = content;
    this.renderedFinal = final;
    if (message.role === "user") {
      this.body.textContent = content; // a question is shown as typed, never as markup
    } else if (!content && !final) {
      const typing = element("span", "typing");
      typing.setAttribute("aria-label", t("status_pending", "Waiting…"));
      typing.append(element("span"), element("span"), element("span"));
      this.body.replaceChildren(typing);
    } else {
      this.body.replaceChildren(renderMarkdown(content, { final }));
    }
  }

  startEditing() {
    this.editing = true;
    const form = element("form", "msg-editor");
    form.dataset.testid = "edit-form";
    const id = `edit-${this.message.id}`;
    const label = element("label", "visually-hidden", t("edit_message", "Edit message"));
    label.htmlFor = id;
    const area = element("textarea");
    area.id = id;
    area.value = this.message.content || "";
    area.rows = Math.min(12, Math.max(3, area.value.split("\n").length + 1));
    const buttons = element("div", "actions");
    const save = element("button", "btn btn-primary btn-small", t("save_resend", "Save & resend"));
    save.type = "submit";
    const cancel = actionButton("cancel-edit", t("cancel", "Cancel"));
    cancel.classList.add("btn", "btn-small");
    buttons.append(save, cancel);
    form.append(label, area, buttons);
    this.body.replaceChildren(form);
    this.actions.hidden = true;
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
    return form;
  }

  stopEditing() {
    this.editing = false;
    this.renderedContent = null;
    this.renderBody();
    this.actions.hidden = false;
  }

  /** Plain text of the rendered reply (for the screen-reader announcement). */
  plainText() {
    // innerText keeps the breaks between paragraphs and list items that textContent loses.
    return this.body.innerText.replace(/\s+/g, " ").trim();
  }
}
