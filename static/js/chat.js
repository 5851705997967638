// /chat/<uuid>/: one conversation, live over its websocket.
//
// The page starts from the `conversation-data` JSON the server rendered, keeps every message in
// a ConversationStore (a tree: regenerations and edits are siblings), shows one branch of it,
// and applies the socket's frames as they come (protocol: ARCHITECTURE.md §3). Streaming text
// is applied to the store at once but painted at most every RENDER_INTERVAL ms, and only in the
// bubble that is streaming.

import { closeDrawer, drawerOpen, renameInSidebar } from "./chat-sidebar.js";
import { ChatSocket } from "./chat-socket.js";
import { ACTIVE_STATUSES, ConversationStore, LOCAL_PREFIX } from "./chat-store.js";
import { MessageView, errorContent, usageText } from "./chat-render.js";
import { ConversationHeader, resultError } from "./chat-header.js";
import { PENDING_KEY, autosize, bindComposerKeys, newClientId, postForm } from "./chat-common.js";
import { copyWithFeedback } from "./clipboard.js";
import { t } from "./chat-strings.js";

const RENDER_INTERVAL = 80; // ms between two paints of a streaming reply
const RESUME_RETRY = 3000; // ms before asking again for a snapshot that did not come
const PENDING_MAX_AGE = 60 * 60 * 1000; // text from /chat/ older than this is offered, not sent
const ANNOUNCE_MAX = 1500; // characters of a finished reply read out by screen readers
const BOTTOM_SLACK = 120; // px: "at the bottom" for auto-scroll purposes

const data = JSON.parse(document.getElementById("conversation-data").textContent);
const main = document.querySelector("[data-chat-main]");
const ui = {
  log: document.getElementById("chat-log"),
  empty: document.querySelector("[data-empty-conversation]"),
  title: document.getElementById("conversation-title"),
  composer: document.getElementById("composer"),
  input: document.getElementById("composer-input"),
  send: document.querySelector("[data-send]"),
  stop: document.querySelector("[data-stop]"),
  composerError: document.querySelector("[data-composer-error]"),
  connection: document.querySelector("[data-connection]"),
  announcer: document.getElementById("chat-announcer"),
  usageTotal: document.querySelector("[data-usage-total]"),
};
const missingKey = main.hasAttribute("data-missing-key");
const accountSettingsUrl = main.dataset.accountSettingsUrl || "/settings/";
const draftKey = `studio.draft.${data.id}`;

const store = new ConversationStore(data.messages || [], data.current_leaf);
const views = new Map(); // message id → MessageView
const outOfOrder = new Map(); // message id → Map(seq → text) of deltas that arrived early
const resumeAskedAt = new Map(); // message id → time of the last resume frame sent for it
const unconfirmed = new Map(); // client_id → send frame not yet confirmed by a `message` frame
let pendingFromIndex = null; // text typed on /chat/, sent once the socket opens
let pendingEdit = null; // {id, content} of an edit sent and not yet answered

const socket = new ChatSocket(data.urls.socket, { onOpen, onFrame, onState });
let header = null; // the ConversationHeader, made in start()

// ---------- Rendering ----------

function viewFor(message) {
  let view = views.get(message.id);
  if (!view) {
    view = new MessageView(message, { settingsUrl: accountSettingsUrl });
    views.set(message.id, view);
  }
  return view;
}

function isBusy() {
  return Boolean(store.activeMessage()) || store.hasUnconfirmed();
}

function isNearBottom() {
  const doc = document.documentElement;
  return window.innerHeight + window.scrollY >= doc.scrollHeight - BOTTOM_SLACK;
}

function scrollToBottom() {
  window.scrollTo({ top: document.documentElement.scrollHeight });
}

/** Update one bubble's status, actions and version navigation (not a streaming body). */
function refreshView(message, busy = isBusy()) {
  const view = viewFor(message);
  const siblings = store.siblingsOf(message);
  const streaming = ACTIVE_STATUSES.has(message.status);
  view.update(message, {
    index: siblings.indexOf(message) + 1,
    count: siblings.length,
    busy,
    renderBody: !streaming || view.renderedContent === null,
  });
  if (streaming) painter.mark(message.id);
  return view;
}

/** Show the current branch: bubbles are reused, only changed ones re-render. */
function renderPath({ stick = isNearBottom() } = {}) {
  const busy = isBusy();
  const wanted = store.path().map((message) => refreshView(message, busy).el);
  wanted.forEach((node, index) => {
    const current = ui.log.children[index];
    if (current !== node) ui.log.insertBefore(node, current || null);
  });
  while (ui.log.children.length > wanted.length) ui.log.lastElementChild.remove();
  ui.empty.hidden = wanted.length > 0;
  updateComposer();
  renderTotals();
  if (stick) scrollToBottom();
}

// Streaming text is painted on animation frames, at most every RENDER_INTERVAL ms. A very long
// reply takes longer to render each time; the interval then grows so that rendering never
// takes more than about a quarter of the time (typing in the composer stays smooth).
const painter = {
  dirty: new Set(),
  scheduled: false,
  last: 0,
  interval: RENDER_INTERVAL,
  mark(id) {
    this.dirty.add(id);
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = Math.max(0, this.last + this.interval - performance.now());
    setTimeout(() => requestAnimationFrame(() => this.flush()), wait);
  },
  flush() {
    this.scheduled = false;
    const started = performance.now();
    this.last = started;
    const stick = isNearBottom();
    for (const id of this.dirty) {
      const message = store.get(id);
      const view = views.get(id);
      if (!message || !view) continue;
      view.setMessage(message);
      view.renderBody();
    }
    this.dirty.clear();
    if (stick) scrollToBottom();
    this.interval = Math.max(RENDER_INTERVAL, 4 * (performance.now() - started));
  },
};

function renderTotals() {
  const totals = { prompt_tokens: 0, completion_tokens: 0, estimated: false };
  for (const message of store) {
    if (!message.usage) continue;
    totals.prompt_tokens += message.usage.prompt_tokens || 0;
    totals.completion_tokens += message.usage.completion_tokens || 0;
    totals.estimated ||= Boolean(message.usage.estimated);
  }
  const text = usageText(totals);
  ui.usageTotal.textContent = text ? t("usage_total", "Total: {usage}", { usage: text }) : "";
  ui.usageTotal.hidden = !text;
  if (totals.estimated) ui.usageTotal.title = t("estimated", "estimated");
  else ui.usageTotal.removeAttribute("title");
}

function announce(text) {
  // Emptying first makes a repeated text count as new for screen readers.
  ui.announcer.textContent = "";
  setTimeout(() => {
    ui.announcer.textContent = text.length > ANNOUNCE_MAX ? `${text.slice(0, ANNOUNCE_MAX)}…` : text;
  }, 50);
}

// ---------- Composer ----------

function canSend() {
  return socket.isOpen && !missingKey && !isBusy();
}

function updateComposer() {
  const active = store.activeMessage();
  ui.send.disabled = !canSend();
  ui.send.hidden = Boolean(active);
  ui.stop.hidden = !active;
  main.dataset.busy = active ? "true" : "false";
}

function showComposerError(error) {
  if (!error) {
    ui.composerError.replaceChildren();
    ui.composerError.hidden = true;
    return;
  }
  const nodes =
    typeof error === "string" ? [document.createTextNode(error)] : errorContent(error, accountSettingsUrl);
  ui.composerError.replaceChildren(...nodes);
  ui.composerError.hidden = false;
}

function saveDraft() {
  try {
    if (ui.input.value) sessionStorage.setItem(draftKey, ui.input.value);
    else sessionStorage.removeItem(draftKey);
  } catch {
    // no sessionStorage: the draft lives only as long as the page
  }
}

function putBackInComposer(text) {
  // Never overwrite something typed since: put the returned text first.
  ui.input.value = ui.input.value.trim() ? `${text}\n\n${ui.input.value}` : text;
  autosize(ui.input);
  saveDraft();
}

function submitComposer() {
  const content = ui.input.value;
  if (!content.trim()) {
    showComposerError(t("type_first", "Type a message first."));
    return;
  }
  if (missingKey) return;
  if (!socket.isOpen) {
    showComposerError(t("offline_kept", "Not connected. Your text stays here until the connection is back."));
    return;
  }
  if (isBusy()) {
    showComposerError(t("wait_or_stop", "Wait for the reply to finish, or stop it with Esc."));
    return;
  }
  sendText(content, newClientId());
  ui.input.value = "";
  autosize(ui.input);
  saveDraft();
}

/**
 * The model to send with. A conversation created before the model list arrived has none yet:
 * then wait for the list, whose default the picker selects.
 */
async function chosenModel() {
  if (!header.model) await header.modelsLoaded;
  return header.model || data.model || "";
}

/** Show the question at once (status "sending") and send it; the server confirms by client_id. */
function sendText(content, clientId) {
  showComposerError(null);
  const parentId = store.lastVisibleId();
  const frame = { type: "send", content, model: "", params: {}, client_id: clientId, parent_id: parentId };
  store.insert({
    id: LOCAL_PREFIX + clientId,
    parent_id: parentId,
    role: "user",
    content,
    status: "sending",
    client_id: clientId,
    created_at: new Date().toISOString(),
    seq: 0,
  });
  store.setLeaf(LOCAL_PREFIX + clientId);
  unconfirmed.set(clientId, frame);
  renderPath({ stick: true });
  chosenModel().then((model) => {
    frame.model = model;
    if (unconfirmed.has(clientId)) socket.send(frame); // (a reconnect may have sent it already)
  });
}

function stopActive() {
  const active = store.activeMessage();
  if (!active) return false;
  if (!socket.send({ type: "stop", message_id: active.id })) {
    showComposerError(t("offline", "Not connected."));
  }
  return true;
}

// ---------- Frames from the server ----------

function onFrame(frame) {
  switch (frame.type) {
    case "message":
      onMessage(frame.message);
      break;
    case "delta":
      onDelta(frame);
      break;
    case "snapshot":
      onSnapshot(frame);
      break;
    case "done":
      onDone(frame);
      break;
    case "error":
      onError(frame);
      break;
    case "title":
      onTitle(frame);
      break;
    default:
      break; // frames this page does not know are ignored, so the server can add new ones
  }
}

function onMessage(incoming) {
  if (!incoming || typeof incoming.id !== "string") return;
  const stick = isNearBottom();
  const wasActive = ACTIVE_STATUSES.has(store.get(incoming.id)?.status);
  const { message, created, replacedLocalId } = store.upsert(incoming);
  if (replacedLocalId) {
    // Our optimistic bubble becomes the real message: same element, new id.
    const view = views.get(replacedLocalId);
    views.delete(replacedLocalId);
    if (view) views.set(message.id, view);
    unconfirmed.delete(message.client_id);
    clearPendingFromIndex(message.client_id);
  }
  if (created) {
    // Follow new activity: a reply just started (here or in another tab) is what to look at.
    store.setLeaf(message.id);
    if (message.role === "user") pendingEdit = null;
  }
  dropOutOfOrderUpTo(message.id, message.seq ?? 0);
  renderPath({ stick: stick || created || Boolean(replacedLocalId) });
  if (wasActive && !ACTIVE_STATUSES.has(message.status)) finished(message);
}

function appendDelta(message, seq, text) {
  message.content = (message.content || "") + text;
  message.seq = seq;
}

function drainOutOfOrder(message) {
  const waiting = outOfOrder.get(message.id);
  if (!waiting) return;
  while (waiting.has((message.seq ?? 0) + 1)) {
    const seq = (message.seq ?? 0) + 1;
    appendDelta(message, seq, waiting.get(seq));
    waiting.delete(seq);
  }
  if (waiting.size === 0) outOfOrder.delete(message.id);
}

function dropOutOfOrderUpTo(id, seq) {
  const waiting = outOfOrder.get(id);
  if (!waiting) return;
  for (const key of waiting.keys()) if (key <= seq) waiting.delete(key);
  if (waiting.size === 0) outOfOrder.delete(id);
}

function askResume(message) {
  const last = resumeAskedAt.get(message.id) || 0;
  if (performance.now() - last < RESUME_RETRY) return; // one request in flight is enough
  if (socket.send({ type: "resume", message_id: message.id, after_seq: message.seq ?? 0 })) {
    resumeAskedAt.set(message.id, performance.now());
  }
}

function onDelta({ message_id: id, seq, text }) {
  const message = store.get(id);
  if (!message || !Number.isInteger(seq) || typeof text !== "string") return;
  const last = message.seq ?? 0;
  if (seq <= last) return; // already have it (a resend after a resume)
  if (seq === last + 1) {
    appendDelta(message, seq, text);
    drainOutOfOrder(message);
  } else {
    // A gap: keep this one for later and ask the server for everything after what we have.
    if (!outOfOrder.has(id)) outOfOrder.set(id, new Map());
    outOfOrder.get(id).set(seq, text);
    askResume(message);
  }
  if (message.status === "pending") {
    message.status = "streaming";
    refreshView(message);
  }
  painter.mark(id);
}

function onSnapshot({ message_id: id, seq, content, status }) {
  const message = store.get(id);
  if (!message || typeof content !== "string") return;
  const wasActive = ACTIVE_STATUSES.has(message.status);
  // An older snapshot than what the deltas already gave us changes nothing: the text of seq N
  // is the same prefix either way, and later deltas continue from ours.
  if ((seq ?? 0) >= (message.seq ?? 0)) {
    message.content = content;
    message.seq = seq ?? 0;
  }
  resumeAskedAt.delete(id);
  dropOutOfOrderUpTo(id, message.seq);
  drainOutOfOrder(message);
  if (typeof status === "string") message.status = status;
  refreshView(message);
  painter.mark(id);
  if (wasActive && !ACTIVE_STATUSES.has(message.status)) finished(message);
  else updateComposer();
}

function onDone({ message_id: id, status, finish_reason: finishReason, usage, seq }) {
  const message = store.get(id);
  if (!message) return;
  const wasActive = ACTIVE_STATUSES.has(message.status);
  store.patch(id, {
    status: status || "complete",
    finish_reason: finishReason ?? message.finish_reason,
    usage: usage ?? message.usage,
  });
  // Text still missing (a gap, or deltas lost before the end): the snapshot will bring it.
  // `seq` on done is the number of the reply's last delta.
  if (outOfOrder.has(id) || (Number.isInteger(seq) && seq > (message.seq ?? 0))) {
    resumeAskedAt.delete(id);
    askResume(message);
  }
  renderPath({ stick: isNearBottom() });
  if (wasActive) finished(message);
}

/** A reply has ended: paint its final form and read it out. */
function finished(message) {
  const view = views.get(message.id);
  if (!view) return;
  view.setMessage(message);
  view.renderBody();
  if (message.status === "error") announce(errorContent(message.error, accountSettingsUrl)[0].textContent);
  else if (message.content) announce(view.plainText());
  updateComposer();
}

function onError({ message_id: id, code, detail, retry_after: retryAfter }) {
  const error = { code: code || "", detail: detail || "", retry_after: retryAfter ?? null };
  const message = id ? store.get(id) : null;
  const failing =
    message?.role === "assistant" && (ACTIVE_STATUSES.has(message.status) || message.status === "error");
  if (failing) {
    const wasActive = ACTIVE_STATUSES.has(message.status);
    store.patch(id, { status: "error", error });
    renderPath({ stick: isNearBottom() });
    if (wasActive) finished(message);
    return;
  }
  // A refused request. A send that was not confirmed goes back into the composer, an edit back
  // into its editor, so nothing typed is lost.
  const lastUnconfirmed = [...unconfirmed.entries()].pop();
  if (lastUnconfirmed) {
    const [clientId, frame] = lastUnconfirmed;
    unconfirmed.delete(clientId);
    const localId = LOCAL_PREFIX + clientId;
    const local = store.get(localId);
    if (local) store.setLeaf(local.parent_id);
    store.remove([localId]);
    views.delete(localId);
    clearPendingFromIndex(clientId);
    putBackInComposer(frame.content);
    renderPath({ stick: false });
    ui.input.focus();
  } else if (pendingEdit && store.get(pendingEdit.id)) {
    const { id: editedId, content } = pendingEdit;
    pendingEdit = null;
    const form = viewFor(store.get(editedId)).startEditing();
    form.querySelector("textarea").value = content;
  }
  showComposerError(error);
  announce(errorContent(error, accountSettingsUrl)[0].textContent);
}

function setTitle(title) {
  ui.title.textContent = title;
  document.title = `${title} · Studio`;
  renameInSidebar(data.id, title);
  data.title = title;
}

function onTitle({ conversation_id: conversationId, title }) {
  if (conversationId && conversationId !== data.id) return;
  if (typeof title === "string" && title) setTitle(title);
}

// ---------- Socket life ----------

function onOpen() {
  // Catch up on every reply that was being written when the page loaded or the socket dropped.
  for (const message of store) {
    if (message.role === "assistant" && ACTIVE_STATUSES.has(message.status)) {
      resumeAskedAt.delete(message.id);
      askResume(message);
    }
  }
  // Sends that were never confirmed go again; the client_id makes the server ignore repeats.
  for (const frame of unconfirmed.values()) if (frame.model) socket.send(frame);
  if (pendingFromIndex && canSend()) {
    const { content, client_id: clientId } = pendingFromIndex;
    pendingFromIndex = null;
    sendText(content, clientId);
  }
  updateComposer();
}

const CONNECTION_TEXT = {
  connecting: () => t("connecting", "Connecting…"),
  reconnecting: () => t("reconnecting", "Reconnecting…"),
  closed: () => t("disconnected", "Disconnected. Reload the page to continue."),
};

let connectionTimer = 0;

function onState(state) {
  main.dataset.socket = state;
  clearTimeout(connectionTimer);
  const text = CONNECTION_TEXT[state];
  const show = () => {
    ui.connection.textContent = text ? text() : "";
    ui.connection.hidden = !text;
  };
  // The first connection normally takes a blink: say "Connecting…" only if it does not.
  if (state === "connecting") connectionTimer = setTimeout(show, 1000);
  else show();
  updateComposer();
}

// ---------- Text typed on /chat/ (see chat-index.js) ----------

function readPendingFromIndex() {
  try {
    return JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
  } catch {
    return null;
  }
}

function clearPendingFromIndex(clientId) {
  const pending = readPendingFromIndex();
  if (pending && (!clientId || pending.client_id === clientId)) {
    try {
      sessionStorage.removeItem(PENDING_KEY);
    } catch {
      // nothing stored, nothing to clear
    }
  }
}

function takePendingFromIndex() {
  const pending = readPendingFromIndex();
  if (!pending || typeof pending.content !== "string" || !pending.content) return;
  if ([...store].some((message) => message.client_id === pending.client_id)) {
    clearPendingFromIndex(); // sent before a reload; the conversation already has it
    return;
  }
  const fresh = Date.now() - (pending.saved_at || 0) < PENDING_MAX_AGE;
  if (fresh && store.size === 0 && !missingKey && pending.client_id) {
    pendingFromIndex = pending; // sent once the socket is open; cleared when confirmed
  } else {
    // Not for an empty new conversation (or too old to send unasked): offer it instead.
    clearPendingFromIndex();
    putBackInComposer(pending.content);
  }
}

// ---------- Message actions ----------

function switchVersion(message, step) {
  const siblings = store.siblingsOf(message);
  const target = siblings[siblings.indexOf(message) + step];
  if (!target) return;
  const leaf = store.newestLeafUnder(target.id);
  store.setLeaf(leaf);
  renderPath({ stick: false });
  // Keep the keyboard where it was: on the same arrow of the version now shown.
  const view = views.get(target.id);
  const same = step < 0 ? view.previousButton : view.nextButton;
  const other = step < 0 ? view.nextButton : view.previousButton;
  (same.disabled ? other : same).focus();
  // Remember the choice (an unconfirmed local message is not a place the server knows).
  if (!leaf.startsWith(LOCAL_PREFIX)) postForm(data.urls.branch, { leaf_id: leaf });
}

function regenerate(message) {
  if (!socket.send({ type: "regenerate", message_id: message.id })) {
    showComposerError(t("offline", "Not connected."));
  }
}

async function deleteMessage(message) {
  const question =
    message.role === "user"
      ? t("confirm_delete_message", "Delete this message and everything after it?")
      : t("confirm_delete_reply", "Delete this reply and everything after it?");
  if (!window.confirm(question)) return;
  const result = await postForm(data.urls.delete_message.replace("{id}", message.id));
  if (!result.ok) {
    showComposerError(resultError(result));
    return;
  }
  const deleted = Array.isArray(result.data.deleted) ? result.data.deleted : [message.id];
  // If the branch on screen loses messages, show what remains under the deleted one's parent.
  if (store.path().some((item) => deleted.includes(item.id))) store.setLeaf(message.parent_id);
  store.remove(deleted);
  for (const id of deleted) views.delete(id);
  renderPath({ stick: false });
  ui.input.focus();
}

async function copyMessage(button, message) {
  const copied = t("copied", "Copied");
  const failed = t("copy_failed", "Copy failed");
  const ok = await copyWithFeedback(button, message.content || "", copied, failed);
  announce(ok ? copied : failed);
}

function startEdit(message) {
  viewFor(message).startEditing();
}

function saveEdit(form) {
  const article = form.closest("article");
  const message = store.get(article.dataset.messageId);
  const content = form.querySelector("textarea").value;
  if (!message || !content.trim()) return;
  if (!socket.send({ type: "edit", message_id: message.id, content })) {
    showComposerError(t("offline_edit", "Not connected. Try again when the connection is back."));
    return;
  }
  pendingEdit = { id: message.id, content };
  views.get(message.id).stopEditing();
  ui.input.focus();
}

function cancelEdit(message) {
  const view = views.get(message.id);
  view.stopEditing();
  view.el.querySelector("[data-action=edit]")?.focus();
}

ui.log.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("button[data-action]") : null;
  const article = button?.closest("article[data-message-id]");
  const message = article ? store.get(article.dataset.messageId) : null;
  if (!message) return;
  switch (button.dataset.action) {
    case "previous":
      switchVersion(message, -1);
      break;
    case "next":
      switchVersion(message, 1);
      break;
    case "copy":
      copyMessage(button, message);
      break;
    case "regenerate":
    case "retry":
    case "continue":
      regenerate(message);
      break;
    case "delete":
      deleteMessage(message);
      break;
    case "edit":
      startEdit(message);
      break;
    case "cancel-edit":
      cancelEdit(message);
      break;
    default:
      break;
  }
});

ui.log.addEventListener("submit", (event) => {
  const form = event.target.closest(".msg-editor");
  if (!form) return;
  event.preventDefault();
  saveEdit(form);
});

// Enter in an editor saves, as in the composer (one listener for editors that come and go).
ui.log.addEventListener("keydown", (event) => {
  const area = event.target;
  if (!(area instanceof HTMLTextAreaElement) || !area.closest(".msg-editor")) return;
  if (event.key !== "Enter" || event.shiftKey || event.altKey) return;
  if (event.isComposing || event.keyCode === 229) return; // an input method picking a word
  event.preventDefault();
  area.form.requestSubmit();
});

// ---------- Keyboard ----------

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || event.defaultPrevented) return;
  const focused = document.activeElement;
  const editor = focused?.closest?.(".msg-editor");
  if (editor) {
    const message = store.get(editor.closest("article").dataset.messageId);
    if (message) cancelEdit(message);
  } else if (header.closeOnEscape(focused)) {
    // a menu or the rename form was open
  } else if (stopActive()) {
    // Esc stops the reply wherever the focus is.
  } else if (!header.closeSettingsOnEscape(focused)) {
    return;
  }
  event.preventDefault();
});

// ---------- Landing on #m-<id> (search results) ----------

function showMessageFromHash() {
  const match = /^#m-([0-9a-f-]{36})$/i.exec(window.location.hash);
  const message = match ? store.get(match[1].toLowerCase()) : null;
  if (!message) return false;
  store.setLeaf(store.newestLeafUnder(message.id));
  renderPath({ stick: false });
  const node = views.get(message.id).el;
  node.scrollIntoView({ block: "center" });
  node.focus({ preventScroll: true });
  node.classList.add("is-highlighted");
  setTimeout(() => node.classList.remove("is-highlighted"), 2500);
  return true;
}

// ---------- Start ----------

function start() {
  bindComposerKeys(ui.input, submitComposer);
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    submitComposer();
  });
  ui.input.addEventListener("input", () => {
    autosize(ui.input);
    saveDraft();
    if (!ui.composerError.hidden) showComposerError(null);
  });
  ui.stop.addEventListener("click", () => {
    stopActive();
    ui.input.focus();
  });
  header = new ConversationHeader(data, { onRenamed: setTitle });

  try {
    const draft = sessionStorage.getItem(draftKey);
    if (draft) ui.input.value = draft;
  } catch {
    // no draft to restore
  }
  takePendingFromIndex();
  autosize(ui.input);

  if (!showMessageFromHash()) renderPath({ stick: true });
  window.addEventListener("hashchange", showMessageFromHash);
  main.dataset.ready = "true";
  onState("connecting");
  socket.connect();
  if (drawerOpen()) closeDrawer({ restoreFocus: false });
}

start();
