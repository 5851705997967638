// The conversation's messages as a tree, and which branch of it is on screen.
//
// Regenerating a reply or editing a question adds a sibling; the page shows one path from a
// root to a leaf. `leafId` is where that path ends as far as the user chose; below it the path
// follows the newest child, so choosing an older sibling shows its latest continuation.
// No DOM in here: chat.js renders what this says.

export const ACTIVE_STATUSES = new Set(["pending", "streaming"]);
export const LOCAL_PREFIX = "local-";

const ROOT = "\u0000root"; // the parent key of messages without a parent

function parentKey(message) {
  return message.parent_id || ROOT;
}

export class ConversationStore {
  constructor(messages = [], leafId = null) {
    this.byId = new Map();
    this.order = 0; // insertion counter: ties in created_at keep arrival order
    for (const message of messages) this.insert(message);
    this.leafId = leafId && this.byId.has(leafId) ? leafId : null;
  }

  insert(message) {
    const created = Date.parse(message.created_at || "") || Date.now();
    this.byId.set(message.id, { ...message, _created: created, _order: this.order++ });
  }

  get(id) {
    return this.byId.get(id) || null;
  }

  /** Children of `parentId` (null: the roots), oldest first. */
  childrenOf(parentId) {
    const key = parentId || ROOT;
    const found = [];
    for (const message of this.byId.values()) if (parentKey(message) === key) found.push(message);
    return found.sort((a, b) => a._created - b._created || a._order - b._order);
  }

  /** The versions of a message: same parent, same role (itself included), oldest first. */
  siblingsOf(message) {
    return this.childrenOf(message.parent_id).filter((other) => other.role === message.role);
  }

  /** The leaf reached from `id` by always taking the newest child. */
  newestLeafUnder(id) {
    let current = id;
    for (;;) {
      const children = this.childrenOf(current);
      if (children.length === 0) return current;
      current = children[children.length - 1].id;
    }
  }

  /** The messages on screen, root first. */
  path() {
    const leaf = this.leafId && this.byId.has(this.leafId) ? this.leafId : null;
    const end = this.newestLeafUnder(leaf);
    const path = [];
    const seen = new Set();
    for (let current = this.get(end); current && !seen.has(current.id); ) {
      seen.add(current.id); // a malformed cycle must not hang the page
      path.push(current);
      current = current.parent_id ? this.get(current.parent_id) : null;
    }
    return path.reverse();
  }

  lastVisibleId() {
    const path = this.path();
    return path.length ? path[path.length - 1].id : null;
  }

  setLeaf(id) {
    this.leafId = id && this.byId.has(id) ? id : null;
  }

  /**
   * Add or update a message from the server. Its content only replaces ours when it is not
   * older (a `message` frame can carry the database copy, which lags behind the live deltas).
   * Returns {message, created, replacedLocalId}.
   */
  upsert(incoming) {
    const existing = this.byId.get(incoming.id);
    if (existing) {
      const next = { ...existing, ...incoming };
      if ((incoming.seq ?? 0) < (existing.seq ?? 0)) {
        next.content = existing.content;
        next.seq = existing.seq;
      }
      this.byId.set(incoming.id, next);
      return { message: next, created: false, replacedLocalId: null };
    }
    let replacedLocalId = null;
    const localId = incoming.client_id ? LOCAL_PREFIX + incoming.client_id : null;
    const local = localId ? this.byId.get(localId) : null;
    if (local) {
      // Our optimistic bubble, confirmed: the real message takes its place (and its children).
      this.byId.delete(localId);
      for (const message of this.byId.values()) {
        if (message.parent_id === localId) message.parent_id = incoming.id;
      }
      if (this.leafId === localId) this.leafId = incoming.id;
      replacedLocalId = localId;
    }
    this.insert(incoming);
    return { message: this.byId.get(incoming.id), created: !local, replacedLocalId };
  }

  /** Change fields of a message we hold (deltas, done frames, errors). */
  patch(id, fields) {
    const message = this.byId.get(id);
    if (!message) return null;
    Object.assign(message, fields);
    return message;
  }

  remove(ids) {
    for (const id of ids) this.byId.delete(id);
    if (this.leafId && !this.byId.has(this.leafId)) this.leafId = null;
  }

  /** The reply being generated, if any (the server runs at most one per conversation). */
  activeMessage() {
    let found = null;
    for (const message of this.byId.values()) {
      if (message.role === "assistant" && ACTIVE_STATUSES.has(message.status)) {
        if (!found || message._created > found._created) found = message;
      }
    }
    return found;
  }

  hasUnconfirmed() {
    for (const id of this.byId.keys()) if (id.startsWith(LOCAL_PREFIX)) return true;
    return false;
  }

  get size() {
    return this.byId.size;
  }

  *[Symbol.iterator]() {
    yield* this.byId.values();
  }
}
