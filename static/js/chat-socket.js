// The conversation's websocket: JSON frames in and out, and reconnection by itself.
//
// A generation belongs to the server, so losing the socket loses nothing: the page reconnects
// with exponential backoff (1 s, 2 s, 4 s … 30 s, with jitter so a restarted server is not hit
// by every tab at once) and asks to resume whatever was streaming (see chat.js onOpen).

const MAX_DELAY = 30_000;
// Close codes the server uses for "do not come back" (not signed in, not yours, gone).
const PERMANENT_CLOSE = new Set([4001, 4003, 4004, 4401, 4403, 4404]);

export function socketUrl(path) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${path}`;
}

export class ChatSocket {
  /**
   * @param {string} path  e.g. "/ws/chat/<uuid>/"
   * @param {{onOpen: Function, onFrame: Function, onState: Function}} handlers
   *   onState receives "connecting" | "open" | "reconnecting" | "closed" (closed: given up).
   */
  constructor(path, handlers) {
    this.url = socketUrl(path);
    this.handlers = handlers;
    this.socket = null;
    this.attempt = 0;
    this.timer = 0;
    this.state = "connecting";
    // Come back at once when the network or the tab does, instead of waiting out the backoff.
    window.addEventListener("online", () => this.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    });
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  connect() {
    clearTimeout(this.timer);
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.setState("open");
      this.handlers.onOpen();
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return; // not ours to interpret; the server only sends JSON objects
      }
      if (frame && typeof frame === "object") this.handlers.onFrame(frame);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return; // an older socket we already replaced
      this.socket = null;
      if (PERMANENT_CLOSE.has(event.code)) this.setState("closed");
      else this.scheduleReconnect();
    });
    // An "error" event is always followed by "close", which does the work.
  }

  /** Send one frame; false when the socket is not open (the caller keeps what it had). */
  send(frame) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  scheduleReconnect() {
    this.setState("reconnecting");
    const base = Math.min(MAX_DELAY, 1000 * 2 ** this.attempt);
    const delay = Math.min(MAX_DELAY, base * (0.75 + Math.random() * 0.5));
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.state !== "reconnecting" || this.socket !== null) return;
    this.attempt = 0;
    this.connect();
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.handlers.onState(state);
  }
}
